#!/usr/bin/env python3
"""Drawn-digit benchmark: how well do the models read MNIST *test* digits redrawn like canvas drawings?

Per model it prints: accuracy on single drawn digits, exact-string accuracy on drawn numbers (3-8 digits
on one line) and the accuracy per digit inside those numbers, the model's accuracy on the same MNIST digits
plain and after the skeleton-and-redraw alone (no canvas: what the stroke redraw itself costs, a ceiling
for the drawn figures), and the median warm time of Recognizer.read on a canvas with 10 digits. Results
also go to --out as JSON (written atomically). The reported figures use the test digits; choices (which
model to keep, which recipe) use `--split val`, the validation digits of the shared 48,000/12,000 split, so
that the test set is never used to choose.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.names import DEFAULT_MODELS_DIR, MODEL_NAMES  # noqa: E402
from recognizer import ModelStore, Recognizer, RecognizerError  # noqa: E402
from study.drawn import drawn_numbers, drawn_singles, number_canvas  # noqa: E402
from study.mnist_ink import renormalize_mnist  # noqa: E402

SHARED_MNIST = ROOT.parent / "shared/data/mnist/mnist.npz"
EPILOG = """examples:
  python benchmarks/bench_drawn.py                         all available models, 1000 digits, 200 numbers
  python benchmarks/bench_drawn.py --models cnn --n 300 --numbers 50 --out out/bench_drawn.json
  python benchmarks/bench_drawn.py --split val --models-dir /tmp/candidates     choosing between models
"""


def load_digits(path, split: str = "test"):
    """(x uint8 (N, 28, 28), y, source) of MNIST's test set or of the validation part of the shared split."""
    from study.data import locate, split_indices

    if path is None and not os.environ.get("MNIST_PATH") and SHARED_MNIST.is_file():
        path = SHARED_MNIST
    arrays, source = locate(path)
    if split == "test":
        return arrays["x_test"], arrays["y_test"], source
    _, val = split_indices(arrays["y_train"])
    return arrays["x_train"][val], arrays["y_train"][val], f"{source} (validation split)"


