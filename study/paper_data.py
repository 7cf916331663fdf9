"""Training and validation strips for the string reader: real register scans and composed strings on made paper.

Two sources, both turned into strips by the reader's own `recognizer.paper.prepare_paper`, so the model learns
exactly the pixels it will read:
* **registers** (`../shared/data/paper/registers-rowid.tar`, SOURCE.md there): real scans of handwritten row
  numbers, with the publishers' train / validation split (new pages, partly the same clerks). Digits-only labels.
  The strip of the number is the line with the most ink near the middle of the crop; the other lines (printed
  footer, rule fragments, ticks) become empty-label strips: they teach the reader to say nothing for non-digits.
* **composed** strings of 1-7 real CVL digits (writer-disjoint splits: train/valid/test writers), written
  touching or overlapping as people write, with separators ('.', ',', '-', '/'), on generated paper: grey or
  tinted paper, light gradients, printed guilloche or text-like patterns, ruling lines, underlines, blue or black
  ink, blur, noise, JPEG, small tilts (`compose_page`).
Nothing here is committed: the arrays are cached outside the repository (~/.cache/digit-recognizer/paper).
"""

from __future__ import annotations

import csv
import io
import logging
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from recognizer.paper import STRIP_HEIGHT, prepare_paper

log = logging.getLogger(__name__)

TRAIN_WIDTH = 160           # strips are padded (or squeezed) to this width for batching
REGISTERS_TAR = "registers-rowid.tar"
SEPARATORS = ".,-/"
MAX_DIGITS = 7


@dataclass
class StripSet:
    """Strips (N, STRIP_HEIGHT, TRAIN_WIDTH) float16 in [0, 1], their widths and labels (digit strings)."""

    x: np.ndarray
    widths: np.ndarray
    labels: list

    def __len__(self) -> int:
        return len(self.labels)


def pad_strip(strip: np.ndarray, width: int = TRAIN_WIDTH) -> tuple[np.ndarray, int]:
    """A strip placed at the left of a `width`-wide zero canvas (squeezed when wider)."""
    if strip.shape[1] > width:
        strip = cv2.resize(strip, (width, STRIP_HEIGHT), interpolation=cv2.INTER_AREA)
    out = np.zeros((STRIP_HEIGHT, width), np.float32)
    out[:, :strip.shape[1]] = strip
    return out, strip.shape[1]


def main_line(lines, image_height: int) -> int | None:
    """Index of the line that holds the written number: the most ink, weighted towards the middle rows."""
    best, best_score = None, 0.0
    for i, line in enumerate(lines):
        x, y, w, h = line.box
        cy = (y + h / 2) / image_height
        mass = float(line.strip.sum()) * line.x_scale
        score = mass * np.exp(-((cy - 0.45) / 0.3) ** 2)
        if score > best_score:
            best, best_score = i, score
    return best


def strips_of_page(gray: np.ndarray, label: str, negatives: bool = True) -> list[tuple[np.ndarray, str]]:
    """(strip, label) pairs of one labelled page: the main line with the label, the others empty (non-digits)."""
    page = prepare_paper(gray)
    k = main_line(page.lines, gray.shape[0])
    if k is None:
        return []
    out = [(page.lines[k].strip, label)]
    if negatives:
        mass_k = float(page.lines[k].strip.sum()) * page.lines[k].x_scale
        for i, line in enumerate(page.lines):
            if i != k and float(line.strip.sum()) * line.x_scale < 0.5 * mass_k:
                out.append((line.strip, ""))
    return out


