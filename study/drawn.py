"""Synthetic drawn digits: MNIST digits redrawn the way a user draws them on the canvas.

Each MNIST digit is upscaled, skeletonised and its strokes redrawn with a round anti-aliased brush
(8-20 px) in dark ink on a white 640x480 canvas, at a random size (40-75% of the canvas height) and
position; numbers are 3-8 such digits on one line with natural gaps and a little vertical jitter (the
canvas is widened when they do not fit; or, with fit="shrink", drawn smaller and bolder).
Everything is seeded and deterministic. Used by benchmarks/bench_drawn.py and the tests.
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from study.mnist_ink import stroke_mask, upscaled

CANVAS = (640, 480)         # (width, height): the app's canvas
BRUSH = (8, 20)             # brush widths in pixels, the range the app's brush slider is used with
HEIGHT_FRAC = (0.40, 0.75)  # digit height as a share of the canvas height: how big people draw
GAP_FRAC = (0.12, 0.45)     # gap between the digits of a number, as a share of the digit height
SIZE_JITTER = (0.92, 1.05)  # each digit of a number a little smaller or bigger than the others...
Y_JITTER = 0.05             # ...and up to this share of the height above or below the line
LINE_FILL = 0.94            # a number takes at most this share of the canvas width (margins on both sides)
X_MARGIN = 0.03             # at least this share of the width left and right of a number
Y_MARGIN = 0.05             # and this share of the height above and below it
SHRINK_BRUSH = 0.15         # fit="shrink": brush at most this share of the digit height (bolder, not a blot)
MIN_BRUSH = 4               # fit="shrink": but never thinner than this
INK = (0, 60)               # ink grey levels (dark pens and pencils)
_SHIFT = 3                  # cv2 sub-pixel bits


def skeleton_segments(img28: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Stroke skeleton of an MNIST digit as line segments (K, 2, 2) of (x, y) in a unit-height frame.

    Returns (segments, (width, height)) of the skeleton's box in the same frame (height 1).
    """
    from recognizer.skeleton import skeletonize

    big = upscaled(img28)
    sk = skeletonize(stroke_mask(big))
    ys, xs = np.nonzero(sk)
    if len(ys) == 0:
        ys, xs = np.nonzero(big > 0)
    if len(ys) == 0:
        return np.zeros((0, 2, 2), np.float32), (0.0, 0.0)
    y0, x0 = ys.min(), xs.min()
    hh = max(float(ys.max() - y0), 1.0)
    segs = []
    # connect each skeleton pixel with its 8-neighbours (right, down, down-right, down-left)
    pad = np.pad(sk, 1)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        nb = pad[1 + dy:1 + dy + sk.shape[0], 1 + dx:1 + dx + sk.shape[1]] & sk
        py, px = np.nonzero(nb)
        segs.append(np.stack([np.stack([px, py], -1), np.stack([px + dx, py + dy], -1)], 1))
    lone = sk & ~_has_neighbour(sk)
    py, px = np.nonzero(lone)
    segs.append(np.stack([np.stack([px, py], -1), np.stack([px, py], -1)], 1))
    segs = np.concatenate(segs).astype(np.float32)
    segs[..., 0] -= x0
    segs[..., 1] -= y0
    segs /= hh
    return segs, (float(xs.max() - x0) / hh, 1.0)


def _has_neighbour(sk: np.ndarray) -> np.ndarray:
    n = cv2.filter2D(sk.astype(np.uint8), -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT)
    return n > 1


def draw_digit(canvas: np.ndarray, segs: np.ndarray, x: float, y: float, height: float, brush: int,
               ink: int = 20) -> tuple:
    """Draw a skeleton (unit height) with its top-left at (x, y), skeleton height `height`, round brush.

    Returns the ink box (x, y, w, h) in canvas pixels.
    """
    if len(segs) == 0:
        return (int(x), int(y), 0, 0)
    pts = segs * height
    pts[..., 0] += x
    pts[..., 1] += y
    fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32)
    cv2.polylines(canvas, list(fixed), False, int(ink), int(brush), cv2.LINE_AA, _SHIFT)
    r = brush / 2.0
    x0, y0 = pts[..., 0].min() - r, pts[..., 1].min() - r
    x1, y1 = pts[..., 0].max() + r, pts[..., 1].max() + r
    return (int(x0), int(y0), int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0)))


