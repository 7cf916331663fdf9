"""Learn one writer's hand: refit a model's classifier head on their corrections, and only keep it if it helps.

The fit: both dense layers of the head (recognizer/head.py), Adam on the cross-entropy of the writer's
corrected digits plus a rehearsal of everyone else's digits drawn from the model's per-class feature statistics
(no data set at run time). NumPy only, about a second for a few hundred corrections: the held-out fits below
work in the span of the ways of writing and their corrections, and the final fit runs beside them on a second
thread (issue 37; the times in docs/RESULTS.md "Learning in under 3 seconds").

The decision, with no data set to check against:
  1. it must read the writer's corrections better than the shipped head when judged on corrections it was not
     fitted on (k-fold cross-validation over the corrections);
  2. it must not forget: on a fixed, seeded draw from the feature statistics between pairs of classes (the
     guard set, a stand-in for everyone else's ambiguous digits) it must agree with the shipped head almost
     everywhere, and every class's typical draw must be read almost as surely as before (a set that
     relabels a whole class passes the first check and fails this one).
A change above the floor but short of the guard's target is scaled back towards the shipped head (bisection).
Before fitting, a lone correction that both the shipped head and the held-out fits contradict is left out (a
mistyped label); next to each misread correction the rehearsal adds the shipped head's own digits of the class
it was read as; the accepted head is scaled to sound no surer than its held-out record (issue 37).
Refused adaptations say why in one line; the reader keeps reading as before, unless the adaptation in use
misread the newest corrections more than the shipped head would have (set_aside): then the shipped head reads.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .head import FeatureStats, Head, softmax

MIN_CORRECTIONS = 3  # fewer cannot be judged on held-out corrections
# The fit's matrices are small (hundreds x 2048): OpenBLAS's threads gain little on them and, on busy cores, fight
# the other work for them: 60 corrections (CNN) took 16 s with NumPy's default threads and 4.2 s with one on two
# busy cores (docs/RESULTS.md "Adaptation and BLAS threads").
BLAS_THREADS: int | None = 1  # None: NumPy's default


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit NumPy's BLAS to `n` threads inside the block (process-wide, restored after; None: no limit). Needs
    threadpoolctl (requirements.txt); without it NumPy's default stays (OPENBLAS_NUM_THREADS=1 in the
    environment does the same for a whole program)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    if n is None:
        yield
        return
    with threadpool_limits(n, user_api="blas"):
        yield


_DRAWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def drawn(base: Head, stats: FeatureStats, key: tuple, make: Callable[[], object]):
    """`make()`, made once per (shipped head, statistics, key) and kept while the statistics live.

    Why: every decision makes the same seeded draws (rehearsal, guard set, typical digits); drawing their
    millions of normals was a tenth of a decision (docs/RESULTS.md "The app learning, end to end")."""
    cache = _DRAWS.setdefault(stats, {})
    hit = cache.get(key)
    if hit is None or hit[0] is not base:
        hit = cache[key] = (base, make())
    return hit[1]


@dataclass(frozen=True)
class AdaptSettings:
    steps: int = 120               # Adam steps of one fit
    learning_rate: float = 3e-3    # Adam's step size
    rank: int = 32                 # the first layer changes by a rank-`rank` update (w1 + a @ b), the rest fully
    subspace: bool = True          # held-out fits change the first layer only in the span of the ways of writing
                                   # and their corrections (a quarter of the time; the final fit uses all of it)
    final_beside: bool = True      # the final fit starts on a second thread while the held-out fits run (two
                                   # cores: the wait is the longer of the two, not their sum)
    replay_per_class: int = 40     # rehearsal features per class (one seeded draw per decision)
    replay_blocks: int = 1         # the rehearsal split into blocks read one per fit step in turn (a larger draw at
                                   # a smaller one's cost per step; 80 per class in 2 blocks: not adopted, RESULTS)
    replay_weight: float = 1.0     # weight of the rehearsal loss against the writer's corrections
    replay_between: float = 0.5    # share of rehearsal features drawn between two classes (where boundaries lie)
    folds: int = 3                 # cross-validation folds over the corrections (fewer when there are fewer)
    guard_per_class: int = 200     # guard-set features per class (seeded, the same for every decision)
    guard_agreement: float = 0.94  # the adapted head must give the shipped head's answer on this share of it
    guard_target: float = 0.965    # above the floor, short of this: the change is scaled back until it is met
    typical_margin: float = 0.9    # every digit's typical form must keep this share of its margin (median per class)
    scale_steps: int = 6           # bisection steps that find how much of the change to keep
    scale_floor: float = 0.25      # never keep less than this share of an accepted change
    contradiction: float = 0.02    # a lone correction both the shipped head and the held-out fits give its label
                                   # less than this probability is set aside (a mistyped label, not a style)
    sharpness_floor: float = 0.25  # the adapted head's last layer is scaled by [this, 1] to match its held-out record
    neighbours: int = 60           # rehearsal draws per misread correction from the nearest way of writing what
    neighbours_max: int = 180      # was read, and in all (a fixed cost however many corrections)
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
    set_aside: bool = False        # refused, and the adaptation that was in use gave way to the shipped head
    kept: float = 1.0              # share of the fitted change kept (scaled back to spare others' digits)
    ignored: tuple[int, ...] = ()  # positions of corrections set aside as contradicted (mistyped labels)

    def summary(self) -> dict:
        return {"accepted": self.accepted, "reason": self.reason, "corrections": self.corrections,
                "held_out_errors_before": self.held_out_errors_before,
                "held_out_errors_after": self.held_out_errors_after,
                "guard_agreement": round(self.guard_agreement, 4), "seconds": round(self.seconds, 3),
                "set_aside": self.set_aside, "kept": round(self.kept, 3), "ignored": len(self.ignored)}


@dataclass(frozen=True)
class Rehearsal:
    """Everyone else's digits as the head sees them: features drawn from the per-class statistics, and the
    shipped head's own probabilities on them as targets (so rehearsal pulls towards what it did, not towards
    labels it may never have matched). Drawn once per decision and shared by its fits."""

    features: np.ndarray
    targets: np.ndarray
    pre: np.ndarray  # features @ w1: the fixed part of the first layer, computed once
    means: np.ndarray  # the feature statistics' component means (classes x components, d): the ways of writing

    @classmethod
    def draw(cls, base: Head, stats: FeatureStats, per_class: int, seed: int, between: float = 0.0) -> Rehearsal:
        """`per_class` features per class; a share `between` of them mixed with another class's draw (a point
        between two classes, where the shipped head's boundaries are and an adaptation could move them)."""
        rng = np.random.default_rng(seed)
        x, _ = stats.sample(per_class, rng)
        n_mix = int(round(between * len(x)))
        if n_mix:
            other, _ = stats.sample(per_class, rng)
            other = other[rng.permutation(len(other))[:n_mix]]
            t = rng.uniform(0.2, 0.8, (n_mix, 1)).astype(np.float32)
            x[:n_mix] = (1 - t) * x[:n_mix] + t * other
        return cls(x, base.probabilities(x), x @ base.w1, stats.mean.reshape(-1, stats.dim))

    def with_neighbours(self, base: Head, stats: FeatureStats, features: np.ndarray, per_correction: int,
                        seed: int) -> Rehearsal:
        """This rehearsal plus, for each correction the shipped head misreads, `per_correction` draws from the
        way of writing the misread class that lies nearest to it (its closest mixture component).

        Why: a European 1 read as 7 is corrected next to everyone's 7 with a rising bar; rehearsing those 7s
        where the correction sits makes the fit find what tells them apart, instead of moving the whole
        boundary (three such corrections made an ordinary rising 7 read "1 99%", issue 37)."""
        if per_correction <= 0 or not len(features):
            return self
        read = base.logits(features).argmax(1)
        rng = np.random.default_rng(seed)
        extra = []
        for x, r in zip(features, read):
            means, stds = stats.mean[r], stats.std[r]
            comp = int(np.argmin((((x - means) / np.maximum(stds, 1e-3)) ** 2).sum(1)))
            noise = rng.standard_normal((per_correction, stats.dim), dtype=np.float32)
            extra.append(np.maximum(means[comp] + stds[comp] * noise, 0.0))
        x = np.concatenate(extra)
        return Rehearsal(np.concatenate([self.features, x]), np.concatenate([self.targets, base.probabilities(x)]),
                         np.concatenate([self.pre, x @ base.w1]), self.means)


