"""ModelStore: missing / corrupt files, lazy thread-safe caching, ensemble, default choice, images errors."""

import json
import threading

import numpy as np
import pytest

from recognizer import MODEL_NAMES, ModelStore, Recognizer, RecognizerError
from recognizer.images import load_gray


def tiny_model(seed: int, side: int = 28, classes: int = 10):
    """A small untrained model of the contract's shape (or another `side`/`classes`, to test refusals)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((side, side, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(classes, activation="softmax")(h)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def three_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    for i, name in enumerate(("ann", "cnn", "vgg16")):
        tiny_model(i).save(d / f"{name}.keras")
    return d


def test_missing_models_say_how_to_train(tmp_path):
    store = ModelStore(tmp_path)
    assert store.status() == {n: "missing" for n in MODEL_NAMES}
    assert store.default_name() is None
    with pytest.raises(RecognizerError) as e:
        store.predict("cnn", np.zeros((1, 28, 28, 1), np.float32))
    msg = str(e.value)
    assert "cnn.keras" in msg and "train it with: python train_all.py --models cnn" in msg
    with pytest.raises(RecognizerError, match="train_all.py"):
        Recognizer(store).read(np.zeros((50, 50), np.uint8))


def test_corrupt_model_is_reported(tmp_path):
    (tmp_path / "vgg16.keras").write_bytes(b"this is not a zip file")
    store = ModelStore(tmp_path)
    assert store.status()["vgg16"].startswith("error: ")
    assert store.status()["ensemble"].startswith("error: vgg16")
    with pytest.raises(RecognizerError) as e:
        store.load("vgg16")
    assert "vgg16.keras" in str(e.value) and "--models vgg16" in str(e.value)
    # a zip that is not a Keras model: found out on loading, remembered in status()
    import zipfile

    with zipfile.ZipFile(tmp_path / "ann.keras", "w") as z:
        z.writestr("hello.txt", "hi")
    assert store.status()["ann"] == "ok"
    with pytest.raises(RecognizerError, match="ann.keras could not be loaded"):
        store.load("ann")
    assert store.status()["ann"].startswith("error: ")
    (tmp_path / "ann.keras").write_bytes(b"")  # replaced, e.g. by a new training run: clear() forgets the error
    store.clear("ann")
    assert store.status()["ann"].startswith("error: not a Keras model")


def test_unknown_model_name(tmp_path):
    with pytest.raises(RecognizerError, match="unknown model 'knn'"):
        ModelStore(tmp_path).predict("knn", np.zeros((1, 28, 28, 1), np.float32))


def test_predict_cache_threads_and_ensemble(three_models):
    store = ModelStore(three_models)
    assert store.status() == {n: "ok" for n in MODEL_NAMES}
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(store.load("cnn"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loaded) == 4 and all(m is loaded[0] for m in loaded)  # loaded once, shared
    batch = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    per = {n: store.predict(n, batch) for n in ("ann", "cnn", "vgg16")}
    for p in per.values():
        assert p.shape == (5, 10) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(per["ann"], per["cnn"])
    ens = store.predict("ensemble", batch)
    assert np.allclose(ens, (per["ann"] + per["cnn"] + per["vgg16"]) / 3, atol=1e-6)
    assert store.predict("cnn", np.zeros((0, 28, 28, 1), np.float32)).shape == (0, 10)
    with pytest.raises(RecognizerError, match=r"expected \(N, 28, 28, 1\)"):
        store.predict("cnn", np.zeros((2, 32, 32, 1), np.float32))


def test_default_name_uses_metrics(three_models, tmp_path):
    store = ModelStore(three_models)
    assert store.default_name() == "cnn"  # no metrics.json: cnn > vgg16 > ann
    d = tmp_path / "m"
    d.mkdir()
    for n in ("ann", "vgg16"):
        (d / f"{n}.keras").write_bytes((three_models / f"{n}.keras").read_bytes())
    # the layout train_all.py writes (the published reference numbers must not count)
    (d / "metrics.json").write_text(json.dumps({
        "preset": "full", "reference_study": {"ann": 0.954, "cnn": 0.9878, "vgg16": 0.9907},
        "models": {"ann": {"test_accuracy": 0.98}, "vgg16": {"test_accuracy": 0.97}, "cnn": {"test_accuracy": 0.999}},
        "ensemble": {"members": ["ann", "cnn", "vgg16"], "test_accuracy": 0.9995}}))
    store = ModelStore(d)
    assert store.metrics() == {"ann": 0.98, "vgg16": 0.97, "cnn": 0.999, "ensemble": 0.9995}
    assert store.default_name() == "ann"  # cnn and the ensemble are better but need cnn.keras
    assert store.status()["ensemble"] == "missing"
    (d / "cnn.keras").write_bytes((three_models / "cnn.keras").read_bytes())
    assert store.default_name() == "ensemble"
    # a tie goes to the model that loads and reads faster: the CNN rather than all three
    metrics = json.loads((d / "metrics.json").read_text())
    metrics["ensemble"]["test_accuracy"] = 0.999
    (d / "metrics.json").write_text(json.dumps(metrics))
    assert store.default_name() == "cnn"
    # with validation figures measured on the same data, those decide, not the test figures
    for n, v in {"ann": 0.95, "cnn": 0.96, "vgg16": 0.97}.items():
        metrics["models"][n] |= {"val_accuracy": v, "val_checksum": "abc"}
    metrics["ensemble"] |= {"val_accuracy": 0.965, "val_checksum": "abc"}
    (d / "metrics.json").write_text(json.dumps(metrics))
    assert store.default_name() == "vgg16"
    metrics["models"]["vgg16"]["val_checksum"] = "other"  # measured on other data: not comparable
    (d / "metrics.json").write_text(json.dumps(metrics))
    assert store.default_name() == "cnn"


def test_wrong_arrays_and_files(tmp_path):
    with pytest.raises(RecognizerError, match="shape"):
        load_gray(np.zeros((4, 5, 6, 7), np.uint8))
    with pytest.raises(RecognizerError, match="dtype int64"):
        load_gray(np.zeros((4, 5), np.int64))
    with pytest.raises(RecognizerError, match="outside"):
        load_gray(np.full((4, 5), 3.0))
    with pytest.raises(RecognizerError, match="no such file"):
        load_gray(tmp_path / "nope.png")
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(RecognizerError, match="not an image"):
        load_gray(tmp_path / "t.txt")
    import cv2

    cv2.imwrite(str(tmp_path / "ok.png"), np.full((60, 80), 200, np.uint8))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(RecognizerError, match="cut.png"):
        load_gray(tmp_path / "cut.png")
    assert load_gray(tmp_path / "ok.png").shape == (60, 80)
    from PIL import Image

    assert load_gray(Image.open(tmp_path / "ok.png")).shape == (60, 80)
    with pytest.raises(RecognizerError, match="cannot read an image from list"):
        load_gray([[1, 2], [3, 4]])
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[2:8, 4:6] = (0, 0, 0, 255)  # black ink on a transparent canvas
    g = load_gray(rgba)
    assert g[0, 0] == 255 and g[5, 5] == 0
