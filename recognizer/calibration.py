"""Confidences that mean what they say: each model's temperature, applied to its probabilities.

Label smoothing (0.05) trains every model to say ~96-98% on a clear digit and says little about unclear ones, so
the raw top probability is not the chance that the reading is right. `scripts/calibrate.py` (and train_all.py
after a run) fits one temperature T per model on the validation data (study/calibration.py) and writes
`models/calibration.json` (docs/CONTRACTS.md); the reading side applies

    p' = softmax(log(p) / T)

which keeps each digit's argmax and moves only how sure it sounds. The ensemble has a temperature of its own,
fitted on the mean of the calibrated members. An entry belongs to one `.keras` file (its sha256): an entry
for another file (a model retrained since) is ignored with one log line, and that model reads uncalibrated.
NumPy only: the reading environment has no SciPy or TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from common.checksum import file_sha256
from common.names import BASE_MODELS, CALIBRATION_FILE, ENSEMBLE, model_file

log = logging.getLogger(__name__)

_TINY = 1e-12  # log(0) guard: a probability of exactly 0 stays the least likely class


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) row by row, float32; T = 1 gives p back unchanged."""
    p = np.asarray(p, np.float32)
    if temperature == 1.0 or p.size == 0:
        return p
    z = np.log(np.maximum(p.astype(np.float64), _TINY)) / float(temperature)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def read_file(models_dir: str | os.PathLike) -> dict:
    """The calibration file's entries ({} when there is none or it cannot be read: uncalibrated, said once)."""
    path = Path(models_dir) / CALIBRATION_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        data = exc
    if not isinstance(data, dict):
        log.warning("%s unreadable (%s): the models read uncalibrated", path,
                    data if isinstance(data, Exception) else "not a JSON object")
        return {}
    return data


class Calibration:
    """The temperatures of one models folder, checked against the `.keras` files beside them; thread-safe.

    Each name is resolved once (its file hashed once, while the model loads); `clear()` forgets it all, as
    `ModelStore.clear` forgets loaded models after a retrain.
    """

    def __init__(self, models_dir: str | os.PathLike):
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._entries: dict | None = None
        self._temperature: dict[str, float] = {}
        self._sha: dict[str, str | None] = {}
        self._warned: set[str] = set()  # names whose stale entry was reported (once per store)

    def clear(self) -> None:
        with self._lock:
            self._entries, self._temperature, self._sha, self._warned = None, {}, {}, set()

    def _keras_sha(self, name: str) -> str | None:
        """sha256 of the model's .keras file, hashed once and outside the lock (the ensemble's members load in
        parallel threads, VGG16's file is ~60 MB)."""
        with self._lock:
            if name in self._sha:
                return self._sha[name]
        path = self.models_dir / model_file(name)
        sha = file_sha256(path) if path.is_file() else None
        with self._lock:
            return self._sha.setdefault(name, sha)

    def temperature(self, name: str) -> float:
        """The temperature to apply for `name` (1.0: none recorded, or recorded for another file)."""
        with self._lock:
            if name in self._temperature:
                return self._temperature[name]
            if self._entries is None:
                self._entries = read_file(self.models_dir)
            entries = self._entries
        t = self._resolve(name, entries)
        with self._lock:
            return self._temperature.setdefault(name, t)

    def _resolve(self, name: str, entries: dict) -> float:
        entry = entries.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("temperature"), (int, float)) \
                or not entry["temperature"] > 0:
            return 1.0
        if name == ENSEMBLE:
            members = entry.get("members") or {}
            stale = [m for m in BASE_MODELS if members.get(m) != self._keras_sha(m)]
        else:
            stale = [name] if entry.get("keras_sha256") != self._keras_sha(name) else []
        if stale:
            with self._lock:
                first = name not in self._warned
                self._warned.add(name)
            if first:
                log.warning("%s: the %s temperature was fitted for another %s (retrained since?): %s reads "
                            "uncalibrated; refit with: python scripts/calibrate.py",
                            self.models_dir / CALIBRATION_FILE, name, ", ".join(model_file(m) for m in stale), name)
            return 1.0
        return float(entry["temperature"])

    def apply(self, name: str, p: np.ndarray) -> np.ndarray:
        """`p` as `name`'s calibrated probabilities."""
        return apply_temperature(p, self.temperature(name))
