"""The learning-rate schedule and the deadline that moves its end: together, because one steers the other.

`OneCycle`: linear warm-up to the peak, cosine decay. Why not Keras' `CosineDecay(warmup_steps=...)`: its
length is fixed when the optimizer is built, and under a time budget the number of training *steps* is
re-planned from the measured pace while training runs; the decay must end wherever training ends.
Same curve as `CosineDecay(initial_learning_rate=peak / 25, warmup_target=peak, alpha=...)`.

`Deadline`: a training callback that ends training within its seconds, stopping mid-epoch if need be
(Keras still validates that last, partial epoch), and moves the schedule's end with every re-plan.
"""

from __future__ import annotations

import collections
import logging
import math
import time

import keras
from keras import ops

log = logging.getLogger(__name__)

WARMUP_START = 1 / 25  # the warm-up starts at peak / 25 (one-cycle's customary div factor)
REPLAN_EVERY = 10  # steps between re-plans: often enough to follow the pace, rare enough to cost nothing
PACE_SECONDS = 30.0  # the pace is judged on the last half minute: recent (a shared machine's speed drifts
#                      during a run) but long enough that the input pipeline's jitter averages out
MIN_PACE_STEPS = 30  # a pace judged on fewer steps (or a twentieth of a short run) is noise: no re-plan
REPLAN_MIN_CHANGE = 0.01  # smaller moves of the end are noise: the schedule stays where it is
REPLAN_LOG_CHANGE = 0.10  # log a re-plan when it has moved the end by 10% since the last one logged


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak: float, total_steps: int, warmup_steps: int, alpha: float = 1e-3):
        if not peak > 0 or total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need peak > 0 and 0 <= warmup_steps < total_steps; got peak={peak}, "
                             f"warmup_steps={warmup_steps}, total_steps={total_steps}.")
        self.peak, self.warmup_steps, self.alpha = float(peak), int(warmup_steps), float(alpha)
        self.total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                          name="onecycle_total_steps")

    def set_total_steps(self, total_steps: int) -> None:
        """Re-plan where the decay ends (never inside the warm-up)."""
        self.total_steps.assign(float(max(total_steps, self.warmup_steps + 1)))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        start = self.peak * WARMUP_START
        warm = start + (self.peak - start) * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)
        decayed = self.peak * ((1 - self.alpha) * 0.5 * (1 + ops.cos(math.pi * progress)) + self.alpha)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": int(self.total_steps.numpy()), "warmup_steps": self.warmup_steps,
                "alpha": self.alpha}


def one_cycle(peak: float, total_steps: int, warmup_fraction: float) -> OneCycle:
    """A OneCycle over `total_steps` whose warm-up is `warmup_fraction` of them."""
    total = max(2, int(total_steps))
    warmup = min(total - 1, max(1, int(total * warmup_fraction)))
    return OneCycle(peak, total_steps=total, warmup_steps=warmup, alpha=1e-3)


class Deadline(keras.callbacks.Callback):
    """Ends training within `seconds` (validation passes included).

    Every few steps the number of steps that still fits is re-planned from the recent pace, between `floor`
    and `ceiling` steps, keeping time for the validation passes still to come (`val_seconds` each until one
    has been measured); the one-cycle schedule is moved to end with the plan. The plan is lengthened only in
    the first half of training: later, raising the learning rate again would undo the annealing.
    """

    def __init__(self, seconds: float, steps_per_epoch: int, planned: int, floor: int, ceiling: int,
                 schedule=None, val_seconds: float = 0.0):
        super().__init__()
        if not 1 <= floor <= ceiling or not 1 <= planned <= ceiling or steps_per_epoch < 1:
            raise ValueError(f"need 1 <= floor <= ceiling, 1 <= planned <= ceiling and steps_per_epoch >= 1; got "
                             f"floor={floor}, planned={planned}, ceiling={ceiling}, steps_per_epoch={steps_per_epoch}.")
        self.seconds, self.steps_per_epoch, self.floor, self.ceiling = seconds, steps_per_epoch, floor, ceiling
        self.schedule, self.steps, self.first_plan = schedule, planned, planned
        self.val_seconds, self.val_passes, self.val_spent = float(val_seconds), 0, 0.0
        self.done = 0
        self.every = max(1, min(REPLAN_EVERY, planned // 10))  # short runs re-plan more often

    # -- Keras hooks
    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.done, self.val_passes, self.val_spent = 0, 0, 0.0
        self._recent = collections.deque([(self.start, 0)])
        self._logged = self.steps
        self._plan(self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done == 1:  # the first step traces the graph: its time says nothing about the pace
            now = time.perf_counter()
            self._recent.clear()
            self._recent.append((now, 1))
            if now - self.start >= self.seconds:  # out of time already: the floor, no more
                self._plan(self.floor)
        elif self.done % self.every == 0:
            self.replan()
        if self.done >= self.steps:
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        spent = time.perf_counter() - self._test_start
        self.val_passes += 1
        self.val_spent += spent
        self.val_seconds = self.val_spent / self.val_passes
        # the pace of training steps must not include the validation pass: shift the earlier samples over it
        self._recent = collections.deque((t + spent, d) for t, d in self._recent)

    # -- planning
    def passes_left(self, steps: int) -> int:
        """Validation passes still to come if training ends after `steps`: one per epoch boundary, one at the end."""
        return max(0, math.ceil(steps / self.steps_per_epoch) - self.val_passes)

    def replan(self) -> None:
        if math.isinf(self.seconds):
            return  # no deadline: the plan stands
        now = time.perf_counter()
        self._recent.append((now, self.done))
        while len(self._recent) > 2 and now - self._recent[1][0] >= PACE_SECONDS:
            self._recent.popleft()
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        left = self.seconds - (now - self.start)
        if left <= 0:  # out of time: end here (or at the floor)
            self._plan(max(self.done, self.floor))
            return
        if s1 - s0 < max(2, min(MIN_PACE_STEPS, self.first_plan // 20)) or t1 <= t0:
            return
        pace = (t1 - t0) / (s1 - s0)
        # the most steps (up to the ceiling) whose time plus the validation passes they bring fits in what is left
        def fits_in(steps: int) -> bool:
            return (steps - self.done) * pace + self.passes_left(steps) * self.val_seconds <= left

        lo, hi = self.done, self.ceiling
        while lo < hi:  # bisection: the cost grows with the steps
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits_in(mid) else (lo, mid - 1)
        fits = lo
        steps = max(self.done, self.floor, min(self.ceiling, fits))
        if steps > self.steps and self.done > self.steps / 2:
            steps = self.steps
        must = steps <= self.done or self.steps <= self.done  # the end is here: no noise threshold
        if steps != self.steps and (must or abs(steps - self.steps) >= REPLAN_MIN_CHANGE * self.steps):
            if abs(steps - self._logged) >= REPLAN_LOG_CHANGE * self._logged:
                log.info("deadline: %d steps (%.2f epochs) instead of %d fit in %.0f s (%.0f ms per step lately)",
                         steps, steps / self.steps_per_epoch, self._logged, self.seconds, pace * 1000)
                self._logged = steps
            self._plan(steps)

    def _plan(self, steps: int) -> None:
        self.steps = int(steps)
        if hasattr(self.schedule, "set_total_steps"):
            self.schedule.set_total_steps(self.steps)
