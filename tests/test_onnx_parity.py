"""The committed models' ONNX twins belong to their .keras files and answer like them: the same digit
everywhere, probabilities within 1e-5, on images this test makes and on the 10,000 MNIST test digits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from common.names import BASE_MODELS, ONNX_KERAS_SHA256
from recognizer import ModelStore
from common.checksum import file_sha256
from recognizer.normalize import normalize_batch
from mnist_fakes import REAL_MNIST as MNIST

MODELS = Path(__file__).resolve().parents[1] / "models"
COMMITTED = [n for n in BASE_MODELS if (MODELS / f"{n}.keras").is_file()]
ATOL = 1e-5
PARITY_IMAGES = 2500  # MNIST test images compared with Keras (the twins read all 10,000 in test_committed_models)

pytestmark = pytest.mark.skipif(not COMMITTED, reason="no trained models/*.keras (python train_all.py)")


def made_images() -> np.ndarray:
    """What the models meet in use (drawn digits, normalised by the recognizer) and what they should survive
    (blank, full, noise): (N, 28, 28, 1) float32 in [0, 1]."""
    crops = []
    for k, digit in enumerate("0123456789" * 3):
        img = np.zeros((140, 110), np.uint8)
        cv2.putText(img, digit, (8, 118), cv2.FONT_HERSHEY_SIMPLEX, 4, 255, 6 + 4 * (k // 10))
        crops.append(img)
    rng = np.random.default_rng(0)
    extra = np.concatenate([np.zeros((1, 28, 28, 1)), np.ones((1, 28, 28, 1)),
                            rng.random((8, 28, 28, 1))]).astype(np.float32)
    return np.concatenate([normalize_batch(crops), extra])


def keras_predict(model, x: np.ndarray, batch: int = 500) -> np.ndarray:
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)])


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore(MODELS, calibrated=False)  # the twin against Keras: both uncalibrated


@pytest.mark.parametrize("name", COMMITTED)
def test_twin_exists_and_belongs_to_its_keras_file(name):
    import onnx

    twin = MODELS / f"{name}.onnx"
    assert twin.is_file(), f"{twin} is missing; make it with: python scripts/export_onnx.py {name}"
    meta = {p.key: p.value for p in onnx.load(str(twin), load_external_data=False).metadata_props}
    assert meta.get(ONNX_KERAS_SHA256) == file_sha256(MODELS / f"{name}.keras"), \
        f"{twin} was exported from another {name}.keras; python scripts/export_onnx.py {name}"


@pytest.mark.parametrize("name", COMMITTED)
def test_twin_answers_like_keras(name, store, request):
    import keras

    model = keras.saving.load_model(MODELS / f"{name}.keras", compile=False)
    sets = {"made": (made_images(), None)}
    if MNIST.is_file():  # the twins' answers on MNIST test are shared with test_committed_models.py
        x, _, probs, _ = request.getfixturevalue("committed_on_mnist_test")
        # Keras is the slow side (VGG16 ~4 ms per image): a quarter of the test set is enough to see a drift
        sets["mnist_test"] = (x[:PARITY_IMAGES], probs[name][:PARITY_IMAGES])
    assert store.predict(name, sets["made"][0][:1]).shape == (1, 10)
    assert store.loaded()[name] == "onnx", "the store did not use the ONNX twin"
    for label, (x, got) in sets.items():
        want = keras_predict(model, x)
        if got is None:
            got = np.concatenate([store.predict(name, x[i:i + 500]) for i in range(0, len(x), 500)])
        diff = float(np.abs(got - want).max())
        flips = int((got.argmax(1) != want.argmax(1)).sum())
        assert flips == 0 and diff <= ATOL, f"{name} on {label} ({len(x)} images): {flips} argmax differ, " \
                                           f"max |difference| {diff:.2e}"
