"""Fit a whole training run into a wall-clock budget, planned and cut in training steps.

Why steps: the same preset runs on CPUs of very different speed (docs/RESULTS.md). Whole epochs cannot
shrink below one, so a slow CPU would overrun; steps can, and the one-cycle schedule ends wherever the steps
end (study.schedule). A few timed steps of each model on the real input pipeline forecast its cost here; the plan
gives every model its recipe's steps where they fit, and where they do not, cuts the longest first
(water-filling: the cheap models keep their whole recipe). Each model then trains under a Deadline that
re-plans from its real pace. A model that cannot get even a tenth of an epoch is skipped (the dearest first),
so that the others train, and so is one that would get under an epoch while the others are cut (`fitting`);
only when none fits is the run refused before training, with the time it would need. A model whose plan is
under MIN_LEARNING_EPOCHS has too little to learn from scratch: train_all fine-tunes the shipped one instead
(`too_short`).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field

from study.fit import compile_model, fewest_steps, recipe_steps, steps_per_epoch
from study.augment import datasets
from study.precision import dtype_policy, fast_build

log = logging.getLogger(__name__)

SAFETY = 0.95  # plan to 95% of what is left: a shared machine's speed drifts during a long run
FIXED_SECONDS = 15.0  # per model after training, besides the test passes: saving, plots, reports
EXPORT_SECONDS_PER_PARAM = 2e-6  # ONNX export and its parity check grow with the model
TIMED_STEPS = 8  # training steps timed per model (after untimed warm-up steps)
TIMING_SHARE = 0.1  # a model's step timing stops after this share of the budget, and not before MIN_TIMING_SECONDS
MIN_TIMING_SECONDS = 20.0  # VGG16 at 6.9 s a step took 76 s of a 3-minute budget to time (issue 37)
# Under this many epochs a model trained from scratch has not learned yet, so its figures would say nothing about
# it: a budget-starved VGG16 read 10.7% of the validation digits after 0.20 epochs (Zen 4) and 9.9% after 0.12
# (Zen 1), chance being 10%, while every model given 2+ epochs read >= 97.9% (CNN 2.25 epochs 98.4%, Zen 1;
# docs/RESULTS.md). One epoch is the line between the two that no measured run contradicts.
MIN_LEARNING_EPOCHS = 1.0


class BudgetError(Exception):
    """The run cannot fit the budget; the message says what it would take and what to ask for instead."""


@dataclass(frozen=True)
class Cost:
    """What one model costs on this machine, from timed steps (all in seconds)."""

    step: float  # one training step (forward + backward + update + input pipeline) at the recipe's batch size
    steps_per_epoch: int
    val_pass: float  # one pass over the validation data
    fixed: float  # after training: the test passes, saving, export and plots

    def training_seconds(self, steps: int) -> float:
        """Training `steps` steps, with the validation pass after each (partial) epoch."""
        return steps * self.step + math.ceil(steps / self.steps_per_epoch) * self.val_pass

    def seconds(self, steps: int) -> float:
        return self.training_seconds(steps) + self.fixed

    def steps_within(self, seconds: float) -> int:
        """The most steps whose training (validation included) takes at most `seconds`."""
        lo, hi = 0, max(0, int(seconds / self.step))  # training_seconds grows with steps: bisect
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self.training_seconds(mid) <= seconds else (lo, mid - 1)
        return lo


def step_intervals(model, dataset, steps: int, warmup: int = 3, limit: float | None = None) -> list[float]:
    """Seconds of each `model.fit` step over `warmup + steps` batches of `dataset`, the warm-up ones (tracing,
    memory allocation) left out; timing stops after `limit` seconds (a model that slow on this machine needs no
    more steps to say so): then what was timed, at worst the last warm-up step, which overstates the cost."""
    import keras
    import numpy as np

    ends: list[float] = []
    start = time.perf_counter()

    def on_end(batch, logs):
        ends.append(time.perf_counter())
        if limit is not None and ends[-1] - start > limit:
            model.stop_training = True

    clock = keras.callbacks.LambdaCallback(on_train_batch_end=on_end)
    model.fit(dataset.take(warmup + steps), epochs=1, verbose=0, callbacks=[clock], shuffle=False)
    intervals = np.diff([start, *ends]).tolist()
    return intervals[warmup:] or intervals[-1:]


def step_seconds(model, dataset, steps: int, warmup: int = 3, limit: float | None = None) -> float:
    """Median seconds of one `model.fit` step over `steps` batches of `dataset`, after `warmup` untimed ones
    (step_intervals). The median: one stall of a shared machine must not set the figure."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 to time a step, got {steps}.")
    return float(statistics.median(step_intervals(model, dataset, steps, warmup, limit)))


