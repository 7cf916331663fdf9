"""Keras -> ONNX: the reading side runs the `.onnx` twin of each `.keras` model with ONNX Runtime.

Why: importing TensorFlow and loading Keras models costs seconds and hundreds of MB before the first reading;
ONNX Runtime starts in a fraction of that. The `.keras` file stays the source of truth (training, evaluation);
its sha256 is recorded in the `.onnx` file's metadata (`keras_sha256`) so that the reader can tell a twin that
no longer belongs to its `.keras` (retrained since) and fall back to Keras instead of reading with a stale model.

An export is checked before it replaces the old file: the contract shapes (N, 28, 28, 1) -> (N, 10), and the
same probabilities as Keras on a few inputs (argmax equal, max |difference| <= PARITY_ATOL).

A second output, `features`, carries what the classifier head (the last two dense layers) reads: adapting a
model to one writer refits that head on these features in NumPy (recognizer/adapt.py), so the reading side
needs no TensorFlow to learn. ONNX Runtime computes an output only when asked for it.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from common import tf_env  # noqa: F401  (TensorFlow settings, before Keras loads)
from common.atomic import atomic_path
from common.checksum import file_sha256
from common.names import FEATURES_OUTPUT, ONNX_KERAS_SHA256, train_hint
from recognizer.models import NOT_KERAS

log = logging.getLogger(__name__)
logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # its per-pass INFO lines would drown a training log

INPUT_NAME = "image"
OPSET = 15  # old enough for every ONNX Runtime of the last years, new enough for every layer the builders use
PARITY_ATOL = 1e-5


class ExportError(RuntimeError):
    """The export ran but its result is not a faithful twin of the Keras model (the old .onnx is kept)."""


def onnx_path_for(keras_path: str | os.PathLike) -> Path:
    """`models/cnn.keras` -> `models/cnn.onnx`."""
    return Path(keras_path).with_suffix(".onnx")


def _check_shapes(model, keras_path: Path) -> None:
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    if in_shape[1:] != (28, 28, 1) or out_shape[1:] != (10,):
        raise ExportError(f"{keras_path} expects input {in_shape} and gives {out_shape}; "
                          "the contract is (N, 28, 28, 1) -> (N, 10)")


def _parity_batch() -> np.ndarray:
    """A few inputs that exercise the whole model: blank, full, noise, and a bar."""
    rng = np.random.default_rng(0)
    batch = np.zeros((6, 28, 28, 1), np.float32)
    batch[1] = 1.0
    batch[2:5] = rng.random((3, 28, 28, 1), dtype=np.float32)
    batch[5, 4:24, 12:16] = 1.0
    return batch


def add_features_output(proto) -> None:
    """Expose the input of the penultimate dense layer (the head's features) as the output `features`.

    Every builder ends in Dense(hidden) -> Dense(10, softmax); their MatMuls are the graph's last two, so the
    penultimate MatMul's input is the features tensor (flatten output for the CNN and VGG16, the first hidden
    layer's activations for the ANN)."""
    import onnx
    from onnx import TensorProto, helper

    if any(o.name == FEATURES_OUTPUT for o in proto.graph.output):
        return
    matmuls = [n for n in proto.graph.node if n.op_type in ("MatMul", "Gemm")]
    if len(matmuls) < 2:  # no classifier head to adapt: the twin reads as before, without the output
        log.info("%s: fewer than two dense layers, no '%s' output", proto.graph.name, FEATURES_OUTPUT)
        return
    source = matmuls[-2].input[0]
    proto.graph.node.append(helper.make_node("Identity", [source], [FEATURES_OUTPUT], name="features_identity"))
    proto.graph.output.append(helper.make_tensor_value_info(FEATURES_OUTPUT, TensorProto.FLOAT, ["N", None]))
    onnx.checker.check_model(proto)


def export_onnx(keras_path: str | os.PathLike, onnx_path: str | os.PathLike | None = None, model=None) -> Path:
    """Write the ONNX twin of `keras_path` (default: beside it, `.onnx`) atomically; returns its path.

    `model` may be the already loaded Keras model (train_all.py has it in memory); it must be the one saved in
    `keras_path`, whose checksum is recorded. Raises ExportError if the result does not match Keras.
    """
    import keras
    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    keras_path = Path(keras_path)
    target = Path(onnx_path) if onnx_path is not None else onnx_path_for(keras_path)
    if not zipfile.is_zipfile(keras_path):  # Keras itself would say "File not found" about a damaged file
        raise ExportError(f"{keras_path} is {NOT_KERAS}; {train_hint(keras_path.stem)}")
    digest = file_sha256(keras_path)
    if model is None:
        model = keras.saving.load_model(keras_path, compile=False)
    _check_shapes(model, keras_path)
    spec = [tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME)]
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():  # Keras' tf2onnx patch probes `np.object`, which NumPy 2 warns about
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*np.object.*")
            model.export(str(tmp), format="onnx", verbose=False, input_signature=spec, opset_version=OPSET)
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in ((ONNX_KERAS_SHA256, digest), ("keras_file", keras_path.name),
                           ("contract", "(N, 28, 28, 1) float32 in [0, 1] -> (N, 10) probabilities")):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = f"ONNX twin of {keras_path.name}; made by study/export.py"
        add_features_output(proto)
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        batch = _parity_batch()
        got = session.run(None, {session.get_inputs()[0].name: batch})[0]
        want = np.asarray(model(batch, training=False))
        diff = float(np.abs(got - want).max())
        if got.shape != want.shape or diff > PARITY_ATOL or (got.argmax(1) != want.argmax(1)).any():
            raise ExportError(f"ONNX export of {keras_path} differs from Keras (shape {got.shape} vs {want.shape}, "
                              f"max |difference| {diff:.2e} > {PARITY_ATOL:g}); {target} left unchanged")
    log.info("exported %s -> %s (%.1f MB, max |difference| to Keras %.1e)", keras_path, target,
             target.stat().st_size / 1e6, diff)
    return target


