"""How a model is trained: presets (plain defaults the command line overrides), augmentation, schedule, fit.

`seed` reproduces the reference study (Adam 1e-4, 5 epochs, batch 32, no augmentation, all three models).
`best` holds each model's own recipe, chosen on the validation split only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Augment:
    """Random distortions matched to drawn input: hand-drawn digits are tilted, off-centre, differently sized
    and drawn with other stroke widths than MNIST's pens."""

    rotation_deg: float = 10.0
    shift_px: float = 2.0
    zoom: float = 0.10
    thickness: float = 0.5  # max blend towards a dilated (+) or eroded (-) copy of the digit
    redraw: float = 0.5  # share of images replaced by what the recognizer's normalisation makes of them


@dataclass(frozen=True)
class Recipe:
    epochs: int = 5  # under a time budget (study.budget): the most it trains
    min_epochs: int | None = None  # the least a time budget may cut it to; None: never shortened
    max_seconds: float | None = None  # a time budget also keeps this model's training under this
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.0  # > 0 switches Adam to AdamW
    schedule: str = "constant"  # constant | onecycle (linear warm-up, cosine decay)
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.0
    augment: Augment | None = None
    model_kwargs: dict = field(default_factory=dict)

    @property
    def fewest_epochs(self) -> int:
        """The floor a time budget may cut this recipe's epochs to."""
        return self.epochs if self.min_epochs is None else min(self.min_epochs, self.epochs)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("augment", "model_kwargs")}
        d["augment"] = None if self.augment is None else vars(self.augment).copy()
        d["model_kwargs"] = dict(self.model_kwargs)
        return d


_SEED = Recipe()
PRESETS: dict[str, dict[str, Recipe]] = {
    "seed": {"ann": _SEED, "cnn": _SEED, "vgg16": _SEED},
    "best": {
        # ANN, 24 epochs: val 99.10-99.13% in 94-125 s (40 epochs: 99.22-99.29% in 257-306 s); time goes to VGG16
        "ann": Recipe(
            epochs=24, min_epochs=12, batch_size=128, learning_rate=2e-3, weight_decay=1e-4, schedule="onecycle",
            label_smoothing=0.05, augment=Augment(rotation_deg=8, shift_px=2, zoom=0.08, thickness=0.4),
            model_kwargs={"hidden_units": (1024, 512), "dropout": 0.25, "batch_norm": True},
        ),
        # CNN, 24 epochs: val 99.57-99.66% in 221-224 s on 2 AVX-512/AMX cores, bfloat16 + fused batch norm;
        # a budget keeps it within 5 minutes on slower CPUs
        # (14 epochs: 99.45-99.62%, 30: 99.60%; lr 5e-3, less redraw, label smoothing 0.1 or a wider head
        # were no better: docs/NOTES.md)
        "cnn": Recipe(
            epochs=24, min_epochs=12, max_seconds=285, batch_size=128, learning_rate=3e-3, weight_decay=5e-4,
            schedule="onecycle", label_smoothing=0.05, augment=Augment(),
            model_kwargs={"filters": (32, 64, 128), "dropout": 0.3},
        ),
        # VGG16, 8 epochs: val 99.55% in 1455 s (7: 99.51%, 4: 99.37-99.48%). It takes what the 30-minute budget
        # leaves (train_all.py --budget-minutes): ~7 epochs on a 2-core Zen 5 EPYC, 3 on a Zen 4.
        "vgg16": Recipe(
            epochs=8, min_epochs=3, batch_size=128, learning_rate=2e-3, weight_decay=5e-4, schedule="onecycle",
            label_smoothing=0.05, augment=Augment(), model_kwargs={"batch_norm": True, "head_units": 256},
        ),
    },
}


def recipe_for(preset: str, model_name: str, **overrides) -> Recipe:
    """The preset's recipe for one model, with the non-None command-line overrides applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    return replace(PRESETS[preset][model_name], **{k: v for k, v in overrides.items() if v is not None})


def configure_threads(intra: int | None = None, inter: int | None = None) -> None:
    """Use every core for each op; on a small CPU a second concurrent op only thrashes the caches."""
    import os

    import tensorflow as tf

    intra = intra or os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter or 1)
    except RuntimeError:  # already initialised in this process: keep what is there
        pass


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(choice: str = "auto") -> str:
    """'auto' -> 'bfloat16' on CPUs with native bf16 (8-20% faster training measured), else 'float32'."""
    from study import machine

    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r}; choose one of {PRECISIONS}.")
    if choice == "auto":
        return "bfloat16" if machine.has_bf16() else "float32"
    return choice


@contextlib.contextmanager
def fast_build(precision: str):
    """Models built inside train fast here: they compute in `precision` (weights stay float32, Keras'
    'mixed_bfloat16' policy) and batch-normalise through TensorFlow's fused kernel (study.fused_bn)."""
    from study import fused_bn

    policy = {"float32": "float32", "bfloat16": "mixed_bfloat16"}[resolve_precision(precision)]
    with _dtype_policy(policy), fused_bn.enabled():
        yield


