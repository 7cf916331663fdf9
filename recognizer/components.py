"""8-connected components of a binary mask in plain NumPy, so that reading needs neither OpenCV nor SciPy.

Same result as `cv2.connectedComponentsWithStats(mask, connectivity=8)` without the centroids. The mask is
labelled by its horizontal runs of ink rather than pixel by pixel: runs come from the transitions of each
row, two runs in adjacent rows touch (8-connected) when their column spans overlap or meet diagonally, and
touching runs are merged by repeated min-label hooking with pointer jumping. Everything per run or per pixel
is vectorised; the only Python loop is over hooking rounds, of which there are few.
"""

from __future__ import annotations

import numpy as np

__all__ = ["components"]


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, labels, stats) of the 8-connected components of a 2-D mask (nonzero = ink).

    n counts the background label 0; labels is int32 (H, W); stats is int32 (n, 5), rows [x, y, w, h, area],
    row 0 the background's. Components are numbered 1.. as OpenCV numbers them (its scan visits 2x2 blocks):
    in raster order of each one's first 2x2 block, rows taken in pairs, so equal labels mean equal pieces
    and callers that break ties by label behave as they did with OpenCV.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"components needs a 2-D mask, got shape {mask.shape}")
    H, W = mask.shape
    ink = mask.astype(bool, copy=False)
    starts, ends = _runs(ink)
    labels = np.zeros((H, W), np.int32)
    if len(starts) == 0:
        return 1, labels, _with_background(np.zeros((0, 5), np.int32), ink)
    stride = W + 1
    root = _merge_runs(starts, ends, stride)
    is_root = root == np.arange(len(root))
    run_label = (np.cumsum(is_root) - 1)[root]
    rows, x0 = np.divmod(starts, stride)
    x1 = ends - rows * stride
    lengths = x1 - x0
    stats, block = _stats(run_label, is_root, rows, x0, x1, lengths, stride)
    order = np.argsort(block)
    rank = np.empty_like(order)
    rank[order] = np.arange(1, len(order) + 1)
    labels.ravel()[np.flatnonzero(ink)] = np.repeat(rank[run_label].astype(np.int32), lengths)
    return len(order) + 1, labels, _with_background(stats[order], ink)


def _runs(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the ink runs as flat indices into the mask padded by one empty column.

    The padding column ends every row's last run, so transitions alternate start, end in raster order.
    """
    H, W = ink.shape
    padded = np.zeros((H, W + 1), bool)
    padded[:, :W] = ink
    flat = padded.ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat[0]:
        edges = np.concatenate(([0], edges))
    return edges[0::2], edges[1::2]


def _merge_runs(starts: np.ndarray, ends: np.ndarray, stride: int) -> np.ndarray:
    """Root (smallest run index) of each run's component.

    Run b in row r+1 touches run a in row r when a ends at or right of b's start and starts at or left of
    b's end (exclusive ends: this includes the diagonal contact). Shifting b's flat indices up one row
    makes both conditions a search in the sorted flat starts/ends of all runs.
    """
    first = np.searchsorted(ends, starts - stride, side="left")
    last = np.searchsorted(starts, ends - stride, side="right") - 1
    count = np.maximum(last - first + 1, 0)
    n = len(starts)
    root = np.arange(n)
    if not count.any():
        return root
    below = np.repeat(np.arange(n), count)
    offsets = np.arange(len(below)) - np.repeat(np.cumsum(count) - count, count)
    above = np.repeat(first, count) + offsets
    return _union(root, above, below)


def _union(root: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Merge the pairs (u, v): hook each larger root under the smaller one, then jump pointers to the roots.

    Repeated until every pair shares a root; settled pairs are dropped each round so later rounds are small.
    """
    while len(u):
        ru, rv = root[u], root[v]
        open_ = ru != rv
        if not open_.any():
            break
        u, v, ru, rv = u[open_], v[open_], ru[open_], rv[open_]
        np.minimum.at(root, np.maximum(ru, rv), np.minimum(ru, rv))
        while True:
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped
    return root


def _stats(run_label, is_root, rows, x0, x1, lengths, stride) -> tuple[np.ndarray, np.ndarray]:
    """[x, y, w, h, area] of the components (run_label 0..) from their runs, and each one's first 2x2 block.

    Runs come in raster order, so a component's root (its first run) holds its top row.
    """
    top = rows[is_root]
    n = len(top)
    bottom = np.zeros(n, np.int64)
    np.maximum.at(bottom, run_label, rows)
    left = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(left, run_label, x0)
    right = np.zeros(n, np.int64)
    np.maximum.at(right, run_label, x1)
    area = np.bincount(run_label, weights=lengths, minlength=n).astype(np.int64)
    block = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(block, run_label, (rows >> 1) * stride + (x0 >> 1))
    stats = np.stack([left, top, right - left, bottom + 1 - top, area], axis=1).astype(np.int32)
    return stats, block


def _with_background(stats: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Prepend the background row as OpenCV gives it: the box and count of the pixels without ink
    (OpenCV's untouched initial row [-1, INT32_MAX, 0, 0, 0] when every pixel is ink)."""
    bg = ~ink
    cols = np.flatnonzero(bg.any(axis=0))
    rows = np.flatnonzero(bg.any(axis=1))
    if len(cols):
        row0 = [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1, int(bg.sum())]
    else:
        row0 = [-1, np.iinfo(np.int32).max, 0, 0, 0]
    return np.vstack([np.array([row0], np.int32), stats]).astype(np.int32)
