"""Distillation: train a model towards the shipped calibrated ensemble's probabilities as well as the labels.

The ensemble (ANN + CNN + VGG16, each with its temperature, then the ensemble's own: exactly what the app's
`--model ensemble` reads, `recognizer.ModelStore.predict`) reads the held-out writers better than any one
model; a single model trained towards its probabilities may learn what it knows about which digits look alike
(issue 38). With share `alpha` the targets of a training image are

    (1 - alpha) x the recipe's label row (one-hot, smoothed by its label_smoothing) + alpha x the teacher's row

and the loss then smooths nothing more (study.fit). The teacher reads each *un-augmented* training image once;
every view the pipeline makes of it (the redrawn copy, the random warp and stroke width of each batch) is
trained towards that one row: the rows travel with the images through study.augment.make_dataset.

The teacher's rows are cached under ~/.cache/digit-recognizer/distill (or $DISTILL_CACHE), in blocks of
BLOCK_ROWS training images, each keyed by its pixels and by the teacher's files (models, ONNX twins,
calibration.json): another styles rate or seed recomputes only the blocks whose images changed. Never in the
repository. `scripts/fill_teacher_cache.py` fills the cache ahead of a timed run (the teacher's pass over ~82,000
images costs minutes on two cores and would otherwise count against the run's budget).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from common.names import BASE_MODELS, CALIBRATION_FILE, ENSEMBLE, model_file

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.0  # off: the teacher's share of the training targets; see docs/DECISIONS.md
CACHE_ENV = "DISTILL_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "digit-recognizer" / "distill"
BLOCK_ROWS = 8192  # training images per cached block
BATCH = 512  # images per call of the teacher


class DistillError(Exception):
    """The teacher cannot be read (a model missing from its folder); the message says what to give."""


def targets(y: np.ndarray, teacher: np.ndarray | None, alpha: float, smoothing: float = 0.0) -> np.ndarray:
    """(N, 10) float32 training targets: (1 - alpha) x smoothed one-hot labels + alpha x the teacher's rows.

    smoothing: the recipe's label smoothing (the one-hot row becomes (1 - s) x one-hot + s / 10, as Keras
    smooths). teacher may be None only where alpha is 0 (the validation targets)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the teacher's share must be between 0 and 1, got {alpha}")
    labels = np.eye(10, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    out = (1.0 - smoothing) * labels + smoothing / 10.0
    if alpha:
        if teacher is None or teacher.shape != out.shape:
            raise ValueError(f"distillation needs one teacher row per label: {None if teacher is None else teacher.shape}"
                             f" for {out.shape[0]} labels")
        out = (1.0 - alpha) * out + alpha * np.asarray(teacher, np.float32)
    return out.astype(np.float32)


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def teacher_key(models_dir: Path) -> str:
    """Fingerprint of everything the teacher's answers depend on: the three models' files (ONNX twin and .keras:
    the store reads the one it can) and the temperatures. Raises DistillError where a model is missing."""
    from common.checksum import file_sha256

    digest = hashlib.sha256()
    for name in BASE_MODELS:
        files = [models_dir / model_file(name), (models_dir / model_file(name)).with_suffix(".onnx")]
        present = [f for f in files if f.is_file()]
        if not present:
            raise DistillError(f"the teacher is the shipped ensemble of {', '.join(BASE_MODELS)}: {models_dir} has "
                               f"no {model_file(name)} (give --warm-start or --models-dir a folder with all three)")
        for f in present:
            digest.update(f"{f.name}:{file_sha256(f)}".encode())
    calibration = models_dir / CALIBRATION_FILE
    digest.update(file_sha256(calibration).encode() if calibration.is_file() else b"uncalibrated")
    return digest.hexdigest()[:16]


def teacher_probabilities(x: np.ndarray, models_dir: str | os.PathLike, cache: str | os.PathLike | None = None
                          ) -> np.ndarray:
    """(N, 10) float32: the calibrated ensemble of `models_dir` on the images x (N, 28, 28, 1), block by cached
    block (module doc)."""
    from recognizer import ModelStore, RecognizerError

    models_dir = Path(models_dir)
    key, cdir = teacher_key(models_dir), cache_dir(cache)
    store, out, computed, t0 = None, [], 0, time.perf_counter()
    for start in range(0, len(x), BLOCK_ROWS):
        block = np.ascontiguousarray(x[start:start + BLOCK_ROWS], dtype=np.float32)
        path = cdir / f"{key}-{hashlib.sha256(block.tobytes()).hexdigest()[:16]}.npy"
        rows = _read(path, len(block))
        if rows is None:
            store = store or ModelStore(models_dir, threads=os.cpu_count())  # a batch job: every core
            try:
                rows = np.concatenate([store.predict(ENSEMBLE, block[i:i + BATCH])
                                       for i in range(0, len(block), BATCH)])
            except RecognizerError as exc:
                raise DistillError(f"the teacher in {models_dir} cannot read: {exc}") from exc
            _write(path, rows)
            computed += len(block)
        out.append(rows)
    log.info("distillation: the ensemble of %s on %d training images (%d read now, the rest cached in %s) in %.1f s",
             models_dir, len(x), computed, cdir, time.perf_counter() - t0)
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def _read(path: Path, n: int) -> np.ndarray | None:
    try:
        rows = np.load(path)
    except (OSError, ValueError):
        return None
    return rows if rows.shape == (n, 10) and rows.dtype == np.float32 else None


def _write(path: Path, rows: np.ndarray) -> None:
    from common.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            np.save(tmp, rows.astype(np.float32))
    except OSError as exc:  # no cache is slower, not wrong
        log.warning("distillation: cannot write the cache %s (%s)", path, exc)


def with_teacher(data, models_dir: str | os.PathLike, cache: str | os.PathLike | None = None):
    """The data with the teacher's row for every training image (`data.teacher`)."""
    from dataclasses import replace

    return replace(data, teacher=teacher_probabilities(data.train.x, models_dir, cache))
