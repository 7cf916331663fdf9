"""Evaluation numbers, plots and reports on a tiny hand-wired Keras model (no MNIST needed).

The model is Flatten -> Dense(10, softmax) with weights set by hand: an image of digit k has one
bright pixel at index k, which the weights map to logit k -- except digit 9, which is wired to 8.
So the exact confusion matrix, accuracy and probabilities are known in advance and every number
that `evaluate_model` reports can be checked against an independent numpy computation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from study.evaluation import Evaluation, evaluate_model  # noqa: E402
from study.plots import (  # noqa: E402
    plot_comparison,
    plot_confusion,
    plot_curves,
    plot_misclassified,
    plot_samples,
)
from study.reports import keras_summary_text, write_comparison_markdown, write_model_report  # noqa: E402

N_PER_CLASS = 12
STRENGTH = 3.0  # logit of the wired class; the others get 0 (plus noise from the other pixels)


def _weights() -> tuple[np.ndarray, np.ndarray]:
    """Pixel k -> logit k for k < 9; pixel 9 -> logit 8 (the deliberate mistake); small noise elsewhere."""
    rng = np.random.default_rng(0)
    w = rng.normal(0.0, 0.05, size=(784, 10)).astype(np.float32)
    w[:10, :] = 0.0
    for k in range(9):
        w[k, k] = STRENGTH
    w[9, 8] = STRENGTH
    b = np.linspace(-0.1, 0.1, 10).astype(np.float32)
    return w, b


def _data() -> tuple[np.ndarray, np.ndarray]:
    """Images with faint background noise and one bright pixel at the label's index."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(10), N_PER_CLASS)
    rng.shuffle(y)
    x = rng.uniform(0.0, 0.2, size=(len(y), 28, 28, 1)).astype(np.float32)
    x[:, 0, :10, 0] = 0.0
    x[np.arange(len(y)), 0, y, 0] = 1.0
    return x, y


def _softmax_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    logits = x.reshape(len(x), -1).astype(np.float64) @ w.astype(np.float64) + b
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def setup():
    w, b = _weights()
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")],
        name="tiny",
    )
    model.layers[-1].set_weights([w, b])
    x, y = _data()
    result = evaluate_model(model, x, y, batch_size=32)  # 120 images: several batches + a partial one
    return model, x, y, w, b, result


# ------------------------------------------------------------------------------------------ evaluation
def test_confusion_and_accuracy_are_exact(setup):
    _, x, y, _, _, r = setup
    conf = np.array(r.confusion)
    expected = np.diag([N_PER_CLASS] * 9 + [0])
    expected[9, 8] = N_PER_CLASS  # every 9 is read as 8
    np.testing.assert_array_equal(conf, expected)
    assert conf.sum() == len(y)
    assert r.n_test == len(y)
    assert r.test_accuracy == pytest.approx(np.trace(conf) / len(y))
    assert r.test_accuracy == pytest.approx(0.9)
    np.testing.assert_array_equal(r.predictions, np.where(y == 9, 8, y))


def test_per_class_scores_match_the_confusion_matrix(setup):
    r = setup[-1]
    conf = np.array(r.confusion, dtype=float)
    recall = np.diag(conf) / conf.sum(axis=1)
    col = conf.sum(axis=0)
    precision = np.divide(np.diag(conf), col, out=np.zeros(10), where=col > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(10), where=denom > 0)
    np.testing.assert_allclose(r.per_class["recall"], recall)
    np.testing.assert_allclose(r.per_class["precision"], precision)
    np.testing.assert_allclose(r.per_class["f1"], f1)
    assert r.per_class["precision"][8] == pytest.approx(0.5)  # half of the "8" predictions are 9s
    assert r.per_class["recall"][9] == 0.0 and r.per_class["f1"][9] == 0.0


def test_probabilities_and_loss_match_a_hand_computation(setup):
    _, x, y, w, b, r = setup
    probs = _softmax_numpy(x, w, b)
    np.testing.assert_allclose(r.probabilities, probs, atol=1e-5)
    hand_loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
    assert r.test_loss == pytest.approx(hand_loss, rel=1e-4)
    keras_loss = float(np.mean(keras.losses.categorical_crossentropy(np.eye(10)[y], probs.astype(np.float32))))
    assert r.test_loss == pytest.approx(keras_loss, rel=1e-4)
    np.testing.assert_allclose(r.confidence, probs.max(axis=1), atol=1e-5)


