"""Learn one writer's hand: refit a model's classifier head on their corrections, and only keep it if it helps.

The fit: both dense layers of the head (recognizer/head.py), Adam on the cross-entropy of the writer's
corrected digits plus a rehearsal of everyone else's digits drawn from the model's per-class feature statistics
(no data set at run time). NumPy only, a fraction of a second for a few hundred corrections.

The decision, with no data set to check against:
  1. it must read the writer's corrections better than the shipped head when judged on corrections it was not
     fitted on (k-fold cross-validation over the corrections);
  2. it must not forget: on a fixed, seeded draw from the feature statistics (the guard set, a stand-in for
     everyone else's digits) it must agree with the shipped head almost everywhere and lose no class.
Refused adaptations say why in one line; the reader then keeps reading with the shipped head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .head import FeatureStats, Head

MIN_CORRECTIONS = 3  # fewer cannot be judged on held-out corrections


@dataclass(frozen=True)
class AdaptSettings:
    steps: int = 60                # Adam steps of one fit
    learning_rate: float = 2e-3    # Adam's step size
    replay_per_class: int = 24     # rehearsal features per class drawn for every step
    replay_weight: float = 1.0     # weight of the rehearsal loss against the writer's corrections
    folds: int = 3                 # cross-validation folds over the corrections (fewer when there are fewer)
    guard_per_class: int = 200     # guard-set features per class (seeded, the same for every decision)
    guard_agreement: float = 0.97  # the adapted head must give the shipped head's answer on this share of it
    guard_class_drop: float = 0.05  # and lose at most this share of any one class's guard features
    seed: int = 0


DEFAULT_SETTINGS = AdaptSettings()


@dataclass(frozen=True)
class Decision:
    """What one adaptation attempt found; `head` is the adapted head when accepted, else None."""

    accepted: bool
    reason: str                    # one line for the user
    corrections: int
    held_out_errors_before: int    # shipped head's errors on the corrections (each judged when held out)
    held_out_errors_after: int     # the adapted heads' errors on the same corrections, each fitted without it
    guard_agreement: float         # share of the guard set where the adapted head agrees with the shipped one
    seconds: float
    head: Head | None = field(default=None, repr=False)

    def summary(self) -> dict:
        return {"accepted": self.accepted, "reason": self.reason, "corrections": self.corrections,
                "held_out_errors_before": self.held_out_errors_before,
                "held_out_errors_after": self.held_out_errors_after,
                "guard_agreement": round(self.guard_agreement, 4), "seconds": round(self.seconds, 3)}


def fit(base: Head, stats: FeatureStats, features: np.ndarray, labels: np.ndarray,
        settings: AdaptSettings = DEFAULT_SETTINGS, seed: int = 0) -> Head:
    """The head refitted on (features, labels) with rehearsal; the shipped head is the starting point."""
    rng = np.random.default_rng(seed)
    params = [base.w1.copy(), base.b1.copy(), base.w2.copy(), base.b2.copy()]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    for step in range(1, settings.steps + 1):
        replay_x, replay_y = stats.sample(settings.replay_per_class, rng)
        x = np.concatenate([features, replay_x])
        y = np.concatenate([labels, replay_y])
        weight = np.concatenate([np.full(n, 1.0 / n, np.float32),
                                 np.full(len(replay_y), settings.replay_weight / len(replay_y), np.float32)])
        w1, b1, w2, b2 = params
        pre = x @ w1 + b1
        hidden = np.maximum(pre, 0.0)
        logits = hidden @ w2 + b2
        grad_logits = np.exp(logits - logits.max(1, keepdims=True))
        grad_logits /= grad_logits.sum(1, keepdims=True)
        grad_logits[np.arange(len(y)), y] -= 1.0
        grad_logits *= weight[:, None]
        grad_hidden = (grad_logits @ w2.T) * (pre > 0)
        grads = [x.T @ grad_hidden, grad_hidden.sum(0), hidden.T @ grad_logits, grad_logits.sum(0)]
        lr = settings.learning_rate * np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        for p, g, mi, vi in zip(params, grads, m, v):
            mi *= beta1
            mi += (1 - beta1) * g
            vi *= beta2
            vi += (1 - beta2) * g * g
            p -= (lr * mi / (np.sqrt(vi) + eps)).astype(np.float32)
    return Head(*params)


def _folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number of each correction: seeded, and every class spread over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    offset = 0
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return fold


def decide(base: Head, stats: FeatureStats, features: np.ndarray, labels: np.ndarray,
           settings: AdaptSettings = DEFAULT_SETTINGS) -> Decision:
    """Fit, judge on held-out corrections and on the guard set; the adapted head if it passes both."""
    t0 = time.perf_counter()
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels, np.int64)
    n = len(labels)

    def refused(reason: str, before: int = 0, after: int = 0, agreement: float = 1.0) -> Decision:
        return Decision(False, reason, n, before, after, agreement, time.perf_counter() - t0)

    if n < MIN_CORRECTIONS:
        return refused(f"needs at least {MIN_CORRECTIONS} corrections to judge, has {n}")
    k = min(settings.folds, n)
    fold = _folds(labels, k, settings.seed)
    base_pred = base.logits(features).argmax(1)
    before = int((base_pred != labels).sum())
    after = 0
    for f in range(k):
        held = fold == f
        head = fit(base, stats, features[~held], labels[~held], settings, seed=settings.seed + 1 + f)
        after += int((head.logits(features[held]).argmax(1) != labels[held]).sum())
    if after >= before:
        return refused(f"it would not read your corrections better (judged on ones it was not fitted on: "
                       f"{after} wrong, the shipped model {before})", before, after)
    head = fit(base, stats, features, labels, settings, seed=settings.seed)
    guard_x, guard_y = stats.sample(settings.guard_per_class, np.random.default_rng(settings.seed + 10_000))
    base_guard, new_guard = base.logits(guard_x).argmax(1), head.logits(guard_x).argmax(1)
    agreement = float((base_guard == new_guard).mean())
    kept = [(new_guard[guard_y == c] == base_guard[guard_y == c]).mean() for c in range(10)]
    worst = int(np.argmin(kept))
    if agreement < settings.guard_agreement or 1.0 - kept[worst] > settings.guard_class_drop:
        return refused(f"it would forget how others write (it changes {1 - agreement:.1%} of the model's answers, "
                       f"{1 - kept[worst]:.0%} of its {worst}s)", before, after, agreement)
    return Decision(True, f"learned from {n} corrections ({before} -> {after} wrong when held out)", n, before,
                    after, agreement, time.perf_counter() - t0, head)