def read_registers(tar_path: str | Path, split: str) -> list[tuple[str, np.ndarray, str]]:
    """(file name, grey image, label) of one split (train / validation) of the register tar, digits-only labels."""
    prefix = f"data/row_id/{split}/"
    images, labels = {}, {}
    with tarfile.open(tar_path) as tar:
        for m in tar:
            if not m.isfile() or not m.name.startswith(prefix):
                continue
            data = tar.extractfile(m).read()
            name = m.name[len(prefix):]
            if name == "labels.csv":
                labels = {r["filename"]: r["label"] for r in csv.DictReader(io.StringIO(data.decode()))}
            else:
                images[name] = data
    out = []
    for name in sorted(labels):
        label = labels[name]
        if not label.isdigit() or name not in images:
            continue
        gray = cv2.imdecode(np.frombuffer(images[name], np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is not None:
            out.append((name, gray, label))
    return out


def to_set(pairs: list[tuple[np.ndarray, str]]) -> StripSet:
    xs, ws = zip(*(pad_strip(s) for s, _ in pairs)) if pairs else ((), ())
    x = np.stack(xs).astype(np.float16) if xs else np.zeros((0, STRIP_HEIGHT, TRAIN_WIDTH), np.float16)
    return StripSet(x=x, widths=np.asarray(ws, np.int32), labels=[lab for _, lab in pairs])


# --------------------------------------------------------------------------------------------- made paper
def _paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A grey page: tone, light gradient, grain and, sometimes, a printed pattern (float32, 0-255)."""
    tone = rng.uniform(150, 250)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    page = tone * (1.0 - rng.uniform(0, 0.35) * (ramp - ramp.min()) / max(1e-6, np.ptp(ramp)))
    page += rng.normal(0, rng.uniform(1, 6), (h, w))
    kind = rng.random()
    if kind < 0.25:  # guilloche: fine printed waves
        f1, f2 = rng.uniform(0.05, 0.3, 2)
        waves = np.sin(xx * f1 + 3 * np.sin(yy * f2)) > 0.9
        page -= waves * rng.uniform(10, 35)
    elif kind < 0.4:  # printed dots / screen
        step = int(rng.integers(3, 7))
        page[::step, ::step] -= rng.uniform(15, 45)
    return page


def _digit_alpha(img28: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A CVL digit (dark on light) as ink coverage in [0, 1], `height` px high, cropped to its ink columns."""
    a = np.clip((235.0 - img28.astype(np.float32)) / 200.0, 0, 1)
    rows = np.nonzero(a.max(axis=1) > 0.2)[0]
    cols = np.nonzero(a.max(axis=0) > 0.2)[0]
    if len(rows) == 0:
        return np.zeros((height, 2), np.float32)
    a = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    s = height / a.shape[0] * rng.uniform(0.9, 1.1)
    w = max(2, int(round(a.shape[1] * s * rng.uniform(0.85, 1.15))))
    return cv2.resize(a, (w, max(2, int(round(a.shape[0] * s)))), interpolation=cv2.INTER_LINEAR)


def _mark(kind: str, height: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A separator's ink (coverage) and its baseline offset: '.', ',', '-', '/'."""
    t = max(2, height // 9)
    if kind in ".,":
        m = np.zeros((t * 3 if kind == "," else t + 2, t + 2), np.float32)
        cv2.circle(m, (m.shape[1] // 2, t // 2 + 1), max(1, t // 2 + 1), 1.0, -1)
        if kind == ",":
            cv2.line(m, (m.shape[1] // 2, t), (0, m.shape[0] - 1), 1.0, max(1, t // 2))
        return m, 0
    if kind == "-":
        w = int(height * rng.uniform(0.3, 0.6))
        m = np.zeros((t + 2, w), np.float32)
        cv2.line(m, (0, 1), (w - 1, 1 + int(rng.integers(0, 2))), 1.0, t)
        return m, -height // 2
    w = int(height * 0.45)
    m = np.zeros((height, w), np.float32)
    cv2.line(m, (w - 1, 0), (0, height - 1), 1.0, t)
    return m, 0


def compose_page(digits: list[np.ndarray], labels: list[int], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A grey page with one handwritten number made of `digits` (28x28 CVL images), and its digits-only label."""
    height = int(rng.integers(18, 56))
    pieces, text = [], ""
    n = len(digits)
    sep_at = set()
    if n >= 3 and rng.random() < 0.4:  # thousands or date-like separators
        sep_at = {n - 3} if rng.random() < 0.6 else {int(rng.integers(1, n))}
    for i, (img, lab) in enumerate(zip(digits, labels)):
        pieces.append((_digit_alpha(img, height, rng), 0, True))
        text += str(lab)
        if i in sep_at:
            pieces.append((*_mark(SEPARATORS[int(rng.integers(0, 4))], height, rng), False))
    if rng.random() < 0.25:
        pieces.append((*_mark("." if rng.random() < 0.6 else "-", height, rng), False))
    # lay out: advance by the piece's width times a spacing that makes some digits touch or overlap
    spacing = rng.uniform(0.75, 1.25)
    total = int(sum(p[0].shape[1] for p in pieces) * max(spacing, 1.0) + height * 3)
    W, H = max(total, height * 3), int(height * rng.uniform(2.0, 4.0))
    ink = np.zeros((H, W), np.float32)
    x = int(rng.integers(height // 2, height + 1))
    base = int(H / 2 + height / 2 + rng.integers(-height // 6, height // 6 + 1))
    for a, off, is_digit in pieces:
        h, w = a.shape
        y0 = base - h + off + int(rng.integers(-2, 3)) if is_digit else base - h + off
        y0 = int(np.clip(y0, 0, H - h))
        if x + w > W:
            break
        ink[y0:y0 + h, x:x + w] = np.maximum(ink[y0:y0 + h, x:x + w], a)
        step = w * (spacing if is_digit else 1.0) + (rng.uniform(0, height * 0.15) if not is_digit else 0)
        x += max(1, int(step))
    end = x
    t = max(1, height // 12)
    if rng.random() < 0.3:  # underline of the number
        y = min(H - 1, base + int(rng.integers(2, max(3, height // 4))))
        cv2.line(ink, (int(height * 0.4), y), (min(W - 1, end + int(rng.integers(0, height))), y + int(rng.integers(-2, 3))),
                 1.0, t)
    page = _paper(H, W, rng)
    if rng.random() < 0.4:  # ruling lines across the page (printed, thinner and lighter than ink)
        gap = int(height * rng.uniform(1.2, 1.8))
        y = (base + int(rng.integers(0, 4))) % gap
        level = rng.uniform(40, 110)
        while y < H:
            page[y:y + int(rng.integers(1, 3))] -= level
            y += gap
    if rng.random() < 0.2:  # a column rule or scan border
        xr = int(rng.integers(0, W))
        page[:, xr:xr + int(rng.integers(1, 4))] -= rng.uniform(60, 160)
    if rng.random() < 0.1:
        page[:, :int(rng.integers(3, max(4, W // 10)))] = rng.uniform(0, 40)
    strength = rng.uniform(0.45, 1.0)
    ink = cv2.GaussianBlur(ink, (3, 3), rng.uniform(0.1, 1.0))
    out = page * (1.0 - strength * ink) + rng.uniform(0, 30) * strength * ink
    # a small tilt, blur and JPEG as a scanner or phone gives them
    angle = rng.uniform(-3, 3)
    m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    out = cv2.warpAffine(out, m, (W, H), borderMode=cv2.BORDER_REPLICATE)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        q = int(rng.integers(30, 95))
        out = cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_GRAYSCALE)
    return out, text


def composed_pages(images: np.ndarray, labels: np.ndarray, writers: np.ndarray, n: int,
                   seed: int) -> list[tuple[np.ndarray, str]]:
    """`n` pages, each a number of 1-MAX_DIGITS digits of one writer (as a real number is written)."""
    rng = np.random.default_rng(seed)
    by_writer: dict = {}
    for i, w in enumerate(writers):
        by_writer.setdefault(w, []).append(i)
    keys = sorted(by_writer)
    pages = []
    for _ in range(n):
        idx = by_writer[keys[int(rng.integers(0, len(keys)))]]
        k = int(rng.integers(1, MAX_DIGITS + 1))
        pick = rng.choice(idx, size=k, replace=len(idx) < k)
        pages.append(compose_page([images[i] for i in pick], [int(labels[i]) for i in pick], rng))
    return pages


# ------------------------------------------------------------------------------------------- building sets
DEFAULT_CACHE = Path.home() / ".cache" / "digit-recognizer" / "paper"
COMPOSED_TRAIN = 24_000     # composed pages per epoch's pool (CVL train + held-in valid writers)
COMPOSED_VAL = 2_000        # composed pages of CVL validation writers (never trained on)
COMPOSED_TEST = 2_000       # composed pages of CVL test writers (bench_paper.py)
SEED = 20_261_207


def _strips_of(item: tuple) -> list:
    gray, label, negatives = item
    return strips_of_page(gray, label, negatives=negatives) or \
        [(np.zeros((STRIP_HEIGHT, STRIP_HEIGHT), np.float32), label)]  # nothing found: the model learns from that


def _all_strips(pages: list, negatives: bool, workers: int) -> list[list]:
    """strips_of_page of every (gray, label) page, on `workers` processes."""
    items = [(g, y, negatives) for g, y in pages]
    if workers <= 1:
        return [_strips_of(it) for it in items]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_strips_of, items, chunksize=256))


def _register_pairs(tar: Path, split: str, negatives: bool, workers: int) -> tuple[list, list]:
    pages = read_registers(tar, split)
    per_page = _all_strips([(g, y) for _, g, y in pages], negatives, workers)
    pairs = [p for got in per_page for p in got]
    names = [name for (name, _, _), got in zip(pages, per_page) for _ in got]
    return pairs, names


def composed_strips(pages: list, negatives: bool, workers: int) -> list:
    """(strip, label) pairs of composed pages (the number's line; the other lines empty when `negatives`)."""
    return [p for got in _all_strips(pages, negatives, workers) for p in got]


def cvl_sides(cvl_tar: Path) -> dict:
    """CVL digits by side, the handwriting module's writer split (train + half of valid / other half / test)."""
    from study.handwriting import split_sides
    from study.handwriting_formats import load_cvl

    samples = load_cvl(cvl_tar)
    sides = split_sides("cvl", samples)
    out = {}
    for side in ("train", "val", "test"):
        idx = [i for i, s in enumerate(sides) if s == side]
        out[side] = (np.stack([samples[i].image for i in idx]), np.array([samples[i].label for i in idx]),
                     np.array([samples[i].writer for i in idx]))
    return out


def build(paper_dir: Path, handwriting_dir: Path, cache: Path = DEFAULT_CACHE, workers: int = 2) -> Path:
    """Make (or reuse) the strip sets of both sources; returns the cache file."""
    from common.checksum import code_digest

    import hashlib

    files = (Path(__file__), Path(prepare_paper.__code__.co_filename))
    key = hashlib.sha256("".join(code_digest(f) for f in files).encode()).hexdigest()[:12]
    target = Path(cache) / f"strips-{key}.npz"
    if target.exists():
        return target
    arrays = {}
    t0 = time.perf_counter()
    for split, side in (("train", "reg_train"), ("validation", "reg_val")):
        pairs, names = _register_pairs(paper_dir / REGISTERS_TAR, split, (split == "train"), workers)
        s = to_set(pairs)
        arrays.update({f"{side}_x": s.x, f"{side}_w": s.widths, f"{side}_y": np.array(s.labels), f"{side}_name":
                       np.array(names)})
        log.info("registers %s: %d strips (%.0f s)", split, len(s), time.perf_counter() - t0)
    cvl = cvl_sides(handwriting_dir / "cvl" / "cvl-single-digits-28x28.tar.gz")
    for side, n, negatives in (("train", COMPOSED_TRAIN, True), ("val", COMPOSED_VAL, False),
                               ("test", COMPOSED_TEST, False)):
        pages = composed_pages(*cvl[side], n=n, seed=SEED + len(side))
        s = to_set(composed_strips(pages, negatives, workers))
        arrays.update({f"cvl_{side}_x": s.x, f"cvl_{side}_w": s.widths, f"cvl_{side}_y": np.array(s.labels)})
        log.info("composed %s: %d strips (%.0f s)", side, len(s), time.perf_counter() - t0)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(target)
    return target
