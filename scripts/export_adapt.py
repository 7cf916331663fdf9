#!/usr/bin/env python3
"""Give shipped models what the reading side needs to learn a writer's hand: the `features` output in each
`.onnx` twin and `<name>.adapt.npz` (the head's weights, per-class feature statistics of the training images).

train_all.py writes both for every model it trains; run this for models made before that, or copied in.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.names import (BASE_MODELS, DEFAULT_MODELS_DIR, model_file, requested_models,  # noqa: E402
                          train_hint, unknown_model)

EPILOG = """examples:
  python scripts/export_adapt.py --data ../shared/data/mnist/mnist.npz --handwriting ../shared/data/handwriting
  python scripts/export_adapt.py cnn --data mnist.npz          only the CNN, statistics of MNIST's training split

Needs the training requirements (pip install -r requirements-train.txt) and the training data the models were
trained on (the statistics are of its training split: never the validation or test images).
Exit status: 0 if every requested model was done, 1 if any failed or was missing, 2 on usage errors.
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="export_adapt.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"models, from {', '.join(BASE_MODELS)} (default: every .keras present)")
    p.add_argument("--models-dir", default=DEFAULT_MODELS_DIR, help="folder with the .keras files (default models)")
    p.add_argument("--data", help="MNIST (mnist.npz or IDX folder; else $MNIST_PATH or the Keras cache)")
    p.add_argument("--handwriting", help="the real-handwriting folder the models trained on (its training writers)")
    args = p.parse_args(argv)
    if bad := unknown_model(args.names):
        p.error(bad)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("export_adapt")
    models_dir = Path(args.models_dir)
    names = requested_models(args.names, models_dir)
    if not names:
        log.error("no .keras model in %s/; %s", models_dir, train_hint())
        return 1
    from common import tf_env  # noqa: F401
    import keras

    from study import data as mnist
    from study.adapt_export import write_adapt_file
    from study.export import export_onnx
    from study.handwriting import load_handwriting

    try:
        data = mnist.with_handwriting(mnist.load(args.data), load_handwriting(args.handwriting))
    except Exception as exc:  # noqa: BLE001  missing or malformed data: say which
        log.error("%s", exc)
        return 1
    failed = 0
    for name in names:
        keras_path = models_dir / model_file(name)
        if not keras_path.is_file():
            log.error("%s is missing; %s", keras_path, train_hint(name))
            failed += 1
            continue
        try:
            model = keras.saving.load_model(keras_path, compile=False)
            export_onnx(keras_path, model=model)
            write_adapt_file(model, keras_path, data.train.x, data.train.y)
        except Exception as exc:  # noqa: BLE001  one model's trouble must not stop the others
            log.error("cannot prepare %s: %s: %s", keras_path, type(exc).__name__, exc)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
