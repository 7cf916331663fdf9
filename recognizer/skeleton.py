"""Zhang-Suen thinning in NumPy, for many images at once.

The normaliser redraws every digit from its one-pixel skeleton, so the skeleton defines the pixels the models
see. This is the parallel two-pass thinning of Zhang and Suen (CACM 27(3), 1984): in each pass every ink pixel
is judged on its eight neighbours as they were when the pass began, and the removable ones go together. It
replaces scikit-image (and the SciPy it pulls in: ~190 MB of the reading environment) for one function.
OpenCV's own thinning (opencv-contrib's ximgproc) is not used: its pixels are not those the models were trained
on (docs/DECISIONS.md; the figures in docs/RESULTS.md, Decision notes).

Speed without a compiled loop: only pixels whose neighbourhood changed since the same pass last ran can change,
so each pass gathers the neighbours of those candidates alone (flat indices), and all digits of a reading are
thinned together in one array, which pays NumPy's per-call cost once per pass instead of once per digit.
"""

from __future__ import annotations

import numpy as np


def _zhang_suen_table() -> tuple[np.ndarray, np.ndarray]:
    """(removable in pass 1, removable in pass 2) for each of the 256 neighbourhoods.

    Bit k of a neighbourhood code is the neighbour at _OFFSETS[k]. A pixel is removable when it has 2-6 ink
    neighbours, its ring of neighbours has exactly one background -> ink transition (it is a simple border
    point, not a bridge), and it lies on a south-east border or north-west corner (pass 1: N*E*S = E*S*W = 0),
    or a north-west border or south-east corner (pass 2: N*E*W = N*S*W = 0). Then the neighbourhoods where
    scikit-image's table decides otherwise (_SKIMAGE_CASES) take its decision.
    """
    first = np.zeros(256, bool)
    second = np.zeros(256, bool)
    for code in range(256):
        nw, n, ne, e, se, s, sw, w = ((code >> k) & 1 for k in range(8))
        ring = (n, ne, e, se, s, sw, w, nw)
        ink = sum(ring)
        transitions = sum(1 for k in range(8) if ring[k] == 0 and ring[(k + 1) % 8] == 1)
        if 2 <= ink <= 6 and transitions == 1:
            first[code] = n * e * s == 0 and e * s * w == 0
            second[code] = n * e * w == 0 and n * s * w == 0
    for code, (in_first, in_second) in _SKIMAGE_CASES.items():
        first[code], second[code] = in_first, in_second
    return first, second


# Where scikit-image 0.26's thinning (skimage.morphology.skeletonize, BSD-3-Clause), which made the strokes the
# shipped models were trained on, departs from the paper's conditions: two-pixel diagonal steps and thick
# corners. code -> (removable in pass 1, in pass 2); tests/test_recognizer_skeleton.py checks that the result
# is pixel for pixel scikit-image's.
_SKIMAGE_CASES = {
    3: (1, 0), 6: (1, 0), 10: (1, 1), 11: (1, 0), 12: (1, 0), 14: (1, 0), 24: (0, 1), 26: (0, 1), 40: (1, 1),
    48: (0, 0), 56: (0, 1), 96: (0, 1), 104: (0, 1), 108: (0, 1), 129: (0, 0), 130: (1, 1), 131: (1, 0),
    134: (1, 0), 160: (1, 1), 161: (1, 0), 176: (0, 1), 192: (0, 1), 194: (1, 0), 198: (1, 0), 224: (0, 1),
}


# neighbour k of a pixel sits at this (row, column) offset: NW, N, NE, E, SE, S, SW, W
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
_REMOVABLE = _zhang_suen_table()


def skeletonize(images: np.ndarray) -> np.ndarray:
    """One-pixel skeletons of binary images: (H, W) or (N, H, W), nonzero = ink -> bool array of the same shape.

    Pixels on the outer border of each image count as having background outside it, as if padded with zeros.
    """
    return thin(images)[0]


