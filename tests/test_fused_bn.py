"""The fused batch-norm layer must train exactly like Keras' own: same outputs, gradients and moving statistics."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from study import fused_bn  # noqa: E402
from study.fused_bn import FusedBatchNormalization  # noqa: E402


def _pair(shape, dtype):
    plain, fused = keras.layers.BatchNormalization(dtype=dtype), FusedBatchNormalization(dtype=dtype)
    plain.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=v.shape).astype(np.float32) for v in plain.weights]
    weights[3] = np.abs(weights[3]) + 0.1  # moving variance
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


@pytest.mark.parametrize("shape", [(16, 7, 7, 8), (2, 2, 2, 8), (32, 5)])
def test_training_step_matches_keras_batch_norm(shape):
    plain, fused = _pair(shape, "float32")
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, shape).astype(np.float32))
    r = tf.constant(np.random.default_rng(5).normal(size=shape).astype(np.float32))  # a loss with real gradients
    grads = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * r)
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])] + [y.numpy()])
    for a, b in zip(*grads):
        assert np.abs(a - b).max() <= 1e-5 * (1 + np.abs(a).max())
    # moving statistics moved, and by the same (biased-variance) update as Keras'
    assert np.abs(plain.moving_mean.numpy() - _pair(shape, "float32")[0].moving_mean.numpy()).max() > 1e-3
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5)


def test_bfloat16_input_and_inference_mode():
    plain, fused = _pair((8, 4, 4, 3), "mixed_bfloat16")
    x = tf.constant(np.random.default_rng(2).normal(size=(8, 4, 4, 3)).astype(np.float32))
    y = fused(x, training=True)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(plain(x, training=True), tf.float32), atol=0.02)
    before = fused.moving_mean.numpy().copy()
    np.testing.assert_array_equal(fused(x, training=False), plain(x, training=False))  # inference: Keras' own path
    np.testing.assert_array_equal(fused.moving_mean.numpy(), before)


def test_builders_use_fused_layers_only_inside_enabled():
    from cnn import build_model

    assert not fused_bn.has_fused_layers(build_model(filters=(4, 8, 8), dense_units=16))
    with fused_bn.enabled():
        model = build_model(filters=(4, 8, 8), dense_units=16)
    assert fused_bn.has_fused_layers(model) == fused_bn.available()
    assert not fused_bn.has_fused_layers(build_model(filters=(4, 8, 8), dense_units=16))  # switched off again
