"""MNIST-style normalisation of one digit's ink.

MNIST digits were size-normalised to fit a 20x20 box (aspect kept, anti-aliased grey levels) and centred
by centre of mass in 28x28. Ink whose strokes are about as wide as MNIST's (a pen on paper, a scan, a brush that
suits the digit's size) is treated exactly so: kept as written. Thinning it would throw away what the writer's
own stroke shows (pressure, the shape of corners and junctions), which is how scanned digits are told apart.
Canvas digits also come with hairline or very bold strokes, far from MNIST's: those are redrawn at a fixed
relative width (resampled to a working size, skeletonised and redrawn with a round brush), which makes a 4 px
and a 30 px brush look alike (MNIST's stroke is ~2-3 px in 28x28).
Where the ink is much thicker than its own stroke (a loop filled in by a bold pen or a blurred scan: the small
loop of a 9, the eyes of an 8) the thinning alone would leave a bare tail (a 9 read as 3 or 7): such blobs are
redrawn as discs, as much thicker than the pen as they were than the stroke.
Measurements behind both rules: docs/DECISIONS.md and its notes in docs/RESULTS.md.
The pixels are OpenCV's (bounding box, resizing, Gaussian, dilation with an elliptic pen) but for the thinning,
which gives scikit-image's pixels (skeleton.py: the models were trained on those); all digits of a reading are
thinned together.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .skeleton import thin

WORK = 72          # long side of the skeleton at working resolution
PEN = 9            # brush diameter at working resolution -> ~2.7 px stroke in the 20 px box (MNIST median)
BOX = 20           # MNIST's digit box
SIZE = 28          # MNIST's image size
BLOB_RATIO = 2.0   # ink at least twice as thick as the digit's median stroke is a blob (a filled loop)...
BLOB_MARGIN = 4    # ...if also 4+ working pixels thicker (radius): not a crossing, not a pressure change
KEEP_RADIUS = (3, 5)  # median stroke radius (working px) kept as written: where most MNIST digits lie


def _clip(value: int, low: int, high: int) -> int:
    """np.clip for one integer, without NumPy's per-call overhead (it showed in the per-digit profile)."""
    return min(max(int(value), low), high)


@lru_cache(maxsize=64)
def _pen(size: int) -> np.ndarray:
    """The round pen: OpenCV's elliptic structuring element of `size` x `size` pixels."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _resized(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 image -> (height, width): area averaging when shrinking (thin strokes fade instead of dropping out),
    bilinear when growing."""
    h, w = img.shape
    shrink = width <= w and height <= h
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _working_ink(crop: np.ndarray) -> np.ndarray | None:
    """Step 1: the digit's ink resampled to the working size (long side WORK), smoothed, as a binary image."""
    crop = np.ascontiguousarray(crop, dtype=np.uint8)
    x, y, w, h = cv2.boundingRect(crop)
    if w == 0 or h == 0:
        return None
    crop = crop[y:y + h, x:x + w]
    s = WORK / max(h, w)
    work = _resized(crop, max(1, round(w * s)), max(1, round(h * s)))
    frame = PEN + 3  # room for the pen around the ink
    work = cv2.copyMakeBorder(work, frame, frame, frame, frame, cv2.BORDER_CONSTANT, value=0)
    work = cv2.GaussianBlur(work, (5, 5), 0)
    # a low threshold keeps thin (downscaled) strokes connected
    binary = work > (64 if s < 1 else 110)
    return binary if binary.any() else work > 0


def _is_blob(radius, median):
    """Where a skeleton pixel's radius makes it a blob for a digit whose median stroke radius is `median`."""
    return (radius >= BLOB_RATIO * median) & (radius >= median + BLOB_MARGIN)


