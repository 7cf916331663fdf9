"""ModelStore: lazy, thread-safe, cached access to the saved models (and their ensemble).

TensorFlow/Keras are imported only when a model is first needed, so importing `recognizer` stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from pathlib import Path

import numpy as np

from common.names import BASE_MODELS, ENSEMBLE, MODEL_NAMES, train_hint

from .errors import RecognizerError

log = logging.getLogger(__name__)

FALLBACK_ORDER = ("cnn", "vgg16", "ann")
# cheapest first (load time and read latency): on equal accuracy the default is the one that starts faster;
# the ensemble loads all three (~5 s with VGG16) and reads a 10-digit canvas ~3x slower than the CNN
COST_ORDER = ("ann", "cnn", "vgg16", "ensemble")


class ModelStore:
    """Loads `models_dir/{ann,cnn,vgg16}.keras` on first use and keeps them; safe to share between threads."""

    def __init__(self, models_dir: str | os.PathLike = "models"):
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._load_locks = {name: threading.Lock() for name in BASE_MODELS}
        self._models: dict[str, object] = {}
        self._fns: dict[str, object] = {}
        self._errors: dict[str, str] = {}

    # ------------------------------------------------------------------------------ info
    def path(self, name: str) -> Path:
        self._check_name(name)
        if name == "ensemble":
            raise RecognizerError("the ensemble has no file of its own; it averages ann, cnn and vgg16")
        return self.models_dir / f"{name}.keras"

    def _check_name(self, name: str) -> None:
        if name not in MODEL_NAMES:
            raise RecognizerError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")

    def _base_status(self, name: str) -> str:
        with self._lock:
            if name in self._models:
                return "ok"
            if name in self._errors:
                return f"error: {self._errors[name]}"
        p = self.models_dir / f"{name}.keras"
        if not p.is_file():
            return "missing"
        if not zipfile.is_zipfile(p):
            return "error: not a Keras model file (not a .keras zip archive)"
        return "ok"

    def status(self) -> dict[str, str]:
        """{"ann": "ok"|"missing"|"error: <reason>", ..., "ensemble": ...}; does not load any model."""
        st = {name: self._base_status(name) for name in BASE_MODELS}
        bad = [n for n in BASE_MODELS if st[n].startswith("error")]
        if bad:
            st["ensemble"] = f"error: {bad[0]}: {st[bad[0]][len('error: '):]}"
        elif any(st[n] == "missing" for n in BASE_MODELS):
            st["ensemble"] = "missing"
        else:
            st["ensemble"] = "ok"
        return st

    def available(self) -> list[str]:
        st = self.status()
        return [n for n in MODEL_NAMES if st[n] == "ok"]

    def metrics(self) -> dict[str, float]:
        """Test accuracy per model name from models/metrics.json (written by train_all.py); {} if unreadable."""
        try:
            data = json.loads((self.models_dir / "metrics.json").read_text(encoding="utf-8"))
            entries = {**data.get("models", {}), "ensemble": data.get("ensemble") or {}}
            return {name: float(entry["test_accuracy"]) for name, entry in entries.items()
                    if name in MODEL_NAMES and isinstance(entry.get("test_accuracy"), (int, float))}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}

    def default_name(self) -> str | None:
        """Most accurate present model (by metrics.json test_accuracy; on a tie the cheaper one, see COST_ORDER);
        else cnn > vgg16 > ann; None if none."""
        present = self.available()
        if not present:
            return None
        acc = self.metrics()
        scored = [(acc[n], -COST_ORDER.index(n), n) for n in present if n in acc]
        if scored:
            return max(scored)[2]
        for n in FALLBACK_ORDER:
            if n in present:
                return n
        return None

    # ---------------------------------------------------------------------------- loading
    def load(self, name: str):
        """The loaded Keras model for a base model name (loads it once; RecognizerError if missing/corrupt)."""
        self._check_name(name)
        if name == "ensemble":
            return [self.load(n) for n in BASE_MODELS]
        with self._lock:
            if name in self._models:
                return self._models[name]
        with self._load_locks[name]:
            with self._lock:
                if name in self._models:
                    return self._models[name]
            model, fn = self._load_file(name)
            with self._lock:
                self._models[name] = model
                self._fns[name] = fn
                self._errors.pop(name, None)
            return model

    def _load_file(self, name: str):
        p = self.models_dir / f"{name}.keras"
        if not p.is_file():
            raise RecognizerError(f"model file {p} is missing; {train_hint(name)}")
        try:
            import keras
            import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - environment problem
            raise RecognizerError(f"TensorFlow/Keras are not installed ({exc}); pip install -r requirements.txt")
        try:
            model = keras.saving.load_model(p, compile=False)
            in_shape = tuple(model.input_shape)
            out_shape = tuple(model.output_shape)
            if in_shape[1:] != (28, 28, 1) or out_shape[1:] != (10,):
                raise ValueError(f"expects input {in_shape} and gives {out_shape}; "
                                 "the contract is (N, 28, 28, 1) -> (N, 10)")
            fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                             input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
            for n in (1, 4, 10):  # trace and warm now: that counts as loading, not as reading
                fn(tf.zeros((n, 28, 28, 1), tf.float32))
        except Exception as exc:  # corrupt zip, wrong content, incompatible layers...
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
            with self._lock:
                self._errors[name] = reason
            log.warning("cannot load %s: %s", p, reason)
            raise RecognizerError(f"model file {p} could not be loaded ({reason}); {train_hint(name)}") from None
        log.info("loaded model %s from %s", name, p)
        return model, fn

    def clear(self, name: str | None = None) -> None:
        """Forget a loaded model (or all), e.g. after it was retrained; the next use loads the file again."""
        with self._lock:
            for n in ([name] if name else list(BASE_MODELS)):
                self._models.pop(n, None)
                self._fns.pop(n, None)
                self._errors.pop(n, None)

    # -------------------------------------------------------------------------- inference
    def predict(self, name: str, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28, 1) float32 in [0, 1] -> (N, 10) probabilities; 'ensemble' = mean of the three."""
        self._check_name(name)
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        if batch.ndim != 4 or batch.shape[1:] != (28, 28, 1):
            raise RecognizerError(f"batch has shape {batch.shape}; expected (N, 28, 28, 1) float32 in [0, 1]")
        if name == "ensemble":
            self.load(name)
            return np.mean([self.predict(n, batch) for n in BASE_MODELS], axis=0)
        self.load(name)
        if len(batch) == 0:
            return np.zeros((0, 10), np.float32)
        fn = self._fns[name]
        return np.asarray(fn(batch)).astype(np.float32).reshape(len(batch), 10)
