"""The few image operations the normaliser needs, in NumPy, each giving OpenCV's pixels.

The reading environment leaves OpenCV out (162 MB of a 300 MB budget). The committed models were trained on
OpenCV's output, so each function here reproduces its OpenCV counterpart: exactly where the arithmetic is
exact (bounding box, the 5x5 Gaussian of binomial weights, the elliptic structuring element and dilation),
within one grey level where OpenCV rounds fixed-point weights its own way (area and bilinear resampling).
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
    cols = np.arange(w)
    windows = {}
    for dy, lo, hi in rows:
        if (lo, hi) not in windows:  # ink anywhere in columns x+lo .. x+hi
            windows[(lo, hi)] = cum[:, cols + hi + reach + 1] > cum[:, cols + lo + reach]
        band = windows[(lo, hi)]
        # out[y] |= band[y + dy]
        if dy >= 0:
            out[:h - dy] |= band[dy:]
        else:
            out[-dy:] |= band[:h + dy]
    return out.astype(np.uint8) * 255
