"""benchmarks/bench_ensemble_weights.py: cross-fitted ensemble weights, on made-up model answers."""

import numpy as np

from benchmark_module import load_benchmark


def answers(y: np.ndarray, right_share: float, rng) -> np.ndarray:
    """(N, 10) confident probabilities, right on about `right_share` of the digits and a random class elsewhere."""
    read = np.where(rng.random(len(y)) < right_share, y, rng.integers(0, 10, len(y)))
    p = np.full((len(y), 10), 0.02, np.float32)
    p[np.arange(len(y)), read] = 0.82
    return p


def test_the_grid_covers_the_simplex():
    grid = load_benchmark("bench_ensemble_weights").simplex(0.05, 3)
    assert grid.shape == (231, 3) and np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()


def test_cross_fitted_weights_find_the_good_model_and_beat_the_plain_mean():
    bench = load_benchmark("bench_ensemble_weights")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 3000)
    probs = np.stack([answers(y, 0.97, rng), answers(y, 0.5, rng), answers(y, 0.5, rng)])
    for pool in ("linear", "log-linear"):
        assert bench.fit(probs, y, pool)[0] >= 0.6, pool
        right, weights = bench.cross_fitted(probs, y, pool, folds=3, seed=0)
        plain = bench.pooled(np.full(3, 1 / 3), probs, "linear").argmax(1) == y
        assert len(weights) == 3 and right.mean() > plain.mean() + 0.02, pool
