"""TEMPORARY stand-in for the NumPy 8-connected components module (replaced at merge): wraps OpenCV.

Interface: components(mask) -> (n, labels int32 (H, W), stats int32 (n, 5) [x, y, w, h, area]), the meaning of
cv2.connectedComponentsWithStats(mask, connectivity=8) without the centroids.
"""

from __future__ import annotations

import numpy as np


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of the non-zero pixels of `mask` (label 0 = background)."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8)
    return n, labels.astype(np.int32, copy=False), stats.astype(np.int32, copy=False)
