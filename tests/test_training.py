"""Training recipes, precision, schedule and the augmentation that prepares the models for drawn input."""

import numpy as np
import pytest

from study import augment, fit, precision, recipes
from study.recipes import Augment, Recipe


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from study.data import load
    from mnist_fakes import fake_arrays, write_npz

    return load(str(write_npz(tmp_path_factory.mktemp("fake") / "mnist.npz", fake_arrays(n_test=200))), limit=200)
def _digits(n=16):
    x = np.zeros((n, 28, 28, 1), np.float32)
    x[:, 8:20, 12:16] = 1.0  # an upright bar: a "1"
    return x


def test_seed_preset_is_the_reference_recipe_for_all_three():
    for name in ("ann", "cnn", "vgg16"):
        r = recipes.recipe_for("seed", name)
        assert (r.epochs, r.batch_size, r.learning_rate, r.augment, r.schedule) == (5, 32, 1e-4, None, "constant")
    assert recipes.recipe_for("best", "cnn", epochs=3, batch_size=None).epochs == 3
    assert recipes.recipe_for("best", "cnn", batch_size=None).batch_size == recipes.PRESETS["best"]["cnn"].batch_size
    with pytest.raises(ValueError, match="choose one of"):
        recipes.recipe_for("fastest", "cnn")


def test_best_preset_is_what_the_readme_describes_for_every_model():
    """AdamW, one-cycle, label smoothing, augmentation, CPU-sized batches: a recipe that silently falls back
    to a Recipe() default (batch 32, lr 1e-4, constant) would train for an hour and lose accuracy."""
    for name in ("ann", "cnn", "vgg16"):
        r = recipes.recipe_for("best", name)
        assert r.schedule == "onecycle" and r.weight_decay > 0 and r.label_smoothing > 0, name
        assert r.augment is not None and r.batch_size >= 64 and r.learning_rate >= 1e-3, name


def test_onecycle_warms_up_to_the_peak_then_decays():
    r = Recipe(epochs=10, learning_rate=1e-2, schedule="onecycle", warmup_fraction=0.1)
    lr = fit.learning_rate(r, total_steps=1000)
    at = lambda step: float(lr(step))  # noqa: E731
    assert at(0) == pytest.approx(1e-2 / 25, rel=1e-3)
    assert at(100) == pytest.approx(1e-2, rel=1e-3)
    assert at(550) < at(300) < at(100) and at(1000) < 1e-4


def test_augmentation_without_distortion_is_the_identity():
    x = _digits()
    out = augment.augment_batch(x, Augment(rotation_deg=0, shift_px=0, zoom=0, thickness=0)).numpy()
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_augmentation_moves_and_thickens_within_bounds():
    x = _digits(256)
    out = augment.augment_batch(x, Augment(rotation_deg=0, shift_px=3, zoom=0, thickness=0)).numpy()
    ys, xs = np.mgrid[:28, :28]
    com_x = (out[..., 0] * xs).sum((1, 2)) / out[..., 0].sum((1, 2))
    assert np.all(np.abs(com_x - 13.5) <= 3.01) and np.std(com_x) > 0.5  # shifted, never beyond 3 px
    thick = augment.augment_batch(x, Augment(rotation_deg=0, shift_px=0, zoom=0, thickness=1.0)).numpy()
    ink = thick.sum((1, 2, 3))
    assert ink.min() < x[0].sum() < ink.max()  # some strokes thinner, some bolder
    assert 0.0 <= thick.min() and thick.max() <= 1.0


def test_pick_redrawn_mixes_the_two_copies_in_the_given_share():
    a, b = np.zeros((2000, 28, 28, 1), np.float32), np.ones((2000, 28, 28, 1), np.float32)
    picked = augment.pick_redrawn((a, b), 0.3).numpy()
    assert set(np.unique(picked)) == {0.0, 1.0}
    assert abs(picked.mean() - 0.3) < 0.04
    assert augment.pick_redrawn(a, 0.3) is a


