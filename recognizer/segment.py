"""Split a binary ink mask into digits: connected pieces, speck removal, grouping of pieces that belong to
one digit (a 4 or 5 drawn in two strokes, a detached bar), reliable splitting of touching digits, and
reading order (lines top -> bottom, digits left -> right). The pieces come from OpenCV's connected components
(labels, boxes and pixel counts in one pass; the labels give each digit its own ink where a neighbour reaches into
its box), stroke width from its contours; the rules that group pieces into digits work on the boxes.

The thresholds below are shares of a reference height: the typical digit height (the median height of the
pieces at least REF_HEIGHT_SHARE as tall as the tallest), or the taller/shorter of two pieces being compared,
so that the rules hold for any canvas size and stroke width.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)

# --- reference height and specks
REF_HEIGHT_SHARE = 0.5  # pieces at least this share of the tallest are digit-sized; their median height is the reference
SPECK_REL = 0.12        # pieces smaller than this fraction of the typical digit height (both sides) are specks
MIN_PIECE_PX = 3        # absolute speck size (pixels on the long side): below this nothing is a stroke
MIN_PIECE_AREA = 4      # pieces with fewer ink pixels are noise, whatever their box
MAX_PIECES = 400        # at most this many pieces are grouped (grouping compares every pair)

# --- grouping pieces of one digit (shares of the narrower / shorter / taller piece of a pair)
MERGE_X_OVERLAP = 0.5   # pieces overlapping horizontally by this share of the narrower one belong together...
STROKE_Y_OVERLAP = 0.3  # ...when they also overlap vertically by this share of the shorter (two strokes of a 4)
STACK_GAP = 0.2         # ...or are stacked with a vertical gap up to this share of the taller (halves of an 8)
SMALL_PIECE = 0.5       # a piece shorter than this share of the other is a part (bar of a 5, flag of a 1)...
SMALL_STACK_GAP = 0.3   # ...and may float this far above/below it; two rows of digits have wider gaps
SIDE_GAP = 0.12         # side by side (the 4 whose bar stops short of the stem): horizontal gap <= this * digit height,
SIDE_SHORTER = 0.75     # the left piece clearly shorter than the right (below this share of it)...
SIDE_MIN_HEIGHT = 0.3   # ...but not a speck (at least this share),
SIDE_Y_OVERLAP = 0.6    # overlapping vertically by this share of the shorter,
SIDE_MAX_ASPECT = 0.85  # together narrower than this times their height (one digit's shape, not two digits)
SIDE_TOP_ALIGN = 0.25   # and top-aligned: tops differ by at most this share of the taller

# --- attaching small fragments to the digit beside them (shares of the reference height `ref`)
FRAGMENT_HEIGHT = 0.45  # a group shorter than this...
FRAGMENT_WIDTH = 1.3    # ...and narrower than this is a fragment, not a digit of its own
FLAT_ASPECT = 1.8       # a stroke this many times wider than tall...
FLAT_HEIGHT = 0.6       # ...and lower than this is a bar (of a 5 or 7), even when drawn slanted
BAR_AT_TOP = 0.35       # a bar whose bottom is within this share of a digit's height from its top sits on top...
BAR_REACH = 0.45        # ...and may float this far to the side of it (a 5's bar)
FRAGMENT_REACH = 0.25   # any other fragment must be this close horizontally
FRAGMENT_Y_REACH = 0.35 # and this close vertically
STRAY_MARK = 0.3        # a fragment below this share on both sides, with no digit in reach, is noise and dropped
Y_DISTANCE_WEIGHT = 0.5 # the nearest digit: horizontal distance plus this times the vertical distance

# --- splitting touching digits (shares of the group's height h, or of the reference height)
SPLIT_ASPECT = 1.5      # a group wider than this times its height may be several touching digits
SPLIT_MIN_HEIGHT = 0.5  # but only a digit-sized one (at least this share of the reference height)
DIGIT_ASPECT = 0.75     # typical width/height of one digit, to guess how many touch
CUT_WINDOW = 3          # a cut is searched within 1/CUT_WINDOW of a digit's width of where it is expected
JOINT_STROKES = 1.6     # a joint at most this many stroke widths thick is a clean cut...
CONTACT_HEIGHT = 0.6    # ...or a contact at most this share of the height between two digit-wide parts
MIN_PART_WIDTH = 0.3    # each part at least this share of the height wide
PART_HEIGHT = 0.6       # and each part spans at least this share of the height (a full digit, not a stroke)

# --- reading order (shares of a digit's own box height)
LINE_SEED = (0.1, 0.9)    # a new line's core: the middle of its first digit
LINE_CORE = (0.25, 0.75)  # a digit whose centre falls in a line's core widens the core by its own middle half
LINE_LOOKBACK = 2         # a digit may join one of the last this many lines (a digit slightly out of line)


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
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
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
    ref_h = float(np.median(h[h >= REF_HEIGHT_SHARE * big]))
    longside = np.maximum(w, h)
    keep = (longside >= max(MIN_PIECE_PX, SPECK_REL * ref_h)) & (area >= MIN_PIECE_AREA)
    if not keep.any():
        return []
    x, y, w, h, area, ids = x[keep], y[keep], w[keep], h[keep], area[keep], ids[keep]
    if len(ids) > MAX_PIECES:  # a very noisy photo: keep the biggest pieces (grouping is quadratic)
        log.warning("%d ink pieces; keeping the %d biggest", len(ids), MAX_PIECES)
        top = np.sort(np.argsort(area)[::-1][:MAX_PIECES])
        x, y, w, h, area, ids = x[top], y[top], w[top], h[top], area[top], ids[top]
    ref_h = float(np.median(h[h >= REF_HEIGHT_SHARE * h.max()]))

    # --- group pieces of one digit: strong horizontal overlap, and vertically together
    groups = _group(x, y, w, h, ref_h)

    # --- boxes of groups
    segs = []
    for members in groups:
        gx0, gy0 = int(x[members].min()), int(y[members].min())
        gx1, gy1 = int((x[members] + w[members]).max()), int((y[members] + h[members]).max())
        crop_labels = labels[gy0:gy1, gx0:gx1]
        own = np.isin(crop_labels, ids[members]) if len(members) > 1 else (crop_labels == ids[members[0]])
        crop = np.where(own, 255, 0).astype(np.uint8)
        segs.extend(_split_touching(crop, gx0, gy0, ref_h))

    return _reading_order(segs)


def _group(x, y, w, h, ref_h) -> list[list[int]]:
    """Pieces of one digit, joined pairwise by the rules above and then transitively (connected components).

    Groups come ordered by their first piece, pieces ascending: the order later steps break ties by.
    """
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
    v_overlap = ov_y >= STROKE_Y_OVERLAP * min_h
    # stacked pieces (halves of a broken 8, the bar of a 5 above its body) are one digit when the
    # vertical gap is small against the pieces; two rows of digits have a wider gap between them
    stacked = (gap_y <= STACK_GAP * max_h) | ((min_h < SMALL_PIECE * max_h) & (gap_y <= SMALL_STACK_GAP * max_h))
    join = x_together & (v_overlap | stacked)
    # side by side but not overlapping: a shorter piece just left of a taller one, top-aligned, that
    # together still make one digit's shape (the two strokes of a 4 whose bar stops short of the stem)
    gap_x = -ov_x
    comb_w = np.maximum(x1[:, None], x1[None, :]) - np.minimum(x[:, None], x[None, :])
    comb_h = np.maximum(y1[:, None], y1[None, :]) - np.minimum(y[:, None], y[None, :])
    left_is_shorter = np.where(x[:, None] <= x[None, :], h[:, None] <= h[None, :], h[None, :] <= h[:, None])
    side = ((gap_x >= 0) & (gap_x <= SIDE_GAP * ref_h) & (min_h < SIDE_SHORTER * max_h)
            & (min_h >= SIDE_MIN_HEIGHT * max_h) & (ov_y >= SIDE_Y_OVERLAP * min_h)
            & (comb_w < SIDE_MAX_ASPECT * comb_h) & left_is_shorter
            & (np.abs(y[:, None] - y[None, :]) <= SIDE_TOP_ALIGN * max_h))
    join |= side
    np.fill_diagonal(join, False)
    # pairs (i < j) only: `left_is_shorter` is not symmetric for pieces starting in the same column
    upper = np.triu(join)
    root = _first_member(upper | upper.T)
    groups = [np.flatnonzero(root == r).tolist() for r in np.unique(root)]
    return _attach_fragments(groups, x, y, x1, y1, ref_h)


def _first_member(join: np.ndarray) -> np.ndarray:
    """For each piece, the smallest piece joined to it transitively (symmetric boolean join matrix).

    Min-label propagation with pointer jumping: every piece takes the smallest label among itself and the
    pieces it joins, then the label of that label; at most a few rounds for the few hundred pieces kept.
    """
    n = len(join)
    root = np.arange(n)
    while True:
        nxt = np.minimum(root, np.where(join, root[None, :], n).min(axis=1, initial=n))
        nxt = nxt[nxt]
        if np.array_equal(nxt, root):
            return root
        root = nxt


def _attach_fragments(groups, x, y, x1, y1, ref_h) -> list[list[int]]:
    """Attach small groups (a detached bar, a broken-off stroke end) to the nearest digit beside them.

    A small group with no digit close by stays on its own (a deliberately small digit).
    """
    alone: set = set()
    while len(groups) > 1:
        bx0, by0 = np.array([x[g].min() for g in groups]), np.array([y[g].min() for g in groups])
        bx1, by1 = np.array([x1[g].max() for g in groups]), np.array([y1[g].max() for g in groups])
        gh, gw = by1 - by0, bx1 - bx0
        ref = float(np.median(gh[gh >= REF_HEIGHT_SHARE * gh.max()]))
        # a flat stroke (about twice as wide as tall) is never a digit of its own: the bar of a 5 or a 7, even
        # when drawn slanted (taller than a small piece) or a little away from the body
        flat = (gw > FLAT_ASPECT * gh) & (gh < FLAT_HEIGHT * ref) & (gw < FRAGMENT_WIDTH * ref)
        small = ((gh < FRAGMENT_HEIGHT * ref) & (gw < FRAGMENT_WIDTH * ref)) | flat
        todo = small & np.array([tuple(sorted(g)) not in alone for g in groups])
        if not todo.any():
            break
        f = int(np.argmin(np.where(todo, gh * gw, np.inf)))  # smallest fragment first
        dx = np.maximum(bx0 - bx1[f], bx0[f] - bx1)           # horizontal distance (<0: overlap)
        dy = np.maximum(by0 - by1[f], by0[f] - by1)
        # a flat bar may float further off to the side when it sits at the top of the digit (a 5's bar)
        at_top = by1[f] <= by0 + BAR_AT_TOP * gh
        reach = np.where(flat[f] & at_top, BAR_REACH * ref, FRAGMENT_REACH * ref)
        ok = (dx <= reach) & (dy <= FRAGMENT_Y_REACH * ref) & ~small
        if not ok.any():
            if gh[f] < STRAY_MARK * ref and gw[f] < STRAY_MARK * ref:  # a stray mark far from every digit: noise
                groups.pop(f)
            else:
                alone.add(tuple(sorted(groups[f])))
            continue
        t = int(np.argmin(np.where(ok, dx + Y_DISTANCE_WEIGHT * np.maximum(dy, 0), np.inf)))
        groups[t] = groups[t] + groups[f]
        groups.pop(f)
    return groups


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask (uint8): ink area / half the length of all its contours (outer and
    hole borders; a stroke has two edges)."""
    area = cv2.countNonZero(mask)
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return 2.0 * area / max(sum(cv2.arcLength(c, True) for c in contours), 1.0)