def update_basis(means: np.ndarray, features: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis (d, k) of the span of the ways of writing (the statistics' component means) and the
    corrections' own features; None where that span is nearly the whole feature space.

    Why: a held-out fit only has to show whether fitting the corrections helps, and the products over all d
    features were 70% of a fit (docs/RESULTS.md "The app learning, end to end"); in a span of k = 80 +
    corrections dimensions they cost k/d of that. Gram-Schmidt order (a QR): a basis of the same span from the
    rows' principal directions learned worse (docs/RESULTS.md "Learning in under 3 seconds")."""
    rows = np.concatenate([means, features]).astype(np.float32)
    if len(rows) * 2 > rows.shape[1]:
        return None
    basis, _ = np.linalg.qr(rows.T)
    return basis


def fit(base: Head, rehearsal: Rehearsal, features: np.ndarray, labels: np.ndarray,
        settings: AdaptSettings = DEFAULT_SETTINGS, seed: int = 0, subspace: bool = False) -> Head:
    """The head refitted on (features, labels) with rehearsal, starting from the shipped head.

    Why a low-rank update of the first layer: it has d x h weights (2048 x 120 for the CNN); a rank-32 change
    needs a fifth of the arithmetic per step, and a few hundred corrections cannot ask for more. Its input side
    is `basis @ c` when `subspace` (update_basis of the corrections it is fitted on; the held-out fits): the
    fit sees the features projected on that basis. Each held-out fit has its own basis (with the held-out
    corrections' directions in a shared one, the check grew optimistic: a whole class taught as another passed
    it). The head that will read stays in all d dimensions: restricted to that span its change went unseen by
    the guards' draws, which lie near the means (a whole class taught as another passed them; RESULTS)."""
    rng = np.random.default_rng(seed)
    features = np.asarray(features, np.float32)
    n = len(labels)
    x = np.concatenate([features, rehearsal.features])
    basis = update_basis(rehearsal.means, features) if subspace else None
    if basis is not None:
        x = x @ basis
    fixed = np.concatenate([features @ base.w1, rehearsal.pre])
    targets = np.concatenate([np.eye(10, dtype=np.float32)[np.asarray(labels, np.int64)], rehearsal.targets])
    d = x.shape[1]
    blocks = _blocks(x, fixed, targets, n, settings, rng)
    h = base.w1.shape[1]
    a0 = (rng.standard_normal((d, settings.rank), dtype=np.float32) / np.float32(np.sqrt(d)))
    start = [a0, np.zeros((settings.rank, h), np.float32), base.b1, base.w2, base.b2]
    # every parameter and gradient is a view of one flat array, so that Adam is a few operations per step on it
    # (on arrays this small, NumPy's per-call cost is a good part of a step)
    flat = np.concatenate([p.ravel() for p in start]).astype(np.float32)
    grad, mom, vel, tmp = (np.zeros_like(flat) for _ in range(4))
    a, b, b1, w2, b2 = _views(flat, start)
    g_a, g_b, g_b1, g_w2, g_b2 = _views(grad, start)
    beta1, beta2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
    for step in range(1, settings.steps + 1):
        x, fixed, targets, weight = blocks[(step - 1) % len(blocks)]
        xa = x @ a
        pre = xa @ b
        pre += fixed
        pre += b1
        hidden = np.maximum(pre, 0.0)
        logits = hidden @ w2
        logits += b2
        logits -= logits.max(1, keepdims=True)
        g = np.exp(logits)
        g /= g.sum(1, keepdims=True)
        g -= targets
        g *= weight
        g_pre = g @ w2.T
        g_pre *= pre > 0
        g_xa = g_pre @ b.T
        np.matmul(x.T, g_xa, out=g_a)
        np.matmul(xa.T, g_pre, out=g_b)
        g_pre.sum(0, out=g_b1)
        np.matmul(hidden.T, g, out=g_w2)
        g.sum(0, out=g_b2)
        # float32 like the arrays: a NumPy float64 step size would promote every update to float64
        lr = np.float32(settings.learning_rate * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step))
        mom *= beta1
        mom += (1 - beta1) * grad
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - beta2
        vel *= beta2
        vel += tmp
        np.sqrt(vel, out=tmp)
        tmp += eps
        np.divide(mom, tmp, out=tmp)
        tmp *= lr
        flat -= tmp
    a, b, b1, w2, b2 = (v.copy() for v in (a, b, b1, w2, b2))
    if basis is not None:
        a = basis @ a
    return Head(base.w1 + a @ b, b1, w2, b2)


def _blocks(x: np.ndarray, fixed: np.ndarray, targets: np.ndarray, n: int, settings: AdaptSettings,
            rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(x, fixed, targets, weight) of each fit step's batch: all `n` corrections and one block of the rehearsal
    rows after them, the blocks a seeded partition, their rows in order (one block: every row, as drawn).

    Why: doubling the rehearsal draw read the validation writers' other digits better (k = 5: 72 -> 62 errors)
    and doubled the fit's time; in blocks each step costs about the smaller draw's (docs/RESULTS.md)."""
    m = len(targets) - n
    k = max(1, min(settings.replay_blocks, m))

    def weight(share: int) -> np.ndarray:
        return np.concatenate([np.full(n, 1.0 / max(n, 1), np.float32),
                               np.full(share, settings.replay_weight / max(share, 1), np.float32)])[:, None]

    if k == 1:
        return [(x, fixed, targets, weight(m))]
    order = rng.permutation(m)
    out = []
    for j in range(k):
        rows = np.concatenate([np.arange(n), n + np.sort(order[j::k])])
        out.append((x[rows], fixed[rows], targets[rows], weight(len(rows) - n)))
    return out


def _views(flat: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Views of consecutive parts of `flat` shaped like each array of `like`."""
    out, offset = [], 0
    for arr in like:
        out.append(flat[offset:offset + arr.size].reshape(arr.shape))
        offset += arr.size
    return out


def blend(base: Head, adapted: Head, scale: float) -> Head:
    """The shipped head moved `scale` of the way towards the adapted one (every weight)."""
    return Head(*(b + np.float32(scale) * (a - b) for b, a in zip(
        (base.w1, base.b1, base.w2, base.b2), (adapted.w1, adapted.b1, adapted.w2, adapted.b2))))


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


def set_aside(in_use: Head, base: Head, features: np.ndarray, labels: np.ndarray) -> str | None:
    """Why an adaptation in use should give way to the shipped head, or None: on the corrections made since it
    was fitted (each one a digit it read), it misread more than the shipped head would have.

    Why: a refused attempt otherwise leaves the older adaptation reading, and in a session every later
    correction is one of its misreadings; those it got wrong where the shipped model was right are the plainest
    evidence it makes things worse (bench_adapt's session: one writer 7 -> 10 errors without this rule)."""
    if not len(labels):
        return None
    mine = int((in_use.logits(features).argmax(1) != labels).sum())
    shipped = int((base.logits(features).argmax(1) != labels).sum())
    if mine <= shipped:
        return None
    return (f"the adaptation in use is set aside (it misread {mine} of your {len(labels)} newest corrections, "
            f"the shipped model {shipped})")


def typical_margins(head: Head, base: Head, stats: FeatureStats, settings: AdaptSettings) -> np.ndarray:
    """Per class, the adapted head's median margin (own logit minus the best other) on that class's own draws,
    as a share of the shipped head's: 1 = read as surely as before.

    Why: a set that relabels every digit of a class (every 1 taught as 7) moves boundaries between classes
    little on average but takes a whole class's typical form away; the between-class agreement alone let
    such sets through (docs/RESULTS.md, Decision notes)."""

    x, y, shipped = _typical_draw(base, stats, settings)
    return _median_margins(head, x, y) / np.maximum(shipped, 1e-6)


def _median_margins(head: Head, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    logits = head.logits(x)
    rows = np.arange(len(y))
    own = logits[rows, y]
    logits[rows, y] = -np.inf
    margin = own - logits.max(1)
    return np.array([np.median(margin[y == c]) for c in range(10)])


def _typical_draw(base: Head, stats: FeatureStats, settings: AdaptSettings):
    """Each class's own draws, their classes and the shipped head's median margins on them (seeded, cached)."""

    def make():
        x, y = stats.sample(settings.guard_per_class, np.random.default_rng(settings.seed + 20_000))
        return x, y, _median_margins(base, x, y)

    return drawn(base, stats, ("typical", settings.guard_per_class, settings.seed), make)


def _rehearsal_draw(base: Head, stats: FeatureStats, settings: AdaptSettings) -> Rehearsal:
    return drawn(base, stats, ("rehearsal", settings.replay_per_class, settings.seed, settings.replay_between),
                 lambda: Rehearsal.draw(base, stats, settings.replay_per_class, settings.seed,
                                        settings.replay_between))


def _guard_draw(base: Head, stats: FeatureStats, settings: AdaptSettings) -> Rehearsal:
    """The guard set: features between two classes, where an adaptation moves the shipped head's boundaries (its
    agreement there tracked the generic validation drop across writers, docs/RESULTS.md Decision notes; class
    centres alone never changed their answer)."""
    return drawn(base, stats, ("guard", settings.guard_per_class, settings.seed),
                 lambda: Rehearsal.draw(base, stats, settings.guard_per_class, settings.seed + 10_000, between=1.0))


def prepare(base: Head, stats: FeatureStats, settings: AdaptSettings = DEFAULT_SETTINGS) -> None:
    """Make the seeded draws every decision uses now (a quarter of a second), so that the first decision that
    fits does not wait for them: every decision calls this first, even one refused for too few corrections."""
    _rehearsal_draw(base, stats, settings)
    _guard_draw(base, stats, settings)
    _typical_draw(base, stats, settings)


def guard_agreement(guard: Rehearsal, base: Head, head: Head) -> Callable[[float], float]:
    """scale -> the share of the guard set where blend(base, head, scale) gives the shipped head's answer.

    The guard's product with the first layer's change is made once (x @ (w1 + s d) = pre + s (x @ d)), so the
    bisection over `scale` costs small products only."""
    answers = guard.targets.argmax(1)
    moved = guard.features @ (head.w1 - base.w1)

    def at(scale: float) -> float:
        s = np.float32(scale)
        hidden = np.maximum(guard.pre + s * moved + (base.b1 + s * (head.b1 - base.b1)), 0.0)
        logits = hidden @ (base.w2 + s * (head.w2 - base.w2)) + (base.b2 + s * (head.b2 - base.b2))
        return float((logits.argmax(1) == answers).mean())

    return at


def _cross_validate(base: Head, rehearsal: Rehearsal, features: np.ndarray, labels: np.ndarray,
                    settings: AdaptSettings) -> np.ndarray:
    """Each correction's logits from the fit that did not see it (k folds)."""
    k = min(settings.folds, len(labels))
    fold = _folds(labels, k, settings.seed)
    held_logits = np.zeros((len(labels), 10), np.float32)
    for f in range(k):
        held = fold == f
        head = fit(base, rehearsal, features[~held], labels[~held], settings, settings.seed + 1 + f,
                   subspace=settings.subspace)
        held_logits[held] = head.logits(features[held])
    return held_logits


def contradicted(base_probs: np.ndarray, held_probs: np.ndarray, labels: np.ndarray, limit: float) -> np.ndarray:
    """Which corrections look mistyped: the shipped head and the fit on the other corrections both give the label
    less than `limit`, and no other correction pairs the same reading with the same label.

    Why: one 7 marked 1 among right corrections was fitted like any other and turned textbook 7s into 1s; a
    writer's real convention (a European 1 read as 7) shows up more than once, and a second one like it is
    enough to be learned."""
    rows = np.arange(len(labels))
    read = base_probs.argmax(1)
    pair_count = {}
    for r, y in zip(read.tolist(), labels.tolist()):
        pair_count[(r, y)] = pair_count.get((r, y), 0) + 1
    alone = np.array([pair_count[(r, y)] == 1 for r, y in zip(read.tolist(), labels.tolist())], bool)
    return alone & (base_probs[rows, labels] < limit) & (held_probs[rows, labels] < limit)


def sharpness(held_logits: np.ndarray, labels: np.ndarray, temperature: float, floor: float) -> float:
    """The factor in [floor, 1] on the adapted head's logits that best predicts the held-out corrections once the
    shipped temperature is applied (least cross-entropy; a grid, NumPy only).

    Why: the fit learns the corrections as certainties, so the shipped temperature alone let an adapted head say
    100% on digits it misread; its record on corrections it did not see says how sure it may sound."""
    factors = np.linspace(floor, 1.0, 31)
    rows = np.arange(len(labels))
    best, best_nll = 1.0, np.inf
    for s in factors:
        z = held_logits.astype(np.float64) * s / temperature
        z -= z.max(1, keepdims=True)
        nll = float(-(z[rows, labels] - np.log(np.exp(z).sum(1))).sum())
        if nll < best_nll - 1e-9:
            best, best_nll = float(s), nll
    return best


def decide(base: Head, stats: FeatureStats, features: np.ndarray, labels: np.ndarray,
           settings: AdaptSettings = DEFAULT_SETTINGS, temperature: float = 1.0) -> Decision:
    """Fit, judge on held-out corrections and on the guard set; the adapted head if it passes both.

    "Reads the corrections better" when judged on corrections each fit did not see: fewer of them wrong, or as
    many wrong and a lower cross-entropy on them (e.g. a writer whose few corrections the shipped model
    already reads right, unsurely). `temperature` is the shipped model's (recognizer/calibration.py), applied to
    the adapted head when it reads: the head's last layer is scaled so that it is calibrated with it. NumPy's
    BLAS runs on BLAS_THREADS threads meanwhile."""
    with blas_threads(BLAS_THREADS):
        return _decide(base, stats, np.asarray(features, np.float32), np.asarray(labels, np.int64), settings,
                       temperature)


def _decide(base: Head, stats: FeatureStats, features: np.ndarray, labels: np.ndarray, settings: AdaptSettings,
            temperature: float) -> Decision:
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="adapt-fit") if settings.final_beside else None
    try:
        return _decide_on(pool, base, stats, features, labels, settings, temperature)
    finally:
        if pool is not None:
            pool.shutdown(wait=False)  # a final fit that a refusal made needless is left to finish, unread


def _final_fit(pool: ThreadPoolExecutor | None, base: Head, rehearsal: Rehearsal, features: np.ndarray,
               labels: np.ndarray, settings: AdaptSettings) -> Callable[[], Head]:
    """The fit on every correction, to be read by calling what this returns: started on the pool's thread now,
    or (no pool) made when first read, so that a refusal before it needs none."""
    if pool is not None:
        return pool.submit(fit, base, rehearsal, features, labels, settings, settings.seed).result
    return lambda: fit(base, rehearsal, features, labels, settings, seed=settings.seed)


def _decide_on(pool: ThreadPoolExecutor | None, base: Head, stats: FeatureStats, features: np.ndarray,
               labels: np.ndarray, settings: AdaptSettings, temperature: float) -> Decision:
    t0 = time.perf_counter()
    n = len(labels)

    def refused(reason: str, before: int = 0, after: int = 0, agreement: float = 1.0,
                ignored: tuple[int, ...] = ()) -> Decision:
        return Decision(False, reason, n, before, after, agreement, time.perf_counter() - t0, ignored=ignored)

    prepare(base, stats, settings)
    if n < MIN_CORRECTIONS:
        return refused(f"needs at least {MIN_CORRECTIONS} corrections to judge, has {n}")
    rehearsal = _rehearsal_draw(base, stats, settings)
    misread = base.logits(features).argmax(1) != labels
    per_correction = min(settings.neighbours, settings.neighbours_max // max(int(misread.sum()), 1))
    rehearsal = rehearsal.with_neighbours(base, stats, features[misread], per_correction, settings.seed + 30_000)
    base_probs = base.probabilities(features)
    final = _final_fit(pool, base, rehearsal, features, labels, settings)
    held_logits = _cross_validate(base, rehearsal, features, labels, settings)
    odd = contradicted(base_probs, softmax(held_logits), labels, settings.contradiction)
    ignored = tuple(int(i) for i in np.flatnonzero(odd))
    set_aside_text = ""
    if ignored:
        first = ignored[0]
        set_aside_text = (f"; set aside {len(ignored)} correction{'s' if len(ignored) > 1 else ''} nothing else "
                          f"supports (a {int(base_probs[first].argmax())} marked {int(labels[first])}: if it was "
                          "right, add another like it)")
        features, labels, base_probs = features[~odd], labels[~odd], base_probs[~odd]
        if len(labels) < MIN_CORRECTIONS:
            return refused(f"needs at least {MIN_CORRECTIONS} corrections to judge{set_aside_text}",
                           ignored=ignored)
        final = _final_fit(pool, base, rehearsal, features, labels, settings)
        held_logits = _cross_validate(base, rehearsal, features, labels, settings)
    m = len(labels)
    rows = np.arange(m)
    before = int((base_probs.argmax(1) != labels).sum())
    after = int((held_logits.argmax(1) != labels).sum())
    nll_before = float(-np.log(np.maximum(base_probs[rows, labels], 1e-12)).sum())
    nll_after = float(-np.log(np.maximum(softmax(held_logits)[rows, labels], 1e-12)).sum())
    if after > before or (after == before and nll_after >= nll_before):
        return refused(f"it would not read your corrections better (judged on ones it was not fitted on: "
                       f"{after} wrong, the shipped model {before}){set_aside_text}", before, after,
                       ignored=ignored)
    head = final()
    agreement_at = guard_agreement(_guard_draw(base, stats, settings), base, head)
    agreement = agreement_at(1.0)
    if agreement < settings.guard_agreement:
        return refused(f"it would forget how others write (it changes {1 - agreement:.1%} of the model's answers "
                       "near the boundaries between digits)", before, after, agreement, ignored)
    kept = typical_margins(head, base, stats, settings)
    if kept.min() < settings.typical_margin:
        digit = int(kept.argmin())
        return refused(f"it would forget how others write a {digit} (it reads a typical {digit} "
                       f"{1 - kept[digit]:.0%} less surely; confirming a few of your own {digit}s helps)",
                       before, after, agreement, ignored)
    # a change that moves the shipped boundaries more than the target is scaled back towards the shipped head
    scale = 1.0
    if agreement < settings.guard_target:
        lo, hi = 0.0, 1.0  # the largest share of the change that keeps the target (agreement falls as it grows)
        for _ in range(settings.scale_steps):
            mid = (lo + hi) / 2
            if agreement_at(mid) >= settings.guard_target:
                lo = mid
            else:
                hi = mid
        scale = max(lo, settings.scale_floor)
        agreement = agreement_at(scale)
        head = blend(base, head, scale)
    sure = sharpness(held_logits, labels, temperature, settings.sharpness_floor)
    head = Head(head.w1, head.b1, head.w2 * np.float32(sure), head.b2 * np.float32(sure))
    held_back = f"; {scale:.0%} of the change kept, to keep others' digits read as before" if scale < 1.0 else ""
    return Decision(True, f"learned from {m} corrections ({before} -> {after} wrong when held out{held_back})"
                    f"{set_aside_text}", n, before, after, agreement, time.perf_counter() - t0, head,
                    kept=scale, ignored=ignored)