def _median_radii(skeletons: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per digit of a thinned batch: (median stroke radius, the median where a pixel can be a blob else 0).

    Blobs are rare: most digits' thickest skeleton pixel is not BLOB_RATIO times / BLOB_MARGIN more than the
    median. One histogram for the whole batch instead of a median per digit."""
    n = len(radii)
    where = np.flatnonzero(skeletons)  # one flat index array: far cheaper than nonzero's three
    digit = where // (skeletons.shape[1] * skeletons.shape[2])
    counts = np.bincount(digit * 256 + radii.reshape(-1)[where], minlength=n * 256).reshape(n, 256)
    cum = np.cumsum(counts, axis=1)
    total = cum[:, -1:]
    # np.median: the mean of the two middle values (one value for odd counts); value j of the sorted radii is
    # the first r whose cumulative count exceeds j
    lower = np.argmax(cum > (total - 1) // 2, axis=1)
    upper = np.argmax(cum > total // 2, axis=1)
    median = np.where(total[:, 0] > 0, (lower + upper) / 2.0, 0.0)
    top = 255 - np.argmax(counts[:, ::-1] > 0, axis=1)
    possible = (median >= 1) & _is_blob(top, median)  # median >= 1: the digit has a skeleton
    return median, np.where(possible, median, 0.0)


def _blob_pens(radius: np.ndarray, pen: int, median: float) -> np.ndarray:
    """Pen size for each skeleton pixel (its `radius` as thin() gives it): `pen`, or for a blob's pixels a
    pen as much larger as the blob is thicker than the median stroke (odd sizes, at most 3 pens)."""
    sizes = np.full(radius.shape, pen, np.int32)
    blob = _is_blob(radius, median)
    scaled = np.minimum(np.rint(pen * radius[blob] / median), 3 * pen).astype(np.int32)
    sizes[blob] = scaled | 1
    return sizes


def _redrawn(skel: np.ndarray, binary: np.ndarray, radius: np.ndarray, median: float) -> np.ndarray:
    """Steps 2-4: the skeleton redrawn with a round pen, fitted to the 20x20 box and centred in 28x28. With a
    `median` stroke radius (nonzero: a digit that has blobs, _median_radii), blobs get larger pens."""
    skel = skel.astype(np.uint8) * 255
    if not skel.any():
        skel, median = binary.astype(np.uint8) * 255, 0.0
    # a thick brush leaves a shorter skeleton (its ends sit a radius inside the stroke): scale the pen with
    # the skeleton so that the redrawn stroke has the same width relative to the 20 px box for any brush
    sx, sy, sw_, sh_ = cv2.boundingRect(skel)
    pen = _clip(round(PEN * max(sw_, sh_) / (WORK - 1)), 3, 2 * PEN - 1)
    sizes = None
    if median:
        ys, xs = np.nonzero(skel[sy:sy + sh_, sx:sx + sw_])
        sizes = _blob_pens(radius[sy:sy + sh_, sx:sx + sw_][ys, xs], pen, median)
    big = int(sizes.max()) if sizes is not None else pen
    reach = big // 2 + 1  # the largest stamp around the skeleton's box: all the dilation can reach
    framed = np.zeros((sh_ + 2 * reach, sw_ + 2 * reach), np.uint8)
    framed[reach:reach + sh_, reach:reach + sw_] = skel[sy:sy + sh_, sx:sx + sw_]
    ink = cv2.dilate(framed, _pen(pen))
    if big > pen:
        for size in np.unique(sizes[sizes > pen]):
            stamp = np.zeros_like(framed)
            on = sizes == size
            stamp[ys[on] + reach, xs[on] + reach] = 255
            ink |= cv2.dilate(stamp, _pen(int(size)))

    return _fitted(ink)


def _fitted(ink: np.ndarray) -> np.ndarray:
    """Steps 3-4: ink (uint8, 255 = ink) fitted to the 20x20 box and centred by mass in 28x28, as MNIST was."""
    out = np.zeros((SIZE, SIZE), np.float32)
    # 3. fit the 20x20 box (long side 20, aspect kept), anti-aliased
    x, y, w, h = cv2.boundingRect(ink)
    ink = ink[y:y + h, x:x + w]
    s = BOX / max(h, w)
    bw, bh = max(1, round(w * s)), max(1, round(h * s))
    small = _resized(ink, bw, bh).astype(np.float32) / 255.0

    # 4. centre of mass at the centre of the 28x28 field (integer shift, like MNIST)
    tot = float(small.sum())
    if tot <= 0:
        return out
    cy = float((small.sum(axis=1) * np.arange(bh)).sum()) / tot
    cx = float((small.sum(axis=0) * np.arange(bw)).sum()) / tot
    oy = _clip(round(SIZE / 2 - cy), 0, SIZE - bh)
    ox = _clip(round(SIZE / 2 - cx), 0, SIZE - bw)
    out[oy:oy + bh, ox:ox + bw] = small
    return out


def normalize_batch(crops, keep_ink: bool = True) -> np.ndarray:
    """List of digit crops (binary uint8, ink=255, cropped or not) -> (N, 28, 28, 1) float32 in [0, 1].

    keep_ink=False redraws every digit, MNIST-width ones too (training's redrawn copies of MNIST: they show the
    models what a hairline or a bold canvas digit becomes)."""
    batch = np.zeros((len(crops), SIZE, SIZE, 1), np.float32)
    work = [_working_ink(c) for c in crops]
    todo = [i for i, b in enumerate(work) if b is not None]
    if not todo:
        return batch
    # one thinning for all digits: each sits in the corner of a common frame (zeros around do not change it)
    frame = np.zeros((len(todo), max(work[i].shape[0] for i in todo), max(work[i].shape[1] for i in todo)), bool)
    for k, i in enumerate(todo):
        frame[k, :work[i].shape[0], :work[i].shape[1]] = work[i]
    skeletons, radii = thin(frame)
    strokes, blobs = _median_radii(skeletons, radii)
    keep = (strokes >= KEEP_RADIUS[0]) & (strokes <= KEEP_RADIUS[1]) if keep_ink else np.zeros(len(todo), bool)
    for k, i in enumerate(todo):
        h, w = work[i].shape
        if keep[k]:
            batch[i, :, :, 0] = _fitted(work[i].astype(np.uint8) * 255)
        else:
            batch[i, :, :, 0] = _redrawn(skeletons[k, :h, :w], work[i], radii[k, :h, :w], float(blobs[k]))
    return batch


def normalize_digit(crop: np.ndarray) -> np.ndarray:
    """One digit's binary ink (uint8, ink=255, cropped or not) -> (28, 28) float32 in [0, 1], white on black."""
    return normalize_batch([crop])[0, :, :, 0]
