"""Fit a whole training run into a wall-clock budget: time each model on this machine, then plan its epochs.

Why: the same preset runs on CPUs whose speed differs by 2x (AVX-512 with a full or a half-width datapath,
AMX or not). A fixed epoch count overruns the budget on the slow ones. So the `best` preset gives each model
its epochs as a ceiling and a floor (`Recipe.epochs`, `Recipe.min_epochs`), a few timed training steps
measure what an epoch costs here, and `plan_epochs` shortens the most expensive models until the run fits.
Timed steps are only a forecast (a shared machine's speed drifts by 10-15%), so each model then trains under
a `Deadline` that re-plans its epochs from the real pace after every epoch.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass

import keras

log = logging.getLogger(__name__)

SAFETY = 0.95  # plan to 95% of what is left: a shared machine's speed drifts during a long run
EVAL_FACTOR = 0.5  # a float32 forward pass costs at most ~half a training step per image (measured ~0.25-0.4)
FIXED_SECONDS = 10.0  # per model: saving, plots, reports


@dataclass(frozen=True)
class Cost:
    """What one model costs on this machine, from timed training steps."""

    seconds_per_image: float  # one training step's time per image (forward + backward + update + input pipeline)
    n_train: int
    n_val: int
    n_test: int

    @property
    def epoch_seconds(self) -> float:
        # an epoch: every training image once, then a forward pass over the validation split
        return self.seconds_per_image * (self.n_train + EVAL_FACTOR * self.n_val)

    @property
    def fixed_seconds(self) -> float:
        # after training: the test split once, saving and plotting
        return self.seconds_per_image * EVAL_FACTOR * self.n_test + FIXED_SECONDS


def step_seconds(model, dataset, steps: int, warmup: int = 3) -> float:
    """Median seconds of one `model.fit` step over `steps` batches of `dataset`, after `warmup` untimed ones
    (tracing, memory allocation). The median: one stall of a shared machine must not set the figure."""
    import numpy as np

    if steps < 2:
        raise ValueError(f"steps must be >= 2 to time a step, got {steps}.")
    ends: list[float] = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(dataset.take(warmup + steps), epochs=1, verbose=0, callbacks=[clock], shuffle=False)
    return float(statistics.median(np.diff(ends[warmup - 1 if warmup else 0:])))


def measure(rebuild, recipe, data, precision: str, seed: int = 0, steps: int = 8) -> Cost:
    """Time a throw-away copy of the model on the real input pipeline (augmentation included)."""
    from study import training

    with training.fast_build(precision):
        model = rebuild()
    train_ds, _ = training.datasets(data, recipe, seed)
    training.compile_model(model, recipe, steps_per_epoch=max(1, math.ceil(len(data.train) / recipe.batch_size)))
    seconds = step_seconds(model, train_ds, steps)
    return Cost(seconds / recipe.batch_size, len(data.train), len(data.val), len(data.test))


def plan_epochs(recipes: dict, costs: dict[str, Cost], seconds_left: float) -> tuple[dict[str, int], float]:
    """Epochs per model so that training, validation and evaluation fit in `seconds_left` (times SAFETY).

    Each model starts at its recipe's epochs, cut to its `max_seconds` if it has one; then, while the plan is
    too long, the model whose training costs most loses an epoch, never going below its `min_epochs` (None: not
    shortened). Returns (epochs per model, planned seconds); where even the floors do not fit, the plan is the
    floors and the caller warns.
    """
    plan = {}
    for name, recipe in recipes.items():
        epochs = recipe.epochs
        if recipe.max_seconds is not None:
            epochs = min(epochs, max(1, int(recipe.max_seconds // costs[name].epoch_seconds)))
        plan[name] = epochs

    def seconds(p):
        return sum(p[n] * costs[n].epoch_seconds + costs[n].fixed_seconds for n in p)

    target = seconds_left * SAFETY
    while seconds(plan) > target:
        shrinkable = [n for n in plan if plan[n] > recipes[n].fewest_epochs]
        if not shrinkable:
            break
        longest = max(shrinkable, key=lambda n: plan[n] * costs[n].epoch_seconds)
        plan[longest] -= 1
    return plan, seconds(plan)


def allot(name: str, recipes: dict, costs: dict[str, Cost], seconds_left: float) -> tuple[int, float]:
    """(planned epochs, seconds) for training `name`, one of `recipes` (the models still to train), leaving
    the others their planned share of `seconds_left`. Re-run before each model, so that what the models
    before it really took is accounted for."""
    plan, _ = plan_epochs(recipes, costs, seconds_left)
    later = sum(plan[n] * costs[n].epoch_seconds + costs[n].fixed_seconds for n in plan if n != name)
    seconds = seconds_left * SAFETY - later - costs[name].fixed_seconds
    if recipes[name].max_seconds is not None:
        seconds = min(seconds, recipes[name].max_seconds)
    return plan[name], max(seconds, 0.0)


class Deadline(keras.callbacks.Callback):
    """Ends training within `seconds`: after every epoch the number of epochs is re-planned from the measured
    pace, between `floor` and `ceiling`, and the one-cycle schedule (study.onecycle) is moved to end with
    them. It lengthens the plan only in the first half of training: later, raising the learning rate again
    would undo the annealing."""

    def __init__(self, seconds: float, steps_per_epoch: int, planned: int, floor: int, ceiling: int,
                 schedule=None):
        super().__init__()
        if not 1 <= floor <= ceiling or not 1 <= planned <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling and 1 <= planned <= ceiling; got floor={floor}, "
                             f"planned={planned}, ceiling={ceiling}.")
        self.seconds, self.steps, self.floor, self.ceiling = seconds, steps_per_epoch, floor, ceiling
        self.schedule, self.epochs = schedule, planned

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self._plan(self.epochs)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        elapsed = time.perf_counter() - self.start
        pace = elapsed / done
        fits = done + int(max(0.0, self.seconds - elapsed) // pace)
        epochs = max(done, min(self.ceiling, max(self.floor, fits)))
        if epochs > self.epochs and done > self.epochs / 2:
            epochs = self.epochs
        if epochs != self.epochs:
            log.info("deadline: %d epochs instead of %d fit in %.0f s (%.1f s per epoch so far)",
                     epochs, self.epochs, self.seconds, pace)
            self._plan(epochs)
        if done >= self.epochs:
            self.model.stop_training = True

    def _plan(self, epochs: int) -> None:
        self.epochs = epochs
        if hasattr(self.schedule, "set_total_steps"):
            self.schedule.set_total_steps(epochs * self.steps)