def thin(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """skeletonize() plus the stroke's local half-width at each skeleton pixel: (skeleton, radius).

    radius (uint8, same shape, 0 off the skeleton) counts the peeling rounds it took to bare that pixel to the
    background (the earliest stripped of its eight neighbours): about half the stroke's width there. A filled
    loop (a blob) thins to a few pixels with a large radius; the normaliser uses it to keep the blob.
    """
    images = np.asarray(images)
    if images.ndim not in (2, 3):
        raise ValueError(f"expected binary images of shape (H, W) or (N, H, W), got {images.shape}")
    single = images.ndim == 2
    batch = images[None] if single else images
    n, h, w = batch.shape
    # one flat array, every image framed by a background row/column so that neighbours never wrap around
    frame = np.zeros((n, h + 2, w + 2), np.uint8)
    frame[:, 1:-1, 1:-1] = batch != 0
    flat = frame.reshape(-1)
    offsets = np.array([dy * (w + 2) + dx for dy, dx in _OFFSETS], np.intp)
    weights = (1 << np.arange(8)).astype(np.uint8)

    slot = np.empty(flat.size, np.int32)  # scratch for _unique
    # every pixel's neighbourhood code, kept up to date as pixels go (cheaper than gathering 8 neighbours a pass)
    codes = np.zeros(flat.size, np.uint8)
    inner = slice(w + 3, flat.size - w - 3)
    for k in range(8):
        codes[inner] |= flat[w + 3 + offsets[k]:flat.size - w - 3 + offsets[k]] * weights[k]
    # the bit that neighbour k's code has for this pixel: this pixel is its neighbour (k + 4) % 8
    mirrored = weights[[(k + 4) % 8 for k in range(8)]]

    # at first every border pixel of the ink is a candidate (interior pixels cannot go before their neighbours)
    ink = np.flatnonzero(flat.view(bool))  # flat holds 0/1: as bool, nonzero is several times faster
    border = ink[codes[ink] != 255]
    stale = [border, border]  # per pass: pixels whose neighbourhood changed since that pass last ran
    mirrored_rows = np.tile(mirrored, ink.size)  # `mirrored` for each of up to all ink pixels going at once
    depth = np.zeros(flat.size, np.uint8)  # the round in which each removed pixel went
    removed_any, rounds = True, 0
    while removed_any:
        removed_any = False
        rounds = min(rounds + 1, 255)
        for p, removable in enumerate(_REMOVABLE):
            idx = stale[p]
            idx = _unique(idx[flat[idx] == 1], slot)
            stale[p] = idx[:0]
            if idx.size == 0:
                continue
            gone = idx[removable[codes[idx]]]
            if gone.size:
                flat[gone] = 0
                depth[gone] = rounds
                removed_any = True
                # unbuffered: a pixel beside several that went loses one bit for each. The values are given
                # whole, not broadcast: NumPy 2.4's subtract.at got uint8 values broadcast over a 2-D index wrong
                touched = (gone[:, None] + offsets).ravel()
                np.subtract.at(codes, touched, mirrored_rows[:touched.size])
                # both passes must look again at the neighbours of what went
                touched = touched[flat[touched] == 1]
                stale[0] = np.concatenate((stale[0], touched))
                stale[1] = np.concatenate((stale[1], touched))
    skel = np.flatnonzero(flat.view(bool))
    radius = np.zeros(flat.size, np.uint8)
    if skel.size:
        # the nearest the background came to a skeleton pixel: the earliest round that stripped one of its
        # non-skeleton neighbours (0: it touched the background from the start). Not the latest: at the end
        # of a stroke the skeleton recedes along its length, round after round, however thin the stroke
        depth[skel] = 255
        near = np.min(depth[skel[:, None] + offsets], axis=1)
        radius[skel] = np.where(near == 255, 0, near)
    out = frame[:, 1:-1, 1:-1].astype(bool)
    radius = radius.reshape(frame.shape)[:, 1:-1, 1:-1]
    return (out[0], radius[0]) if single else (out, radius)


def _unique(values: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """`values` without repeats, in O(n) (no sort): each value keeps the position that wrote `slot` last."""
    order = np.arange(values.size, dtype=np.int32)
    slot[values] = order
    return values[slot[values] == order]
