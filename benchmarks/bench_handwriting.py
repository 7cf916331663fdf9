#!/usr/bin/env python3
"""Real-handwriting benchmark: do the models read real people's digits the way the app and recognize.py do?

Pen digits of the *validation writers* (study/handwriting.py's writer split of pendigits, UJI and Chars74K:
people no model trained on) are replayed stroke by stroke onto a white 640x480 canvas with the app's round
brush (8-20 px, 40-75% of the canvas height, anywhere), as single digits and as numbers of 3-8 digits by one
writer on one line (natural gaps, small size changes, vertical jitter). Each canvas is read with
Recognizer.read_models, recognize.py's own code path (binarisation, segmentation, normalisation, one batched
call per model). With --cvl-test the CVL test writers' scanned digits are read through the scan path too.

Per model, and for the default model (the one recognize.py picks): single-digit accuracy (argmax, one digit
found), exact number text (with '?' counting as wrong, as the user sees it), per-digit accuracy inside numbers
(numbers whose digit count came out right), how many right answers the '?' threshold hides, the worst
confusion pairs, median ms per canvas. --grid writes a PNG of the misread digits, --out the results as JSON,
--choose-threshold the '?' threshold that maximises exact number text on these validation writers,
--per-class the errors per true digit and the confusion pairs each writing convention touches (with --before, an
earlier --out beside them). Confidences are the calibrated ones (models/calibration.json), as the app shows them.
Seeded and deterministic.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recognizer import DEFAULT_THRESHOLD, MODEL_NAMES, ModelStore, Recognizer, RecognizerError  # noqa: E402
from study.handwriting import ENV_VAR, find, split_sides  # noqa: E402
from study.handwriting_formats import FILES, LOADERS, PEN_SETS, HandwritingError  # noqa: E402
from study.handwriting_render import number_canvas, pen_canvas, scan_image  # noqa: E402

SHARED = ROOT.parent / "shared/data/handwriting"
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 0.96, 0.05))
# the confusions each writing convention stands for (issue 30; study/styles.py generates them for training), and
# the ones a generated convention could cost (an 8 is not a slashed 0, a 2 not a crossed 7)
CONVENTION_PAIRS = {
    "slashed 0": ("0->8",), "European 1": ("1->7", "1->4"), "crossed / hooked 7": ("7->2", "7->1", "7->3"),
    "9 straight stem / small loop": ("9->7", "9->1", "9->3", "9->4"), "2 with a loop / L-shaped": ("2->1", "2->3", "2->6"),
    "costs": ("8->0", "4->1", "2->7", "3->7", "1->2", "4->9"),
}
EPILOG = f"""examples:
  python benchmarks/bench_handwriting.py --n 1000 --numbers 300 --cvl-test     every model, the BEFORE/AFTER table
  python benchmarks/bench_handwriting.py --models cnn --grid out/misread.png --out out/hand.json
  python benchmarks/bench_handwriting.py --choose-threshold      the '?' threshold best for exact numbers
  python benchmarks/bench_handwriting.py --models cnn --per-class --before out/hand_before.json   per digit, before/after

data: --handwriting DIR, else ${ENV_VAR}, else {SHARED} when it exists.
"""


# ------------------------------------------------------------------------------------------ data
def validation_pool(root: Path) -> list[tuple[str, object]]:
    """[(set name, Sample)] of the validation writers of every pen set present, in file order."""
    pool = []
    for name in PEN_SETS:
        path = root / FILES[name]
        if not path.is_file():
            logging.getLogger(__name__).info("%s not found, skipped", path)
            continue
        samples = LOADERS[name](path)
        sides = split_sides(name, samples)
        pool.extend((name, s) for s, side in zip(samples, sides) if side == "val")
    if not pool:
        raise HandwritingError(f"{root} holds none of the pen sets ({', '.join(FILES[n] for n in PEN_SETS)})")
    return pool


def single_items(pool, n: int, seed: int = 0):
    """Yield (canvas, label, set name) for n validation digits (seeded choice, seeded rendering)."""
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False):
        name, s = pool[i]
        yield pen_canvas(s.strokes, rng), s.label, name


def number_items(pool, n: int, seed: int = 0, lengths=(3, 8)):
    """Yield (canvas, "4071", writer) for n numbers of 3-8 digits, all by one (seeded) validation writer."""
    rng = np.random.default_rng(seed + 1_000_003)
    by_writer: dict[str, list] = {}
    for _, s in pool:
        by_writer.setdefault(s.writer, []).append(s)
    writers = sorted(by_writer)
    for _ in range(n):
        w = writers[int(rng.integers(len(writers)))]
        mine = by_writer[w]
        k = int(rng.integers(lengths[0], lengths[1] + 1))
        picks = [mine[i] for i in rng.choice(len(mine), size=k, replace=len(mine) < k)]
        yield number_canvas([s.strokes for s in picks], rng), "".join(str(s.label) for s in picks), w


# ------------------------------------------------------------------------------------------ scoring
def text_at(digits, threshold: float) -> str:
    """The reading's text had it been made with this '?' threshold (digits: [(line, digit, confidence)])."""
    lines: dict[int, list[str]] = {}
    for line, d, conf in digits:
        lines.setdefault(line, []).append("?" if conf < threshold else str(d))
    return "\n".join("".join(lines[k]) for k in sorted(lines))


