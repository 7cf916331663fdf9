"""The image operations of the reading side, in NumPy, each giving OpenCV's pixels.

The reading environment leaves OpenCV out (162 MB of a 300 MB budget). The committed models were trained on
OpenCV's output, so each function here reproduces its OpenCV counterpart: exactly where the arithmetic is
exact (bounding box, the 5x5 Gaussian of binomial weights, the elliptic structuring element and dilation),
within one grey level where OpenCV rounds fixed-point weights its own way (area and bilinear resampling).
Two ways to shrink: `resize` with small cached weight matrices for one digit (one matrix product per axis),
`shrink_area` with running sums for whole photos (weight matrices of a 2,500 px image would be too big).
tests/test_recognizer_raster.py compares each with OpenCV.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def bounding_box(img: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the nonzero pixels, (0, 0, 0, 0) when there are none (cv2.boundingRect of a mask)."""
    rows = np.flatnonzero(img.any(axis=1))
    if rows.size == 0:
        return 0, 0, 0, 0
    cols = np.flatnonzero(img.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


@lru_cache(maxsize=256)
def _area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) share of each source pixel in each output pixel when shrinking (box of src/dst pixels)."""
    span = src / dst
    edges = np.arange(dst + 1) * span
    j = np.arange(src)
    overlap = np.minimum(j[None, :] + 1, edges[1:, None]) - np.maximum(j[None, :], edges[:-1, None])
    return np.clip(overlap, 0.0, None) / span


@lru_cache(maxsize=256)
def _linear_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) bilinear weights with pixel centres aligned and the border pixel repeated (OpenCV's)."""
    pos = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    left = np.floor(pos).astype(np.int64)
    frac = pos - left
    frac[left < 0] = 0.0
    left = np.maximum(left, 0)
    past = left >= src - 1
    frac[past] = 0.0
    left[past] = src - 1
    w = np.zeros((dst, src))
    rows = np.arange(dst)
    w[rows, left] = 1.0 - frac
    w[rows[~past], left[~past] + 1] += frac[~past]
    return w


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 image -> (height, width) uint8: area averaging per axis that shrinks, bilinear per axis that grows.

    cv2.resize with INTER_AREA when shrinking and INTER_LINEAR when growing, to within one grey level.
    """
    h, w = img.shape
    wy = _area_weights(h, height) if height < h else _linear_weights(h, height)
    wx = _area_weights(w, width) if width < w else _linear_weights(w, width)
    out = wy @ img.astype(np.float64) @ wx.T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gaussian5(img: np.ndarray) -> np.ndarray:
    """cv2.GaussianBlur(img, (5, 5), 0) of a uint8 image (at least 3x3), its border mirrored as OpenCV does.

    With sigma 0 OpenCV uses the binomial kernel [1 4 6 4 1] / 16, exact in integers: rounded half up.
    """
    p = np.pad(img.astype(np.uint32), 2, mode="reflect")
    rows = p[:, :-4] + 4 * p[:, 1:-3] + 6 * p[:, 2:-2] + 4 * p[:, 3:-1] + p[:, 4:]
    both = rows[:-4] + 4 * rows[1:-3] + 6 * rows[2:-2] + 4 * rows[3:-1] + rows[4:]
    return ((both + 128) >> 8).astype(np.uint8)


def gaussian5_framed(img: np.ndarray, pad: int) -> np.ndarray:
    """gaussian5(np.pad(img, pad)) for pad >= 3, blurring only where there is ink to blur.

    Beyond two pixels of the image the padded frame stays zero, and OpenCV's mirrored border only mirrors
    zeros there, so only the image plus two pixels each way is computed (uint16 holds 255 * 16 * 16).
    """
    if pad < 3:
        raise ValueError(f"gaussian5_framed needs a frame of at least 3 pixels, got {pad}")
    h, w = img.shape
    p = np.zeros((h + 8, w + 8), np.uint16)
    p[4:-4, 4:-4] = img
    rows = p[:, :-4] + 4 * p[:, 1:-3] + 6 * p[:, 2:-2] + 4 * p[:, 3:-1] + p[:, 4:]
    both = rows[:-4] + 4 * rows[1:-3] + 6 * rows[2:-2] + 4 * rows[3:-1] + rows[4:]
    both += 128
    out = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    out[pad - 2:pad + h + 2, pad - 2:pad + w + 2] = both >> 8
    return out


@lru_cache(maxsize=64)
def ellipse_rows(size: int) -> tuple[tuple[int, int, int], ...]:
    """cv2.getStructuringElement(MORPH_ELLIPSE, (size, size)) as rows (dy, dx_from, dx_to) around its anchor."""
    r = c = size // 2
    rows = []
    for i in range(size):
        dy = i - r
        if abs(dy) > r:
            continue
        dx = int(np.rint(c * np.sqrt((r * r - dy * dy) / (r * r)))) if r else 0
        j1, j2 = max(c - dx, 0), min(c + dx + 1, size)
        if j2 > j1:
            rows.append((dy, j1 - c, j2 - 1 - c))
    return tuple(rows)


def ellipse_kernel(size: int) -> np.ndarray:
    """The elliptic structuring element as a uint8 (size, size) array (for tests and drawings)."""
    k = np.zeros((size, size), np.uint8)
    for dy, lo, hi in ellipse_rows(size):
        k[dy + size // 2, lo + size // 2:hi + size // 2 + 1] = 1
    return k


def dilate_ellipse(img: np.ndarray, size: int) -> np.ndarray:
    """cv2.dilate(img, elliptic kernel of `size`) of a binary uint8 image (0/255); pixels outside count as 0.

    Row by row of the kernel: a horizontal window maximum (from a cumulative sum), shifted vertically.
    """
    h, w = img.shape
    rows = ellipse_rows(size)
    reach = max(max(-lo, hi) for _, lo, hi in rows)
    ink = img > 0
    cum = np.zeros((h, w + 2 * reach + 1), np.int32)
    np.cumsum(ink, axis=1, out=cum[:, reach + 1:w + reach + 1])
    cum[:, w + reach + 1:] = cum[:, w + reach:w + reach + 1]
    out = np.zeros((h, w), bool)
    windows = {}
    for dy, lo, hi in rows:
        if (lo, hi) not in windows:  # ink anywhere in columns x+lo .. x+hi
            windows[(lo, hi)] = cum[:, hi + reach + 1:hi + reach + 1 + w] > cum[:, lo + reach:lo + reach + w]
        band = windows[(lo, hi)]
        # out[y] |= band[y + dy]
        if dy >= 0:
            out[:h - dy] |= band[dy:]
        else:
            out[-dy:] |= band[:h + dy]
    return out.astype(np.uint8) * 255


# --- for whole images (the binariser): mirrored borders, running sums, cost independent of the window
def _reflect101(n: int, pad: int) -> np.ndarray:
    """Indices of a length-n axis padded by `pad` each side as OpenCV's BORDER_REFLECT_101 does.

    Mirror without repeating the edge pixel, and again and again when pad >= n (small images, large blocks).
    """
    idx = np.arange(-pad, n + pad)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def _padded(img: np.ndarray, pad: int) -> np.ndarray:
    h, w = img.shape
    return img.take(_reflect101(h, pad), axis=0).take(_reflect101(w, pad), axis=1)


def gaussian3(img: np.ndarray) -> np.ndarray:
    """3x3 Gaussian (sigma 0: [1, 2, 1] / 4 each way) of a uint8 image, rounded half up like OpenCV.

    Edges mirrored without repeating the edge pixel (BORDER_REFLECT_101), added in place: no padded copy.
    """
    p = img.astype(np.uint16)
    rows = _mirror_sum(p, p << 1, axis=1)
    total = _mirror_sum(rows, rows << 1, axis=0)
    total += 8
    total >>= 4
    return total.astype(np.uint8)


def _mirror_sum(a: np.ndarray, out: np.ndarray, axis: int) -> np.ndarray:
    """out += each element's two neighbours along `axis` (a mirrored neighbour at the edges; itself if length 1)."""
    v, o = (a, out) if axis == 0 else (a.T, out.T)
    if len(v) == 1:
        o += v << 1
        return out
    o[1:] += v[:-1]
    o[:-1] += v[1:]
    o[0] += v[1]
    o[-1] += v[-2]
    return out


