"""Batch normalisation trained through TensorFlow's fused kernel.

Keras 3 computes batch norm from generic ops (moments, then normalise, in float32): on 2 CPU cores that
is most of a small CNN's training step. TensorFlow's FusedBatchNormV3 (oneDNN on x86) does the same in one
pass and takes bfloat16 input, so small models train much faster (docs/RESULTS.md). The layer has exactly the
weights and config of `keras.layers.BatchNormalization` and behaves the same outside training, so a trained
model is copied into plain Keras layers before it is saved (`study.precision.portable_twin`) and loads anywhere.
"""

from __future__ import annotations

import contextlib

import keras

_enabled = False


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` whose training-mode forward pass is one fused TensorFlow op (TF backend only)."""

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        if not (training and self.trainable) or mask is not None or self.renorm or self.axis % rank != rank - 1:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma = self.gamma if self.scale else tf.ones(self.moving_mean.shape)
        beta = self.beta if self.center else tf.zeros(self.moving_mean.shape)
        x = inputs if rank == 4 else tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32), epsilon=self.epsilon, is_training=True
        )[:3]
        # The kernel reports the unbiased batch variance; Keras keeps the biased one in its moving average.
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
        variance = variance * (n - 1.0) / tf.maximum(n, 2.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        y = y if rank == 4 else tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)


def available() -> bool:
    """The fused kernel is TensorFlow's: other Keras backends train with the plain layer."""
    return keras.backend.backend() == "tensorflow"


@contextlib.contextmanager
def enabled():
    """Inside, `batch_norm()` builds fused layers (where the backend has them)."""
    global _enabled
    previous, _enabled = _enabled, available()
    try:
        yield
    finally:
        _enabled = previous


def batch_norm(name: str) -> keras.layers.BatchNormalization:
    """The batch-norm layer the model builders use: fused inside `enabled()`, plain Keras otherwise."""
    return (FusedBatchNormalization if _enabled else keras.layers.BatchNormalization)(name=name)


def has_fused_layers(model) -> bool:
    return any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
