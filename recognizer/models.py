"""ModelStore: lazy, thread-safe, cached access to the saved models (and their ensemble).

Each base model runs from its `.onnx` twin with ONNX Runtime: that starts in a fraction of a second and never
imports TensorFlow. The `.keras` file stays the source of truth: the twin records the `.keras` file's sha256
(study/export.py), and a twin that is missing or was made from another `.keras` is not used; the store then
falls back to Keras (TensorFlow imported on first use, here only) and says once how to re-export.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from common.checksum import file_sha256
from common.names import (BASE_MODELS, DEFAULT_MODELS_DIR, ENSEMBLE, FEATURES_OUTPUT, METRICS_FILE, MODEL_NAMES,
                          ONNX_KERAS_SHA256, adapt_file, export_hint, model_file, onnx_file, train_hint)

from .calibration import Calibration
from .errors import RecognizerError

log = logging.getLogger(__name__)

FALLBACK_ORDER = ("cnn", "vgg16", "ann")
# cheapest first (load time and read latency): on equal accuracy the default is the one that starts faster
COST_ORDER = ("ann", "cnn", "vgg16", "ensemble")
CONTRACT = "the contract is (N, 28, 28, 1) -> (N, 10)"
NOT_KERAS = "not a Keras model file (not a .keras zip archive)"
# A reading is a handful of 28x28 digits: more threads than this only add hand-over cost. Half the cores: the
# other half stays with the window and the segmentation, and on a busy 2-core machine one ONNX Runtime thread
# read VGG16 faster than two (docs/RESULTS.md has the measurement).
MAX_INTRA_OP_THREADS = 4
_KERAS_LOCK = threading.Lock()


def default_threads(cpus: int | None = None) -> int:
    """ONNX Runtime intra-op threads for this machine: half its cores, 1 to MAX_INTRA_OP_THREADS."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus // 2, MAX_INTRA_OP_THREADS))


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to answer: `run(batch (N, 28, 28, 1) float32) -> (N, 10)`, and where it came from."""

    name: str
    path: Path
    backend: str  # "onnx" (ONNX Runtime) or "keras" (the TensorFlow fallback)
    run: Callable[[np.ndarray], np.ndarray]
    model: Any  # the onnxruntime.InferenceSession or the keras.Model
    # batch -> (N, d) features the classifier head reads (the `features` output); None where the twin lacks it
    features: Callable[[np.ndarray], np.ndarray] | None = None
    sha256: str | None = None  # the checksum of the .keras file this model is (what an adaptation belongs to)


def _in_background(fn: Callable, *args) -> Future:
    """Run fn(*args) in a thread of its own; the Future holds the result (or the exception)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix=getattr(fn, "__name__", "background"))
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _shape_text(shape) -> str:
    dims = ["N" if not isinstance(d, int) else str(d) for d in shape]
    return f"({', '.join(dims)})"