def test_report_timing_and_one_hot_labels(setup):
    model, x, y, _, _, r = setup
    assert "0.9000" in r.report and "macro avg" in r.report
    assert np.isfinite(r.ms_per_image) and 0 < r.ms_per_image < 1000
    one_hot = evaluate_model(model, x, np.eye(10)[y], batch_size=64)
    assert one_hot.confusion == r.confusion
    with pytest.raises(ValueError):
        evaluate_model(model, x, y[:-1])


def test_summary_is_plain_json(setup):
    r: Evaluation = setup[-1]
    s = r.summary()
    assert json.loads(json.dumps(s)) == s
    assert set(s) >= {"test_accuracy", "test_loss", "ms_per_image", "per_class", "confusion", "n_test"}
    assert "probabilities" not in s and "predictions" not in s
    assert type(s["confusion"][0][0]) is int and type(s["test_accuracy"]) is float


# ------------------------------------------------------------------------------------------ plots
def _assert_png(path, min_w: int = 200, min_h: int = 150) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
        assert w >= min_w and h >= min_h, (path, img.size)
        assert w <= 6000 and h <= 6000, (path, img.size)
        pixels = np.asarray(img.convert("L"))
        assert pixels.std() > 1.0, f"{path} is blank"


def _no_temp_files(folder) -> None:
    leftovers = [p.name for p in folder.iterdir() if ".tmp" in p.name]
    assert not leftovers, leftovers


def test_every_plot_writes_a_real_png(setup, tmp_path):
    _, x, y, _, _, r = setup
    plot_curves({"accuracy": [0.8, 0.9, 0.95], "val_accuracy": [0.82, 0.9, 0.93],
                 "loss": [0.6, 0.3, 0.2], "val_loss": [0.55, 0.35, 0.25]}, "tiny", tmp_path / "curves.png")
    plot_curves({"accuracy": [0.9], "val_accuracy": [0.91], "loss": [0.3], "val_loss": [0.28]},
                "tiny", tmp_path / "curves1.png")
    plot_confusion(r.confusion, "tiny", tmp_path / "sub" / "confusion.png")
    plot_misclassified(x, y, r.predictions, r.confidence, "tiny", tmp_path / "wrong.png", max_images=9)
    plot_samples(x, y, tmp_path / "samples.png", per_class=5)
    for name in ("curves", "curves1", "wrong", "samples"):
        _assert_png(tmp_path / f"{name}.png")
    _assert_png(tmp_path / "sub" / "confusion.png")
    _no_temp_files(tmp_path)


def test_misclassified_with_no_errors(tmp_path):
    x, y = _data()
    conf = np.ones(len(y))
    plot_misclassified(x, y, y, conf, "perfect", tmp_path / "none.png")
    _assert_png(tmp_path / "none.png", min_w=150, min_h=80)


# ------------------------------------------------------------------------------------------ reports
RUN = {
    "ann": {"test_accuracy": 0.9781, "val_accuracy": 0.9775, "params": 109_386, "train_seconds": 41.2,
            "epochs": 12.04, "ms_per_image": 0.012, "cpu": "Zen 1", "date": "2026-12-07"},
    "cnn": {"test_accuracy": 0.9923, "val_accuracy": 0.9911, "params": 225_034, "train_seconds": 301.7,
            "epochs": 0.46, "ms_per_image": 0.19, "cpu": "Zen 1", "date": "2026-12-07", "trained_from": "models/",
            "why_fine_tuned": "0.5 epochs fit"},
    "vgg16": {"test_accuracy": 0.0958, "val_accuracy": 0.0992, "params": 14_982_474, "train_seconds": 240.0,
              "epochs": 0.12, "ms_per_image": 4.6, "cpu": "Zen 1", "date": "2026-12-07"},
}
SHIPPED = {"models": {
    "cnn": {"test_accuracy": 0.9939, "val_accuracy": 0.9908, "val_checksum": "old", "epochs": 4.704,
            "train_seconds": 287.07, "params": 340_434, "ms_per_image": 0.184, "cpu": "Zen 3", "run": "runs/s27-keep2"},
    "vgg16": {"test_accuracy": 0.9933, "val_accuracy": 0.9881, "val_checksum": "new", "epochs": 1.577,
              "train_seconds": 866.35, "params": 14_860_106, "ms_per_image": 2.337, "cpu": "Zen 4",
              "run": "runs/best-20261130-101500"}},
    "ensemble": {"members": ["ann", "cnn", "vgg16"], "test_accuracy": 0.9947, "val_accuracy": 0.9905,
                 "val_checksum": "old"}}


