"""Desktop handwritten-digit recognizer: draw digits (or open a photo) and read them live.

Thin entry point; the window lives in `gui/`. The models (ONNX Runtime, no TensorFlow) are loaded in the
recognition worker thread once the window is shown.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from common.names import DEFAULT_MODELS_DIR, MODEL_NAMES  # noqa: E402

MODELS = (*MODEL_NAMES, "all")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", default=str(Path(__file__).resolve().parent / DEFAULT_MODELS_DIR),
                   help="folder with the trained models: ann/cnn/vgg16 .onnx (run) and .keras (source) "
                        f"(default: the repository's {DEFAULT_MODELS_DIR}/)")
    p.add_argument("--model", choices=MODELS, default=None,
                   help="model to start with (default: the most accurate one present); 'all' = the three side by side")
    p.add_argument("--profile", default=None, metavar="DIR|none",
                   help="the writer's profile folder: corrections and what was learned from them (default: "
                        "$DIGITS_PROFILE, else one per user in the platform's user data folder); 'none' reads "
                        "with the shipped models alone and keeps no correction")
    p.add_argument("--brush", type=int, default=18, help="brush width in pixels (default: 18)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="log level on stderr (default: INFO); each recognition is one INFO line")
    return p.parse_args(argv)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("PIL", "matplotlib", "absl", "tensorflow", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    if not 2 <= args.brush <= 80:
        logging.getLogger("gui").error("--brush must be between 2 and 80 pixels")
        return 2
    from gui.app import run

    run(args.models_dir, model=args.model, brush=args.brush, started=STARTED, profile=args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