class Tally:
    """Everything one model's readings add up to."""

    def __init__(self):
        self.single = []       # (label, [(line, digit, conf)], set name)
        self.numbers = []      # (label text, [(line, digit, conf)])
        self.ms_single, self.ms_number = [], []
        self.confusions = Counter()  # (true, read) of every digit found where the digit count was right
        self.failures = []     # (crop, true, predicted, confidence) for the grid

    def add_single(self, reading, label, name, canvas, keep_failures):
        digits = [(d.line, d.digit, d.confidence) for d in reading.digits]
        self.single.append((label, digits, name))
        self.ms_single.append(reading.ms)
        if len(digits) == 1:
            self.confusions[(label, digits[0][1])] += 1
        if keep_failures and not (len(digits) == 1 and digits[0][1] == label):
            box = reading.digits[0].box if len(digits) == 1 else _ink_box(canvas)
            guess = digits[0][1] if len(digits) == 1 else f"{len(digits)}seg"
            conf = digits[0][2] if len(digits) == 1 else 0.0
            self.failures.append((_crop(canvas, box), label, guess, conf))

    def add_number(self, reading, label):
        digits = [(d.line, d.digit, d.confidence) for d in reading.digits]
        self.numbers.append((label, digits))
        self.ms_number.append(reading.ms)
        if len(digits) == len(label):
            for (_, d, _), t in zip(digits, label):
                self.confusions[(int(t), d)] += 1

    def scores(self, threshold: float) -> dict:
        s_argmax = [len(d) == 1 and d[0][1] == y for y, d, _ in self.single]
        s_text = [text_at(d, threshold) == str(y) for y, d, _ in self.single]
        n_argmax = ["".join(str(x[1]) for x in d) == y for y, d in self.numbers]
        n_text = [text_at(d, threshold) == y for y, d in self.numbers]
        counted = [(y, d) for y, d in self.numbers if len(d) == len(y)]
        n_digits = sum(len(y) for y, _ in counted)
        right_digits = sum(sum(int(t) == x[1] for t, x in zip(y, d)) for y, d in counted)
        per_set = {}
        for name in sorted({n for _, _, n in self.single}):
            hits = [ok for ok, (_, _, n) in zip(s_argmax, self.single) if n == name]
            per_set[name] = {"n": len(hits), "accuracy": _share(sum(hits), len(hits))}
        return {
            "single_accuracy": _share(sum(s_argmax), len(s_argmax)),
            "single_text_accuracy": _share(sum(s_text), len(s_text)),
            "single_right_but_hidden_by_threshold": int(sum(a and not t for a, t in zip(s_argmax, s_text))),
            "numbers_exact_text": _share(sum(n_text), len(n_text)),
            "numbers_exact_argmax": _share(sum(n_argmax), len(n_argmax)),
            "numbers_right_but_hidden_by_threshold": int(sum(a and not t for a, t in zip(n_argmax, n_text))),
            "numbers_digit_accuracy": _share(right_digits, n_digits),
            "single_median_ms": statistics.median(self.ms_single) if self.ms_single else None,
            "number_median_ms": statistics.median(self.ms_number) if self.ms_number else None,
            "worst_confusions": [[f"{t}->{p}", c] for (t, p), c in self.confusions.most_common() if t != p][:8],
            "confusion_matrix": [[self.confusions[(t, p)] for p in range(10)] for t in range(10)],
            "single_by_set": per_set,
            "per_class": self.per_class(),
        }

    def per_class(self) -> dict:
        """Per true digit (singles with one digit found and digits of numbers whose count came out right): how
        many were read, how many wrong, and the error rate."""
        out = {}
        for t in range(10):
            n = sum(self.confusions[(t, p)] for p in range(10))
            wrong = n - self.confusions[(t, t)]
            out[str(t)] = {"n": n, "wrong": wrong, "error": _share(wrong, n)}
        return out

    def best_threshold(self, current: float = 0.5) -> dict:
        """The '?' threshold that maximises exact number text; ties go to the better single-digit text, then
        to the threshold nearest the current one (a tie is no evidence for moving it)."""
        numbers = {t: _share(sum(text_at(d, t) == y for y, d in self.numbers), len(self.numbers)) or 0.0
                   for t in THRESHOLDS}
        singles = {t: _share(sum(text_at(d, t) == str(y) for y, d, _ in self.single), len(self.single)) or 0.0
                   for t in THRESHOLDS}
        best = max(THRESHOLDS, key=lambda t: (numbers[t], singles[t], -abs(t - current)))
        return {"threshold": best, "numbers_exact_text": numbers[best], "single_text_accuracy": singles[best],
                "numbers_exact_text_by_threshold": {str(t): v for t, v in numbers.items()}}


