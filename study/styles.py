"""Writing conventions taught on purpose: label-preserving edits of a real pen trajectory.

What the models still misread on the validation writers and CVL is mostly conventions that the training
writers hold only a few times (issue 30): the slashed zero (read as 8), the European 1 with its long up-stroke
(read as 7), the crossed 7 (read as 2), the 9 with a straight stem, the 2 with a loop at its foot, the 7 with a
hook. Each function here takes one real training writer's digit (strokes as study/handwriting_formats.py
parses them: float (K, 2) arrays of x, y with y down, in the set's own units) and adds or reshapes the part
that makes the convention, where the convention puts it and in that writer's proportions; the writer's own
strokes stay as they were, so the digit keeps its hand. Every edit is drawn from the np.random.Generator
passed in (seeded, repeatable) and returns None where the digit does not offer the anatomy the edit needs
(a 7 without a stem to cross): a wrong edit would be a wrong label.

`styled_training_set` makes the extra training images: a share `rate` of the *training* writers' pen digits
of the labels that have conventions get one edited copy each, rendered with the app's brush and prepared by
`Recognizer.prepare` (study/handwriting_render.py, the path of every pen digit); validation writers are never
edited. The result is cached beside the handwriting cache. The 4 with an open or closed top is not here: the
pen sets' 4s come in too many stroke orders to find the top reliably.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from itertools import pairwise
from pathlib import Path

import numpy as np

from common.checksum import code_digest, file_sha256

log = logging.getLogger(__name__)

Strokes = list  # [float64 (K, 2) arrays]
STYLE_SEED = 20_261_206  # fixed: the same edits on every run
_ROOT = Path(__file__).resolve().parents[1]


def _box(strokes: Strokes) -> tuple[np.ndarray, np.ndarray]:
    pts = np.concatenate(strokes)
    return pts.min(0), pts.max(0)


def _line(a, b, n: int = 12, bow: float = 0.0) -> np.ndarray:
    """n points from a to b, bowed sideways by `bow` x the length at the middle (a hand's slight curve)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.linspace(0.0, 1.0, n)[:, None]
    d = b - a
    normal = np.array([-d[1], d[0]])
    return a + t * d + (bow * 4.0 * t * (1.0 - t)) * normal


def _copy(strokes: Strokes) -> Strokes:
    return [np.asarray(s, np.float64).reshape(-1, 2).copy() for s in strokes]


def _crossings(strokes: Strokes, y: float) -> list[tuple[float, float]]:
    """(x, |dy/ds|) where the trajectory crosses the horizontal line at height y; the second value says how
    upright the crossing segment is (1: vertical)."""
    out = []
    for s in strokes:
        for p, q in pairwise(s):
            if (p[1] - y) * (q[1] - y) <= 0 and p[1] != q[1]:
                t = (y - p[1]) / (q[1] - p[1])
                d = q - p
                out.append((float(p[0] + t * d[0]), abs(d[1]) / (np.hypot(*d) + 1e-9)))
    return out


def _is_bar(stroke, lo, h) -> bool:
    """A flat stroke in the middle band of the digit's height (a 7's bar)."""
    a, b = stroke.min(0), stroke.max(0)
    return (b[0] - a[0]) > 2.0 * (b[1] - a[1]) and 0.3 * h < (a[1] + b[1]) / 2.0 - lo[1] < 0.8 * h


# ------------------------------------------------------------------------------------------ edits
def slashed_zero(strokes: Strokes, rng: np.random.Generator) -> Strokes | None:
    """A 0 with one straight stroke through the middle of its loop, rising to the right at 50-80 degrees,
    reaching a little beyond the loop (1.0-1.35 of its height)."""
    lo, hi = _box(strokes)
    w, h = hi - lo
    if h <= 0 or w <= 0:
        return None
    centre = (lo + hi) / 2.0 + rng.uniform(-0.04, 0.04, 2) * (w, h)
    angle = np.deg2rad(rng.uniform(50.0, 80.0))
    half = rng.uniform(1.0, 1.35) * h / 2.0
    d = np.array([np.cos(angle), -np.sin(angle)])  # y down: rising to the right
    below, above = half * rng.uniform(0.85, 1.15), half * rng.uniform(0.85, 1.15)
    start, end = centre - below * d, centre + above * d
    if rng.random() < 0.5:  # drawn downwards as often as upwards
        start, end = end, start
    return _copy(strokes) + [_line(start, end, bow=rng.uniform(-0.04, 0.04))]


def crossed_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes | None:
    """A 7 with a short bar across its stem near the middle of its height (45-62% down)."""
    lo, hi = _box(strokes)
    w, h = hi - lo
    if h <= 0:
        return None
    if any(_is_bar(t, lo, h) for t in strokes[1:]):
        return None  # crossed already: a second bar is no convention
    y = lo[1] + rng.uniform(0.45, 0.62) * h
    # the stem: the most upright crossing of that height (a 7 already crossed has a flat one there too)
    hits = [c for c in _crossings(strokes, y) if c[1] > 0.5]
    if not hits:
        return None
    x = max(hits, key=lambda c: c[1])[0]
    length = rng.uniform(0.35, 0.6) * max(w, 0.6 * h)
    mid = np.array([x + rng.uniform(-0.12, 0.12) * length, y])
    tilt = np.deg2rad(rng.uniform(-8.0, 5.0))
    d = np.array([np.cos(tilt), np.sin(tilt)]) * length / 2.0
    return _copy(strokes) + [_line(mid - d, mid + d, n=8, bow=rng.uniform(-0.03, 0.03))]


def hooked_seven(strokes: Strokes, rng: np.random.Generator) -> Strokes | None:
    """A 7 whose top bar starts with a short downward tick at its left end (the pen starts low and goes up)."""
    lo, hi = _box(strokes)
    w, h = hi - lo
    first = _copy(strokes)
    s = first[0]
    p = s[0]
    if h <= 0 or p[0] > lo[0] + 0.35 * max(w, 1e-9) or p[1] > lo[1] + 0.25 * h:
        return None  # the pen does not start at the bar's left end
    tick = p + np.array([rng.uniform(-0.06, 0.02) * h, rng.uniform(0.12, 0.25) * h])
    first[0] = np.concatenate([_line(tick, p, n=5, bow=rng.uniform(-0.05, 0.05))[:-1], s])
    return first


def european_one(strokes: Strokes, rng: np.random.Generator, foot: float = 0.35) -> Strokes | None:
    """A 1 with the long up-stroke (a flag from its top down to the left, 30-65% of its height) and, with
    probability `foot`, a foot (a short bar under the stem). A 1 that already has a flag gets only a foot."""
    lo, hi = _box(strokes)
    w, h = hi - lo
    if h <= 0 or w > 0.8 * h:
        return None  # not a stem-like 1
    out = _copy(strokes)
    k = int(np.argmin([s[:, 1].min() for s in out]))
    s = out[k]
    i = int(np.argmin(s[:, 1]))
    top = s[i]
    before = s[:i]  # what the writer drew before reaching the top: a flag of their own if it comes from the left
    flagged = len(before) > 0 and before[:, 1].max() > top[1] + 0.1 * h and before[:, 0].min() < top[0] - 0.1 * h
    changed = False
    if not flagged:
        length = rng.uniform(0.3, 0.65) * h
        angle = np.deg2rad(rng.uniform(20.0, 50.0))  # below the horizontal, to the left
        start = top + length * np.array([-np.cos(angle), np.sin(angle)])
        flag = _line(start, top, n=8, bow=rng.uniform(-0.05, 0.05))[:-1]
        # a stroke that starts at the top starts at the flag's end instead; one that reaches the top later goes out
        # along the flag and back (the same ink twice)
        out[k] = np.concatenate([flag, s]) if i == 0 else np.concatenate([s[:i + 1], flag[::-1], s[i:]])
        changed = True
    if rng.random() < foot or not changed:
        j = int(np.argmax([t[:, 1].max() for t in out]))
        bottom = out[j][int(np.argmax(out[j][:, 1]))]
        left, right = rng.uniform(0.15, 0.3) * h, rng.uniform(0.15, 0.3) * h
        y = bottom[1] + rng.uniform(-0.01, 0.02) * h
        out.append(_line((bottom[0] - left, y), (bottom[0] + right, y), n=8, bow=rng.uniform(-0.02, 0.02)))
    return out


def straight_nine(strokes: Strokes, rng: np.random.Generator) -> Strokes | None:
    """A 9 whose stem, from where it leaves the loop to its end, is one straight line (nearly vertical)."""
    lo, hi = _box(strokes)
    w, h = hi - lo
    out = _copy(strokes)
    s = out[-1]
    if h <= 0 or s[-1, 1] < lo[1] + 0.8 * h or len(s) < 6:
        return None  # the trajectory does not end at the foot of the stem
    above = np.nonzero(s[:, 1] < lo[1] + 0.5 * h)[0]
    if not len(above) or above[-1] >= len(s) - 2:
        return None
    j = int(above[-1])  # the last point in the loop's half: the stem starts here
    if s[j, 0] < lo[0] + 0.5 * w:
        return None  # leaves the loop on its left: not the 9 this edit knows
    foot = np.array([s[j, 0] + rng.uniform(-0.12, 0.04) * h, s[-1, 1]])
    out[-1] = np.concatenate([s[:j + 1], _line(s[j], foot, n=10)[1:]])
    return out


def looped_two(strokes: Strokes, rng: np.random.Generator) -> Strokes | None:
    """A 2 with a small loop at its foot, where the diagonal turns into the base line."""
    lo, hi = _box(strokes)
    w, h = hi - lo
    out = _copy(strokes)
    s = out[-1]
    if h <= 0 or w <= 0 or len(s) < 6:
        return None
    low = np.nonzero(s[:, 1] > lo[1] + 0.65 * h)[0]
    if not len(low):
        return None
    score = (s[low, 1] - lo[1]) / h - (s[low, 0] - lo[0]) / w  # bottom-left corner
    c = int(low[np.argmax(score)])
    if c >= len(s) - 2 or s[-1, 0] < s[c, 0] + 0.3 * w:
        return None  # no base line going right after the corner
    r = rng.uniform(0.07, 0.13) * h
    a = np.linspace(np.pi / 2, np.pi / 2 + 2 * np.pi, 16)  # from the loop's bottom, leftwards and round
    centre = s[c] - np.array([0.0, r])
    loop = centre + r * np.stack([np.cos(a), np.sin(a)], 1) * (1.0, rng.uniform(0.8, 1.2))
    out[-1] = np.concatenate([s[:c + 1], loop[1:], s[c + 1:]])
    return out


# label -> the conventions that may be drawn for it, chosen with equal chance
CONVENTIONS = {
    0: {"slashed": slashed_zero},
    1: {"european": european_one},
    2: {"foot loop": looped_two},
    7: {"crossed": crossed_seven, "hook": hooked_seven},
    9: {"straight stem": straight_nine},
}
DEFAULT_RATE = 0.5  # share of training writers' pen digits (of these labels) that get an edited copy; see DECISIONS


def edit(strokes: Strokes, label: int, rng: np.random.Generator, convention: str | None = None
         ) -> tuple[Strokes, str] | None:
    """One convention (the one named, else one drawn at random) applied to a digit of this label:
    (edited strokes, convention name), or None where the label has none or the digit does not fit it."""
    table = CONVENTIONS.get(int(label), {})
    if not table:
        return None
    name = convention if convention is not None else list(table)[int(rng.integers(len(table)))]
    out = table[name](strokes, rng)
    return None if out is None else (out, name)


# ------------------------------------------------------------------------------------------ training images
def _code_version() -> str:
    """Hash of this module and of every file the handwriting preparation's cache key covers."""
    from study.handwriting import _CODE_FILES

    h = hashlib.sha256(str(STYLE_SEED).encode())
    for rel in ("study/styles.py", *_CODE_FILES):
        h.update(code_digest(_ROOT / rel).encode())
    return h.hexdigest()[:16]


def styled_training_set(root: Path, rate: float, cache: Path | None = None) -> dict:
    """Edited copies of the training writers' pen digits: {"x": uint8 (N, 28, 28), "y", "convention", "writer",
    "counts"}; a share `rate` of each set's training digits of the labels in CONVENTIONS is edited (seeded), each
    once, rendered like every pen digit and prepared by Recognizer.prepare (dropped unless one segment)."""
    from study import handwriting as hw
    from study import handwriting_render as render
    from study.handwriting_formats import FILES, LOADERS, PEN_SETS

    cdir = hw.cache_dir(cache)
    parts = []
    for name in PEN_SETS:
        path = root / FILES[name]
        if not path.is_file():
            continue
        key = hashlib.sha256(f"{file_sha256(path)}|{_code_version()}|{rate}".encode()).hexdigest()[:20]
        target = cdir / f"styles-{name}-{key}.npz"
        if target.is_file():
            with np.load(target, allow_pickle=False) as f:
                parts.append({k: f[k] for k in f.files})
            continue
        t0 = time.perf_counter()
        samples = LOADERS[name](path)
        sides = hw.split_sides(name, samples)
        rng = np.random.default_rng([STYLE_SEED, zlib.crc32(name.encode())])
        xs, ys, conv, writers = [], [], [], []
        for s, side in zip(samples, sides):
            if side != "train" or s.label not in CONVENTIONS or rng.random() >= rate:
                continue
            made = edit(s.strokes, s.label, rng)
            if made is None:
                continue
            x, _ = render.prepare(render.pen_canvas(made[0], rng))
            if x is None:
                continue
            xs.append(np.rint(x * 255.0).astype(np.uint8))
            ys.append(s.label)
            conv.append(made[1])
            writers.append(s.writer or "")
        arrays = {"x": np.array(xs, np.uint8).reshape(-1, 28, 28), "y": np.array(ys, np.uint8),
                  "convention": np.array(conv, dtype=str), "writer": np.array(writers, dtype=str)}
        log.info("styles: %s: %d edited training digits in %.0f s", name, len(ys), time.perf_counter() - t0)
        _save(target, arrays)
        parts.append(arrays)
    if not parts:
        return {"x": np.zeros((0, 28, 28), np.uint8), "y": np.zeros(0, np.uint8), "convention": np.zeros(0, str),
                "writer": np.zeros(0, str), "counts": {}}
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("x", "y", "convention", "writer")}
    names, counts = np.unique(out["convention"], return_counts=True)
    out["counts"] = {str(n): int(c) for n, c in zip(names, counts)}
    return out