def test_comparison_shows_each_number_with_its_source(tmp_path):
    from study import comparison

    rows = comparison.rows(["ann", "cnn", "vgg16"], RUN, {}, SHIPPED, "new", {"cnn": 0.9901},
                           {"members": ["ann", "cnn"], "test_accuracy": 0.993, "val_accuracy": 0.992},
                           "Zen 1", "2026-12-07")
    assert [(r.model, r.kind) for r in rows] == [
        ("ann", "trained here"), ("cnn", "fine-tuned here"), ("cnn", "shipped"), ("vgg16", "no result"),
        ("vgg16", "shipped"), ("ensemble", "trained here"), ("ensemble", "shipped")]
    plot_comparison(rows, tmp_path / "comparison.png", "this run beside the shipped models")
    _assert_png(tmp_path / "comparison.png", min_w=600)
    text = write_comparison_markdown(tmp_path / "comparison.md", rows, reference={"cnn": 98.78, "ann": 0.954})
    assert (tmp_path / "comparison.md").read_text(encoding="utf-8") == text
    lines = text.splitlines()
    assert lines[0].startswith("| Model | Numbers from | Test accuracy % | Val accuracy % | Epochs |")
    assert "| ann | trained here | 97.81 | 97.75 | 12.0 | 41 | 0.012 | 109,386 | Zen 1 | 2026-12-07 |" in lines
    assert "| cnn | fine-tuned here from models/ (0.5 epochs fit) | 99.23 | 99.11 | 0.5 | 302 |" in text
    # the shipped CNN: its recorded figures, its validation figure re-measured by this run, its machine and date
    assert "| cnn | shipped (models/) | 99.39 | 99.01* | 4.7 | 287 | 0.184 | 340,434 | Zen 3 | not recorded " \
           "(run runs/s27-keep2) |" in lines
    assert "| vgg16 | shipped (models/) | 99.33 | 98.81 | 1.6 | 866 | 2.337 | 14,860,106 | Zen 4 | 2026-11-30 |" in lines
    # the VGG16 at chance is no result: none of its figures is shown
    vgg_here = next(line for line in lines if line.startswith("| vgg16 | did not learn here: 9.9%"))
    assert "9.58" not in vgg_here and "| – | – | 0.1 |" in vgg_here
    assert "| ensemble | this run: mean of ann, cnn | 99.30 | 99.20 |" in text
    assert "| ensemble | shipped: mean of ann, cnn, vgg16 | 99.47 | 99.05** |" in text
    assert "* validation accuracy measured by this run." in lines
    assert "** validation accuracy on other validation data." in lines
    assert "Published test accuracy of the reference study: cnn 98.78%, ann 95.40%." in lines
    _no_temp_files(tmp_path)


def test_comparison_reports_the_promotion_decisions(tmp_path):
    from study import comparison
    from study.paired_test import decide

    y = np.repeat(np.arange(10), 20)
    decision = decide(y, np.where(np.arange(200) % 10 == 0, (y + 1) % 10, y), y) | {"promoted": True}
    text = write_comparison_markdown(tmp_path / "c.md", comparison.rows(["ann"], RUN, {}, {}, "new"),
                                     promotions={"ann": decision, "cnn": {"reason": "no usable shipped model"}})
    assert "| ann | 20 | 0 | 9.5e-07 | none | promoted: better: 20 digits gained, 0 lost" in text
    assert "| cnn | – | – | – | – | no usable shipped model |" in text


def test_model_report_contains_sklearn_and_keras_text(setup, tmp_path):
    model, *_, r = setup
    summary_text = keras_summary_text(model)
    assert "Total params" in summary_text and "7,850" in summary_text  # 784*10 + 10
    path = tmp_path / "tiny_report.txt"
    write_model_report(path, "tiny", r.report, summary_text, {**r.summary(), "params": 7850, "epochs": 1})
    text = path.read_text(encoding="utf-8")
    assert r.report.strip() in text and "Total params" in text
    assert "Test accuracy (%)" in text and "90.00" in text and "7,850" in text


def test_a_replaced_shipped_model_is_named_as_such():
    from study import comparison

    rows = comparison.rows(["cnn"], RUN, {}, SHIPPED, "new", promoted=["cnn"])
    assert [(r.model, r.source) for r in rows if r.kind == "shipped"] == [
        ("cnn", "shipped before this run (now in models/previous/)"), ("vgg16", "shipped (models/)"),
        ("ensemble", "shipped before this run: mean of ann, cnn, vgg16")]
