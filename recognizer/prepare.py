"""Image -> what the models read: ink, segments, normalised (N, 28, 28, 1) batch and boxes in input pixels.

Its own module because it decides the pixels: the real-handwriting training data is prepared through it and
cached under a key made from this code (study/handwriting.py), so reading-side changes elsewhere (profiles,
readings) do not rebuild minutes of prepared digits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .images import InkImage, to_ink
from .normalize import normalize_batch
from .segment import segment


@dataclass
class Prepared:
    """Segmentation + normalisation of one image, shared by all models."""

    boxes: list
    lines: list
    batch: np.ndarray
    ms: float


def prepare(image, ink: InkImage | None = None) -> Prepared:
    """Load, binarise, segment and normalise: boxes in input pixels and the (N, 28, 28, 1) batch. `ink`: the
    image's binarisation when the caller already made it (choosing canvas or paper needs it first)."""
    t0 = time.perf_counter()
    ink = ink if ink is not None else to_ink(image)
    segs = [] if ink.blank else segment(ink.mask, photo=ink.photo)
    batch = normalize_batch([s.mask for s in segs])
    inv = 1.0 / ink.scale
    W, H = ink.input_size
    boxes = []
    for s in segs:
        x, y, w, h = s.box
        bx, by = int(np.floor(x * inv)), int(np.floor(y * inv))
        bw = min(W - bx, int(np.ceil((x + w) * inv)) - bx)
        bh = min(H - by, int(np.ceil((y + h) * inv)) - by)
        boxes.append((bx, by, max(1, bw), max(1, bh)))
    return Prepared(boxes, [s.line for s in segs], batch, (time.perf_counter() - t0) * 1000.0)