class ModelStore:
    """Loads `models_dir/{ann,cnn,vgg16}.onnx` (or `.keras`) on first use and keeps them; safe to share
    between threads (one ONNX Runtime session per model, whose `run` is thread-safe)."""

    def __init__(self, models_dir: str | os.PathLike = "models", threads: int | None = None,
                 calibrated: bool = True):
        self.models_dir = Path(models_dir)
        self.threads = threads or default_threads()
        # calibration.json's temperatures (recognizer/calibration.py); calibrated=False: the models' raw output
        self.calibration = Calibration(self.models_dir) if calibrated else None
        self._lock = threading.Lock()
        self._load_locks = {name: threading.Lock() for name in BASE_MODELS}
        self._loaded: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._warned_fallback = False

    # ------------------------------------------------------------------------------ info
    def path(self, name: str) -> Path:
        """The `.keras` file of a base model (the source of truth)."""
        self._check_name(name)
        if name == ENSEMBLE:
            raise RecognizerError("the ensemble has no file of its own; it averages ann, cnn and vgg16")
        return self.models_dir / model_file(name)

    def onnx_path(self, name: str) -> Path:
        """The `.onnx` twin the store runs when it belongs to the `.keras` file."""
        return self.path(name).with_name(onnx_file(name))

    def _check_name(self, name: str) -> None:
        if name not in MODEL_NAMES:
            raise RecognizerError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")

    def _base_status(self, name: str) -> str:
        with self._lock:
            if name in self._loaded:
                return "ok"
            if name in self._errors:
                return f"error: {self._errors[name]}"
        keras_p, onnx_p = self.path(name), self.onnx_path(name)
        if not keras_p.is_file() and not onnx_p.is_file():
            return "missing"
        if keras_p.is_file() and not zipfile.is_zipfile(keras_p):
            return f"error: {NOT_KERAS}"
        return "ok"

    def status(self) -> dict[str, str]:
        """{"ann": "ok"|"missing"|"error: <reason>", ..., "ensemble": ...}; does not load any model."""
        st = {name: self._base_status(name) for name in BASE_MODELS}
        bad = [n for n in BASE_MODELS if st[n].startswith("error")]
        if bad:
            st[ENSEMBLE] = f"error: {bad[0]}: {st[bad[0]][len('error: '):]}"
        elif any(st[n] == "missing" for n in BASE_MODELS):
            st[ENSEMBLE] = "missing"
        else:
            st[ENSEMBLE] = "ok"
        return st

    def requested(self, spec: str | None) -> list[str]:
        """The models a command line asks for ("cnn,ensemble"; checked), or all available ones when it names
        none; RecognizerError (saying how to train them) when that leaves none."""
        names = [n.strip() for n in spec.split(",") if n.strip()] if spec else self.available()
        for name in names:
            self._check_name(name)
        if not names:
            raise RecognizerError(f"no models in {self.models_dir}; {train_hint()}")
        return names

    def available(self) -> list[str]:
        st = self.status()
        return [n for n in MODEL_NAMES if st[n] == "ok"]

    def loaded(self) -> dict[str, str]:
        """{name: "onnx" | "keras"} for the base models loaded so far (what each one runs on)."""
        with self._lock:
            return {n: m.backend for n, m in self._loaded.items()}

    def _entries(self) -> dict[str, dict]:
        """The metrics.json entry per model name (written by train_all.py); {} if unreadable."""
        try:
            data = json.loads((self.models_dir / METRICS_FILE).read_text(encoding="utf-8"))
            entries = {**data.get("models", {}), ENSEMBLE: data.get(ENSEMBLE) or {}}
            return {n: e for n, e in entries.items() if n in MODEL_NAMES and isinstance(e, dict)}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}

    def metrics(self, key: str = "test_accuracy") -> dict[str, float]:
        """`key` (test accuracy by default) per model name from metrics.json; {} if unreadable."""
        return {n: float(e[key]) for n, e in self._entries().items() if isinstance(e.get(key), (int, float))}

    def choice_scores(self) -> dict[str, float]:
        """What the default model is chosen by: validation accuracy where every entry was measured on the same
        validation data (the test sets must not steer a choice), else test accuracy (older metrics files)."""
        entries = self._entries()
        val = self.metrics("val_accuracy")
        if val and len({entries[n].get("val_checksum") for n in val} - {None}) == 1 and \
                all(entries[n].get("val_checksum") for n in val):
            return val
        return self.metrics()

    def default_name(self) -> str | None:
        """Most accurate present model (choice_scores(); on a tie the cheaper one, see COST_ORDER);
        else cnn > vgg16 > ann; None if none."""
        present = self.available()
        if not present:
            return None
        acc = self.choice_scores()
        scored = [(acc[n], -COST_ORDER.index(n), n) for n in present if n in acc]
        if scored:
            return max(scored)[2]
        for n in FALLBACK_ORDER:
            if n in present:
                return n
        return None

    # ---------------------------------------------------------------------------- loading
    def load(self, name: str):
        """The LoadedModel of a base model (loaded once; RecognizerError if missing/corrupt); a list for the
        ensemble."""
        self._check_name(name)
        if name == ENSEMBLE:
            return self._load_all()
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        with self._load_locks[name]:
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name]
            loaded = self._load_file(name)
            if self.calibration:  # its temperature checked now (a hash of the .keras file): loading, not reading
                self.calibration.temperature(name)
            with self._lock:
                self._loaded[name] = loaded
                self._errors.pop(name, None)
            return loaded

    def _load_all(self) -> list[LoadedModel]:
        """The three members, loaded side by side: session set-up is mostly native code that releases the GIL,
        so the small models load while VGG16's weights are prepared (the ensemble is the usual default)."""
        with self._lock:
            todo = [n for n in BASE_MODELS if n not in self._loaded]
        if len(todo) > 1:
            with ThreadPoolExecutor(len(todo), thread_name_prefix="load") as pool:
                futures = [pool.submit(self.load, n) for n in todo]
            for f in futures:
                f.result()  # the first failure, in BASE_MODELS order, is the one raised
        return [self.load(n) for n in BASE_MODELS]

    def _fail(self, name: str, reason: str, message: str) -> RecognizerError:
        """Remember `reason` for status() (the app greys the model out with it) and make the error to raise."""
        with self._lock:
            self._errors[name] = reason
        log.warning("cannot load %s: %s", name, reason)
        return RecognizerError(message)

    def _load_file(self, name: str) -> LoadedModel:
        keras_p, onnx_p = self.path(name), self.onnx_path(name)
        if not keras_p.is_file() and not onnx_p.is_file():
            raise RecognizerError(f"model file {keras_p} is missing; {train_hint(name)}")
        if not onnx_p.is_file():
            return self._fall_back(name, f"{onnx_p} is missing")
        # hash the .keras file while ONNX Runtime sets up the session (VGG16's is ~60 MB; hashlib frees the GIL)
        actual = _in_background(file_sha256, keras_p) if keras_p.is_file() else None
        try:
            session = self._open_session(onnx_p)
        except Exception as exc:  # truncated, not protobuf, unsupported op...
            why = _first_line(exc)
            if not keras_p.is_file():
                raise self._fail(name, f"{onnx_p.name} is not a readable ONNX model ({why})",
                                 f"model file {onnx_p} could not be read ({why}); {train_hint(name)}") from None
            return self._fall_back(name, f"{onnx_p} could not be read ({why})")
        self._check_onnx_shapes(name, onnx_p, session)
        if keras_p.is_file():
            recorded = session.get_modelmeta().custom_metadata_map.get(ONNX_KERAS_SHA256)
            if recorded is None:
                return self._fall_back(name, f"{onnx_p} does not record which {keras_p.name} it was made from")
            if recorded != actual.result():
                return self._fall_back(name, f"{onnx_p} was exported from another {keras_p.name} "
                                             "(its checksum differs: retrained since?)")
        input_name = session.get_inputs()[0].name
        outputs = [o.name for o in session.get_outputs()]

        def run(batch: np.ndarray) -> np.ndarray:
            return session.run(outputs[:1], {input_name: batch})[0]

        def features(batch: np.ndarray) -> np.ndarray:
            return session.run([FEATURES_OUTPUT], {input_name: batch})[0]

        run(np.zeros((1, 28, 28, 1), np.float32))  # first run allocates its buffers: that is loading, not reading
        log.info("loaded model %s from %s (ONNX Runtime, %d threads)", name, onnx_p, self.threads)
        sha = session.get_modelmeta().custom_metadata_map.get(ONNX_KERAS_SHA256)
        return LoadedModel(name, onnx_p, "onnx", run, session,
                           features if FEATURES_OUTPUT in outputs else None, sha)

    def _open_session(self, path: Path):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: ONNX Runtime's notices are not for the user
        # idle threads sleep instead of spinning: a reading is one short burst, and on a small CPU spinning
        # threads take time from the UI and segmentation for no gain in latency
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def _check_onnx_shapes(self, name: str, path: Path, session) -> None:
        ins, outs = session.get_inputs(), session.get_outputs()
        outs = [o for o in outs if o.name != FEATURES_OUTPUT]  # the optional second output (study/export.py)
        in_shape = tuple(ins[0].shape) if len(ins) == 1 else ()
        out_shape = tuple(outs[0].shape) if len(outs) == 1 else ()
        if len(ins) != 1 or len(outs) != 1 or in_shape[1:] != (28, 28, 1) or len(in_shape) != 4 \
                or out_shape[1:] != (10,) or len(out_shape) != 2 or ins[0].type != "tensor(float)":
            got = (f"expects input {_shape_text(in_shape)} {ins[0].type if ins else ''} and gives "
                   f"{_shape_text(out_shape)}" if len(ins) == 1 and len(outs) == 1
                   else f"has {len(ins)} inputs and {len(outs)} outputs")
            raise self._fail(name, f"{path.name} {got}; {CONTRACT}",
                             f"model file {path} {got}; {CONTRACT}; {train_hint(name)}")

    def _fall_back(self, name: str, reason: str) -> LoadedModel:
        """Read with the `.keras` file through TensorFlow; say once per store why and how to avoid it."""
        keras_p = self.path(name)
        with self._lock:
            first, self._warned_fallback = not self._warned_fallback, True
        where = "" if self.models_dir == Path(DEFAULT_MODELS_DIR) else f" --models-dir {self.models_dir}"
        text = (f"{reason}; reading {keras_p} with Keras/TensorFlow instead (starts in seconds, not "
                f"milliseconds). To run on ONNX Runtime, {export_hint()}{where}")
        if first:
            log.warning("%s", text)
        else:
            log.info("%s", text)
        return self._load_keras(name)

    def _load_keras(self, name: str) -> LoadedModel:
        p = self.path(name)
        if not p.is_file():
            raise RecognizerError(f"model file {p} is missing; {train_hint(name)}")
        if not zipfile.is_zipfile(p):  # Keras itself would say "File not found" about a damaged file
            raise self._fail(name, NOT_KERAS, f"model file {p} could not be loaded ({NOT_KERAS}); {train_hint(name)}")
        try:
            from common import tf_env  # noqa: F401  (TensorFlow settings, before Keras loads)
            import keras
            import tensorflow as tf
        except ImportError as exc:  # the light (reading-only) environment
            raise self._fail(name, f"{self.onnx_path(name).name} unusable and TensorFlow not installed",
                             f"cannot read {p}: {self.onnx_path(name)} is missing or out of date and TensorFlow "
                             f"is not installed ({exc}); {export_hint(name)} in the training environment "
                             "(pip install -r requirements-train.txt)") from None
        with _KERAS_LOCK:  # the ensemble loads its members in threads; Keras loading and tracing are not made for it
            try:
                model = keras.saving.load_model(p, compile=False)
                in_shape = tuple(model.input_shape)
                out_shape = tuple(model.output_shape)
                if in_shape[1:] != (28, 28, 1) or out_shape[1:] != (10,):
                    raise ValueError(f"expects input {_shape_text(in_shape)} and gives {_shape_text(out_shape)}; "
                                     f"{CONTRACT}")
                # autograph=False: a plain model call needs no Python-to-graph conversion (and AutoGraph warns
                # that it cannot convert a lambda)
                fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False,
                                 input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
                for n in (1, 4, 10):  # trace and warm now: that counts as loading, not as reading
                    fn(tf.zeros((n, 28, 28, 1), tf.float32))
            except Exception as exc:  # corrupt zip, wrong content, incompatible layers...
                reason = _first_line(exc)
                raise self._fail(name, reason, f"model file {p} could not be loaded ({reason}); "
                                               f"{train_hint(name)}") from None
        log.info("loaded model %s from %s (Keras)", name, p)
        return LoadedModel(name, p, "keras", lambda batch: np.asarray(fn(batch)), model, None, file_sha256(p))

    def clear(self, name: str | None = None) -> None:
        """Forget a loaded model (or all), e.g. after it was retrained; the next use loads the file again."""
        with self._lock:
            for n in ([name] if name else list(BASE_MODELS)):
                self._loaded.pop(n, None)
                self._errors.pop(n, None)
        if self.calibration:
            self.calibration.clear()

    def adapt_path(self, name: str) -> Path:
        """What adapting a base model to a writer needs (its head's weights and feature statistics)."""
        return self.path(name).with_name(adapt_file(name))

    def features(self, name: str, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28, 1) -> (N, d) features the classifier head of base model `name` reads."""
        model = self.load(name)
        if model.features is None:
            raise RecognizerError(f"{self.onnx_path(name)} has no '{FEATURES_OUTPUT}' output, so it cannot learn a "
                                  "writer's hand; add it with: python scripts/export_adapt.py "
                                  f"{name} (training environment)")
        batch = self._checked(batch)
        if len(batch) == 0:
            return np.zeros((0, 0), np.float32)
        out = np.asarray(model.features(np.ascontiguousarray(batch)), np.float32)
        return out.reshape(len(batch), -1)

    @staticmethod
    def _checked(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        if batch.ndim != 4 or batch.shape[1:] != (28, 28, 1):
            raise RecognizerError(f"batch has shape {batch.shape}; expected (N, 28, 28, 1) float32 in [0, 1]")
        return batch

    # -------------------------------------------------------------------------- inference
    def predict(self, name: str, batch: np.ndarray) -> np.ndarray:
        """(N, 28, 28, 1) float32 in [0, 1] -> (N, 10) probabilities, calibrated where calibration.json has the
        model's temperature; 'ensemble' = mean of the three (calibrated), then its own temperature."""
        self._check_name(name)
        batch = self._checked(batch)
        if name == ENSEMBLE:
            self.load(name)
            mean = np.mean([self.predict(n, batch) for n in BASE_MODELS], axis=0)
            return self.calibration.apply(name, mean) if self.calibration else mean
        model = self.load(name)
        if len(batch) == 0:
            return np.zeros((0, 10), np.float32)
        out = np.asarray(model.run(np.ascontiguousarray(batch)), dtype=np.float32).reshape(len(batch), 10)
        return self.calibration.apply(name, out) if self.calibration else out
