"""Test-set evaluation shared by all three models, so their numbers are computed the same way.

`evaluate_model` returns an `Evaluation`: the heavy per-image arrays (predictions, probabilities)
stay on the object, and `Evaluation.summary()` gives only plain floats/ints/lists for metrics.json.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

log = logging.getLogger(__name__)

N_CLASSES = 10
LABELS = list(range(N_CLASSES))
EPSILON = 1e-7  # same clipping as Keras' categorical cross-entropy, so test_loss matches model.evaluate
TIMING_REPEATS = 5


@dataclass
class Evaluation:
    """Everything measured on the test set; `summary()` is the JSON-safe part."""

    test_accuracy: float
    test_loss: float
    n_test: int
    ms_per_image: float
    per_class: dict[str, list[float]]
    confusion: list[list[int]]
    report: str
    predictions: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class per image (for the misclassified plot)."""
        return self.probabilities[np.arange(len(self.predictions)), self.predictions]

    def summary(self) -> dict:
        """Plain-Python numbers only, so it can go straight into json.dump."""
        return {
            "test_accuracy": float(self.test_accuracy),
            "test_loss": float(self.test_loss),
            "n_test": int(self.n_test),
            "ms_per_image": float(self.ms_per_image),
            "per_class": {k: [float(v) for v in vals] for k, vals in self.per_class.items()},
            "confusion": [[int(v) for v in row] for row in self.confusion],
        }


def to_labels(y: np.ndarray) -> np.ndarray:
    """Accept integer labels or one-hot rows; return integer labels."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1).astype(np.int64)
    return y.astype(np.int64).reshape(-1)


def predict_probabilities(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Batched inference without Keras' progress bar; returns (N, 10) float probabilities."""
    chunks = [np.asarray(model.predict_on_batch(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks, axis=0).astype(np.float64)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy from probabilities (clipped like Keras, never inf)."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0))))


def time_inference(model, x: np.ndarray, batch_size: int = 256, repeats: int = TIMING_REPEATS) -> float:
    """Median warm batched latency in ms per image; the first (tracing) pass is not counted."""
    batch = x[:batch_size]
    if len(batch) == 0:
        return float("nan")
    model.predict_on_batch(batch)  # warm-up: graph tracing and allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(model.predict_on_batch(batch))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0 / len(batch)


def per_class_scores(labels: np.ndarray, predictions: np.ndarray) -> dict[str, list[float]]:
    """Precision, recall and F1 for every digit, 0 where a class is never predicted/present."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=LABELS, zero_division=0
    )
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()}


def evaluate_model(model, x_test: np.ndarray, y_test: np.ndarray, batch_size: int = 256) -> Evaluation:
    """Evaluate a softmax classifier on the test set; y_test may be integer labels or one-hot."""
    labels = to_labels(y_test)
    if len(labels) != len(x_test):
        raise ValueError(f"x_test has {len(x_test)} images but y_test has {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("cannot evaluate on an empty test set")
    probabilities = predict_probabilities(model, x_test, batch_size)
    if probabilities.shape != (len(labels), N_CLASSES):
        raise ValueError(f"model output shape {probabilities.shape}, expected ({len(labels)}, {N_CLASSES})")
    predictions = probabilities.argmax(axis=1)
    result = Evaluation(
        test_accuracy=float(np.mean(predictions == labels)),
        test_loss=cross_entropy(probabilities, labels),
        n_test=len(labels),
        ms_per_image=time_inference(model, x_test, batch_size),
        per_class=per_class_scores(labels, predictions),
        confusion=confusion_matrix(labels, predictions, labels=LABELS).tolist(),
        report=classification_report(labels, predictions, labels=LABELS, digits=4, zero_division=0),
        predictions=predictions,
        probabilities=probabilities,
    )
    log.info(
        "test accuracy %.4f, loss %.4f, %.3f ms/image (%d images)",
        result.test_accuracy, result.test_loss, result.ms_per_image, result.n_test,
    )
    return result
