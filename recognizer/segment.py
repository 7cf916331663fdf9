"""Split a binary ink mask into digits: connected pieces, speck removal, grouping of pieces that belong to
one digit (a 4 or 5 drawn in two strokes, a detached bar), reliable splitting of touching digits, and
reading order (lines top -> bottom, digits left -> right). Vectorised OpenCV/NumPy, no per-pixel loops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)

SPECK_REL = 0.12        # pieces smaller than this fraction of the typical digit height (both sides) are specks
MIN_PIECE_PX = 3        # absolute speck size (pixels on the long side)
MERGE_X_OVERLAP = 0.5   # pieces overlapping horizontally by this share of the narrower one belong together
SPLIT_ASPECT = 1.5      # a group wider than this times its height may be several touching digits
DIGIT_ASPECT = 0.75    # typical width/height of one digit, to guess how many touch
MAX_PIECES = 400        # at most this many pieces are grouped


@dataclass
class Segment:
    """One digit candidate: box (x, y, w, h) in mask pixels, its own ink (uint8 crop, ink=255), line index."""

    box: tuple
    mask: np.ndarray
    line: int = 0


def segment(mask: np.ndarray, photo: bool = False) -> list[Segment]:
    """Digits of a binary mask (ink=255) in reading order.

    photo=True: pieces that run from one image border to the opposite one (paper edge, table, shadow)
    are not digits and are dropped before anything else.
    """
    if mask.size == 0 or not mask.any():
        return []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return []
    x, y, w, h, area = (stats[1:, i].astype(np.int64) for i in range(5))
    ids = np.arange(1, n)
    if photo:
        H, W = mask.shape
        frame = ((x == 0) & (x + w == W)) | ((y == 0) & (y + h == H))
        if frame.any() and not frame.all():
            keep = ~frame
            x, y, w, h, area, ids = x[keep], y[keep], w[keep], h[keep], area[keep], ids[keep]
        elif frame.all():
            return []

    # --- specks: tiny against the typical digit height (the tallest pieces), or a few pixels at all
    big = max(int(h.max()), 1)
    ref_h = float(np.median(h[h >= 0.5 * big]))
    longside = np.maximum(w, h)
    keep = (longside >= max(MIN_PIECE_PX, SPECK_REL * ref_h)) & (area >= 4)
    if not keep.any():
        return []
    x, y, w, h, area, ids = x[keep], y[keep], w[keep], h[keep], area[keep], ids[keep]
    if len(ids) > MAX_PIECES:  # a very noisy photo: keep the biggest pieces (grouping is quadratic)
        log.warning("%d ink pieces; keeping the %d biggest", len(ids), MAX_PIECES)
        top = np.sort(np.argsort(area)[::-1][:MAX_PIECES])
        x, y, w, h, area, ids = x[top], y[top], w[top], h[top], area[top], ids[top]
    ref_h = float(np.median(h[h >= 0.5 * h.max()]))

    # --- group pieces of one digit: strong horizontal overlap, and vertically together
    groups = _group(x, y, w, h, ref_h)

    # --- boxes of groups
    segs = []
    for members in groups:
        gx0 = int(x[members].min()); gy0 = int(y[members].min())
        gx1 = int((x[members] + w[members]).max()); gy1 = int((y[members] + h[members]).max())
        crop_labels = labels[gy0:gy1, gx0:gx1]
        own = np.isin(crop_labels, ids[members]) if len(members) > 1 else (crop_labels == ids[members[0]])
        crop = np.where(own, 255, 0).astype(np.uint8)
        segs.extend(_split_touching(crop, gx0, gy0, ref_h))

    return _reading_order(segs)


def _group(x, y, w, h, ref_h) -> list[list[int]]:
    k = len(x)
    parent = list(range(k))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    x1, y1 = x + w, y + h
    ov_x = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x[:, None], x[None, :])
    min_w = np.minimum(w[:, None], w[None, :])
    ov_y = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y[:, None], y[None, :])
    gap_y = -ov_y
    min_h = np.minimum(h[:, None], h[None, :])
    max_h = np.maximum(h[:, None], h[None, :])
    x_together = ov_x >= MERGE_X_OVERLAP * np.maximum(min_w, 1)
    # vertically: overlapping a fair share of the smaller piece (two strokes of a 4), or a small piece
    # (bar of a 5, flag of a 1, a dot) just above/below a bigger one - but never two full digits stacked
    v_overlap = ov_y >= 0.3 * min_h
    # stacked pieces (halves of a broken 8, the bar of a 5 above its body) are one digit when the
    # vertical gap is small against the pieces; two rows of digits have a wider gap between them
    stacked = (gap_y <= 0.2 * max_h) | ((min_h < 0.5 * max_h) & (gap_y <= 0.3 * max_h))
    join = x_together & (v_overlap | stacked)
    # side by side but not overlapping: a shorter piece just left of a taller one, top-aligned, that
    # together still make one digit's shape (the two strokes of a 4 whose bar stops short of the stem)
    gap_x = -ov_x
    comb_w = np.maximum(x1[:, None], x1[None, :]) - np.minimum(x[:, None], x[None, :])
    comb_h = np.maximum(y1[:, None], y1[None, :]) - np.minimum(y[:, None], y[None, :])
    left_is_shorter = np.where(x[:, None] <= x[None, :], h[:, None] <= h[None, :], h[None, :] <= h[:, None])
    side = ((gap_x >= 0) & (gap_x <= 0.12 * ref_h) & (min_h < 0.75 * max_h) & (min_h >= 0.3 * max_h)
            & (ov_y >= 0.6 * min_h) & (comb_w < 0.85 * comb_h) & left_is_shorter
            & (np.abs(y[:, None] - y[None, :]) <= 0.25 * max_h))
    join |= side
    np.fill_diagonal(join, False)
    ii, jj = np.nonzero(np.triu(join))
    for i, j in zip(ii.tolist(), jj.tolist()):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[rj] = ri
    groups: dict[int, list[int]] = {}
    for i in range(k):
        groups.setdefault(find(i), []).append(i)
    return _attach_fragments(list(groups.values()), x, y, x1, y1, ref_h)


def _attach_fragments(groups, x, y, x1, y1, ref_h) -> list[list[int]]:
    """Attach small groups (a detached bar, a broken-off stroke end) to the nearest digit beside them.

    A small group with no digit close by stays on its own (a deliberately small digit).
    """
    alone: set = set()
    while len(groups) > 1:
        bx0 = np.array([x[g].min() for g in groups]); by0 = np.array([y[g].min() for g in groups])
        bx1 = np.array([x1[g].max() for g in groups]); by1 = np.array([y1[g].max() for g in groups])
        gh, gw = by1 - by0, bx1 - bx0
        ref = float(np.median(gh[gh >= 0.5 * gh.max()]))
        # a flat stroke (about twice as wide as tall) is never a digit of its own: the bar of a 5 or a 7, even
        # when drawn slanted (taller than a small piece) or a little away from the body
        flat = (gw > 1.8 * gh) & (gh < 0.6 * ref) & (gw < 1.3 * ref)
        small = ((gh < 0.45 * ref) & (gw < 1.3 * ref)) | flat
        todo = small & np.array([tuple(sorted(g)) not in alone for g in groups])
        if not todo.any():
            break
        f = int(np.argmin(np.where(todo, gh * gw, np.inf)))  # smallest fragment first
        dx = np.maximum(bx0 - bx1[f], bx0[f] - bx1)           # horizontal distance (<0: overlap)
        dy = np.maximum(by0 - by1[f], by0[f] - by1)
        # a flat bar may float further off to the side when it sits at the top of the digit (a 5's bar)
        at_top = by1[f] <= by0 + 0.35 * gh
        reach = np.where(flat[f] & at_top, 0.45 * ref, 0.25 * ref)
        ok = (dx <= reach) & (dy <= 0.35 * ref) & ~small
        if not ok.any():
            if gh[f] < 0.3 * ref and gw[f] < 0.3 * ref:  # a stray mark far from every digit: noise
                groups.pop(f)
            else:
                alone.add(tuple(sorted(groups[f])))
            continue
        t = int(np.argmin(np.where(ok, dx + 0.5 * np.maximum(dy, 0), np.inf)))
        groups[t] = groups[t] + groups[f]
        groups.pop(f)
    return groups


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: ink area / half the contour length."""
    area = float(np.count_nonzero(mask))
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    per = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * area / max(per, 1.0)


