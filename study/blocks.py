"""Layer blocks the CNN and VGG16 builders share, so both name and build them the same way."""

from __future__ import annotations

from keras import layers

from study import fused_bn


def add_conv_block(model, block: int, widths, batch_norm: bool = True) -> None:
    """3x3 'same' convolutions (each: conv [-> batch norm] -> ReLU), then 2x2 max pooling.

    Layers are named `block{b}_conv{c}` like keras.applications.VGG16, so weights can be matched by name.
    """
    for c, width in enumerate(widths, start=1):
        name = f"block{block}_conv{c}"
        if batch_norm:
            model.add(layers.Conv2D(int(width), 3, padding="same", use_bias=False, name=name))
            model.add(fused_bn.batch_norm(f"block{block}_bn{c}"))
            model.add(layers.Activation("relu", name=f"block{block}_relu{c}"))
        else:
            model.add(layers.Conv2D(int(width), 3, padding="same", activation="relu", name=name))
    model.add(layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool"))


def add_classifier(model, hidden_units: int, dropout: float, num_classes: int, hidden_name: str) -> None:
    """Flatten -> Dense(hidden, ReLU) [-> Dropout] -> Dense(num_classes, softmax)."""
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(hidden_units, activation="relu", name=hidden_name))
    if dropout:
        model.add(layers.Dropout(dropout, name="dropout"))
    # float32 even under a mixed bf16 policy: probabilities near 0 and 1 need more than bf16's 8 bits
    model.add(layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32"))