def test_redrawn_digits_are_mnist_normalised():
    import cv2

    from study.mnist_ink import renormalize_mnist

    x = np.zeros((20, 28, 28), np.uint8)
    for i, img in enumerate(x):  # a "7" of varying size and pen, off-centre
        s = 8 + i // 2
        cv2.polylines(img, [np.array([[3, 3], [3 + s, 3], [3 + s // 2, 3 + s]])], False, 255, 1 + i % 3)

    out = renormalize_mnist(x)
    assert out.shape == (20, 28, 28, 1) and out.dtype == np.float32
    for img in out[..., 0]:
        rows, cols = np.nonzero(img > 0.1)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in range(18, 22)  # fitted into the 20x20 box
        ys, xs = np.mgrid[:28, :28]
        assert abs((img * ys).sum() / img.sum() - 14) < 1.5 and abs((img * xs).sum() / img.sum() - 14) < 1.5
    with pytest.raises(ValueError, match="28, 28"):
        renormalize_mnist(np.zeros((3, 32, 32)))


def test_redrawn_bold_nine_keeps_its_loop():
    """A bold 9 whose loop is nearly filled (interior at 60% of the peak) must not become a 7 in training."""
    import cv2

    from study.mnist_ink import renormalize_mnist

    nine = np.zeros((28, 28), np.uint8)
    cv2.circle(nine, (14, 9), 5, 150, -1)          # the dim, almost filled inside of the loop
    cv2.circle(nine, (14, 9), 5, 255, 3)           # bold loop
    cv2.line(nine, (18, 11), (16, 25), 255, 3)     # stem

    def holes(mask):
        contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        return 0 if hierarchy is None else int((hierarchy[0][:, 3] != -1).sum())

    assert holes(cv2.resize(nine, (112, 112), interpolation=cv2.INTER_LINEAR) > 127) == 0  # the old level: a blob
    assert holes(renormalize_mnist(nine[None])[0, :, :, 0] > 0.3) == 1


def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it(monkeypatch):
    from study import machine

    monkeypatch.setattr(machine, "has_bf16", lambda: True)
    assert precision.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(machine, "has_bf16", lambda: False)
    assert precision.resolve_precision("auto") == "float32"
    assert precision.resolve_precision("bfloat16") == "bfloat16"  # an explicit choice is kept
    with pytest.raises(ValueError, match="float32"):
        precision.resolve_precision("fp8")


def test_fast_model_gets_a_plain_float32_twin_with_the_same_weights(tmp_path):
    """bf16 and fused batch norm are for training speed only: what is evaluated and saved must compute in
    float32 with plain Keras layers everywhere."""
    import keras

    from cnn import build_model
    from study import fused_bn

    def small():
        return build_model(filters=(4, 8, 8), dense_units=16)

    with precision.fast_build("bfloat16"):
        mixed = small()
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert mixed.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert mixed.get_layer("probabilities").compute_dtype == "float32"  # softmax stays float32 for the loss
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    assert fused_bn.has_fused_layers(mixed)
    twin = precision.portable_twin(mixed, small)
    assert {layer.compute_dtype for layer in twin.layers} == {"float32"}
    assert not fused_bn.has_fused_layers(twin)
    for a, b in zip(twin.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    p_twin, p_mixed = twin.predict(x, verbose=0), mixed.predict(x, verbose=0)
    assert np.abs(p_twin - p_mixed).max() < 0.05  # same function, up to bf16 rounding
    assert np.abs(p_twin - p_mixed).max() > 0  # ...and really computed at another precision
    path = tmp_path / "m.keras"
    twin.save(path)
    loaded = keras.saving.load_model(path, compile=False)  # no custom objects needed
    assert {layer.compute_dtype for layer in loaded.layers} == {"float32"}
    np.testing.assert_allclose(loaded.predict(x, verbose=0), p_twin, atol=1e-6)
    assert precision.portable_twin(twin, small) is twin  # float32 models are passed through
    with pytest.raises(ValueError, match="different architecture"):
        precision.portable_twin(mixed, lambda: build_model(filters=(4, 8, 16), dense_units=16))


def test_fit_really_feeds_the_augmented_copies(tiny_data, monkeypatch):
    """With redraw share 1 and blank "redrawn" copies, training sees only blank images: train accuracy stays at
    chance. (A pipeline that dropped the augmentation would learn the easy fake digits.)"""
    from cnn import build_model

    monkeypatch.setattr(augment, "redrawn", lambda x, rows=None: np.zeros_like(x))
    recipe = Recipe(epochs=3, batch_size=32, learning_rate=3e-3, augment=Augment(redraw=1.0))
    history = fit.fit(build_model(filters=(4, 8, 8), dense_units=16), tiny_data, recipe, verbose=0).history
    assert history["accuracy"][-1] < 0.3
    recipe = Recipe(epochs=3, batch_size=32, learning_rate=3e-3, augment=Augment(redraw=0.0))
    history = fit.fit(build_model(filters=(4, 8, 8), dense_units=16), tiny_data, recipe, verbose=0).history
    assert history["accuracy"][-1] > 0.45  # the same recipe on the real digits learns them (chance: 0.1)


def test_stroke_width_pooling_matches_plain_max_pooling():
    # the augmentation pools with the batch as channels (faster on CPU); it must be the same pooling
    import tensorflow as tf

    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype(np.float32)
    for size in (2, 3):
        np.testing.assert_array_equal(augment.max_pool_per_image(x, size).numpy(),
                                      tf.nn.max_pool2d(x, size, 1, "SAME").numpy())
