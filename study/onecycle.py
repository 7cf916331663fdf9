"""One-cycle learning rate (linear warm-up to the peak, cosine decay) whose length can change during training.

Why not Keras' `CosineDecay(warmup_steps=...)`: its length is fixed when the optimizer is built. Under a time
budget (study.budget.Deadline) the number of epochs is re-planned from the measured pace after every
epoch, and the decay must end with the training, wherever that turns out to be. The warm-up keeps its first
planned length. Same curve as `CosineDecay(initial_learning_rate=peak / 25, warmup_target=peak, alpha=...)`.
"""

from __future__ import annotations

import math

import keras
from keras import ops

WARMUP_START = 1 / 25  # the warm-up starts at peak / 25 (one-cycle's customary div factor)


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
