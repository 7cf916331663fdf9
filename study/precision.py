"""Where and how training computes: threads, bfloat16 where the CPU has it, and full-precision twins to save.

Training may run in bfloat16 with TensorFlow's fused batch norm (faster on CPUs with native bf16); what is
evaluated and shipped is always a plain float32 Keras model, so it runs anywhere.
"""

from __future__ import annotations

import contextlib
import os

PRECISIONS = ("auto", "float32", "bfloat16")


def configure_threads(intra: int | None = None, inter: int | None = None) -> None:
    """Use every core for each op; on a small CPU a second concurrent op only thrashes the caches."""
    import tensorflow as tf

    intra = intra or os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter or 1)
    except RuntimeError:  # already initialised in this process: keep what is there
        pass


def resolve_precision(choice: str = "auto") -> str:
    """'auto' -> 'bfloat16' on CPUs with native bf16, else 'float32' (emulated bf16 is slower)."""
    from study import machine

    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r}; choose one of {PRECISIONS}.")
    if choice == "auto":
        return "bfloat16" if machine.has_bf16() else "float32"
    return choice


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to `name` inside the block only."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def fast_build(precision: str):
    """Models built inside train fast here: they compute in `precision` (weights stay float32, Keras'
    'mixed_bfloat16' policy) and batch-normalise through TensorFlow's fused kernel (study.fused_bn)."""
    from study import fused_bn

    policy = {"float32": "float32", "bfloat16": "mixed_bfloat16"}[resolve_precision(precision)]
    with dtype_policy(policy), fused_bn.enabled():
        yield


def portable_twin(model, rebuild):
    """A plain float32 Keras twin of a model from `fast_build` (same weights), so that what is evaluated and
    saved runs anywhere at full precision; `rebuild()` must build the same architecture. Models that are
    already plain float32 are returned unchanged."""
    from study import fused_bn

    if model.dtype_policy.compute_dtype == "float32" and not fused_bn.has_fused_layers(model):
        return model
    with dtype_policy("float32"):
        twin = rebuild()
    if [w.shape for w in twin.weights] != [w.shape for w in model.weights]:
        raise ValueError(f"rebuild() made a different architecture than {model.name!r}; cannot copy weights.")
    twin.set_weights(model.get_weights())
    return twin
