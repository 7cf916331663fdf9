"""Each model builder honours the contract: (N, 28, 28, 1) in [0, 1] -> (N, 10) probabilities."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import ann  # noqa: E402
import cnn  # noqa: E402
import vgg16  # noqa: E402
from common.atomic import save_model  # noqa: E402

X = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)


def _layers(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def _check_contract(model):
    assert tuple(model.input_shape) == (None, 28, 28, 1)
    assert tuple(model.output_shape) == (None, 10)
    p = np.asarray(model(X, training=False))
    assert p.shape == (4, 10) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_ann_reference_design():
    m = ann.build_model()
    _check_contract(m)
    assert [d.units for d in _layers(m, keras.layers.Dense)] == [512, 128, 10]
    assert isinstance(m.layers[0], keras.layers.Flatten)
    assert m.count_params() == 784 * 512 + 512 + 512 * 128 + 128 + 128 * 10 + 10


def test_cnn_reference_design():
    m = cnn.build_model()
    _check_contract(m)
    convs = _layers(m, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [32, 64, 128]
    assert len(_layers(m, keras.layers.BatchNormalization)) == 3
    assert len(_layers(m, keras.layers.MaxPooling2D)) == 3
    assert [d.units for d in _layers(m, keras.layers.Dense)] == [120, 10]


def test_vgg16_topology_is_thirteen_convs_in_five_blocks():
    m = vgg16.build_model(head_units=64)
    _check_contract(m)
    convs = _layers(m, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(tuple(c.kernel_size) == (3, 3) for c in convs)
    assert convs[0].kernel.shape == (3, 3, 1, 64)  # one grayscale channel
    assert len(_layers(m, keras.layers.MaxPooling2D)) == 5
    assert m.get_layer("block5_pool").output.shape[1:] == (1, 1, 512)


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (ann.build_model, {"hidden_units": ()}, "hidden_units"),
        (ann.build_model, {"dropout": 1.5}, "dropout"),
        (cnn.build_model, {"filters": (32, 64)}, "three positive widths"),
        (vgg16.build_model, {"input_shape": (28, 28, 3)}, "grayscale"),
        (vgg16.build_model, {"weights": "x.h5", "batch_norm": True}, "batch_norm=False"),
        (vgg16.build_model, {"weights": "/no/such/file.weights.h5"}, "weights=None"),
    ],
)
def test_bad_arguments_say_what_to_pass(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


def test_imagenet_weights_are_folded_to_gray_exactly(tmp_path):
    """A weights file made here stands in for ImageNet's: the gray model must equal RGB VGG16 on R=G=B."""
    keras.utils.set_random_seed(1)
    rgb = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    rgb.save_weights(path)
    gray = vgg16.build_model(weights=path, head_units=32)
    kernel = rgb.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_allclose(gray.get_layer("block1_conv1").get_weights()[0], kernel.sum(axis=2, keepdims=True))
    # Same first-layer response as ImageNet VGG16 (which needs 32x32, hence the pad) fed the gray digit as an
    # RGB image with its usual preprocessing (mean folded into the bias). Only the 1-pixel frame differs:
    # there 'same' padding adds zeros after the mean subtraction in one model and before it in the other.
    padded = np.pad(X, ((0, 0), (2, 2), (2, 2), (0, 0)))
    rgb_in = keras.applications.vgg16.preprocess_input(np.repeat(padded * 255.0, 3, axis=-1))
    ours = np.asarray(keras.Model(gray.inputs, gray.get_layer("block1_conv1").output)(X))[:, 1:-1, 1:-1]
    theirs = np.asarray(keras.Model(rgb.inputs, rgb.get_layer("block1_conv1").output)(rgb_in))[:, 3:-3, 3:-3]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)
    assert np.abs(theirs).max() > 1.0  # a real comparison, not of zeros


def test_saved_model_has_no_optimizer_state_and_reloads(tmp_path):
    import h5py
    import zipfile

    m = cnn.build_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(X, np.arange(4), epochs=1, verbose=0)
    save_model(m, tmp_path / "cnn.keras")
    with zipfile.ZipFile(tmp_path / "cnn.keras") as z:
        z.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as h5:
        assert "optimizer" not in h5.keys()
    loaded = keras.saving.load_model(tmp_path / "cnn.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded(X)), np.asarray(m(X, training=False)), atol=1e-6)
    assert not list(tmp_path.glob(".cnn.*"))  # no temporary file left behind
