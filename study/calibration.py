"""Fitting the temperatures that recognizer/calibration.py applies, and measuring what they do.

One temperature per model, fitted on the validation data (MNIST's 12,000 validation images plus the real
handwriting validation writers, exactly what train_all.py validates on) by minimising the negative
log-likelihood: the one-parameter method of Guo et al. (2017), which keeps every argmax. The ensemble's own
temperature is fitted on the mean of the *calibrated* members, because that mean is what the reader computes
before it applies the ensemble's temperature. The measure reported is the expected calibration error (ECE,
15 equal-width confidence bins over the top probability) and the NLL, before and after.

`calibrate(...)` is the one fit that both `scripts/calibrate.py` and `train_all.py` run; `write(...)` stores it as
models/calibration.json (docs/CONTRACTS.md) atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from common.atomic import write_json
from common.checksum import file_sha256
from common.names import BASE_MODELS, CALIBRATION_FILE, ENSEMBLE, model_file
from recognizer.calibration import apply_temperature

log = logging.getLogger(__name__)

N_BINS = 15                 # the usual ECE binning (Guo et al.); 12,000+ images leave every used bin well filled
LOG_T_RANGE = (-3.0, 3.0)   # temperatures from 0.05 to 20: far beyond anything a trained softmax needs


def nll(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = np.asarray(p, np.float64)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), np.asarray(y, np.int64)], 1e-12))))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = N_BINS) -> dict:
    """Per confidence bin (top probability, equal widths on [0, 1]): count, mean confidence, accuracy."""
    p = np.asarray(p, np.float64)
    conf, right = p.max(1), p.argmax(1) == np.asarray(y)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, conf, bins) / count
        acc = np.bincount(idx, right.astype(float), bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": acc}


def ece(p: np.ndarray, y: np.ndarray, bins: int = N_BINS) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over the bins."""
    r = reliability(p, y, bins)
    used = r["count"] > 0
    return float(np.sum(r["count"][used] * np.abs(r["accuracy"][used] - r["confidence"][used])) / len(y))


def fit_temperature(p: np.ndarray, y: np.ndarray, tol: float = 1e-4) -> float:
    """The T that minimises the NLL of softmax(log(p) / T): golden-section search on log T (the NLL is convex
    in 1/T, so one minimum)."""
    y = np.asarray(y, np.int64)

    def loss(log_t: float) -> float:
        return nll(apply_temperature(p, float(np.exp(log_t))), y)

    a, b = LOG_T_RANGE
    g = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2.0))


def _entry(p: np.ndarray, y: np.ndarray, t: float) -> dict:
    q = apply_temperature(p, t)
    return {"temperature": round(t, 5), "ece_before": round(ece(p, y), 5), "ece_after": round(ece(q, y), 5),
            "nll_before": round(nll(p, y), 5), "nll_after": round(nll(q, y), 5), "n": len(y)}


def calibrate(probabilities: dict, y: np.ndarray, models_dir: str | os.PathLike, val_checksum: str | None = None
              ) -> dict:
    """calibration.json's content for these models' validation probabilities ({name: (N, 10) uncalibrated}),
    each entry tied to the sha256 of `models_dir/<name>.keras`; the ensemble too when all three are given."""
    models_dir = Path(models_dir)
    out, calibrated = {}, {}
    for name in BASE_MODELS:
        if name not in probabilities:
            continue
        p = np.asarray(probabilities[name], np.float32)
        t = fit_temperature(p, y)
        out[name] = {**_entry(p, y, t), "keras_sha256": file_sha256(models_dir / model_file(name)),
                     "val_checksum": val_checksum}
        calibrated[name] = apply_temperature(p, t)
    if len(calibrated) == len(BASE_MODELS):
        mean = np.mean([calibrated[n] for n in BASE_MODELS], axis=0)
        raw_mean = np.mean([np.asarray(probabilities[n], np.float32) for n in BASE_MODELS], axis=0)
        entry = _entry(mean, y, fit_temperature(mean, y))
        # "before" is what the reader showed without any calibration: the mean of the raw members
        entry |= {"ece_before": round(ece(raw_mean, y), 5), "nll_before": round(nll(raw_mean, y), 5),
                  "members": {n: out[n]["keras_sha256"] for n in BASE_MODELS}, "val_checksum": val_checksum}
        out[ENSEMBLE] = entry
    return out


def write(models_dir: str | os.PathLike, entries: dict, keep_others: bool = True) -> Path:
    """Store the entries as models_dir/calibration.json (atomically). With keep_others, entries of models not
    refitted stay (the reader ignores any whose .keras has changed since)."""
    from recognizer.calibration import read_file

    path = Path(models_dir) / CALIBRATION_FILE
    data = {**(read_file(models_dir) if keep_others else {}), **entries}
    write_json(path, {k: data[k] for k in (*BASE_MODELS, ENSEMBLE) if k in data})
    log.info("wrote %s (%s)", path, ", ".join(f"{k} T={v['temperature']:.3f}" for k, v in data.items()
                                               if isinstance(v, dict) and "temperature" in v))
    return path


def plot_reliability(p_before: np.ndarray, p_after: np.ndarray, y: np.ndarray, name: str, path, t: float,
                     what: str = "validation") -> None:
    """Reliability diagram (accuracy against confidence per bin, bin sizes below) before and after."""
    from study.plots import _new_figure, _save

    fig = _new_figure(9.0, 4.6)
    axes = fig.subplots(2, 2, sharex=True, height_ratios=(3, 1))
    edges = np.linspace(0, 1, N_BINS + 1)
    for col, (label, p) in enumerate((("before", p_before), (f"after (T = {t:.3f})", p_after))):
        r = reliability(p, y)
        used = r["count"] > 0
        ax = axes[0, col]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
        ax.bar(edges[:-1][used], r["accuracy"][used], width=1 / N_BINS, align="edge", color="#4c72b0",
               edgecolor="white", label="accuracy")
        # the gap between a bar and its dot is the bin's miscalibration (bar below the dot: overconfident)
        ax.plot((edges[:-1] + 0.5 / N_BINS)[used], r["confidence"][used], "o", color="#dd8452", ms=4,
                label="mean confidence")
        ax.set_title(f"{name} {label}: ECE {100 * ece(p, y):.2f}%", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("accuracy")
        if col == 0:
            ax.legend(loc="upper left", fontsize=8)
        axes[1, col].bar(edges[:-1], r["count"], width=1 / N_BINS, align="edge", color="0.5", edgecolor="white",
                         log=True)
        axes[1, col].set_ylabel("digits")
        axes[1, col].set_xlabel(f"top probability ({what}, {len(y):,} digits)")
    _save(fig, path)