def mnist_accuracy(store, name, x, y, batch=1000) -> float:
    """Accuracy on (N, 28, 28) uint8 digits or (N, 28, 28, 1) float batches in [0, 1]."""
    correct = 0
    for i in range(0, len(x), batch):
        b = x[i:i + batch]
        b = b[..., None].astype(np.float32) / 255.0 if b.ndim == 3 else b
        correct += int((store.predict(name, b).argmax(1) == y[i:i + batch]).sum())
    return correct / max(len(x), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None,
                    help=f"comma-separated subset of {','.join(MODEL_NAMES)} (default: all available)")
    ap.add_argument("--n", type=int, default=1000, help="single drawn digits (default 1000)")
    ap.add_argument("--numbers", type=int, default=200, help="drawn numbers of 3-8 digits (default 200)")
    ap.add_argument("--fit", choices=("widen", "shrink"), default="widen",
                    help="numbers too long for 640 px: widen the canvas (default) or draw smaller, bolder digits")
    ap.add_argument("--data", default=None, help="MNIST (mnist.npz or IDX folder); default MNIST_PATH / cache")
    ap.add_argument("--models-dir", default=str(ROOT / DEFAULT_MODELS_DIR))
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="digits to draw: MNIST test (reported figures, default) or the validation split (choices)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-runs", type=int, default=30, help="warm reads of the 10-digit canvas (default 30)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    store = ModelStore(args.models_dir)
    try:
        names = store.requested(args.models)
        for n in names:
            store.load(n)
        x, y, source = load_digits(args.data, args.split)
    except (RecognizerError, Exception) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rec = Recognizer(store)
    res = {n: {"single_correct": 0, "number_correct": 0, "number_digits_correct": 0} for n in names}
    number_digits = 0  # digits of the numbers whose digit count came out right
    seg_single = seg_number = 0

    t0 = time.perf_counter()
    for canvas, label in drawn_singles(x, y, args.n, seed=args.seed):
        out = rec.read_models(canvas, names)
        seg_single += len(next(iter(out.values())).digits) == 1
        for n, r in out.items():
            # accuracy is about the model's answer (argmax); '?' is only how the GUI shows low confidence
            res[n]["single_correct"] += len(r.digits) == 1 and r.digits[0].digit == label
    for canvas, label in drawn_numbers(x, y, args.numbers, seed=args.seed, fit=args.fit):
        out = rec.read_models(canvas, names)
        counted_right = len(next(iter(out.values())).digits) == len(label)
        seg_number += counted_right
        number_digits += len(label) if counted_right else 0
        for n, r in out.items():
            text = "".join(str(d.digit) for d in r.digits)
            res[n]["number_correct"] += text == label
            res[n]["number_digits_correct"] += sum(a == b for a, b in zip(text, label)) if counted_right else 0
    log_s = time.perf_counter() - t0

    rng = np.random.default_rng(args.seed + 7)
    # the timing canvas is a GUI-sized 640x480 canvas with 10 digits on it (drawn smaller to fit)
    canvas10, _ = number_canvas([x[i] for i in rng.choice(len(x), 10, replace=False)], rng, fit="shrink")
    results = {"data": source, "split": args.split, "n_single": args.n, "n_numbers": args.numbers,
               "seed": args.seed, "fit": args.fit,
               "ten_digit_canvas_size": [int(canvas10.shape[1]), int(canvas10.shape[0])],
               "segmentation_single_ok": seg_single / max(args.n, 1),
               "segmentation_numbers_ok": seg_number / max(args.numbers, 1), "models": {}}
    print(f"drawn-digit benchmark: {args.n} single digits, {args.numbers} numbers of 3-8 digits "
          f"(MNIST {args.split} digits, seed {args.seed}, fit={args.fit}); reading took {log_s:.0f} s")
    print(f"segmentation: right digit count on {100 * results['segmentation_single_ok']:.1f}% of singles, "
          f"{100 * results['segmentation_numbers_ok']:.1f}% of numbers")
    redrawn = renormalize_mnist(x)  # the skeleton-and-redraw alone, as the recognizer normalises it
    print(f"{'model':<9} {'drawn single':>12} {'numbers exact':>13} {'per digit':>9} {'MNIST ' + args.split:>10} "
          f"{'redrawn':>8} {'10-digit ms':>11}")
    for n in names:
        for _ in range(3):
            rec.read(canvas10, model=n)
        times = [rec.read(canvas10, model=n).ms for _ in range(args.timing_runs)]
        found = len(rec.read(canvas10, model=n).digits)
        r = {"drawn_single_accuracy": res[n]["single_correct"] / max(args.n, 1),
             "numbers_exact_accuracy": res[n]["number_correct"] / max(args.numbers, 1),
             "numbers_digit_accuracy": res[n]["number_digits_correct"] / max(number_digits, 1),
             f"mnist_{args.split}_accuracy": mnist_accuracy(store, n, x, y),
             f"mnist_{args.split}_redrawn_accuracy": mnist_accuracy(store, n, redrawn, y),
             "ten_digit_canvas_median_ms": statistics.median(times), "ten_digit_canvas_digits_found": found}
        results["models"][n] = r
        print(f"{n:<9} {100 * r['drawn_single_accuracy']:>11.2f}% {100 * r['numbers_exact_accuracy']:>12.2f}% "
              f"{100 * r['numbers_digit_accuracy']:>8.2f}% {100 * r[f'mnist_{args.split}_accuracy']:>9.2f}% "
              f"{100 * r[f'mnist_{args.split}_redrawn_accuracy']:>7.2f}% {r['ten_digit_canvas_median_ms']:>11.1f}")
    if args.out:
        from common.atomic import write_json

        write_json(args.out, results)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