def _share(a, b):
    return a / b if b else None


def _ink_box(canvas):
    ys, xs = np.nonzero(canvas < 128)
    if len(ys) == 0:
        return (0, 0, canvas.shape[1], canvas.shape[0])
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def _crop(canvas, box, tile=96):
    import cv2

    x, y, w, h = box
    m = max(w, h) // 8 + 4
    c = canvas[max(0, y - m):y + h + m, max(0, x - m):x + w + m]
    s = (tile - 16) / max(c.shape)
    c = cv2.resize(c, (max(1, round(c.shape[1] * s)), max(1, round(c.shape[0] * s))), interpolation=cv2.INTER_AREA)
    out = np.full((tile, tile), 255, np.uint8)
    oy, ox = 16 + (tile - 16 - c.shape[0]) // 2, (tile - c.shape[1]) // 2
    out[oy:oy + c.shape[0], ox:ox + c.shape[1]] = c
    return out


def write_grid(path, failures, columns: int = 10) -> int:
    """A PNG of misread digits, each tile labelled 'true>read conf'. Returns the number of tiles."""
    import cv2

    from common.atomic import atomic_path

    tiles = []
    for crop, true, guess, conf in failures:
        t = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
        cv2.putText(t, f"{true}>{guess} {conf:.2f}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1,
                    cv2.LINE_AA)
        cv2.rectangle(t, (0, 0), (t.shape[1] - 1, t.shape[0] - 1), (180, 180, 180), 1)
        tiles.append(t)
    if not tiles:
        tiles = [np.full((96, 96 * 3, 3), 255, np.uint8)]
        cv2.putText(tiles[0], "no misread digits", (8, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 120, 0), 1)
        columns = 1
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.vstack(rows)):
            raise OSError(f"cannot write {path}")
    return len(failures)


# ------------------------------------------------------------------------------------------ CVL test
def cvl_test(rec: Recognizer, store: ModelStore, root: Path, names, limit=None, batch: int = 512) -> dict:
    """CVL test writers through the scan path: each scan prepared by Recognizer.prepare (upscaled first, see
    study/handwriting_render.scan_image), the single-digit ones classified in batches. A scan that does not
    come out as exactly one digit is a wrong reading."""
    path = root / FILES["cvl"]
    if not path.is_file():
        raise HandwritingError(f"--cvl-test needs {path}")
    samples = [s for s in LOADERS["cvl"](path) if s.part == "test"]
    if limit:
        idx = np.random.default_rng(0).choice(len(samples), size=min(limit, len(samples)), replace=False)
        samples = [samples[i] for i in np.sort(idx)]
    xs, ys, segs = [], [], Counter()
    t0 = time.perf_counter()
    for s in samples:
        prep = rec.prepare(scan_image(s.image, "cvl"))
        segs[min(len(prep.batch), 2)] += 1
        if len(prep.batch) == 1:
            xs.append(prep.batch[0])
            ys.append(s.label)
    x, y = np.array(xs, np.float32).reshape(-1, 28, 28, 1), np.array(ys)
    out = {"digits": len(samples), "writers": len({s.writer for s in samples}),
           "one_segment": _share(segs[1], len(samples)), "no_segment": segs[0], "several_segments": segs[2],
           "prepare_seconds": round(time.perf_counter() - t0, 1), "models": {}}
    for n in names:
        pred = np.concatenate([store.predict(n, x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)]) \
            if len(x) else np.zeros(0, int)
        right = int((pred == y).sum())
        out["models"][n] = {"accuracy": _share(right, len(samples)), "accuracy_one_segment": _share(right, len(x))}
    return out


