"""Paper preparation: a grey scan or photo of a number written on paper -> height-normalised strips of its lines.

Paper is not a canvas: the background is uneven (light falls off, grey or printed paper), the ink is faint, and
there are marks that are not digits (ruling lines, scan borders, underlines). The canvas path's binarisation
keeps or drops whole regions of such pictures, so paper gets its own steps, all OpenCV:
1. the background is estimated by a grey closing (strokes thinner than the kernel vanish) and divided out, which
   leaves ink strength on a flat background whatever the light or the paper's grey;
2. a threshold against the paper's own noise, with hysteresis, keeps faint strokes joined to firmer ones;
3. long thin horizontal and vertical runs (ruling lines, column rules, borders) and big blobs touching the frame
   (the black edge of a scan) are removed;
4. the ink is grouped into text lines by its row profile; each line becomes a strip `STRIP_HEIGHT` pixels high
   (ink strength, 0 = paper), which the string reader (recognizer/string_reader.py) reads whole: touching digits
   need no cut, and separators and underlines are simply not read as digits.
The same function prepares the training strips (study/paper_data.py), so what the model learns is what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STRIP_HEIGHT = 32        # the string reader's input height (pixels)
MAX_STRIP_WIDTH = 512    # longer lines are squeezed to this width (a 16-digit number still has 32 px a digit)
MAX_SIDE = 1600          # larger photos are scaled down to this long side first
MIN_INK_SIGMAS = 4.0     # ink must stand this many noise deviations above the flattened paper ...
STRONG_SHARE = 0.35      # ... and seeds of a stroke at least this share of the image's strong ink
WEAK_SHARE = 0.15        # ... fainter pixels joined to a seed are kept down to this share ...
GROW_PX = 3              # ... within this many pixels of a seed
RULE_LENGTH = 0.6        # a straight run this share of the image's width (height) is a ruling line (rule) ...
RULE_HEIGHTS = 2.5       # ... and so is a run this many writing heights long (twice that across: underlines)
DASH_GAP = 0.35          # a broken (dashed, faded) column rule may have gaps up to this share of its length ...
DASH_RUN = 0.25          # ... in pieces at least this many writing heights long ...
DASH_VOTES = 0.5         # ... with ink along this share of its length (a whole rule needs 0.8) ...
MIN_RULE = 1.5           # ... and is at least this many writing heights long (a "1" is one)
LINE_MARGIN = 0.25       # a strip keeps this share of its line's height above and below
TALL_LINE = 3.0          # a line band this many of its writing heights tall is split again without the thin
LONG_COLUMN = 0.5        # pieces lined up along a column that covers this share of its rows (a dotted column rule)
MIN_LINE_HEIGHT = 0.6    # a line under this share of the tallest line's height is small print or a fragment
MIN_STROKE = 0.05        # thinner strokes (share of the strip's height) are thickened to this: 1.6 px of 32
BORDER_AREA = 0.1        # a dark region touching the frame and this share of the picture is not paper ...
MIN_PAPER = 0.25         # ... unless less than this share of the picture would be left as paper


@dataclass(frozen=True)
class PaperLine:
    """One text line of a page: its strip for the reader and where it lies in the input image."""

    strip: np.ndarray   # float32 (STRIP_HEIGHT, w) ink strength in [0, 1]
    box: tuple          # (x, y, w, h) of the strip's source region in input pixels
    x_scale: float      # input pixels per strip column
    ink_height: int = 0 # rows of the line's ink band (working pixels): the writing's size
    cut: bool = False   # the ink reaches an edge of the picture: part of a line the crop cut off


@dataclass(frozen=True)
class PaperPage:
    lines: list         # PaperLine, top to bottom
    ink: np.ndarray     # uint8 flattened ink strength (0 = paper), after removals, at working scale
    scale: float        # working pixels per input pixel (<= 1)


def paper_is_dark(gray: np.ndarray) -> bool:
    """Light ink on dark paper? The paper's grey is the median of the picture without the large dark regions
    that touch its frame (a scanner's black border, the table beside a photographed page): with them, a
    narrow crop of paper beside a wide border had its median on the dark side and was read inverted. A
    picture that is mostly such a region (light strokes on a board) keeps the whole picture's median."""
    _, dark = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    h, w = gray.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    border = (area >= BORDER_AREA * h * w) & ((x == 0) | (y == 0) | (x + bw == w) | (y + bh == h))
    border[0] = False  # label 0 is the light side
    paper = gray[~border[labels]]
    if paper.size < MIN_PAPER * gray.size:
        paper = gray
    return float(np.median(paper)) < 128


def flatten(gray: np.ndarray) -> np.ndarray:
    """Ink strength (uint8, 0 = paper, 255 = black ink) of a grey page with the background divided out."""
    g = 255 - gray if paper_is_dark(gray) else gray  # dark ink on light paper from here on
    h, w = g.shape
    k = int(np.clip(min(h, w) // 6, 9, 41)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    background = cv2.morphologyEx(g, cv2.MORPH_CLOSE, kernel)
    background = cv2.blur(background, (k, k))
    bg = np.maximum(background.astype(np.float32), 1.0)
    ink = np.clip((bg - g.astype(np.float32)) / bg, 0.0, 1.0)
    # a page's paper is bright: where the "background" itself is dark (scan borders, shadows) nothing is ink
    ink[background < 0.45 * float(np.percentile(background, 90))] = 0.0
    return np.round(ink * 255.0).astype(np.uint8)


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """Binary mask (ink = 255) of the strokes in a flattened ink map: noise-aware threshold with hysteresis.

    Fainter pixels are kept only within GROW_PX of a firm one: a stroke's faint edges and ends stay, but a printed
    pattern (guilloche, screen, ruled grid) that touches the ink is not followed across the page."""
    paper = int(np.median(ink))  # the flattened paper's own level (its grain lifts it above 0)
    noise = 1.4826 * float(np.median(np.abs(ink.astype(np.int16) - paper))) + 1.0
    strong_ink = float(np.percentile(ink, 99.5)) if ink.size >= 200 else float(ink.max())
    strong_level = max(paper + MIN_INK_SIGMAS * noise, STRONG_SHARE * strong_ink, 12.0)
    weak_level = max(paper + 0.5 * MIN_INK_SIGMAS * noise, WEAK_SHARE * strong_ink, 6.0)
    grown = (ink > strong_level).astype(np.uint8) * 255
    weak = (ink > weak_level).astype(np.uint8) * 255
    step = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    for _ in range(GROW_PX):
        grown = cv2.bitwise_and(cv2.dilate(grown, step), weak)
    return grown


def text_height(mask: np.ndarray) -> float:
    """The writing's height: the height of the ink's pieces (not specks) at which half of the ink lies in smaller
    pieces. A plain median over pieces took a register's footer print and crumbs (dozens of pieces a few pixels
    high) for the writing, and the number's own vertical strokes, three such "heights" long, for rules."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return _half_ink_height(stats[1:], mask.shape[0], (0, mask.shape[0]))


def _half_ink_height(stats: np.ndarray, page_height: int, rows: tuple[int, int]) -> float:
    """text_height over the pieces (connectedComponentsWithStats rows) that lie within rows (top, bottom)."""
    top, heights, areas = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
    keep = (areas >= 6) & (heights < 0.9 * page_height) & (top >= rows[0]) & (top + heights <= rows[1])
    heights, areas = heights[keep], areas[keep]
    if not len(heights):
        return float(rows[1] - rows[0])
    order = np.argsort(heights, kind="stable")
    ink = np.cumsum(areas[order])
    return float(heights[order][np.searchsorted(ink, 0.5 * ink[-1])])


def remove_rules(mask: np.ndarray) -> np.ndarray:
    """The mask without long straight runs near horizontal or vertical (ruling lines, column rules, frame edges).

    A run is a rule when it is longer than RULE_LENGTH of the page's side, or, once those are gone and the
    writing's height can be measured, RULE_HEIGHTS writing heights (twice that across the page: underlines stay,
    the reader knows them): a "1" is one writing height. Probabilistic Hough segments (OpenCV) follow the small
    tilt of a scan or photo, where a morphological opening with a flat kernel breaks the line into short steps.
    """
    h, w = mask.shape
    thick = max(5, min(h, w) // 40)
    out = _erase_runs(mask, {True: RULE_LENGTH * w, False: RULE_LENGTH * h}, thick, extend=True)
    if DASH_GAP > 0:
        th = text_height(out)
        # vertical only: a number's digits stand side by side, so their bars line up along a row, not a column
        out = _erase_runs(out, {False: max(RULE_LENGTH * h, MIN_RULE * th)}, thick, extend=True, gap=DASH_GAP,
                          run=max(10, int(DASH_RUN * th)), votes=DASH_VOTES)
    th = text_height(out)
    short = {True: min(RULE_LENGTH * w, 2.0 * RULE_HEIGHTS * th), False: min(RULE_LENGTH * h, RULE_HEIGHTS * th)}
    return _erase_runs(out, short, max(3, int(round(th / 8))))


def _erase_runs(mask: np.ndarray, lengths: dict, thick: int, extend: bool = False, gap: float = 0.0,
                run: int | None = None, votes: float = 0.8) -> np.ndarray:
    """Erase straight runs at least lengths[horizontal] long; strokes crossing them get their crossing back.
    `extend`: a run that long is a rule of the page, erased from edge to edge (Hough finds its longest piece)."""
    out = mask.copy()
    th = text_height(mask)
    for horizontal, length in lengths.items():
        if length < 15:
            continue
        # only pixels on straight-ish runs a quarter of the length long go to the (slow) Hough transform: the
        # mask thickened across the run's direction keeps a slightly tilted thin line in one piece
        across = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3) if horizontal else (3, 1))
        step = int(min(length / 4, 40)) if run is None else min(int(length / 4), run)
        along = cv2.getStructuringElement(cv2.MORPH_RECT, (step, 1) if horizontal else (1, step))
        candidates = cv2.morphologyEx(cv2.dilate(out, across), cv2.MORPH_OPEN, along)
        candidates = cv2.bitwise_and(candidates, out)
        if cv2.countNonZero(candidates) < 0.8 * length:
            continue
        segs = cv2.HoughLinesP(candidates, 1, np.pi / 180, threshold=int(length * votes), minLineLength=int(length),
                               maxLineGap=max(3, int(th / 4), int(gap * length)))
        rules = np.zeros_like(mask)
        for x1, y1, x2, y2 in (segs[:, 0] if segs is not None else ()):
            dx, dy = abs(int(x2) - int(x1)), abs(int(y2) - int(y1))
            if (horizontal and dy <= 0.1 * dx) or (not horizontal and dx <= 0.1 * dy):
                if extend:
                    (x1, y1), (x2, y2) = _to_edges(int(x1), int(y1), int(x2), int(y2), mask.shape, horizontal)
                cv2.line(rules, (int(x1), int(y1)), (int(x2), int(y2)), 255, thick)
        if not rules.any():
            continue
        out[rules > 0] = 0
        # ink on both sides of the rule, bridged across it: a stroke that crossed the rule keeps its crossing
        bridge = cv2.getStructuringElement(cv2.MORPH_RECT, (1, thick + 3) if horizontal else (thick + 3, 1))
        crossed = cv2.morphologyEx(out, cv2.MORPH_CLOSE, bridge)
        out[(rules > 0) & (crossed > 0)] = 255
        # slivers of the rule its drawn band missed: pieces lying (almost) wholly along the rule
        near = cv2.dilate(rules, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
        n, labels = cv2.connectedComponents(out, connectivity=8)
        if n > 1:
            total = np.bincount(labels.ravel(), minlength=n)
            along = np.bincount(labels[near > 0], minlength=n)
            sliver = along >= 0.9 * total
            sliver[0] = False
            out[sliver[labels]] = 0
    return out


def _to_edges(x1: int, y1: int, x2: int, y2: int, shape: tuple, horizontal: bool) -> tuple:
    """The segment's line from one edge of the page to the other."""
    h, w = shape
    if horizontal:
        slope = (y2 - y1) / (x2 - x1) if x2 != x1 else 0.0
        return (0, round(y1 - slope * x1)), (w - 1, round(y1 + slope * (w - 1 - x1)))
    slope = (x2 - x1) / (y2 - y1) if y2 != y1 else 0.0
    return (round(x1 - slope * y1), 0), (round(x1 + slope * (h - 1 - y1)), h - 1)


def drop_clutter(mask: np.ndarray) -> np.ndarray:
    """The mask without specks and without blobs that touch the frame and fill much of it (a scan's edge)."""
    h, w = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, bool)
    min_area = max(4, int(0.00005 * h * w))
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if area < min_area:
            continue
        if touches and (bh > 0.8 * h or bw > 0.8 * w):
            continue
        keep[i] = True
    return np.where(keep[labels], np.uint8(255), np.uint8(0))


def find_lines(mask: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges (top, bottom) of text lines: runs of rows holding ink, split where the row profile is empty.

    A dotted or faded column rule that escaped remove_rules puts a pixel or two in every row and joins all the
    page's lines into one band many writing heights tall, whose strip the reader sees as tiny marks: such a band
    is split again without the thin pieces lined up along most of its height (no digit of a line reaches that)."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    lines = []
    for top, bottom in _bands(mask):
        th = _half_ink_height(stats[1:], mask.shape[0], (top, bottom))  # the band's own: not the footer's print
        if bottom - top > TALL_LINE * th:
            split = _bands(_without_long_columns(mask[top:bottom], th))
            if split:
                lines += [(top + a, top + b) for a, b in split]
                continue
        lines.append((top, bottom))
    return lines


def _bands(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of rows holding ink; thin runs near a neighbour are joined to it, thin lone ones dropped."""
    rows = (mask > 0).sum(axis=1)
    if not rows.any():
        return []
    on = rows >= max(1.0, 0.02 * rows.max())
    bands, start = [], None
    for y, v in enumerate(on):
        if v and start is None:
            start = y
        elif not v and start is not None:
            bands.append((start, y))
            start = None
    if start is not None:
        bands.append((start, len(on)))
    if not bands:
        return []
    # bands thinner than a third of the tallest are dots, underlines or specks: join them to a neighbour if near
    tallest = max(b - a for a, b in bands)
    merged: list[list[int]] = []
    for a, b in bands:
        if merged and (a - merged[-1][1]) < 0.15 * tallest:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if (b - a) >= max(3, 0.3 * tallest)]


def _without_long_columns(band: np.ndarray, th: float) -> np.ndarray:
    """The band without the thin pieces of ink (dots, dashes: not a digit's stroke, which joins wider ink) that
    line up along a column covering most of its rows once gaps under half a writing height are closed."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(band, connectivity=8)
    thin = stats[:, cv2.CC_STAT_WIDTH] <= max(4.0, th / 4)
    thin[0] = False
    dots = np.where(thin[labels], np.uint8(255), np.uint8(0))
    close = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(th / 2)) | 1))
    covered = (cv2.morphologyEx(dots, cv2.MORPH_CLOSE, close) > 0).mean(axis=0) > LONG_COLUMN
    if not covered.any():
        return band
    x0, x1 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_LEFT] + stats[:, cv2.CC_STAT_WIDTH]
    cols = np.concatenate([[0], np.cumsum(covered)])
    drop = thin & (cols[x1] - cols[x0] > 0)  # thin pieces within the covered columns
    return np.where(drop[labels], np.uint8(0), band)