def _save(target: Path, arrays: dict) -> None:
    from common.atomic import atomic_path

    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:  # no cache is slower, not wrong
        log.warning("styles: cannot write the cache %s (%s)", target, exc)


def with_styles(hand, root: Path, rate: float, cache: Path | None = None):
    """`hand` (study.handwriting.HandwritingData) with the edited training digits appended to its train side
    (validation and test untouched), and a record of them for metrics.json."""
    from dataclasses import replace

    from study.handwriting import HandSplit

    if not rate:
        return hand, None
    made = styled_training_set(Path(root), rate, cache)
    x = made["x"].astype(np.float32)[..., None] / np.float32(255.0)
    t = hand.train
    train = HandSplit(np.concatenate([t.x, x]), np.concatenate([t.y, made["y"]]),
                      np.concatenate([t.writer, made["writer"]]).astype(str),
                      np.concatenate([t.set, np.full(len(x), "styles")]).astype(str))
    record = {"rate": rate, "seed": STYLE_SEED, "images": len(x), "conventions": made["counts"]}
    log.info("styles: %d edited training digits added (%s)", len(x),
             ", ".join(f"{k} {v}" for k, v in made["counts"].items()))
    return replace(hand, train=train), record


# ------------------------------------------------------------------------------------------ picture
def plot_samples(root: Path, path, per_convention: int = 4, edits: int = 3, seed: int = 0) -> None:
    """plots/styles.png: per convention, a few training writers' real digits, each beside `edits` edited
    versions (the canvases as drawn, then what Recognizer.prepare makes of them, which is what the model sees)."""
    from study import handwriting as hw
    from study import handwriting_render as render
    from study.handwriting_formats import FILES, LOADERS
    from study.plots import _new_figure, _save

    samples = LOADERS["pendigits"](root / FILES["pendigits"])
    sides = hw.split_sides("pendigits", samples)
    rng = np.random.default_rng(seed)
    rows = [(label, name) for label, table in CONVENTIONS.items() for name in table]
    cols = per_convention * (1 + edits)
    fig = _new_figure(cols * 0.62, len(rows) * 0.72 + 0.4)
    axes = fig.subplots(len(rows), cols)
    for r, (label, name) in enumerate(rows):
        pool = [s for s, side in zip(samples, sides) if side == "train" and s.label == label]
        picked, tries = 0, 0
        while picked < per_convention and tries < 50:
            tries += 1
            s = pool[int(rng.integers(len(pool)))]
            made = [edit(s.strokes, label, rng, name) for _ in range(edits)]
            if any(m is None for m in made):
                continue
            for k, strokes in enumerate([s.strokes] + [m[0] for m in made]):
                x, _ = render.prepare(render.pen_canvas(strokes, np.random.default_rng([seed, r, picked, k])))
                ax = axes[r, picked * (1 + edits) + k]
                ax.imshow(np.zeros((28, 28)) if x is None else x, cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ax.spines.values():
                    side.set_edgecolor("#dd8452" if k == 0 else "0.7")
                    side.set_linewidth(2 if k == 0 else 0.5)
            picked += 1
        axes[r, 0].set_ylabel(f"{label} {name}", rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Generated writing conventions (study/styles.py): a training writer's real digit (orange frame) "
                 "beside edited versions, as the models see them", fontsize=9)
    _save(fig, path)


def main(argv=None) -> int:
    """`python -m study.styles DIR [--plot plots/styles.png]`: the samples picture from the pen sets in DIR."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m study.styles", description=main.__doc__)
    ap.add_argument("path", type=Path, help="the handwriting folder")
    ap.add_argument("--plot", default="plots/styles.png")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    plot_samples(args.path, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
