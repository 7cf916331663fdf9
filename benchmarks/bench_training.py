#!/usr/bin/env python3
"""Training speed on this machine: images/s per model, and achieved FLOP/s as a share of TensorFlow's own
fp32 matrix-multiply rate here (the practical ceiling for conv/dense work on this CPU).

    python benchmarks/bench_training.py                      # all three models, batch 128, default threads
    python benchmarks/bench_training.py --models vgg16 --batch-sizes 32 64 128 256 --xla

Model FLOPs are counted from the layers (2 x multiply-adds of every Conv2D/Dense); one training step is taken
as 3x the forward pass (forward, gradient w.r.t. activations, gradient w.r.t. weights).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import study  # noqa: E402,F401  TensorFlow settings (oneDNN) before TensorFlow loads
from common.names import BASE_MODELS  # noqa: E402
from study.precision import PRECISIONS  # noqa: E402


def forward_flops(model) -> int:
    """2 x multiply-adds of the Conv2D and Dense layers for one image."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_gflops(n: int = 2048, repeats: int = 10, trials: int = 3) -> float:
    """Best of `trials` timings of `repeats` fp32 n x n matmuls: the first ones run before the CPU and
    the thread pool are warm and read low, which would overstate the models' share."""
    import tensorflow as tf

    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    mm = tf.function(tf.linalg.matmul)
    mm(a, b).numpy()
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            c = mm(a, b)
        c.numpy()
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def train_rate(name: str, batch_size: int, steps: int, xla: bool, preset: str) -> float:
    """Images/s of model.fit on random data (the input pipeline is not what is measured here)."""
    import numpy as np
    import tensorflow as tf

    import train_all
    from study import budget, fit, recipes

    recipe = recipes.recipe_for(preset, name, batch_size=batch_size)
    model = train_all.build(name, dict(recipe.model_kwargs), None)
    fit.compile_model(model, recipe, total_steps=steps)
    if xla:
        model.jit_compile = True
    x = np.random.default_rng(0).random((batch_size * steps, 28, 28, 1), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, len(x))
    if recipe.label_smoothing:
        y = np.eye(10, dtype=np.float32)[y]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat().prefetch(2)
    return batch_size / budget.step_seconds(model, ds, steps), forward_flops(model)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(BASE_MODELS), choices=BASE_MODELS)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128])
    p.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    p.add_argument("--preset", default="best", choices=["seed", "best"], help="model options come from this preset")
    p.add_argument("--threads", type=int, help="intra-op threads (default: all cores)")
    p.add_argument("--xla", action="store_true", help="compile the train step with XLA (jit_compile=True)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="training compute precision (default float32; 'auto' = what train_all.py picks here: "
                   "bfloat16 on CPUs with AVX512_BF16 or AMX)")
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)

    from common import atomic
    from study import machine, precision

    args.precision = precision.resolve_precision(args.precision)

    precision.configure_threads(args.threads)
    peak = matmul_gflops()
    print(f"CPU: {machine.cpu_description()}")
    print(f"fp32 matmul through TensorFlow: {peak:.1f} GFLOP/s ({os.cpu_count()} cores); training in {args.precision}")
    print(f"{'model':<7}{'batch':>6}{'img/s':>9}{'GFLOP/img':>11}{'GFLOP/s':>9}{'of matmul':>10}")
    rows = []
    for name in args.models:
        for bs in args.batch_sizes:
            with precision.fast_build(args.precision):
                rate, fwd = train_rate(name, bs, args.steps, args.xla, args.preset)
            achieved = rate * 3 * fwd / 1e9
            rows.append({"model": name, "batch_size": bs, "images_per_s": rate, "train_gflop_per_image": 3 * fwd / 1e9,
                         "gflops": achieved, "fraction_of_matmul": achieved / peak})
            print(f"{name:<7}{bs:>6}{rate:>9.0f}{3 * fwd / 1e9:>11.3f}{achieved:>9.1f}{achieved / peak:>10.0%}")
    if args.out:
        atomic.write_json(args.out, {"matmul_gflops": peak, "xla": args.xla, "precision": args.precision,
                                     "threads": args.threads, "cpu": machine.cpu_description(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
