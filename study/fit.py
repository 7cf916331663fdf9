"""Train one model: compile with the recipe, fit on the training split while watching validation, keep the best.

Training is counted in steps. Without a deadline a model trains its recipe's epochs; under one
(study.budget plans the steps and seconds) it trains the steps that fit, stopping mid-epoch if need be.
The test split is never touched here.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass

from study.augment import datasets
from study.recipes import Recipe
from study.schedule import Deadline, one_cycle

log = logging.getLogger(__name__)

MIN_EPOCH_FRACTION = 0.1  # the least a time budget may cut a model to: below this it learns too little to compare


def steps_per_epoch(n_train: int, recipe: Recipe) -> int:
    return max(1, math.ceil(n_train / recipe.batch_size))


def recipe_steps(n_train: int, recipe: Recipe) -> int:
    """All the steps the recipe asks for (its epochs, which may be fractional)."""
    return max(1, round(recipe.epochs * steps_per_epoch(n_train, recipe)))


def fewest_steps(n_train: int, recipe: Recipe) -> int:
    """The floor a time budget may cut this model to."""
    return min(recipe_steps(n_train, recipe), max(1, math.ceil(MIN_EPOCH_FRACTION * steps_per_epoch(n_train, recipe))))


def learning_rate(recipe: Recipe, total_steps: int, scale: float = 1.0):
    """The recipe's learning rate (times `scale`): a constant, or a one-cycle over `total_steps` whose end a
    Deadline may move."""
    if recipe.schedule == "constant":
        return recipe.learning_rate * scale
    if recipe.schedule != "onecycle":
        raise ValueError(f"unknown schedule {recipe.schedule!r}; use 'constant' or 'onecycle'.")
    return one_cycle(recipe.learning_rate * scale, total_steps, recipe.warmup_fraction)


def make_optimizer(recipe: Recipe, lr):
    import keras

    if recipe.weight_decay:
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=lr)


def compile_model(model, recipe: Recipe, total_steps: int, lr_scale: float = 1.0):
    """Compile with the recipe's optimizer and loss; returns the learning rate (constant or schedule) it follows."""
    import keras

    if recipe.distill:  # the targets come smoothed and mixed already (study.augment.labels_for)
        loss = keras.losses.CategoricalCrossentropy()
    elif recipe.label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    rows = recipe.label_smoothing or recipe.distill
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")] if rows else ["accuracy"]
    lr = learning_rate(recipe, total_steps, lr_scale)
    model.compile(optimizer=make_optimizer(recipe, lr), loss=loss, metrics=metrics)
    return lr


@dataclass(frozen=True)
class Trained:
    """What a fit did: per-epoch history (the last epoch may be partial), steps and seconds spent."""

    history: dict
    steps: int
    seconds: float
    steps_per_epoch: int

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch


def fit(model, data, recipe: Recipe, seed: int = 0, verbose: int | str | None = None, steps: int | None = None,
        seconds: float | None = None, val_seconds: float = 0.0, lr_scale: float = 1.0) -> Trained:
    """Train on data.train, watch data.val after every epoch, keep the weights of the best validation epoch.

    steps: planned training steps (default: the recipe's epochs). seconds: a deadline for training and its
    validation passes; the steps are then re-planned from the measured pace, between a tenth of an epoch and
    the recipe's epochs, and the one-cycle schedule ends with them. lr_scale: multiplies the recipe's learning
    rate (fine-tuning from a trained model wants a gentler one).
    """
    import keras

    keras.utils.set_random_seed(seed)
    per_epoch = steps_per_epoch(len(data.train), recipe)
    ceiling = recipe_steps(len(data.train), recipe)
    planned = min(steps or ceiling, ceiling)
    lr = compile_model(model, recipe, planned, lr_scale)
    train_ds, val_ds = datasets(data, recipe, seed, repeat=True)
    limit = ceiling if seconds is not None else planned
    deadline = Deadline(seconds if seconds is not None else float("inf"), per_epoch, planned,
                        fewest_steps(len(data.train), recipe), limit, lr, val_seconds)
    keep_best = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=10**6,
                                              restore_best_weights=True, verbose=0)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.perf_counter()
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=math.ceil(limit / per_epoch), steps_per_epoch=per_epoch,
        callbacks=[deadline, keep_best], verbose=verbose,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
    )
    spent = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items() if not k.startswith("learning_rate")}
    trained = Trained(hist, deadline.done, spent, per_epoch)
    log.info("%s trained %d steps (%.2f epochs) in %.1f s; best val_accuracy %.4f", model.name, trained.steps,
             trained.epochs, spent, max(hist["val_accuracy"]))
    return trained
