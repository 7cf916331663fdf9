"""Tests run with the same TensorFlow settings as the project's programs (common.tf_env)."""

from common import tf_env  # noqa: F401


import pytest  # noqa: E402

from mnist_fakes import fake_arrays, write_npz  # noqa: E402


@pytest.fixture(scope="module")
def fake_npz(tmp_path_factory):
    """A small MNIST-layout file of easy fake digits (400 per split), for training runs in tests."""
    return write_npz(tmp_path_factory.mktemp("fake") / "mnist.npz", fake_arrays(n_test=400))


@pytest.fixture
def without_exports(monkeypatch):
    """train_all runs that leave out the ONNX twin and the adaptation file (3-5 s a run on two cores): train_all
    only logs their failures, so a test that asserts neither could not fail on them; test_train_all's end-to-end
    run checks that they are written."""
    import train_all

    monkeypatch.setattr(train_all, "export_twin", lambda keras_path: None)
    monkeypatch.setattr(train_all, "export_adaptation", lambda model, keras_path, data: None)


@pytest.fixture(scope="session")
def committed_on_mnist_test():
    """(x, y, {model: probabilities}, store): the committed models' ONNX twins on the 10,000 MNIST test images,
    computed once for the session (the accuracy check and the Keras parity check both need them; VGG16 alone
    takes tens of seconds on two cores)."""
    import os
    from pathlib import Path

    import numpy as np

    from common.names import BASE_MODELS
    from mnist_fakes import REAL_MNIST
    from recognizer import ModelStore

    models = Path(__file__).resolve().parents[1] / "models"
    names = [n for n in BASE_MODELS if (models / f"{n}.keras").is_file()]
    if not REAL_MNIST.is_file() or not names:
        pytest.skip(f"needs real MNIST at {REAL_MNIST} and committed models")
    with np.load(REAL_MNIST) as d:
        x, y = d["x_test"][:, :, :, None].astype(np.float32) / 255.0, d["y_test"]
    # all cores: nothing else runs beside this batch job; uncalibrated: metrics.json records the models' own output
    store = ModelStore(models, threads=os.cpu_count(), calibrated=False)
    return x, y, {n: np.concatenate([store.predict(n, x[i:i + 500]) for i in range(0, len(x), 500)])
                  for n in names}, store