def export_string_onnx(keras_path: str | os.PathLike, onnx_path: str | os.PathLike | None = None,
                       model=None) -> Path:
    """The ONNX twin of the string reader (string_reader/model.py): (N, 32, W, 1) -> (N, W/4, 11), any W; of
    joined readers (N, W/4, M, 11).

    Checked like the digit models' twins: the same probabilities as Keras on strips of two widths."""
    import keras
    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    from recognizer.paper import STRIP_HEIGHT

    keras_path = Path(keras_path)
    target = Path(onnx_path) if onnx_path is not None else onnx_path_for(keras_path)
    digest = file_sha256(keras_path)
    if model is None:
        model = keras.saving.load_model(keras_path, compile=False)
    spec = [tf.TensorSpec((None, STRIP_HEIGHT, None, 1), tf.float32, name="strip")]
    joined = len(model.output.shape) == 4  # string_reader.model.join: (N, W/4, M, 11), one row per reader
    readers = f"{model.output.shape[2]} readers, " if joined else ""
    rng = np.random.default_rng(0)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*np.object.*")
            model.export(str(tmp), format="onnx", verbose=False, input_signature=spec, opset_version=OPSET)
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in ((ONNX_KERAS_SHA256, digest), ("keras_file", keras_path.name),
                           ("contract", f"(N, {STRIP_HEIGHT}, W, 1) float32 ink in [0, 1] -> (N, W/4, {readers}11) "
                                        "probabilities, index 0 blank, d + 1 digit d")):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = f"ONNX twin of {keras_path.name}; made by study/export.py"
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        for width in (64, 200):
            batch = rng.random((2, STRIP_HEIGHT, width, 1), dtype=np.float32)
            got = session.run(None, {session.get_inputs()[0].name: batch})[0]
            want = np.asarray(model(batch, training=False))
            diff = float(np.abs(got - want).max())
            if got.shape != want.shape or diff > 1e-4:
                raise ExportError(f"ONNX export of {keras_path} differs from Keras at width {width} (shape "
                                  f"{got.shape} vs {want.shape}, max |difference| {diff:.2e}); {target} unchanged")
    log.info("exported %s -> %s (%.1f MB)", keras_path, target, target.stat().st_size / 1e6)
    return target
