"""The small CNN: three conv blocks (conv, batch norm, ReLU, max pooling), then Dense 120 -> 10.

Convolutions share weights across positions, so a stroke is recognised wherever it is: far fewer parameters
than the ANN and much better accuracy. `convs_per_block` > 1 stacks more convolutions per block (a deeper,
slower variant; the `best` preset keeps one).
"""

from __future__ import annotations

import keras

from study.blocks import add_classifier, add_conv_block


def build_model(
    filters: tuple[int, int, int] = (32, 64, 128),
    convs_per_block: int = 1,
    dense_units: int = 120,
    dropout: float = 0.0,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    name: str = "cnn",
) -> keras.Model:
    """Return an uncompiled CNN: (N, 28, 28, 1) in [0, 1] -> (N, 10) softmax."""
    if len(filters) != 3 or any(int(f) <= 0 for f in filters):
        raise ValueError(f"filters must be three positive widths, one per block, e.g. (32, 64, 128); got {filters!r}.")
    if convs_per_block < 1:
        raise ValueError(f"convs_per_block must be >= 1, got {convs_per_block!r}.")
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=input_shape, name="image"))
    for b, width in enumerate(filters, start=1):
        add_conv_block(model, b, [width] * convs_per_block, batch_norm=True)
    add_classifier(model, dense_units, dropout, num_classes, hidden_name="dense")
    return model
