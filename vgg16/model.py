"""VGG16 for grayscale MNIST: the 13-conv topology of Simonyan & Zisserman, one input channel.

The five 2x2 poolings use 'same' padding (28 -> 14 -> 7 -> 4 -> 2 -> 1), so the network reads the 28x28
digit as it is: padding it to 32x32 first would cost 30% more computation for a border that carries nothing.
Layer names match
`keras.applications.VGG16`, so ImageNet weights can be copied in: the RGB first-layer kernel is folded to one
channel by summing over the colour axis, which is exactly VGG16 looking at a gray image (R = G = B).
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np
from keras import layers

from study.blocks import add_classifier, add_conv_block

log = logging.getLogger(__name__)

# (filters, number of 3x3 convolutions) per block: 2+2+3+3+3 = 13 conv layers.
BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
IMAGENET_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def fold_rgb_kernel(kernel: np.ndarray) -> np.ndarray:
    """(3, 3, 3, F) RGB kernel -> (3, 3, 1, F): the response to a gray image is unchanged."""
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"expected an RGB conv kernel of shape (kh, kw, 3, filters), got {kernel.shape}.")
    return kernel.sum(axis=2, keepdims=True)


def build_model(
    weights: str | os.PathLike | None = None,
    head_units: int = 256,
    dropout: float = 0.5,
    batch_norm: bool = False,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    name: str = "vgg16",
) -> keras.Model:
    """Return an uncompiled grayscale VGG16: (N, 28, 28, 1) in [0, 1] -> (N, 10) softmax.

    weights: None (random init), "imagenet" (Keras download, needs internet) or the path of a VGG16
        weights file as saved by `keras.applications.VGG16(include_top=False)` (`.weights.h5` or `.h5`).
    batch_norm: add batch normalisation after each convolution (trains much faster from scratch).
    """
    if input_shape[-1] != 1:
        raise ValueError(f"this VGG16 reads one grayscale channel; input_shape must end in 1, got {input_shape}.")
    pretrained = weights is not None
    if pretrained and batch_norm:
        raise ValueError("ImageNet VGG16 has no batch norm: pass batch_norm=False with weights, or weights=None.")
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=input_shape, name="image"))
    if pretrained:  # ImageNet convs expect 0-255 pixels; the mean is folded into the first bias below
        model.add(layers.Rescaling(255.0, name="to_255"))
    for b, (width, n_convs) in enumerate(BLOCKS, start=1):
        add_conv_block(model, b, [width] * n_convs, batch_norm=batch_norm)
    add_classifier(model, head_units, dropout, num_classes, hidden_name="fc")
    if pretrained:
        _load_imagenet_convs(model, weights)
    return model


def _load_imagenet_convs(model: keras.Model, weights) -> None:
    """Copy the 13 conv layers of an RGB VGG16 into `model`, folding block1_conv1 to one channel."""
    try:
        rgb = keras.applications.VGG16(include_top=False, weights=str(weights), input_shape=(32, 32, 3))  # its minimum size
    except Exception as exc:  # missing file, wrong file, no internet for "imagenet"
        raise ValueError(
            f"Could not load VGG16 weights from {weights!r} ({exc}). Pass weights=None to train from scratch, "
            "or the path of a file saved by keras.applications.VGG16(include_top=False)."
        ) from exc
    for b, (_, n_convs) in enumerate(BLOCKS, start=1):
        for c in range(1, n_convs + 1):
            conv_name = f"block{b}_conv{c}"
            kernel, bias = rgb.get_layer(conv_name).get_weights()
            if conv_name == "block1_conv1":
                # conv(g - mean_c) summed over c == g * sum_c(w_c) - sum_c(w_c * mean_c): fold the mean into the bias.
                bias = bias - np.einsum("hwcf,c->f", kernel, IMAGENET_BGR_MEAN)
                kernel = fold_rgb_kernel(kernel)
            model.get_layer(conv_name).set_weights([kernel, bias])
    log.info("Loaded ImageNet VGG16 conv weights from %s (first layer folded to grayscale).", weights)
