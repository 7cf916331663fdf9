#!/usr/bin/env python3
"""Drawn-digit benchmark: how well do the models read MNIST *test* digits redrawn like canvas drawings?

Per model it prints: accuracy on single drawn digits, exact-string accuracy on drawn numbers (3-8 digits
on one line), the model's accuracy on the same plain MNIST digits for comparison, and the median warm time
of Recognizer.read on a canvas with 10 digits. Results also go to --out as JSON (written atomically).
The reported figures use the test digits; choices (which model to keep, which recipe) use `--split val`,
the validation digits of the shared 48,000/12,000 split, so that the test set is never used to choose.
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

from recognizer import MODEL_NAMES, ModelStore, Recognizer, RecognizerError  # noqa: E402
from recognizer.drawn import drawn_numbers, drawn_singles, number_canvas  # noqa: E402

SHARED_MNIST = ROOT.parent / "shared/data/mnist/mnist.npz"
EPILOG = """examples:
  python benchmarks/bench_drawn.py                         all available models, 1000 digits, 200 numbers
  python benchmarks/bench_drawn.py --models cnn --n 300 --numbers 50 --out out/bench_drawn.json
  python benchmarks/bench_drawn.py --split val --models-dir /tmp/candidates     choosing between models
"""


def load_digits(path, split: str = "test"):
    """(x uint8 (N, 28, 28), y, source) of MNIST's test set or of the validation part of the shared split."""
    from digitcore.data import locate, split_indices

    if path is None and not os.environ.get("MNIST_PATH") and SHARED_MNIST.is_file():
        path = SHARED_MNIST
    arrays, source = locate(path)
    if split == "test":
        return arrays["x_test"], arrays["y_test"], source
    _, val = split_indices(arrays["y_train"])
    return arrays["x_train"][val], arrays["y_train"][val], f"{source} (validation split)"


def mnist_accuracy(store, name, x, y, batch=1000) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        p = store.predict(name, x[i:i + batch, :, :, None].astype(np.float32) / 255.0)
        correct += int((p.argmax(1) == y[i:i + batch]).sum())
    return correct / len(x)


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
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="digits to draw: MNIST test (reported figures, default) or the validation split (choices)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-runs", type=int, default=30, help="warm reads of the 10-digit canvas (default 30)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    store = ModelStore(args.models_dir)
    names = args.models.split(",") if args.models else store.available()
    if not names:
        print(f"no models in {args.models_dir}; train them with: python train_all.py", file=sys.stderr)
        return 1
    try:
        for n in names:
            store.load(n)
        x, y, source = load_digits(args.data, args.split)
    except (RecognizerError, Exception) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rec = Recognizer(store)
    res = {n: {"single_correct": 0, "number_correct": 0} for n in names}
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
        seg_number += len(next(iter(out.values())).digits) == len(label)
        for n, r in out.items():
            res[n]["number_correct"] += "".join(str(d.digit) for d in r.digits) == label
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
    print(f"{'model':<9} {'drawn single':>12} {'numbers exact':>13} {'MNIST ' + args.split:>10} {'10-digit ms':>11}")
    for n in names:
        for _ in range(3):
            rec.read(canvas10, model=n)
        times = [rec.read(canvas10, model=n).ms for _ in range(args.timing_runs)]
        found = len(rec.read(canvas10, model=n).digits)
        acc_mnist = mnist_accuracy(store, n, x, y)
        r = {"drawn_single_accuracy": res[n]["single_correct"] / max(args.n, 1),
             "numbers_exact_accuracy": res[n]["number_correct"] / max(args.numbers, 1),
             f"mnist_{args.split}_accuracy": acc_mnist, "ten_digit_canvas_median_ms": statistics.median(times),
             "ten_digit_canvas_digits_found": found}
        results["models"][n] = r
        print(f"{n:<9} {100 * r['drawn_single_accuracy']:>11.2f}% {100 * r['numbers_exact_accuracy']:>12.2f}% "
              f"{100 * acc_mnist:>9.2f}% {r['ten_digit_canvas_median_ms']:>11.1f}")
    if args.out:
        from digitcore.atomic import write_json

        write_json(args.out, results)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
