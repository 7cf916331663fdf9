"""Real handwriting made into what the recognizer sees: canvases drawn with the app's brush, and scans.

Pen trajectories are replayed onto a white 640x480 canvas with the app's round brush (common/brush.py,
the very code gui/drawing.py paints with) at a random width (8-20 px), height (40-75% of the canvas) and
position; numbers are several digits of one writer on one line. Scanned digits are upscaled onto a bigger
image (the recognizer's photo/scan path binarises them). Either way the image then goes through
`Recognizer.prepare` (binarisation, segmentation, MNIST-style normalisation): training images and readings
at inference come out of one code path. Everything here is seeded and deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np

from common import brush
from recognizer.pipeline import Recognizer

CANVAS = (640, 480)            # (width, height): the app's canvas
BRUSH = (8, 20)                # brush widths the app offers
HEIGHT_FRAC = (0.40, 0.75)     # digit height (ink, brush included) as a share of the canvas height
SCAN_UPSCALE = {"cvl": 4, "semeion": 8}  # scans are tiny; see scan_image
_PREP = Recognizer(store=None)  # prepare() never touches the model store


def _points(strokes) -> tuple[np.ndarray, np.ndarray]:
    pts = np.concatenate([np.asarray(s, np.float64).reshape(-1, 2) for s in strokes])
    return pts.min(0), pts.max(0)


def place(strokes, x: float, y: float, height: float, brush_width: int, max_width: float | None = None):
    """Strokes scaled (aspect kept) so that their ink is `height` px tall with this brush, top-left at (x, y).

    Returns (strokes in canvas pixels, (w, h) of the ink box). A digit wider than `max_width` is drawn smaller.
    """
    lo, hi = _points(strokes)
    pw, ph = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    inner = max(height - brush_width, 2.0)
    s = inner / max(ph, 1e-6) if ph > 0.05 * max(pw, 1e-6) else inner / max(pw, 1e-6)  # a flat "-": by width
    if max_width is not None and pw * s + brush_width > max_width:
        s = max(max_width - brush_width, 2.0) / max(pw, 1e-6)
    r = brush_width / 2.0
    out = [(np.asarray(st, np.float64).reshape(-1, 2) - lo) * s + (x + r, y + r) for st in strokes]
    return out, (pw * s + brush_width, ph * s + brush_width)


def pen_canvas(strokes, rng: np.random.Generator, size=CANVAS) -> np.ndarray:
    """One pen digit drawn like a person draws it in the app: random brush, height and position."""
    W, H = size
    width = int(rng.integers(BRUSH[0], BRUSH[1] + 1))
    height = rng.uniform(*HEIGHT_FRAC) * H
    _, (w, h) = place(strokes, 0, 0, height, width, max_width=0.94 * W)
    x = rng.uniform(0, max(1.0, W - w))
    y = rng.uniform(0, max(1.0, H - h))
    placed, _ = place(strokes, x, y, height, width, max_width=0.94 * W)
    return np.asarray(brush.render(placed, (W, H), width), dtype=np.uint8)


def number_canvas(digits, rng: np.random.Generator, size=CANVAS) -> np.ndarray:
    """Several pen digits (each a stroke list, one writer) on one line: natural gaps, one brush, small size
    changes and vertical jitter. The canvas is widened when the line does not fit (height kept)."""
    W, H = size
    width = int(rng.integers(BRUSH[0], BRUSH[1] + 1))
    height = rng.uniform(*HEIGHT_FRAC) * H * 0.9
    scales = rng.uniform(0.9, 1.05, len(digits))
    gaps = rng.uniform(0.10, 0.40, len(digits)) * height
    jitter = rng.uniform(-0.05, 0.05, len(digits)) * height
    sizes = [place(d, 0, 0, height * k, width, max_width=1.2 * height)[1] for d, k in zip(digits, scales)]
    line_w = sum(w for w, _ in sizes) + float(gaps[1:].sum())
    W = max(W, int(np.ceil(line_w / 0.94)))
    x = rng.uniform(0.03 * W, max(0.03 * W + 1, W - line_w - 0.03 * W))
    base = rng.uniform(0.08 * H, max(0.08 * H + 1, H - 1.1 * height - 0.05 * H))  # bottoms roughly on a line
    placed = []
    for i, (d, k) in enumerate(zip(digits, scales)):
        if i:
            x += gaps[i]
        w, h = sizes[i]
        strokes, _ = place(d, x, base + height - h + jitter[i], height * k, width, max_width=1.2 * height)
        placed.extend(strokes)
        x += w
    return np.asarray(brush.render(placed, (W, H), width), dtype=np.uint8)


def scan_image(image: np.ndarray, kind: str) -> np.ndarray:
    """A scanned digit as the photo/scan path should get it: upscaled (the 28x28 CVL digits and 16x16 Semeion
    digits are too small for the segmenter's speck and grouping rules) with a paper margin around it."""
    up = SCAN_UPSCALE[kind]
    img = np.asarray(image, np.uint8)
    if kind == "semeion":  # binary, stretched to fill its box: give it paper around, like a scan
        img = cv2.copyMakeBorder(img, 3, 3, 3, 3, cv2.BORDER_CONSTANT, value=255)
    return cv2.resize(img, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)


def prepare(image: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Recognizer.prepare on one image that holds one digit -> ((28, 28) float32 or None, segments found).

    None unless segmentation finds exactly one digit (the caller counts those and drops them: a piece of a
    digit under the digit's label would teach the models wrong answers).
    """
    prep = _PREP.prepare(image)
    n = len(prep.batch)
    return (prep.batch[0, :, :, 0] if n == 1 else None), n