def to_strip(ink: np.ndarray, mask: np.ndarray, top: int, bottom: int) -> tuple[np.ndarray, tuple, float] | None:
    """The line's ink (where the cleaned mask holds it) cut to its columns, STRIP_HEIGHT high."""
    h, w = mask.shape
    band = mask[top:bottom]
    cols = np.nonzero(band.any(axis=0))[0]
    if not len(cols):
        return None
    lh = bottom - top
    m = int(round(LINE_MARGIN * lh))
    y0, y1 = max(0, top - m), min(h, bottom + m)
    x0, x1 = max(0, int(cols[0]) - m), min(w, int(cols[-1]) + 1 + m)
    keep = cv2.dilate(mask[y0:y1, x0:x1], cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    region = np.where(keep > 0, ink[y0:y1, x0:x1], 0).astype(np.float32) / 255.0
    peak = float(region.max())
    if peak <= 0:
        return None
    region = np.clip(region / max(peak * 0.8, 1e-3), 0.0, 1.0)  # faint pens reach the same strength as firm ones
    region = thicken(region, mask[y0:y1, x0:x1] > 0)
    scale = STRIP_HEIGHT / region.shape[0]
    width = int(np.clip(round(region.shape[1] * scale), STRIP_HEIGHT // 2, MAX_STRIP_WIDTH))
    strip = cv2.resize(region, (width, STRIP_HEIGHT), interpolation=cv2.INTER_AREA)
    return strip, (x0, y0, x1 - x0, y1 - y0), (x1 - x0) / width


def thicken(region: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """A fine pen seen large (a phone photo of a ballpoint number) thickened to MIN_STROKE of the strip's height:
    squeezed to STRIP_HEIGHT its strokes would fade to hairlines the reader never saw in training."""
    if not ink.any():
        return region
    dist = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 3)
    stroke = 4.0 * float(dist[ink].mean())  # a uniform stroke of width w has mean distance w / 4 inside it
    target = MIN_STROKE * region.shape[0]
    grow = int(round((target - stroke) / 2))
    if grow < 1:
        return region
    return cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))


def number_lines(lines: list) -> list:
    """The lines worth reading as numbers: not small print (a form's printed text, a footer: under MIN_LINE_HEIGHT
    of the tallest line) and not a line an edge of the picture cuts, when a whole line is there (the neighbouring
    row or column of a register or form). A picture of one line keeps it, however it is cropped."""
    if not lines:
        return []
    tallest = max(line.ink_height for line in lines)
    kept = [line for line in lines if line.ink_height >= MIN_LINE_HEIGHT * tallest]
    whole = [line for line in kept if not line.cut]
    return whole or kept


def prepare_paper(gray: np.ndarray) -> PaperPage:
    """Flatten, threshold, clean and cut a grey page into line strips (boxes in input pixels)."""
    h, w = gray.shape
    scale = 1.0
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ink = flatten(gray)
    mask = drop_clutter(remove_rules(ink_mask(ink)))
    inv = 1.0 / scale
    lines = []
    for top, bottom in find_lines(mask):
        made = to_strip(ink, mask, top, bottom)
        if made is None:
            continue
        strip, (x, y, bw, bh), xs = made
        box = (int(x * inv), int(y * inv), max(1, int(round(bw * inv))), max(1, int(round(bh * inv))))
        inked = mask[top:bottom].any(axis=0)
        lines.append(PaperLine(strip=strip, box=box, x_scale=xs * inv, ink_height=bottom - top,
                               cut=bool(top == 0 or bottom >= mask.shape[0] or inked[0] or inked[-1])))
    cleaned = np.where(mask > 0, ink, 0).astype(np.uint8)
    return PaperPage(lines=lines, ink=cleaned, scale=scale)