@contextlib.contextmanager
def _dtype_policy(name: str):
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def portable_twin(model, rebuild):
    """A plain float32 Keras twin of a model from `fast_build` (same weights), so that what is evaluated and
    saved runs anywhere at full precision; `rebuild()` must build the same architecture. Models that are
    already plain float32 are returned unchanged."""
    from study import fused_bn

    if model.dtype_policy.compute_dtype == "float32" and not fused_bn.has_fused_layers(model):
        return model
    with _dtype_policy("float32"):
        twin = rebuild()
    if [w.shape for w in twin.weights] != [w.shape for w in model.weights]:
        raise ValueError(f"rebuild() made a different architecture than {model.name!r}; cannot copy weights.")
    twin.set_weights(model.get_weights())
    return twin


def learning_rate_schedule(recipe: Recipe, steps_per_epoch: int, epochs: int | None = None):
    """The recipe's learning rate: a constant, or a one-cycle over `epochs` (default: the recipe's) whose
    length a time budget may re-plan while training (study.onecycle)."""
    if recipe.schedule == "constant":
        return recipe.learning_rate
    if recipe.schedule != "onecycle":
        raise ValueError(f"unknown schedule {recipe.schedule!r}; use 'constant' or 'onecycle'.")
    from study.onecycle import OneCycle

    total = max(2, (epochs or recipe.epochs) * steps_per_epoch)
    warmup = min(total - 1, max(1, int(total * recipe.warmup_fraction)))
    return OneCycle(recipe.learning_rate, total_steps=total, warmup_steps=warmup, alpha=1e-3)


def make_optimizer(recipe: Recipe, lr):
    import keras

    if recipe.weight_decay:
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=lr)


def augment_batch(images, augment: Augment):
    """Distort a batch (B, 28, 28, 1) on the fly in TensorFlow: affine warp plus a stroke-width change."""
    import tensorflow as tf

    b = tf.shape(images)[0]
    angle = tf.random.uniform([b], -1.0, 1.0) * augment.rotation_deg * math.pi / 180
    scale = 1.0 + tf.random.uniform([b], -1.0, 1.0) * augment.zoom
    tx = tf.random.uniform([b], -1.0, 1.0) * augment.shift_px
    ty = tf.random.uniform([b], -1.0, 1.0) * augment.shift_px
    # Output pixel p maps to input pixel A p + t, rotating/scaling about the image centre (13.5, 13.5).
    cos, sin, c = tf.cos(angle) / scale, tf.sin(angle) / scale, 13.5
    a0, a1, b0, b1 = cos, -sin, sin, cos
    a2 = c - a0 * c - a1 * c - tx
    b2 = c - b0 * c - b1 * c - ty
    zeros = tf.zeros_like(a0)
    transform = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transform, output_shape=tf.constant([28, 28]), fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT",
    )
    if augment.thickness:
        amount = tf.random.uniform([b, 1, 1, 1], -1.0, 1.0) * augment.thickness
        dilated = _max_pool_per_image(warped, 3)
        eroded = -_max_pool_per_image(-warped, 2)
        target = tf.where(amount > 0, dilated, eroded)
        warped = warped + tf.abs(amount) * (target - warped)
    return tf.clip_by_value(warped, 0.0, 1.0)


def _max_pool_per_image(images, size: int):
    """3x3 / 2x2 'same' max pooling of a (B, 28, 28, 1) batch, run with the batch as channels: TensorFlow's CPU
    pooling is slow on one channel, and this is the costliest step of the augmentation (2x faster so)."""
    import tensorflow as tf

    as_channels = tf.transpose(images, [3, 1, 2, 0])
    return tf.transpose(tf.nn.max_pool2d(as_channels, size, 1, "SAME"), [3, 1, 2, 0])


