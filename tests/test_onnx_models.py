"""ONNX twins: export with a checksum, ONNX Runtime on the reading path, and every way a twin can be wrong
(missing, stale, corrupt, wrong shape), each with small models the test builds itself."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recognizer import MODEL_NAMES, ModelStore, RecognizerError
from common.checksum import file_sha256
from test_recognizer_models import tiny_model

REPO = Path(__file__).resolve().parents[1]


def batch(n: int = 6, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """ann/cnn/vgg16 as tiny .keras files, each with its .onnx twin."""
    from study.export import export_onnx

    d = tmp_path_factory.mktemp("onnx_models")
    for i, name in enumerate(("ann", "cnn", "vgg16")):
        tiny_model(i).save(d / f"{name}.keras")
        export_onnx(d / f"{name}.keras")
    return d


def copy_models(src: Path, dst: Path, *names: str, suffixes=(".keras", ".onnx")) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        for s in suffixes:
            if (src / f"{n}{s}").is_file():
                shutil.copy(src / f"{n}{s}", dst / f"{n}{s}")
    return dst


def store_log(caplog) -> list[logging.LogRecord]:
    """What the store itself logged (TensorFlow's own warnings, when it is loaded, are not the store's)."""
    return [r for r in caplog.records if r.name == "recognizer.models"]


def keras_probs(path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.saving.load_model(path, compile=False)(x, training=False))


def test_export_records_checksum_and_store_runs_onnx(exported, caplog):
    import onnx

    proto = onnx.load(str(exported / "cnn.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["keras_sha256"] == file_sha256(exported / "cnn.keras")
    store = ModelStore(exported)
    assert store.status() == {n: "ok" for n in MODEL_NAMES}
    caplog.set_level(logging.INFO, logger="recognizer.models")
    x = batch()
    for name in ("ann", "cnn", "vgg16"):
        got = store.predict(name, x)
        want = keras_probs(exported / f"{name}.keras", x)
        assert got.shape == (6, 10) and got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-5 and (got.argmax(1) == want.argmax(1)).all()
    assert store.loaded() == {"ann": "onnx", "cnn": "onnx", "vgg16": "onnx"}
    assert not [r for r in store_log(caplog) if r.levelno >= logging.WARNING]
    ens = store.predict("ensemble", x)
    assert np.allclose(ens, np.mean([store.predict(n, x) for n in ("ann", "cnn", "vgg16")], axis=0), atol=1e-7)


def test_export_refuses_a_model_with_the_wrong_shape(tmp_path):
    from study.export import ExportError, export_onnx

    tiny_model(0, side=32).save(tmp_path / "cnn.keras")
    with pytest.raises(ExportError, match=r"\(None, 32, 32, 1\).*the contract is \(N, 28, 28, 1\) -> \(N, 10\)"):
        export_onnx(tmp_path / "cnn.keras")
    assert not (tmp_path / "cnn.onnx").exists()


def test_missing_twins_fall_back_to_keras_with_one_warning(exported, tmp_path, caplog):
    d = copy_models(exported, tmp_path / "m", "ann", "cnn", suffixes=(".keras",))
    store = ModelStore(d)
    assert store.status()["cnn"] == "ok"
    caplog.set_level(logging.INFO, logger="recognizer.models")
    x = batch()
    got = {n: store.predict(n, x) for n in ("cnn", "ann")}
    warnings = [r.getMessage() for r in store_log(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "cnn.onnx is missing" in warnings[0]
    assert f"re-export them with: python scripts/export_onnx.py --models-dir {d}" in warnings[0]
    assert store.loaded() == {"cnn": "keras", "ann": "keras"}
    assert np.abs(got["cnn"] - keras_probs(d / "cnn.keras", x)).max() <= 1e-6


def test_a_stale_twin_is_not_used(exported, tmp_path, caplog):
    """cnn.keras retrained (another model) but cnn.onnx still the old export: read with the new Keras model."""
    d = copy_models(exported, tmp_path / "m", "cnn")
    tiny_model(42).save(d / "cnn.keras")
    caplog.set_level(logging.WARNING, logger="recognizer.models")
    store = ModelStore(d)
    x = batch()
    got = store.predict("cnn", x)
    assert store.loaded() == {"cnn": "keras"}
    assert np.abs(got - keras_probs(d / "cnn.keras", x)).max() <= 1e-6
    assert not np.allclose(got, keras_probs(exported / "cnn.keras", x), atol=1e-3)
    (msg,) = [r.getMessage() for r in store_log(caplog) if r.levelno == logging.WARNING]
    assert "cnn.onnx was exported from another cnn.keras" in msg and "scripts/export_onnx.py" in msg


def test_onnx_alone_is_enough(exported, tmp_path):
    """A reading-only copy may ship only the .onnx files: nothing to compare against, so they are used."""
    d = copy_models(exported, tmp_path / "m", "cnn", suffixes=(".onnx",))
    store = ModelStore(d)
    assert store.status()["cnn"] == "ok" and store.status()["ann"] == "missing"
    assert store.predict("cnn", batch()).shape == (6, 10)
    assert store.loaded() == {"cnn": "onnx"}


def test_corrupt_twin_names_the_file(exported, tmp_path, caplog):
    # with its .keras beside it: fall back, and say which file is bad and how to rebuild it
    d = copy_models(exported, tmp_path / "a", "cnn")
    data = (d / "cnn.onnx").read_bytes()
    (d / "cnn.onnx").write_bytes(data[: len(data) // 3])  # truncated, like an interrupted copy
    caplog.set_level(logging.WARNING, logger="recognizer.models")
    store = ModelStore(d)
    assert store.predict("cnn", batch()).shape == (6, 10)
    assert store.loaded() == {"cnn": "keras"}
    (msg,) = [r.getMessage() for r in store_log(caplog) if r.levelno == logging.WARNING]
    assert f"{d / 'cnn.onnx'} could not be read" in msg and "python scripts/export_onnx.py" in msg
    # alone: the model is broken (status says why), the others keep working
    d = copy_models(exported, tmp_path / "b", "ann", "vgg16", suffixes=(".onnx",))
    (d / "cnn.onnx").write_bytes(b"\x08\x07garbage" * 10)
    store = ModelStore(d)
    with pytest.raises(RecognizerError) as e:
        store.predict("cnn", batch())
    assert str(d / "cnn.onnx") in str(e.value) and "train it with: python train_all.py --models cnn" in str(e.value)
    st = store.status()
    assert st["cnn"].startswith("error: cnn.onnx is not a readable ONNX model")
    assert st["ensemble"].startswith("error: cnn")
    assert st["ann"] == "ok" and store.predict("ann", batch()).shape == (6, 10)
    assert store.default_name() in ("ann", "vgg16")


def test_wrong_shape_twin_is_refused_with_the_shapes(exported, tmp_path):
    import tensorflow as tf

    d = copy_models(exported, tmp_path / "m", "ann")
    wrong = tiny_model(3, side=32, classes=7)
    wrong(np.zeros((1, 32, 32, 1), np.float32))
    wrong.export(str(d / "cnn.onnx"), format="onnx", verbose=False,
                 input_signature=[tf.TensorSpec((None, 32, 32, 1), tf.float32)])
    store = ModelStore(d)
    with pytest.raises(RecognizerError) as e:
        store.load("cnn")
    msg = str(e.value)
    assert "cnn.onnx expects input (N, 32, 32, 1)" in msg and "gives (N, 7)" in msg
    assert "the contract is (N, 28, 28, 1) -> (N, 10)" in msg
    assert store.status()["cnn"].startswith("error: cnn.onnx expects input (N, 32, 32, 1)")
    assert store.predict("ann", batch()).shape == (6, 10)


def test_store_is_shared_between_threads(exported):
    from concurrency import run_in_threads

    store = ModelStore(exported, threads=2)
    x = batch(10)
    want = store.predict("cnn", x)
    out, errors = run_in_threads(lambda: store.predict("cnn", x), threads=4, repeats=20)
    assert not errors and len(out) == 80 and all(np.array_equal(o, want) for o in out)


READ_AND_REPORT = """
import runpy, sys
sys.argv = ["recognize.py", *sys.argv[1:]]
try:
    runpy.run_path("recognize.py", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("EXIT", code, "TENSORFLOW", "tensorflow" in sys.modules, "KERAS", "keras" in sys.modules)
"""


def test_recognize_py_reads_a_folder_without_tensorflow(exported, tmp_path):
    import cv2

    folder = tmp_path / "drawings"
    folder.mkdir()
    for i, text in enumerate(("147", "20", "9")):
        img = np.full((160, 120 * len(text)), 255, np.uint8)
        for k, ch in enumerate(text):
            cv2.putText(img, ch, (15 + 110 * k, 125), cv2.FONT_HERSHEY_SIMPLEX, 4, 0, 12)
        cv2.imwrite(str(folder / f"n{i}.png"), img)
    for model in ("cnn", "ensemble"):
        out = subprocess.run([sys.executable, "-c", READ_AND_REPORT, str(folder), "--models-dir", str(exported),
                              "--model", model, "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
        lines = out.stdout.strip().splitlines()
        assert lines[-1] == "EXIT 0 TENSORFLOW False KERAS False", (out.stdout, out.stderr)
        readings = [line for line in lines[:-1] if line.startswith("{")]
        assert len(readings) == 3 and all(f'"model": "{model}"' in r for r in readings), out.stdout


def test_thread_count_suits_small_machines():
    from recognizer.models import default_threads

    assert [default_threads(n) for n in (1, 2, 4, 8, 64)] == [1, 1, 2, 4, 4]
    assert ModelStore("models").threads == default_threads()


def test_a_damaged_keras_file_is_named_as_such(exported, tmp_path):
    """Keras says "File not found" about a damaged .keras; the store and the exporter say what is wrong."""
    from study.export import ExportError, export_onnx

    d = tmp_path / "m"
    d.mkdir()
    data = (exported / "cnn.keras").read_bytes()
    (d / "cnn.keras").write_bytes(data[: len(data) // 2])  # cut, like an interrupted download
    with pytest.raises(ExportError, match=r"cnn.keras is not a Keras model file.*--models cnn"):
        export_onnx(d / "cnn.keras")
    store = ModelStore(d)
    with pytest.raises(RecognizerError, match=r"cnn.keras could not be loaded \(not a Keras model file"):
        store.load("cnn")
    assert store.status()["cnn"] == "error: not a Keras model file (not a .keras zip archive)"
