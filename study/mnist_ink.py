"""The ink of an MNIST digit as a clean binary mask at a larger scale (training side: uses OpenCV).

Both the drawn-digit generator (which skeletonises MNIST digits to redraw them as pen strokes) and the
training copies that show the models what the recognizer's normalisation makes of MNIST need this mask.
A plain threshold fails on bold digits: their loops are filled with ink, a bold 9 becomes a blob whose
skeleton is a 7, a bold 6 a 1, and a copy labelled 9 that looks like a 7 is label noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from recognizer.normalize import SIZE, normalize_batch

UPSCALE = 4
_HOLE_LEVELS = (0.55, 0.65, 0.75)   # higher ink levels tried when a bold digit fills its loops
_MIN_HOLE_PX = 24     # a loop smaller than this (in the 4x frame, ~1.5 MNIST pixels) is not a loop


def upscaled(img28: np.ndarray, upscale: int = UPSCALE) -> np.ndarray:
    """A smooth (cubic, slightly blurred) uint8 upscaling of a 28x28 uint8 digit."""
    side = img28.shape[0] * upscale
    big = cv2.resize(img28, (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(big, (5, 5), 0)


def ink_mask(img28: np.ndarray, upscale: int = UPSCALE) -> np.ndarray:
    """Boolean ink mask of a 28x28 uint8 MNIST digit, `upscale` times larger, loops kept (see stroke_mask)."""
    return stroke_mask(upscaled(img28, upscale))


def stroke_mask(big: np.ndarray) -> np.ndarray:
    """The ink of an upscaled MNIST digit as a mask whose skeleton keeps the digit's loops.

    The base threshold is relative to the digit's own peak, so a faint pen stroke does not break into
    dashes. A bold digit can fill its loops at that level, which would turn its skeleton into another
    digit. A higher level is used instead when it reveals more holes of a real size without breaking the
    ink into more pieces.
    """
    peak = float(big.max())
    best = big > min(110, 0.45 * peak)
    best_pieces, best_holes = _topology(best)
    for frac in _HOLE_LEVELS:
        mask = big > frac * peak
        pieces, holes = _topology(mask)
        if pieces <= best_pieces and holes > best_holes:
            best, best_holes = mask, holes
    return best


def _topology(mask: np.ndarray) -> tuple[int, int]:
    """(pieces of ink, holes of at least _MIN_HOLE_PX pixels) of a binary mask."""
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return 0, 0
    parent = hierarchy[0][:, 3]
    pieces = int((parent == -1).sum())
    holes = sum(1 for c, p in zip(contours, parent) if p != -1 and cv2.contourArea(c) >= _MIN_HOLE_PX)
    return pieces, holes


def renormalize_mnist(images: np.ndarray, upscale: int = UPSCALE, chunk: int = 256) -> np.ndarray:
    """MNIST digits redrawn by the recognizer: (N, 28, 28[, 1]) uint8 or [0, 1] floats -> (N, 28, 28, 1).

    Training on these (beside the originals) shows the models what the recognizer makes of a hairline or a bold
    canvas digit: strokes redrawn at one width, smooth outlines. Every digit is redrawn here, MNIST-width ones
    too: at inference those are kept as written, which the originals already show. Without the redrawn copies a
    model lost about a point of accuracy on its own test digits once they had gone through the redraw. The ink
    comes from `ink_mask`, which keeps the loops of bold digits (a plain threshold turned bold 9s into 7s: label
    noise). Digits go through the recognizer's `normalize_batch` in chunks (one thinning per chunk).
    """
    x = np.asarray(images)
    if x.ndim == 4:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"expected MNIST images of shape (N, 28, 28[, 1]), got {np.asarray(images).shape}")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    out = np.empty((len(x), SIZE, SIZE, 1), np.float32)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        masks = [ink_mask(img, upscale).astype(np.uint8) * 255 for img in part]
        out[start:start + len(part)] = normalize_batch(masks, keep_ink=False)
    return out
