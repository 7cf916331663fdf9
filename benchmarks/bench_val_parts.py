#!/usr/bin/env python3
"""One model of several folders on train_all.py's validation data, split into its parts: MNIST validation, the
pen validation writers (pendigits, UJI, Chars74K) and CVL's validation writers (scans).

train_all's metrics.json keeps the validation accuracy and its MNIST / handwriting halves; the pen writers and
CVL's read differently (canvas strokes against scans) and the writing conventions (study/styles.py) aim at CVL's
slashed zeros and European ones, so the comparison of a styles or distillation run needs the handwriting half
split by source, and the confusions each convention touches. Reads each folder's ONNX twin (Keras where there
is none) uncalibrated, argmax (a temperature keeps every argmax). Where the folder holds a train_all
metrics.json entry for the model, its steps, epochs, MNIST test accuracy and promotion decision (McNemar counts
and p) are printed beside, and its validation checksum must be this script's: the same digits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.names import BASE_MODELS, ENSEMBLE, METRICS_FILE  # noqa: E402

# the confusions the writing conventions touch, true->read (issue 30): slashed 0, European 1, 9 with a straight stem
CONFUSIONS = {"cvl": ("0->8", "1->7", "9->7", "9->4"), "all": ("8->0",)}
EPILOG = """example:
  python benchmarks/bench_val_parts.py models runs/x/models runs/y/models --data ../shared/data/mnist/mnist.npz \\
      --handwriting ../shared/data/handwriting --out runs/val_parts.json
The first folder is the one the others are compared with (wrong per true digit, errors fixed / made)."""


def validation(data_path, handwriting):
    """(train_all's validation split, the source of each of its digits: 'mnist', 'pen' or 'cvl')."""
    from study.data import load, with_handwriting
    from study.handwriting import load_handwriting

    mnist = load(data_path)
    hand = load_handwriting(handwriting)
    if hand is None:
        raise SystemExit("give --handwriting DIR: the validation writers are the point of this split")
    data = with_handwriting(mnist, hand)
    source = np.concatenate([np.full(len(mnist.val), "mnist"), np.where(hand.val.set == "cvl", "cvl", "pen")])
    return data, source


def read(folder: Path, model: str, x: np.ndarray) -> np.ndarray:
    from recognizer import ModelStore

    store = ModelStore(folder, threads=os.cpu_count(), calibrated=False)
    return np.concatenate([store.predict(model, x[i:i + 1024]) for i in range(0, len(x), 1024)]).argmax(1)


def count(y, pred, on, pair: str) -> int:
    true, got = (int(v) for v in pair.split("->"))
    return int(np.sum(on & (y == true) & (pred == got)))


def summary(folder: Path, model: str, y, pred, source, val_checksum: str) -> dict:
    out = {"folder": str(folder), "validation": float(np.mean(pred == y))}
    for part in ("mnist", "pen", "cvl"):
        on = source == part
        out[part] = float(np.mean(pred[on] == y[on]))
        out[f"{part}_n"] = int(on.sum())
    for part, pairs in CONFUSIONS.items():
        on = np.ones(len(y), bool) if part == "all" else source == part
        out |= {f"{part} {p}": count(y, pred, on, p) for p in pairs}
    out["wrong_per_digit"] = [int(np.sum((y == k) & (pred != y))) for k in range(10)]
    metrics = folder / METRICS_FILE
    entry = json.loads(metrics.read_text()).get("models", {}).get(model, {}) if metrics.is_file() else {}
    if entry.get("val_checksum") not in (None, val_checksum):
        logging.warning("%s: its metrics were measured on other validation digits (%s, here %s)", folder,
                        entry["val_checksum"], val_checksum)
    promotion = entry.get("promotion") or {}
    out |= {k: entry.get(k) for k in ("steps", "epochs", "train_seconds", "test_accuracy", "distill")}
    out |= {f"promotion_{k}": promotion.get(k) for k in ("better", "worse", "p_better", "blocking_classes",
                                                          "promote", "reason")}
    return out


def row(s: dict) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    mcnemar = "–" if s["promotion_better"] is None else \
        f"+{s['promotion_better']} / -{s['promotion_worse']}, p = {s['promotion_p_better']:.2g}" + \
        (" (promote)" if s["promotion_promote"] else "")
    steps = "–" if s["steps"] is None else f"{s['steps']:,} / {s['epochs']:.2f}"
    return (f"| {s['folder']} | {steps} | {pct(s['validation'])} | {pct(s['mnist'])} | {pct(s['pen'])} | "
            f"{pct(s['cvl'])} | {s['cvl 0->8']} | {s['cvl 1->7']} | {s['cvl 9->7']} / {s['cvl 9->4']} | "
            f"{s['all 8->0']} | {pct(s['test_accuracy'])} | {mcnemar} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_val_parts.py", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="model folders (models/, runs/<run>/models)")
    ap.add_argument("--model", choices=BASE_MODELS + (ENSEMBLE,), default="cnn",
                    help="which model of each folder (ensemble: the mean of the three; default cnn)")
    ap.add_argument("--data", help="MNIST .npz (default: as train_all finds it)")
    ap.add_argument("--handwriting", help="the real handwriting folder (default: $HANDWRITING_PATH)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        ap.error(f"not a folder: {', '.join(missing)}")
    data, source = validation(args.data, args.handwriting)
    y = data.val.y.astype(int)
    print(f"validation {data.val_checksum}: {len(y):,} digits, MNIST {np.sum(source == 'mnist'):,}, pen writers "
          f"{np.sum(source == 'pen'):,}, CVL writers {np.sum(source == 'cvl'):,}; {args.model}, argmax")
    print("| folder | steps / epochs | validation | MNIST val | pen val writers | CVL val writers | CVL 0->8 | "
          "CVL 1->7 | CVL 9->7 / 9->4 | 8->0 (all) | MNIST test | McNemar vs shipped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    results, first = [], None
    for folder in args.folders:
        pred = read(folder, args.model, data.val.x)
        s = summary(folder, args.model, y, pred, source, data.val_checksum)
        if first is None:
            first = pred
        else:
            s["fixed_vs_first"] = int(np.sum((pred == y) & (first != y)))
            s["broken_vs_first"] = int(np.sum((pred != y) & (first == y)))
        results.append(s)
        print(row(s), flush=True)
    print("\nwrong per true digit (0-9):")
    for s in results:
        vs = f"  (vs the first: {s['fixed_vs_first']} fixed, {s['broken_vs_first']} broken)" if "fixed_vs_first" in s else ""
        print(f"  {s['folder']}: {' '.join(map(str, s['wrong_per_digit']))}{vs}")
    if args.out:
        from common import atomic

        atomic.write_json(args.out, {"val_checksum": data.val_checksum, "model": args.model, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