_REDRAWN: dict[tuple, np.ndarray] = {}


def redrawn(x: np.ndarray) -> np.ndarray:
    """The recognizer's view of the training digits, computed once per process and data set."""
    from recognizer.normalize import renormalize_mnist

    key = (x.shape, float(x[:64].sum()), float(x[-64:].sum()))
    if key not in _REDRAWN:
        start = time.perf_counter()
        _REDRAWN[key] = renormalize_mnist(x)
        log.info("redrew %d training digits the recognizer's way in %.1f s", len(x), time.perf_counter() - start)
    return _REDRAWN[key]


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, augment: Augment | None, seed: int):
    """A shuffled, batched, prefetched tf.data pipeline; augmentation runs batched, in parallel with training."""
    import tensorflow as tf

    y = y.astype(np.float32 if y.ndim == 2 else np.int32)
    if augment is not None and augment.redraw > 0:
        ds = tf.data.Dataset.from_tensor_slices(((x, redrawn(x)), y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda a, b: (augment_batch(pick_redrawn(a, augment.redraw), augment), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def pick_redrawn(images, share: float):
    """Per image, take the redrawn copy with probability `share` (images is a batch or a (batch, redrawn) pair)."""
    import tensorflow as tf

    if not isinstance(images, tuple):
        return images
    original, redrawn_copy = images
    take = tf.random.uniform([tf.shape(original)[0], 1, 1, 1]) < share
    return tf.where(take, redrawn_copy, original)


def compile_model(model, recipe: Recipe, steps_per_epoch: int, epochs: int | None = None):
    """Compile with the recipe's optimizer and loss; returns the learning rate (constant or schedule) it follows."""
    import keras

    loss = (
        keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        if recipe.label_smoothing
        else keras.losses.SparseCategoricalCrossentropy()
    )
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")] if recipe.label_smoothing else ["accuracy"]
    lr = learning_rate_schedule(recipe, steps_per_epoch, epochs)
    model.compile(optimizer=make_optimizer(recipe, lr), loss=loss, metrics=metrics)
    return lr


def datasets(data, recipe: Recipe, seed: int):
    """(training pipeline, validation batches) with the labels the recipe's loss expects."""
    import keras
    import tensorflow as tf

    one_hot = bool(recipe.label_smoothing)
    y_train = keras.utils.to_categorical(data.train.y, 10) if one_hot else data.train.y
    y_val = keras.utils.to_categorical(data.val.y, 10) if one_hot else data.val.y
    train_ds = make_dataset(data.train.x, y_train, recipe.batch_size, recipe.augment, seed)
    val_ds = tf.data.Dataset.from_tensor_slices((data.val.x, y_val)).batch(512).prefetch(tf.data.AUTOTUNE)
    return train_ds, val_ds


def fit(model, data, recipe: Recipe, seed: int = 0, verbose: int | str | None = None,
        epochs: int | None = None, seconds: float | None = None) -> tuple[dict, float]:
    """Train on data.train, watch data.val, keep the weights of the best validation epoch.

    epochs: planned epochs (default: the recipe's). seconds: a deadline for this training; after every epoch
    the epochs are re-planned from the measured pace, between the recipe's `min_epochs` and `epochs`
    (study.budget.Deadline), and the one-cycle schedule ends with them.
    Returns (history as {metric: [per epoch]}, training seconds). The test split is never touched here.
    """
    import keras

    from study.budget import Deadline

    keras.utils.set_random_seed(seed)
    steps = math.ceil(len(data.train) / recipe.batch_size)
    planned = min(epochs or recipe.epochs, recipe.epochs)
    lr = compile_model(model, recipe, steps, planned)
    train_ds, val_ds = datasets(data, recipe, seed)
    keep_best = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=recipe.epochs, restore_best_weights=True, verbose=0
    )
    callbacks, max_epochs = [keep_best], planned
    if seconds is not None:
        callbacks.append(Deadline(seconds, steps, planned, recipe.fewest_epochs, recipe.epochs, lr))
        max_epochs = recipe.epochs
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.perf_counter()
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=max_epochs, callbacks=callbacks, verbose=verbose,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
    )
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items() if not k.startswith("learning_rate")}
    log.info("%s trained %d epochs in %.1f s; best val_accuracy %.4f", model.name, len(hist["val_accuracy"]),
             seconds, max(hist["val_accuracy"]))
    return hist, seconds