def forward_seconds_per_image(model, x, batch: int = 512, repeats: int = 2) -> float:
    """Inference cost per image (validation and test passes), timed after one untimed pass."""
    sample = x[:batch]
    if len(sample) == 0:
        return 0.0
    model.predict_on_batch(sample)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_on_batch(sample)
        times.append(time.perf_counter() - t0)
    return min(times) / len(sample)


def measure(rebuild, recipe, data, precision: str, seed: int = 0, n_eval: int | None = None,
            time_limit: float | None = None) -> Cost:
    """Time a throw-away copy of the model on the real input pipeline (augmentation included), and its float32
    twin's inference: after training, `n_eval` images are read at full precision (test sets, the validation
    comparison with the shipped model), and the model is saved and exported. `time_limit`: the step timing stops
    there, and the inference cost is then taken as a third of a training step per image (forward, and backward
    twice) instead of being timed: a slow model must not spend a short budget on being measured."""
    with fast_build(precision):
        model = rebuild()
    train_ds, _ = datasets(data, recipe, seed)
    compile_model(model, recipe, total_steps=recipe_steps(len(data.train), recipe))
    intervals = step_intervals(model, train_ds, TIMED_STEPS, limit=time_limit)
    step = float(statistics.median(intervals))
    with dtype_policy("float32"):
        plain = rebuild()
    if len(intervals) < TIMED_STEPS:
        log.info("budget: %s timed on %d step(s) only: %.1f s a step is slow enough to say so", model.name,
                 len(intervals), step)
        val_per_image = eval_per_image = step / recipe.batch_size / 3
    else:
        val_per_image = forward_seconds_per_image(model, data.val.x)
        eval_per_image = forward_seconds_per_image(plain, data.val.x)
    n_eval = len(data.test) if n_eval is None else n_eval
    saving = FIXED_SECONDS + EXPORT_SECONDS_PER_PARAM * plain.count_params()
    return Cost(step, steps_per_epoch(len(data.train), recipe), val_per_image * len(data.val),
                eval_per_image * n_eval + saving)


def _wants(recipes: dict, costs: dict[str, Cost], n_train: int) -> dict[str, int]:
    """Each model's steps before any budget cut: its recipe's, within its own `max_seconds`."""
    wants = {}
    for name, recipe in recipes.items():
        steps = recipe_steps(n_train, recipe)
        if recipe.max_seconds is not None:
            steps = min(steps, max(1, costs[name].steps_within(recipe.max_seconds)))
        wants[name] = steps
    return wants


def plan_steps(recipes: dict, costs: dict[str, Cost], seconds_left: float, n_train: int,
               spent: float = 0.0) -> dict[str, int]:
    """Steps per model so that training, validation and evaluation fit in `seconds_left` (times SAFETY).

    Each model wants its recipe's steps (within its own cap). If they do not all fit, a common limit on
    training seconds per model is lowered until they do, so the longest is cut first and the cheap ones keep
    their whole recipe; nobody goes below a tenth of an epoch. Raises BudgetError where even that cannot fit
    (`spent`: seconds the run has already used, so the error can say what the whole run would need).
    """
    wants = _wants(recipes, costs, n_train)
    floors = {n: min(wants[n], fewest_steps(n_train, r)) for n, r in recipes.items()}
    target = seconds_left * SAFETY
    least = sum(costs[n].seconds(floors[n]) for n in recipes)
    if least > target:
        raise BudgetError(
            f"even a tenth of an epoch per model ({', '.join(recipes)}) takes ~{least / 60:.1f} min here "
            f"(forecast from timed steps), over the {max(0.0, seconds_left) / 60:.1f} min left of the budget; pass a "
            f"larger --budget-minutes (at least {math.ceil((spent + least / SAFETY) / 60 + 1)}) or fewer --models.")

    def at(level: float) -> dict[str, int]:
        return {n: max(floors[n], min(wants[n], costs[n].steps_within(level))) for n in recipes}

    def total(plan: dict[str, int]) -> float:
        return sum(costs[n].seconds(plan[n]) for n in plan)

    if total(wants) <= target:
        return dict(wants)
    lo, hi = 0.0, max(costs[n].training_seconds(wants[n]) for n in recipes)
    for _ in range(60):  # bisection on the per-model limit of training seconds
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(at(mid)) <= target else (lo, mid)
    return at(lo)