def single_canvas(img28: np.ndarray, rng: np.random.Generator, size=CANVAS) -> tuple[np.ndarray, tuple]:
    """One MNIST digit drawn on a white canvas at random size, position and brush. Returns (canvas, box)."""
    W, H = size
    canvas = np.full((H, W), 255, np.uint8)
    segs, (sw, _) = skeleton_segments(img28)
    brush = int(rng.integers(BRUSH[0], BRUSH[1] + 1))
    total_h = rng.uniform(*HEIGHT_FRAC) * H
    hh = max(total_h - brush, 4.0)
    wdt = sw * hh + brush
    x = rng.uniform(brush / 2, max(brush / 2 + 1, W - wdt + brush / 2))
    y = rng.uniform(brush / 2, max(brush / 2 + 1, H - total_h + brush / 2))
    box = draw_digit(canvas, segs, x, y, hh, brush, ink=int(rng.integers(*INK)))
    return canvas, box


def number_canvas(imgs, rng: np.random.Generator, size=CANVAS, fit: str = "widen") -> tuple[np.ndarray, list]:
    """Several MNIST digits on one line (natural gaps, a little vertical jitter). Returns (canvas, boxes).

    The digits follow the single-digit rules (40-75% of the canvas height, brush 8-20 px). When the line
    is longer than the canvas is wide, fit="widen" makes the canvas wider (height kept), fit="shrink"
    draws the digits smaller instead (then the brush is capped at 15% of the digit height: bolder digits).
    """
    W, H = size
    skels = [skeleton_segments(im) for im in imgs]
    gaps = rng.uniform(*GAP_FRAC, size=len(imgs))           # gap / digit height
    widths = np.array([max(s[1][0], 0.08) for s in skels])  # skeleton width / height (a 1 is a line: ~0)
    total_h = rng.uniform(*HEIGHT_FRAC) * H
    brush = int(rng.integers(BRUSH[0], BRUSH[1] + 1))

    def line_width(th, b):
        return float((widths * (th - b) + b).sum() + gaps[1:].sum() * th)

    if fit == "shrink":
        for _ in range(50):
            b = min(brush, max(MIN_BRUSH, int(SHRINK_BRUSH * total_h)))
            if line_width(total_h, b) <= LINE_FILL * W:
                break
            total_h *= LINE_FILL * W / line_width(total_h, b) * 0.98  # a little under, so the loop ends
        brush = b
    else:
        W = max(W, int(np.ceil(line_width(total_h, brush) / LINE_FILL)))
    line_w = line_width(total_h, brush)
    canvas = np.full((H, W), 255, np.uint8)
    hh = total_h - brush
    x = rng.uniform(X_MARGIN * W, max(X_MARGIN * W + 1, W - line_w - X_MARGIN * W))
    y_base = rng.uniform(Y_MARGIN * H, max(Y_MARGIN * H + 1, H - total_h * (1 + 2 * Y_JITTER) - Y_MARGIN * H))
    ink = int(rng.integers(*INK))
    boxes = []
    for i, (segs, (sw, _)) in enumerate(skels):
        if i:
            x += gaps[i] * total_h
        scale = hh * rng.uniform(*SIZE_JITTER)
        jitter = rng.uniform(-Y_JITTER, Y_JITTER) * total_h
        boxes.append(draw_digit(canvas, segs, x + brush / 2, y_base + brush / 2 + jitter, scale, brush, ink))
        x += sw * scale + brush
    return canvas, boxes


def drawn_singles(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0, size=CANVAS) -> Iterator:
    """Yield (canvas, label) for n MNIST digits picked (seeded) from x/y."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=min(n, len(x)), replace=False)
    for i in idx:
        canvas, _ = single_canvas(x[i], rng, size)
        yield canvas, int(y[i])


def drawn_numbers(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0, lengths=(3, 8), size=CANVAS,
                  fit: str = "widen") -> Iterator:
    """Yield (canvas, "4071") for n numbers of 3-8 MNIST digits each, one line (see number_canvas)."""
    rng = np.random.default_rng(seed + 1_000_003)
    for _ in range(n):
        k = int(rng.integers(lengths[0], lengths[1] + 1))
        idx = rng.choice(len(x), size=k, replace=len(x) < k)
        canvas, _ = number_canvas([x[i] for i in idx], rng, size, fit)
        yield canvas, "".join(str(int(y[i])) for i in idx)
