#!/usr/bin/env python3
"""Fit each model's temperature on the validation data and store it beside the models (calibration.json).

The validation data are exactly train_all.py's: MNIST's 12,000 validation images plus the real handwriting
validation writers (pen sets and CVL). Each model reads them uncalibrated through the recognizer's own store
(the ONNX twins the app runs); study/calibration.py fits the temperatures (the ensemble's on the calibrated
members' mean), this writes models/calibration.json atomically, a reliability diagram per model
(plots/<model>_reliability.png, before and after) and prints the expected calibration error. train_all.py runs
the same fit after training, so promoted models come calibrated; run this after copying models in by hand.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.names import BASE_MODELS, DEFAULT_MODELS_DIR, ENSEMBLE, model_file  # noqa: E402

EPILOG = """examples:
  python scripts/calibrate.py --data ../shared/data/mnist/mnist.npz --handwriting ../shared/data/handwriting
  python scripts/calibrate.py --models-dir runs/x/models --plots-dir runs/x/plots

Needs the training requirements (the handwriting preparation uses OpenCV). Exit status 0 on success, 1 when a
model or the data are missing."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="calibrate.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR))
    p.add_argument("--plots-dir", type=Path, default=Path("plots"), help="where the reliability diagrams go")
    p.add_argument("--data", metavar="PATH", help="MNIST (as train_all.py: default $MNIST_PATH, the Keras cache)")
    p.add_argument("--handwriting", metavar="DIR", help="the real handwriting folder (default $HANDWRITING_PATH)")
    p.add_argument("--no-handwriting", action="store_true", help="validate on MNIST alone (not what train_all does)")
    return p.parse_args(argv)


def validation_data(args):
    """train_all.py's validation split: MNIST validation + the handwriting validation writers."""
    from study.data import load, with_handwriting
    from study.handwriting import load_handwriting

    data = load(args.data)
    return data if args.no_handwriting else with_handwriting(data, load_handwriting(args.handwriting))


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import numpy as np

    from recognizer import ModelStore, RecognizerError
    from recognizer.calibration import apply_temperature
    from study import calibration as cal
    from study.data import DataError

    names = [n for n in BASE_MODELS if (args.models_dir / model_file(n)).is_file()]
    if not names:
        print(f"error: no models in {args.models_dir}", file=sys.stderr)
        return 1
    try:
        data = validation_data(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    x, y = data.val.x, data.val.y
    store = ModelStore(args.models_dir, calibrated=False)
    probs = {}
    for n in names:
        t0 = time.perf_counter()
        try:
            probs[n] = np.concatenate([store.predict(n, x[i:i + 500]) for i in range(0, len(x), 500)])
        except RecognizerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        logging.getLogger("calibrate").info("%s read %d validation digits in %.0f s", n, len(x),
                                            time.perf_counter() - t0)
    entries = cal.calibrate(probs, y, args.models_dir, data.val_checksum)
    cal.write(args.models_dir, entries)
    calibrated = {n: apply_temperature(probs[n], entries[n]["temperature"]) for n in names}
    if ENSEMBLE in entries:
        probs[ENSEMBLE] = np.mean([probs[n] for n in names], axis=0)
        calibrated[ENSEMBLE] = apply_temperature(np.mean([calibrated[n] for n in names], axis=0),
                                                 entries[ENSEMBLE]["temperature"])
    parts = {k: len(s) for k, s in data.val_parts.items()} or {"mnist": len(y)}
    print(f"validation: {len(y):,} digits ({', '.join(f'{k} {v:,}' for k, v in parts.items())}), "
          f"checksum {data.val_checksum}")
    print(f"{'model':<9}{'T':>7}{'ECE before':>12}{'ECE after':>11}{'NLL before':>12}{'NLL after':>11}")
    for n, e in entries.items():
        print(f"{n:<9}{e['temperature']:>7.3f}{100 * e['ece_before']:>11.2f}%{100 * e['ece_after']:>10.2f}%"
              f"{e['nll_before']:>12.4f}{e['nll_after']:>11.4f}")
        cal.plot_reliability(probs[n], calibrated[n], y, n, args.plots_dir / f"{n}_reliability.png",
                             e["temperature"])
    print(f"wrote {args.models_dir / 'calibration.json'} and {args.plots_dir}/<model>_reliability.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
