#!/usr/bin/env python3
"""Would weighting the ensemble's three models read better than their plain mean? (issue 38)

The shipped ensemble is the mean of the three calibrated models' probabilities. Weights fitted on the same
validation digits that judge them would look better by construction, so they are cross-fitted: the validation
split is cut into folds, each fold is read with weights fitted (lowest log-loss on a grid over the simplex) on
the other folds, and those out-of-fold readings meet the plain mean in train_all's own paired test (McNemar,
one-sided; a promotion needs p < 0.05). Two pools: the linear mean and the log-linear (geometric) one.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.names import BASE_MODELS  # noqa: E402

GRID_STEP = 0.05  # weights on a simplex grid this fine (231 points for three models)
EPILOG = """example:
  python benchmarks/bench_ensemble_weights.py --data ../shared/data/mnist/mnist.npz \\
      --handwriting ../shared/data/handwriting --out benchmarks/results/ensemble_weights.json"""


def pooled(weights: np.ndarray, probs: np.ndarray, pool: str) -> np.ndarray:
    """(N, 10) pooled probabilities of (models, N, 10) under the weights (summing to 1)."""
    if pool == "linear":
        return np.tensordot(weights, probs, 1)
    logits = np.tensordot(weights, np.log(np.clip(probs, 1e-12, 1.0)), 1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def simplex(step: float, k: int) -> np.ndarray:
    n = round(1 / step)
    return np.array([[c / n for c in combo] + [(n - sum(combo)) / n]
                     for combo in itertools.product(range(n + 1), repeat=k - 1) if sum(combo) <= n])


def fit(probs: np.ndarray, y: np.ndarray, pool: str) -> np.ndarray:
    """The grid weights with the lowest mean log-loss on these digits."""
    grid = simplex(GRID_STEP, len(probs))
    loss = [-np.log(np.clip(pooled(w, probs, pool)[np.arange(len(y)), y], 1e-12, 1)).mean() for w in grid]
    return grid[int(np.argmin(loss))]


def cross_fitted(probs: np.ndarray, y: np.ndarray, pool: str, folds: int, seed: int) -> tuple[np.ndarray, list]:
    fold = np.random.default_rng(seed).integers(0, folds, len(y))
    right, weights = np.zeros(len(y), bool), []
    for k in range(folds):
        w = fit(probs[:, fold != k], y[fold != k], pool)
        weights.append(w)
        right[fold == k] = pooled(w, probs[:, fold == k], pool).argmax(1) == y[fold == k]
    return right, weights


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--data", required=True, help="MNIST .npz")
    p.add_argument("--handwriting", required=True, help="the real handwriting folder (its validation writers)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)

    from recognizer import ModelStore
    from study.data import load, with_handwriting
    from study.handwriting import load_handwriting
    from study.paired_test import discordant, one_sided_p

    data = with_handwriting(load(args.data), load_handwriting(args.handwriting))
    x, y = data.val.x, data.val.y
    store = ModelStore(args.models_dir)  # calibrated: what the shipped ensemble averages
    probs = np.stack([np.concatenate([store.predict(n, x[i:i + 1024]) for i in range(0, len(x), 1024)])
                      for n in BASE_MODELS])
    plain = pooled(np.full(len(BASE_MODELS), 1 / len(BASE_MODELS)), probs, "linear").argmax(1) == y
    figures = {"validation_digits": len(y), "validation_checksum": data.val_checksum, "models": list(BASE_MODELS),
               "plain_mean_right": int(plain.sum()), "folds": args.folds, "pools": {}}
    print(f"plain mean: {plain.sum()} of {len(y)} validation digits ({plain.mean():.4%})")
    for pool in ("linear", "log-linear"):
        right, weights = cross_fitted(probs, y, pool, args.folds, args.seed)
        wins, losses = discordant(right, plain)
        p_value = one_sided_p(wins, losses)
        whole = fit(probs, y, pool)
        figures["pools"][pool] = {"out_of_fold_right": int(right.sum()), "gained": wins, "lost": losses,
                                  "p": round(p_value, 4), "fold_weights": np.round(weights, 2).tolist(),
                                  "weights_on_all": whole.round(2).tolist(), "better": p_value < 0.05}
        print(f"{pool}: out of fold {right.sum()} ({right.mean():.4%}), +{wins} / -{losses} against the plain mean, "
              f"p = {p_value:.3f}; weights on all {dict(zip(BASE_MODELS, whole.round(2).tolist()))}")
    if args.out:
        from common.atomic import write_json

        write_json(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