def fitting(recipes: dict, costs: dict[str, Cost], seconds_left: float, n_train: int,
            spent: float = 0.0) -> tuple[dict, dict[str, str]]:
    """(the recipes that fit, {skipped model: why}): while even a tenth of an epoch per model cannot fit, the
    model whose tenth costs most is skipped, so that a short budget on a slow machine trains the models it can;
    so is a model that would get under an epoch (a fine-tune) while the others are cut short of their recipes.
    Raises BudgetError when not even the cheapest model fits."""
    kept, skipped = dict(recipes), {}
    target = seconds_left * SAFETY

    def floor_seconds(name: str) -> float:
        wants = _wants({name: kept[name]}, costs, n_train)[name]
        return costs[name].seconds(min(wants, fewest_steps(n_train, kept[name])))

    while len(kept) > 1 and sum(floor_seconds(n) for n in kept) > target:
        dearest = max(kept, key=floor_seconds)
        skipped[dearest] = (f"a tenth of an epoch takes ~{floor_seconds(dearest) / 60:.1f} min here with its "
                            f"evaluation (forecast from timed steps), more than the "
                            f"{max(0.0, seconds_left) / 60:.1f} min left could give it beside "
                            f"{', '.join(n for n in kept if n != dearest)}")
        del kept[dearest]
    plan = plan_steps(kept, costs, seconds_left, n_train, spent)  # BudgetError when even the last cannot fit
    # a model that would only be fine-tuned (under MIN_LEARNING_EPOCHS) takes no time from models cut short of
    # their recipes: on a Zen-1-slow machine VGG16's tenth of an epoch with its evaluation took most of the budget,
    # starved the ANN and the CNN, and was then dropped anyway (docs/RESULTS.md, "on a Zen-1-slow machine")
    wants = _wants(kept, costs, n_train)
    for name in sorted(kept, key=lambda n: costs[n].seconds(plan[n]), reverse=True):
        others = [m for m in kept if m != name]
        if others and too_short(plan[name], costs[name]) and any(plan[m] < wants[m] for m in others):
            skipped[name] = (f"only {plan[name] / costs[name].steps_per_epoch:.2f} epochs would fit, a fine-tune "
                             f"from models/ of ~{costs[name].seconds(plan[name]) / 60:.1f} min with its evaluation, "
                             f"time that {', '.join(others)} learn more with")
            del kept[name]
            plan = plan_steps(kept, costs, seconds_left, n_train, spent)
    return kept, skipped


def too_short(steps: int, cost: Cost) -> bool:
    """True when `steps` are too few for a model to learn from scratch (under MIN_LEARNING_EPOCHS)."""
    return steps / cost.steps_per_epoch < MIN_LEARNING_EPOCHS


