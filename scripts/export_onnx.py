#!/usr/bin/env python3
"""Re-export trained Keras models as ONNX, so that the app and recognize.py start without TensorFlow.

train_all.py already writes an .onnx twin beside every model it trains; run this after copying in, or
changing, a .keras file by other means. Each twin records the sha256 of the .keras file it was made from; a
reader that finds a missing or stale twin falls back to (slow) Keras and says so.
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
  python scripts/export_onnx.py                     every models/{ann,cnn,vgg16}.keras -> .onnx beside it
  python scripts/export_onnx.py cnn                 only models/cnn.keras
  python scripts/export_onnx.py --models-dir runs/  another folder

Needs the training requirements (TensorFlow, tf2onnx, onnx): pip install -r requirements-train.txt.
Exit status: 0 if every requested model was exported, 1 if any failed or was missing, 2 on usage errors.
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="export_onnx.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"models to export, from {', '.join(BASE_MODELS)} (default: every .keras present)")
    p.add_argument("--models-dir", default=DEFAULT_MODELS_DIR,
                   help=f"folder with the .keras files; the .onnx files go beside them (default {DEFAULT_MODELS_DIR})")
    args = p.parse_args(argv)
    if bad := unknown_model(args.names):
        p.error(bad)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("export_onnx")
    models_dir = Path(args.models_dir)
    names = requested_models(args.names, models_dir)
    if not names:
        log.error("no .keras model in %s/; %s", models_dir, train_hint())
        return 1
    from study.export import ExportError, export_onnx

    failed = 0
    for name in names:
        keras_path = models_dir / model_file(name)
        if not keras_path.is_file():
            log.error("%s is missing; %s", keras_path, train_hint(name))
            failed += 1
            continue
        try:
            export_onnx(keras_path)
        except ExportError as exc:
            log.error("%s", exc)
            failed += 1
        except Exception as exc:  # a corrupt .keras, a layer the exporter cannot convert...
            log.error("cannot export %s: %s: %s", keras_path, type(exc).__name__, exc)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
