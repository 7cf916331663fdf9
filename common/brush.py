"""The app's round brush: how a stroke of pointer positions becomes ink on a white greyscale image.

One implementation for everything that draws like the canvas: the GUI's off-screen drawing
(gui/drawing.py) and the real-handwriting data and benchmark (study/handwriting*.py,
benchmarks/bench_handwriting.py), so that a pen trajectory replayed for training or benchmarking
looks exactly like the same trajectory drawn in the app. Pillow only (no NumPy needed to draw).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from PIL import Image, ImageDraw

BACKGROUND = 255  # white paper
INK = 0  # black ink

Point = tuple[float, float]


def dot(draw: ImageDraw.ImageDraw, p: Point, width: int, fill: int = INK) -> None:
    """A disc of diameter `width` at p: the brush tip (round caps and joints)."""
    r = width / 2.0
    draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=fill)


def segment(draw: ImageDraw.ImageDraw, a: Point, b: Point, width: int, fill: int = INK) -> None:
    """The brush dragged from a to b: a plain wide line has square ends; the disc at b rounds it."""
    draw.line([a, b], fill=fill, width=width)
    dot(draw, b, width, fill)


def stroke(draw: ImageDraw.ImageDraw, points: Sequence[Point], width: int, fill: int = INK) -> None:
    """A whole press-drag-release: the first dot, then every segment (what the canvas paints live)."""
    if len(points) == 0:
        return
    pts = [tuple(p) for p in (points.tolist() if hasattr(points, "tolist") else points)]
    dot(draw, pts[0], width, fill)
    for a, b in zip(pts, pts[1:]):
        segment(draw, a, b, width, fill)


def render(strokes: Iterable[Sequence[Point]], size: tuple[int, int], width, ink: int = INK,
           background: int = BACKGROUND) -> Image.Image:
    """Strokes (point lists, y down, canvas pixels) drawn onto a new white "L" image of size (w, h).

    `width` is one brush width for all strokes or a sequence with one width per stroke.
    """
    strokes = list(strokes)
    widths = [int(width)] * len(strokes) if isinstance(width, (int, float)) else [int(w) for w in width]
    if len(widths) != len(strokes):
        raise ValueError(f"{len(widths)} brush widths for {len(strokes)} strokes")
    image = Image.new("L", (max(1, int(size[0])), max(1, int(size[1]))), background)
    draw = ImageDraw.Draw(image)
    for points, w in zip(strokes, widths):
        stroke(draw, points, max(1, w), ink)
    return image