def box_mean(img: np.ndarray, block: int) -> np.ndarray:
    """Rounded mean of every (block x block) window (block odd), edges mirrored: OpenCV's blur.

    Running sums (cumsum) along each axis, so the cost does not grow with the block. The area is odd, so a
    mean never ends in exactly .5 and integer rounding equals OpenCV's.
    """
    h, w = img.shape
    r = block // 2
    p = _padded(img, r)
    dtype = np.int32 if block * 255 * p.shape[1] < 2 ** 31 else np.int64
    acc = _running_rows(p, dtype)
    cols = acc[block:] - acc[:-block]
    acc = np.zeros((h, cols.shape[1] + 1), dtype)
    np.cumsum(cols, axis=1, out=acc[:, 1:])
    sums = acc[:, block:] - acc[:, :-block]
    area = block * block
    sums += area // 2
    sums //= area
    return sums.astype(np.uint8)


def close_cross(mask: np.ndarray) -> np.ndarray:
    """Morphological close with the 3x3 cross (OpenCV's 3x3 ellipse); pixels outside the image are ignored."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    out = grown.copy()
    out[1:] &= grown[:-1]
    out[:-1] &= grown[1:]
    out[:, 1:] &= grown[:, :-1]
    out[:, :-1] &= grown[:, 1:]
    return out


def shrink_area(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale a uint8 image down to (width, height) by area averaging (what OpenCV's INTER_AREA does).

    Every output pixel is the mean of the input area it covers, partial pixels weighted by their share, so thin
    strokes fade evenly instead of dropping out. Rounded as OpenCV rounds (half up for its 2x2 shortcut, half to
    even otherwise), so the result matches it but for float rounding, within one grey level.
    """
    h, w = gray.shape
    if h % height == 0 and w % width == 0:  # whole blocks: exact integer sums
        ky, kx = h // height, w // width
        sums = gray.reshape(height, ky, width, kx).sum(axis=(1, 3), dtype=np.int64)
        area = ky * kx
        if (ky, kx) == (2, 2):
            return ((sums + area // 2) // area).astype(np.uint8)
        return np.rint(sums / area).astype(np.uint8)
    out = _shrink_axis(_shrink_axis(gray, height, 0), width, 1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _shrink_axis(img: np.ndarray, m: int, axis: int) -> np.ndarray:
    """Area-average `img` along `axis` (length n) down to m <= n cells of n / m pixels each (float64).

    A running sum read at each cell edge, the pixel an edge cuts counted by the share before the edge: the sums
    over whole pixels stay exact integers for a uint8 image.
    """
    n = img.shape[axis]
    edges = np.minimum(np.arange(m + 1) * (n / m), n)
    start = np.floor(edges).astype(np.intp)
    shape = [1, 1]
    shape[axis] = -1
    dtype = np.int32 if img.dtype == np.uint8 else np.float64
    if axis == 0:
        acc = _running_rows(img, dtype)
    else:
        acc = np.zeros((img.shape[0], n + 1), dtype)
        np.cumsum(img, axis=1, dtype=dtype, out=acc[:, 1:])
    upto = np.take(acc, start, axis=axis) + np.take(img, np.minimum(start, n - 1), axis=axis) * (
        edges - start).reshape(shape)
    out = np.diff(upto, axis=axis)
    out /= np.diff(edges).reshape(shape)
    return out


def _running_rows(img: np.ndarray, dtype) -> np.ndarray:
    """acc[i] = sum of img[:i] (n + 1 rows). One add per row: np.cumsum down axis 0 is many times slower."""
    acc = np.empty((img.shape[0] + 1, img.shape[1]), dtype)
    acc[0] = 0
    for i, row in enumerate(img):
        np.add(acc[i], row, out=acc[i + 1])
    return acc
