"""The dense baseline: every pixel connected to every hidden unit, no notion of locality.

Reference design: Flatten -> 512 -> 128 -> 10. Batch norm and dropout are options the `best` preset uses.
"""

from __future__ import annotations

import keras
from keras import layers

from study import fused_bn


def build_model(
    hidden_units: tuple[int, ...] = (512, 128),
    dropout: float = 0.0,
    batch_norm: bool = False,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    name: str = "ann",
) -> keras.Model:
    """Return an uncompiled dense classifier: (N, 28, 28, 1) in [0, 1] -> (N, 10) softmax."""
    if not hidden_units or any(int(u) <= 0 for u in hidden_units):
        raise ValueError(f"hidden_units must be positive layer widths such as (512, 128), got {hidden_units!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a fraction in [0, 1), got {dropout!r}.")
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=input_shape, name="image"))
    model.add(layers.Flatten(name="flatten"))
    for i, units in enumerate(hidden_units, start=1):
        model.add(layers.Dense(int(units), use_bias=not batch_norm, name=f"dense{i}"))
        if batch_norm:
            model.add(fused_bn.batch_norm(f"bn{i}"))
        model.add(layers.Activation("relu", name=f"relu{i}"))
        if dropout:
            model.add(layers.Dropout(dropout, name=f"dropout{i}"))
    # float32 even under a mixed bf16 policy: probabilities near 0 and 1 need more than bf16's 8 bits
    model.add(layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32"))
    return model