def _split_touching(crop: np.ndarray, x0: int, y0: int, ref_h: float) -> list[Segment]:
    """Split a too-wide group at thin columns near the expected cuts; only where the cut is clean."""
    h, w = crop.shape
    if w < SPLIT_ASPECT * h or h < 0.5 * ref_h:
        return [Segment((x0, y0, w, h), crop)]
    k = int(round(w / (DIGIT_ASPECT * h)))
    if k < 2:
        return [Segment((x0, y0, w, h), crop)]
    sw = max(stroke_width(crop), 1.0)
    col = np.count_nonzero(crop, axis=0)
    ink = crop > 0
    runs = np.count_nonzero(ink[1:] & ~ink[:-1], axis=0) + ink[0]  # ink runs crossed by each column
    cuts = []
    for i in range(1, k):
        c = int(round(i * w / k))
        lo, hi = max(1, c - w // (3 * k)), min(w - 1, c + w // (3 * k) + 1)
        cand = np.nonzero(runs[lo:hi] == 1)[0] + lo  # a joint crosses one merged run, a digit's middle two+
        if len(cand) == 0:
            return [Segment((x0, y0, w, h), crop)]
        j = int(cand[np.argmin(col[cand])])
        # reliable: a thin joint, or a short contact between two parts that are each digit-sized
        if col[j] > 1.6 * sw and not (col[j] <= 0.6 * h and j - (cuts[-1] if cuts else 0) >= 0.3 * h):
            return [Segment((x0, y0, w, h), crop)]
        cuts.append(j)
    if w - cuts[-1] < 0.3 * h:
        return [Segment((x0, y0, w, h), crop)]
    edges = [0] + cuts + [w]
    for a, b in zip(edges[:-1], edges[1:]):
        rows = np.nonzero(np.count_nonzero(crop[:, a:b], axis=1))[0]
        if len(rows) == 0 or rows[-1] - rows[0] + 1 < 0.6 * h:  # each part must be a full-height digit
            return [Segment((x0, y0, w, h), crop)]
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        part = crop[:, a:b]
        ys, xs = np.nonzero(part)
        if len(ys) == 0:
            continue
        py0, py1, px0, px1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out.append(Segment((x0 + a + int(px0), y0 + int(py0), int(px1 - px0), int(py1 - py0)),
                           np.ascontiguousarray(part[py0:py1, px0:px1])))
    log.debug("split a %dx%d group into %d digits", w, h, len(out))
    return out


def _reading_order(segs: list[Segment]) -> list[Segment]:
    """Assign lines (top -> bottom) by vertical overlap, then order each line left -> right."""
    if not segs:
        return []
    order = sorted(segs, key=lambda s: s.box[1] + s.box[3] / 2)
    lines: list[list[Segment]] = []
    spans: list[list[float]] = []  # running [top, bottom] of the line's core
    for s in order:
        cy = s.box[1] + s.box[3] / 2
        placed = False
        for li in range(len(lines) - 1, max(-1, len(lines) - 3), -1):
            top, bot = spans[li]
            if top <= cy <= bot:
                lines[li].append(s)
                spans[li] = [min(top, s.box[1] + 0.25 * s.box[3]), max(bot, s.box[1] + 0.75 * s.box[3])]
                placed = True
                break
        if not placed:
            lines.append([s])
            spans.append([s.box[1] + 0.1 * s.box[3], s.box[1] + 0.9 * s.box[3]])
    out = []
    for li, line in enumerate(lines):
        for s in sorted(line, key=lambda s: s.box[0]):
            s.line = li
            out.append(s)
    return out
