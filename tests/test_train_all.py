"""train_all.py end to end on data the test makes (and on real MNIST when it is here), plus its CLI errors."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import train_all
from mnist_fakes import REAL_MNIST

ROOT = Path(__file__).resolve().parents[1]
PER_MODEL = ("curves.png", "confusion.png", "misclassified.png", "report.txt")


def _check_outputs(run_dir: Path, names, n_test):
    """A run's own folder: metrics.json with the data, versions and one entry per model; models; plots."""
    import keras

    from study.promote import model_files

    models_dir, plots_dir = run_dir / "models", run_dir / "plots"
    metrics = json.loads((models_dir / "metrics.json").read_text())
    assert metrics["split"]["train"] == metrics["split"]["val"] == n_test
    assert {"tensorflow", "keras", "numpy", "cpu"} <= set(metrics["versions"])
    assert f"{os.cpu_count()} cores" in metrics["versions"]["cpu"]
    assert metrics["run_seconds"] >= sum(m["train_seconds"] for m in metrics["models"].values()) > 0
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    for name in names:
        m = metrics["models"][name]
        confusion = np.array(m["confusion"])
        assert confusion.shape == (10, 10) and confusion.sum() == n_test
        assert m["test_accuracy"] == pytest.approx(np.trace(confusion) / n_test)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.nan_to_num(np.diag(confusion) / confusion.sum(axis=1))
        np.testing.assert_allclose(m["per_class"]["recall"], recall, atol=1e-9)
        assert m["params"] > 0 and m["train_seconds"] > 0 and m["ms_per_image"] > 0 and m["epochs"] > 0
        assert m["cpu"] == metrics["versions"]["cpu"] and m["precision"] in ("float32", "bfloat16")
        assert m["keras_sha256"] and m["val_checksum"] == metrics["split"]["val_checksum"]
        model = keras.saving.load_model(models_dir / f"{name}.keras", compile=False)
        p = np.asarray(model(x))
        assert p.shape == (3, 10)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
        for suffix in PER_MODEL:
            assert (plots_dir / f"{name}_{suffix}").stat().st_size > 0
        for file in model_files(name):  # the ONNX twin and the adaptation file too: train_all only logs their failures
            assert (models_dir / file).stat().st_size > 0, file
        assert "precision" in (plots_dir / f"{name}_report.txt").read_text()
    for png in plots_dir.glob("*.png"):
        with Image.open(png) as im:
            im.verify()
    assert (plots_dir / "samples.png").exists() and (plots_dir / "comparison.png").exists()
    table = (plots_dir / "comparison.md").read_text()
    for name in names:
        m = metrics["models"][name]
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} | "))  # this run's, first
        if m["val_accuracy"] >= 0.5:
            assert f"| {m['test_accuracy'] * 100:.2f} | {m['val_accuracy'] * 100:.2f} | {m['epochs']:.1f} |" in row
        else:  # near chance: no result, no figure shown as one (issue 39)
            assert "did not learn here" in row and f"{m['test_accuracy'] * 100:.2f}" not in row
    return metrics


def test_end_to_end_on_fake_data_learns_and_writes_everything(tmp_path, fake_npz):
    out_m, out_p = tmp_path / "m", tmp_path / "p"
    common = ["--preset", "seed", "--limit", "400", "--data", str(fake_npz), "--models-dir", str(out_m),
              "--plots-dir", str(out_p), "--quiet"]
    rc = train_all.main(["--models", "cnn", "ann", "--epochs", "2", "--batch-size", "32", "--learning-rate", "3e-3",
                         "--run-dir", str(tmp_path / "run1"), *common])
    assert rc == 0
    metrics = _check_outputs(tmp_path / "run1", ["ann", "cnn"], 400)
    assert metrics["models"]["ann"]["test_accuracy"] > 0.9  # the fake classes are easy: it must learn them
    assert metrics["ensemble"]["members"] == ["ann", "cnn"]
    assert metrics["models"]["ann"]["recipe"]["learning_rate"] == 3e-3  # the override reached the recipe
    assert metrics["models"]["ann"]["precision"] == "float32"  # 'seed' reproduces the study: float32 everywhere
    shipped = json.loads((out_m / "metrics.json").read_text())
    assert list(shipped["models"]) == ["ann", "cnn"]  # tables list the models in one order, whatever --models says
    assert (out_p / "ann_curves.png").exists() and (out_p / "comparison.png").exists()
    # the promoted models come calibrated: their temperatures fitted on this run's validation data, each tied to
    # the file it was fitted for (the run's own folder holds its models' temperatures too)
    from common.checksum import file_sha256

    cal = json.loads((out_m / "calibration.json").read_text())
    assert set(cal) == {"ann", "cnn"} and cal["ann"]["n"] == metrics["split"]["val"]
    assert cal["cnn"]["keras_sha256"] == file_sha256(out_m / "cnn.keras") and cal["cnn"]["temperature"] > 0
    assert set(json.loads((tmp_path / "run1" / "models" / "calibration.json").read_text())) == {"ann", "cnn"}
    # Retraining one model with --replace keeps the other's entry, and the shipped ensemble still averages both
    # (trained in bfloat16 this time: what is saved must still be a float32 model)
    # the kept CNN's figures as if measured on older validation data: the ANN-only run reads it for the shipped
    # ensemble and must re-measure it, or the default model would be chosen by test accuracy
    stale = json.loads((out_m / "metrics.json").read_text())
    stale["models"]["cnn"]["val_checksum"] = "an older split"
    (out_m / "metrics.json").write_text(json.dumps(stale))
    rc = train_all.main(["--models", "ann", "--epochs", "1", "--precision", "bfloat16", "--replace",
                         "--run-dir", str(tmp_path / "run2"), *common])
    assert rc == 0
    again = json.loads((out_m / "metrics.json").read_text())
    assert set(again["models"]) == {"ann", "cnn"} and again["models"]["ann"]["epochs"] == 1
    assert again["models"]["ann"]["precision"] == "bfloat16"
    assert again["ensemble"]["members"] == ["ann", "cnn"]
    assert again["models"]["cnn"]["val_checksum"] == metrics["split"]["val_checksum"]
    assert again["models"]["cnn"]["val_accuracy"] == pytest.approx(metrics["models"]["cnn"]["val_accuracy"])
    import keras

    from study.data import load

    test = load(str(fake_npz), 400).test
    mean = np.mean([keras.saving.load_model(out_m / f"{n}.keras", compile=False).predict(test.x, verbose=0)
                    for n in ("ann", "cnn")], axis=0)
    assert again["ensemble"]["test_accuracy"] == pytest.approx(np.mean(mean.argmax(1) == test.y))
    saved_ann = keras.saving.load_model(out_m / "ann.keras", compile=False)
    assert {layer.compute_dtype for layer in saved_ann.layers} == {"float32"}


