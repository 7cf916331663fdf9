#!/usr/bin/env python3
"""Read the training images once with the distillation teacher (study/distill.py) and cache its rows, ahead of a
timed `train_all.py --distill` run: the teacher's pass over ~82,000 images takes minutes on two cores and would
otherwise be spent inside the run's --budget-minutes.

Takes train_all.py's own data options (the same images come out: --data, --handwriting, --styles, --limit, ...)
plus --teacher, the folder whose calibrated ensemble teaches (train_all reads it from --warm-start, else
--models-dir).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EPILOG = """example:
  python scripts/fill_teacher_cache.py --teacher models --data ../shared/data/mnist/mnist.npz \\
      --handwriting ../shared/data/handwriting --styles 0.5
Exit status 0 when the cache holds every row, 2 when the data or the teacher's models are missing."""


def main(argv=None) -> int:
    import train_all
    from study.data import DataError
    from study.distill import DistillError, teacher_probabilities

    ap = argparse.ArgumentParser(prog="fill_teacher_cache.py", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, default=Path("models"), help="folder of the teaching ensemble (default: models)")
    ap.add_argument("--cache", default=None, help="cache folder (default: $DISTILL_CACHE or ~/.cache/digit-recognizer/distill)")
    ours, rest = ap.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = train_all.parse_args(rest)
    try:
        teacher_probabilities(train_all.load_data(args).train.x, ours.teacher, ours.cache)
    except (DataError, DistillError) as exc:
        logging.getLogger("fill_teacher_cache").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