@dataclass
class RunBudget:
    """The budget of one train_all run: measures, plans, hands each model its steps and seconds, keeps the log."""

    minutes: float
    started: float  # time.perf_counter() when the run began
    n_train: int
    costs: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)  # model -> why it was not trained

    def left(self) -> float:
        return self.minutes * 60 - (time.perf_counter() - self.started)

    def measure(self, recipes: dict, rebuilders: dict, data, precision: str, seed: int, n_eval: int) -> dict:
        """Timed steps of every model, then the first plan; returns the recipes that fit (the others are in
        `skipped`, with the reason). BudgetError if not even one fits."""
        limit = max(MIN_TIMING_SECONDS, TIMING_SHARE * self.minutes * 60)
        for name, recipe in recipes.items():
            timed = {n: recipes[n] for n in self.costs}
            need = sum(self.costs[n].seconds(fewest_steps(self.n_train, recipes[n])) for n in timed)
            if timed and self.left() * SAFETY - need < limit:  # no room left even to time it
                self.skipped[name] = (f"not timed: of the {max(0.0, self.left()) / 60:.1f} min left, "
                                      f"{', '.join(timed)} need {need / 60:.1f} at the least")
                continue
            self.costs[name] = c = measure(rebuilders[name], recipe, data, precision, seed, n_eval, limit)
            log.info("budget: %s costs %.0f ms per step here, %d steps per epoch, %.0f s per validation pass, "
                     "%.0f s after training", name, c.step * 1000, c.steps_per_epoch, c.val_pass, c.fixed)
        spent = time.perf_counter() - self.started
        kept, unfit = fitting({n: r for n, r in recipes.items() if n in self.costs}, self.costs, self.left(),
                              self.n_train, spent)
        self.skipped |= unfit
        for name, why in self.skipped.items():
            log.warning("budget: %s is not trained in this run: %s", name, why)
        plan = plan_steps(kept, self.costs, self.left(), self.n_train, spent)
        self.record = {"minutes": self.minutes, "planned": {}, "spent": {},
                       "step_ms": {n: round(c.step * 1000, 1) for n, c in self.costs.items()},
                       "first_plan_steps": plan, "skipped": dict(self.skipped)}
        for name, steps in plan.items():
            c = self.costs[name]
            log.info("budget plan: %s %d steps (%.2f epochs), ~%.0f s with validation, evaluation and saving",
                     name, steps, steps / c.steps_per_epoch, c.seconds(steps))
        return kept

    def allot(self, name: str, todo: dict) -> tuple[int, float] | None:
        """(steps, seconds) for `name`, the first of `todo` (the recipes still to train), re-planned from the
        time really left: the models before it may have run faster or slower than forecast. None (and the
        reason in `skipped`) when the models before it left too little for even a tenth of its epoch."""
        left = self.left()
        try:
            kept, skipped = fitting(todo, self.costs, left, self.n_train)
        except BudgetError:
            kept, skipped = {}, {name: f"the models before it left {max(0.0, left) / 60:.1f} min, too little for "
                                       f"a tenth of its epoch"}
        if name not in kept:
            self.skipped[name] = skipped[name]
            self.record.setdefault("skipped", {})[name] = skipped[name]
            log.warning("budget: %s is not trained in this run: %s", name, skipped[name])
            return None
        todo = kept
        plan = plan_steps(todo, self.costs, left, self.n_train)
        later = sum(self.costs[n].seconds(plan[n]) for n in todo if n != name)
        seconds = max(0.0, left * SAFETY - later - self.costs[name].fixed)
        if todo[name].max_seconds is not None:
            seconds = min(seconds, todo[name].max_seconds)
        c = self.costs[name]
        self.record["planned"][name] = {"steps": plan[name], "epochs": round(plan[name] / c.steps_per_epoch, 3),
                                        "seconds": round(seconds, 1)}
        log.info("budget: %s gets %d steps (%.2f epochs) and %.0f s to train them; %.1f of %g min left",
                 name, plan[name], plan[name] / c.steps_per_epoch, seconds, left / 60, self.minutes)
        return plan[name], seconds

    def spent(self, name: str, steps: int, train_seconds: float, total_seconds: float) -> None:
        c = self.costs[name]
        self.record["spent"][name] = {"steps": steps, "epochs": round(steps / c.steps_per_epoch, 3),
                                      "train_seconds": round(train_seconds, 1), "seconds": round(total_seconds, 1)}
        planned = self.record["planned"].get(name, {})
        log.info("budget: %s planned %s steps in %s s, trained %d steps in %.0f s (%.0f s with evaluation)",
                 name, planned.get("steps"), planned.get("seconds"), steps, train_seconds, total_seconds)

    def close(self) -> None:
        wall = time.perf_counter() - self.started
        self.record["run_seconds"] = round(wall, 1)
        log.info("budget: whole run %.1f min of %g", wall / 60, self.minutes)