@pytest.mark.skipif(not REAL_MNIST.exists(), reason=f"real MNIST not found at {REAL_MNIST}")
def test_vgg16_and_the_ann_on_a_real_mnist_slice(tmp_path):
    """The real data file and the one model the fake-data runs never train (VGG16: grayscale input, its own
    resizing); the CNN shares the ANN's data path and is trained in the fake-data runs."""
    out_m, out_p = tmp_path / "m", tmp_path / "p"
    rc = train_all.main(["--models", "ann", "vgg16", "--epochs", "1", "--limit", "300",
                         "--batch-size", "64", "--data", str(REAL_MNIST), "--no-handwriting",
                         "--models-dir", str(out_m), "--plots-dir", str(out_p), "--run-dir", str(tmp_path / "run"),
                         "--quiet"])
    assert rc == 0
    metrics = _check_outputs(tmp_path / "run", ["ann", "vgg16"], 300)
    assert metrics["preset"] == "best"
    assert metrics["models"]["ann"]["test_accuracy"] > 0.25  # 5 warm-up steps on 300 images: well above chance


def _cli(*args):
    return subprocess.run([sys.executable, "train_all.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli_help_and_errors(tmp_path, caplog):
    help_text = _cli("--help").stdout
    assert "--preset {seed,best}" in help_text and "--limit N" in help_text and "MNIST_PATH" in help_text
    bad = _cli("--epochs", "0")
    assert bad.returncode == 2 and "--epochs must be positive" in bad.stderr
    mix = _cli("--handwriting-repeat", "0")
    assert mix.returncode == 2 and "--handwriting-repeat must be positive" in mix.stderr
    styles = _cli("--styles", "1.5")
    assert styles.returncode == 2 and "--styles must be between 0 and 1" in styles.stderr
    # in this process: the CLI's main() imports Keras before it reads the data (7 s in a fresh process)
    caplog.set_level(logging.ERROR)
    assert train_all.main(["--data", str(tmp_path / "nowhere.npz"), "--models-dir", str(tmp_path / "m")]) == 2
    assert "does not exist" in caplog.text and "MNIST_PATH" in caplog.text
    assert not (tmp_path / "m").exists()  # nothing written when the data is missing
    wrong = _cli("--models", "resnet")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_validation_parts_are_read_from_the_one_validation_pass():
    """metrics.json's val_parts: each part's share of the probabilities over the whole validation data."""
    import math
    from types import SimpleNamespace

    from study.data import Split

    def split(labels):
        return Split(np.zeros((len(labels), 28, 28, 1), np.float32), np.array(labels, np.uint8))

    data = SimpleNamespace(val_parts={"mnist": split([0, 1, 2]), "handwriting": split([3, 3]), "empty": split([])})
    probabilities = np.eye(10, dtype=np.float32)[[0, 1, 9, 3, 4]]  # right, right, wrong | right, wrong
    parts = train_all.val_parts_accuracy(probabilities, data)
    assert parts["mnist"] == 2 / 3 and parts["handwriting"] == 0.5 and math.isnan(parts["empty"])


SETS_BUT_PENDIGITS = ("uji", "chars74k", "cvl", "semeion")  # one small set is enough to prepare and record


def test_the_data_record_the_code_that_prepared_the_handwriting(tmp_path, fake_npz, monkeypatch):
    """Issue 39: with the preparation code's version beside the validation checksum, a later run can tell other
    code from another machine (train_all.other_validation_data)."""
    from test_handwriting import make_root

    from study.handwriting import code_version

    monkeypatch.setenv("HANDWRITING_CACHE", str(tmp_path / "cache"))
    root = make_root(tmp_path / "hw", skip=SETS_BUT_PENDIGITS)
    args = train_all.parse_args(["--data", str(fake_npz), "--handwriting", str(root), "--limit", "100", "--run-dir",
                                 str(tmp_path / "run")])
    described = train_all.load_data(args).describe()["handwriting"]
    assert described["prepared_by"] == code_version() and described["checksum"]