# ------------------------------------------------------------------------------------------ main
def resolve_root(arg) -> Path:
    root = find(arg)
    if root is None:
        if SHARED.is_dir():
            return SHARED
        raise HandwritingError(f"no handwriting folder: pass --handwriting DIR or set {ENV_VAR}")
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None,
                    help=f"comma-separated subset of {','.join(MODEL_NAMES)} (default: all available)")
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    ap.add_argument("--handwriting", metavar="DIR", default=None, help="the real-handwriting folder")
    ap.add_argument("--n", type=int, default=1000, help="single pen digits of validation writers (default 1000)")
    ap.add_argument("--numbers", type=int, default=300, help="numbers of 3-8 digits by one writer (default 300)")
    ap.add_argument("--cvl-test", action="store_true", help="also read the CVL test writers' scans")
    ap.add_argument("--cvl-n", type=int, default=None, help="read only this many CVL test scans (default all)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help=f"'?' below this confidence (default {DEFAULT_THRESHOLD}, as recognize.py)")
    ap.add_argument("--choose-threshold", action="store_true",
                    help="report the '?' threshold that maximises exact number text on these writers")
    ap.add_argument("--grid", metavar="FILE", default=None, help="PNG of the default model's misread single digits")
    ap.add_argument("--grid-max", type=int, default=100, help="at most this many tiles in the grid (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", metavar="FILE", default=None, help="also write the results as JSON here")
    ap.add_argument("--per-class", action="store_true",
                    help="also print per true digit error rates and the confusion pairs the writing conventions touch")
    ap.add_argument("--before", metavar="JSON", default=None,
                    help="an earlier --out of this benchmark (other models, same --n/--numbers/--seed): the "
                    "per-class view shows its figures beside these (implies --per-class)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        ap.error("--threshold must be between 0 and 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    store = ModelStore(args.models_dir)
    try:
        rec = Recognizer(store, threshold=args.threshold)
        names = store.requested(args.models)
        default = store.default_name()
        for n in names:
            store.load(n)
        root = resolve_root(args.handwriting)
        pool = validation_pool(root)
    except (RecognizerError, HandwritingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    grid_model = default if default in names else names[0]
    tallies = {n: Tally() for n in names}
    seg_single = seg_number = 0
    t0 = time.perf_counter()
    for canvas, label, name in single_items(pool, args.n, args.seed):
        out = rec.read_models(canvas, names)
        seg_single += len(out[names[0]].digits) == 1
        for n, r in out.items():
            keep = n == grid_model and len(tallies[n].failures) < args.grid_max
            tallies[n].add_single(r, label, name, canvas, keep)
    for canvas, label, _ in number_items(pool, args.numbers, args.seed):
        out = rec.read_models(canvas, names)
        seg_number += len(out[names[0]].digits) == len(label)
        for n, r in out.items():
            tallies[n].add_number(r, label)
    read_s = time.perf_counter() - t0
    n_single = min(args.n, len(pool))
    digits = Counter(name for name, _ in pool)
    val_writers = {k: len({s.writer for n, s in pool if n == k}) for k in digits}
    results = {
        "data": str(root), "seed": args.seed, "threshold": args.threshold, "n_single": n_single,
        "n_numbers": args.numbers, "validation_writers": val_writers, "validation_digits": dict(digits),
        "segmentation_single_ok": _share(seg_single, n_single),
        "segmentation_numbers_ok": _share(seg_number, args.numbers),
        "default_model": default, "read_seconds": round(read_s, 1), "models": {},
    }
    for n in names:
        results["models"][n] = tallies[n].scores(args.threshold)
        if args.choose_threshold:
            results["models"][n]["threshold_choice"] = tallies[n].best_threshold(args.threshold)
    if default in results["models"]:
        results["default"] = {"model": default, **results["models"][default]}
    if args.cvl_test:
        try:
            results["cvl_test"] = cvl_test(rec, store, root, names, args.cvl_n)
        except HandwritingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    report(results, names, default, args)
    if args.per_class or args.before:
        import json

        before = json.loads(Path(args.before).read_text()) if args.before else None
        for n in names:
            report_per_class(n, results["models"][n], (before or {}).get("models", {}).get(n))
    if args.grid:
        k = write_grid(args.grid, tallies[grid_model].failures)
        print(f"wrote {args.grid}: {k} misread single digits of {grid_model}")
    if args.out:
        from common.atomic import write_json

        write_json(args.out, results)
        print(f"wrote {args.out}")
    return 0


def _pct(v):
    return "     -" if v is None else f"{100 * v:6.2f}"


def report(results, names, default, args) -> None:
    print(f"real-handwriting benchmark: {results['n_single']} single digits and {results['n_numbers']} numbers "
          f"of 3-8 digits by validation writers ({', '.join(f'{k} {v}' for k, v in results['validation_writers'].items())}"
          f" writers), seed {args.seed}, '?' below {args.threshold}; reading took {results['read_seconds']:.0f} s")
    print(f"segmentation: right digit count on {_pct(results['segmentation_single_ok']).strip()}% of singles, "
          f"{_pct(results['segmentation_numbers_ok']).strip()}% of numbers")
    cvl = results.get("cvl_test")
    print(f"{'model':<10} {'single':>7} {'numbers':>8} {'per digit':>9} {'? hides (1/num)':>15} "
          f"{'CVL test':>8} {'ms single':>9} {'ms number':>9}  worst confusions")
    for n in names:
        r = results["models"][n]
        c = _pct(cvl["models"][n]["accuracy"]) if cvl else "     -"
        label = f"{n}*" if n == default else n
        hides = f"{r['single_right_but_hidden_by_threshold']}/{r['numbers_right_but_hidden_by_threshold']}"
        print(f"{label:<10} {_pct(r['single_accuracy'])}% {_pct(r['numbers_exact_text'])}%  "
              f"{_pct(r['numbers_digit_accuracy'])}% {hides:>15} {c:>7}% "
              f"{r['single_median_ms'] or 0:>9.1f} {r['number_median_ms'] or 0:>9.1f}  "
              f"{' '.join(f'{p}:{k}' for p, k in r['worst_confusions'][:4])}")
    print("* the default model (what recognize.py uses without --model); single = argmax right, one digit found; "
          "numbers = exact text, '?' counts wrong")
    if cvl:
        print(f"CVL test: {cvl['digits']} scans by {cvl['writers']} writers; one segment found on "
              f"{_pct(cvl['one_segment']).strip()}% (several: {cvl['several_segments']}, none: {cvl['no_segment']}); "
              "a scan without exactly one digit counts as wrong")
    if args.choose_threshold:
        for n in names:
            t = results["models"][n]["threshold_choice"]
            print(f"threshold for {n}: {t['threshold']:.2f} -> numbers exact text {_pct(t['numbers_exact_text']).strip()}%"
                  f", single text {_pct(t['single_text_accuracy']).strip()}%")


def report_per_class(name: str, r: dict, before: dict | None = None) -> None:
    """Per true digit: digits read, error rate (and the earlier run's), then the convention pairs' counts."""
    print(f"\n{name}: per true digit (singles + digits of numbers), errors" + (" now / before" if before else ""))
    cells = []
    for d, c in r["per_class"].items():
        was = f" / {before['per_class'][d]['wrong']}" if before and "per_class" in before else ""
        cells.append(f"{d}: {c['wrong']}{was} of {c['n']} ({_pct(c['error']).strip()}%)")
    print("  " + "; ".join(cells))
    now = {f"{t}->{p}": r["confusion_matrix"][t][p] for t in range(10) for p in range(10)}
    old = {f"{t}->{p}": before["confusion_matrix"][t][p] for t in range(10) for p in range(10)} if before else {}
    for convention, pairs in CONVENTION_PAIRS.items():
        text = ", ".join(f"{p} {now[p]}" + (f" (was {old[p]})" if old else "") for p in pairs)
        print(f"  {convention:<30} {text}")


if __name__ == "__main__":
    sys.exit(main())