def _split_touching(crop: np.ndarray, x0: int, y0: int, ref_h: float) -> list[Segment]:
    """Split a too-wide group at thin columns near the expected cuts; only where the cut is clean."""
    h, w = crop.shape
    whole = [Segment((x0, y0, w, h), crop)]
    if w < SPLIT_ASPECT * h or h < SPLIT_MIN_HEIGHT * ref_h:
        return whole
    k = int(round(w / (DIGIT_ASPECT * h)))
    if k < 2:
        return whole
    sw = max(stroke_width(crop), 1.0)
    col = np.count_nonzero(crop, axis=0)
    ink = crop > 0
    runs = np.count_nonzero(ink[1:] & ~ink[:-1], axis=0) + ink[0]  # ink runs crossed by each column
    cuts = []
    for i in range(1, k):
        c = int(round(i * w / k))
        lo, hi = max(1, c - w // (CUT_WINDOW * k)), min(w - 1, c + w // (CUT_WINDOW * k) + 1)
        cand = np.nonzero(runs[lo:hi] == 1)[0] + lo  # a joint crosses one merged run, a digit's middle two+
        if len(cand) == 0:
            return whole
        j = int(cand[np.argmin(col[cand])])
        # reliable: a thin joint, or a short contact between two parts that are each digit-sized
        if col[j] > JOINT_STROKES * sw and not (col[j] <= CONTACT_HEIGHT * h
                                                and j - (cuts[-1] if cuts else 0) >= MIN_PART_WIDTH * h):
            return whole
        cuts.append(j)
    if w - cuts[-1] < MIN_PART_WIDTH * h:
        return whole
    edges = [0] + cuts + [w]
    parts = [(a, crop[:, a:b], cv2.boundingRect(crop[:, a:b])) for a, b in zip(edges[:-1], edges[1:])]
    if any(ph < PART_HEIGHT * h for _, _, (_, _, _, ph) in parts):  # each part must be a full-height digit
        return whole
    out = []
    for a, part, (px, py, pw, ph) in parts:
        out.append(Segment((x0 + a + px, y0 + py, pw, ph), np.ascontiguousarray(part[py:py + ph, px:px + pw])))
    log.debug("split a %dx%d group into %d digits", w, h, len(out))
    return out


def _reading_order(segs: list[Segment]) -> list[Segment]:
    """Assign lines (top -> bottom) by vertical overlap, then order each line left -> right."""
    if not segs:
        return []
    order = sorted(segs, key=lambda s: s.box[1] + s.box[3] / 2)
    lines: list[list[Segment]] = []
    spans: list[list[float]] = []  # running [top, bottom] of the line's core
    (seed_top, seed_bot), (core_top, core_bot) = LINE_SEED, LINE_CORE
    for s in order:
        cy = s.box[1] + s.box[3] / 2
        placed = False
        for li in range(len(lines) - 1, max(-1, len(lines) - 1 - LINE_LOOKBACK), -1):
            top, bot = spans[li]
            if top <= cy <= bot:
                lines[li].append(s)
                spans[li] = [min(top, s.box[1] + core_top * s.box[3]), max(bot, s.box[1] + core_bot * s.box[3])]
                placed = True
                break
        if not placed:
            lines.append([s])
            spans.append([s.box[1] + seed_top * s.box[3], s.box[1] + seed_bot * s.box[3]])
    out = []
    for li, line in enumerate(lines):
        for s in sorted(line, key=lambda s: s.box[0]):
            s.line = li
            out.append(s)
    return out
