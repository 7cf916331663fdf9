"""The training input pipeline: shuffled batches, augmented on the fly to look like drawn input.

Drawn digits are tilted, off-centre, differently sized and drawn with other stroke widths than MNIST's pens,
and the recognizer normalises them by redrawing their skeleton: so a share of the MNIST images is replaced by
the recognizer's own redrawing of them, and every batch is warped and thickened or thinned a little.
Real handwriting (study.handwriting) is already prepared the recognizer's way and is not redrawn again.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from study.recipes import Augment, Recipe

log = logging.getLogger(__name__)


def augment_batch(images, augment: Augment):
    """Distort a batch (B, 28, 28, 1) on the fly: affine warp plus a stroke-width change."""
    import keras
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
    warped = keras.ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                                              fill_value=0.0, data_format="channels_last")
    if augment.thickness:
        amount = tf.random.uniform([b, 1, 1, 1], -1.0, 1.0) * augment.thickness
        dilated = max_pool_per_image(warped, 3)
        eroded = -max_pool_per_image(-warped, 2)
        target = tf.where(amount > 0, dilated, eroded)
        warped = warped + tf.abs(amount) * (target - warped)
    return tf.clip_by_value(warped, 0.0, 1.0)


def max_pool_per_image(images, size: int):
    """3x3 / 2x2 'same' max pooling of a (B, 28, 28, 1) batch, run with the batch as channels: TensorFlow's CPU
    pooling is slow on one channel, and this is the costliest step of the augmentation."""
    import tensorflow as tf

    as_channels = tf.transpose(images, [3, 1, 2, 0])
    return tf.transpose(tf.nn.max_pool2d(as_channels, size, 1, "SAME"), [3, 1, 2, 0])


_REDRAWN: dict[tuple, np.ndarray] = {}


def redrawn(x: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The recognizer's view of the first `rows` training digits (MNIST; default all), computed once per
    process and data set; the rows after them are returned as they are (already prepared that way)."""
    from study.mnist_ink import renormalize_mnist

    rows = len(x) if rows is None else rows
    key = (x.shape, rows, float(x[:64].sum()), float(x[-64:].sum()))
    if key not in _REDRAWN:
        start = time.perf_counter()
        _REDRAWN[key] = np.concatenate([renormalize_mnist(x[:rows]), x[rows:]]) if rows < len(x) else \
            renormalize_mnist(x)
        log.info("redrew %d training digits the recognizer's way in %.1f s", rows, time.perf_counter() - start)
    return _REDRAWN[key]


def pick_redrawn(images, share: float):
    """Per image, take the redrawn copy with probability `share` (images is a batch or a (batch, redrawn) pair)."""
    import tensorflow as tf

    if not isinstance(images, tuple):
        return images
    original, redrawn_copy = images
    take = tf.random.uniform([tf.shape(original)[0], 1, 1, 1]) < share
    return tf.where(take, redrawn_copy, original)


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, augment: Augment | None, seed: int,
                 redraw_rows: int | None = None, repeat: bool = False):
    """A shuffled, batched, prefetched tf.data pipeline; augmentation runs batched, in parallel with training.
    `repeat`: endless, for training that is planned in steps rather than whole epochs."""
    import tensorflow as tf

    y = y.astype(np.float32 if y.ndim == 2 else np.int32)
    if augment is not None and augment.redraw > 0:
        ds = tf.data.Dataset.from_tensor_slices(((x, redrawn(x, redraw_rows)), y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda a, b: (augment_batch(pick_redrawn(a, augment.redraw), augment), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def labels_for(recipe: Recipe, y: np.ndarray, teacher: np.ndarray | None = None) -> np.ndarray:
    """Integer labels, or one-hot rows where the recipe's loss smooths labels; where the recipe distills, the
    finished target rows (smoothed one-hot mixed with the teacher's rows, study.distill.targets; the validation
    labels, teacher None, are the smoothed one-hot rows) for a loss that smooths nothing more."""
    if recipe.distill:
        from study.distill import targets

        return targets(y, teacher, recipe.distill if teacher is not None else 0.0, recipe.label_smoothing)
    if not recipe.label_smoothing:
        return y
    return np.eye(10, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def datasets(data, recipe: Recipe, seed: int, repeat: bool = False):
    """(training pipeline, validation batches) with the labels the recipe's loss expects; a distilling recipe's
    teacher rows (data.teacher, one per un-augmented training image) go with their images through every view."""
    import tensorflow as tf

    if recipe.distill and getattr(data, "teacher", None) is None:
        raise ValueError("the recipe distills (distill > 0) but the data carry no teacher rows (study.distill)")
    train_y = labels_for(recipe, data.train.y, getattr(data, "teacher", None))
    train_ds = make_dataset(data.train.x, train_y, recipe.batch_size, recipe.augment, seed,
                            redraw_rows=getattr(data, "redraw_rows", None), repeat=repeat)
    val_ds = tf.data.Dataset.from_tensor_slices((data.val.x, labels_for(recipe, data.val.y))).batch(512)
    return train_ds, val_ds.prefetch(tf.data.AUTOTUNE)
