#!/usr/bin/env python3
"""Adaptation time with NumPy's default BLAS threads against one (recognizer/adapt.py BLAS_THREADS), side by side.

A profile of N corrections (MNIST test digits, labelled right) is adapted `--repeats` times each way, alternating,
through Profile.adapt as the app, the page and `recognize.py --adapt` run it. Run it on cores other work keeps
busy to see the fight the limit avoids, and on idle ones to see what it costs there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recognizer import ModelStore, adapt  # noqa: E402
from recognizer.profile import Profile  # noqa: E402

EPILOG = """example (docs/RESULTS.md):
  python benchmarks/bench_adapt_threads.py --data ../shared/data/mnist/mnist.npz --corrections 60 --repeats 3
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/mnist/mnist.npz"))
    p.add_argument("--models-dir", default=str(ROOT / "models"))
    p.add_argument("--model", default="cnn")
    p.add_argument("--corrections", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    with np.load(args.data) as z:
        x = z["x_test"][:args.corrections].astype(np.float32) / 255.0
        y = z["y_test"][:args.corrections]
    profile = Profile(tempfile.mkdtemp(prefix="bench-threads-"), ModelStore(args.models_dir))
    for xi, yi in zip(x, y):
        profile.add_correction(label=int(yi), input=xi, model=args.model, source="bench", read=None)
    profile.adapt(args.model)  # warm: the model, its features, the base head
    seconds = {"default": [], "one": []}
    for _ in range(args.repeats):
        for way, n in (("default", None), ("one", 1)):
            adapt.BLAS_THREADS = n
            t0 = time.perf_counter()
            profile.adapt(args.model)
            seconds[way].append(round(time.perf_counter() - t0, 2))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(json.dumps({"model": args.model, "corrections": args.corrections, "cpus": os.cpu_count(),
                      "load_1min_after": load, "seconds": seconds,
                      "median": {k: float(np.median(v)) for k, v in seconds.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
