"""The string reader: a convolutional network with CTC that reads a whole line of digits at once (Shi et al.'s
CRNN, with 1-D convolutions in place of the recurrent layer: they export to ONNX plainly and run faster on CPUs).

Paper breaks the canvas's one-contour-one-digit rule: digits touch and overlap, separators and underlines join
them. Reading the line whole needs no cut: the network outputs, for every 4-pixel column of a
STRIP_HEIGHT-high strip, the probabilities of blank and the ten digits, and CTC training lets the label be just
the digit string. Input (N, 32, W, 1) ink strength in [0, 1], any W; output (N, W/4, 11) softmax, index 0 blank,
index d+1 digit d.
"""

from __future__ import annotations

import keras
from keras import layers

from recognizer.paper import STRIP_HEIGHT
from study.string_training import members

NUM_CLASSES = 11  # blank + ten digits


def build_model(filters: tuple = (32, 64, 96, 96, 128), context_units: int = 192, dropout: float = 0.2,
                height: int = STRIP_HEIGHT, probabilities: bool = False, name: str = "string") -> keras.Model:
    """Return an uncompiled string reader: (N, height, W, 1) in [0, 1] -> (N, W // 4, 11) logits (what CTC
    training takes), or softmax probabilities with `probabilities=True` (what the reader runs)."""
    if len(filters) != 5 or any(int(f) <= 0 for f in filters):
        raise ValueError(f"filters must be five positive widths, e.g. (32, 64, 96, 96, 128); got {filters!r}.")
    if height % 16:
        raise ValueError(f"height must be a multiple of 16 (four poolings of the rows); got {height}.")
    inp = keras.Input(shape=(height, None, 1), name="strip")
    x = inp
    pools = ((2, 2), (2, 2), None, (2, 1), (2, 1))  # columns: /4 in all (a frame per 4 px); rows: /16
    for i, (f, pool) in enumerate(zip(filters, pools), start=1):
        x = layers.Conv2D(int(f), 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if pool:
            x = layers.MaxPooling2D(pool, name=f"pool{i}")(x)
    rows = height // 16
    x = layers.Permute((2, 1, 3), name="columns_first")(x)          # (N, W/4, rows, C)
    x = layers.Reshape((-1, rows * int(filters[-1])), name="frames")(x)
    for i in (1, 2):
        x = layers.Conv1D(context_units, 3, padding="same", activation="relu", name=f"context{i}")(x)
        x = layers.Dropout(dropout, name=f"drop{i}")(x)
    x = layers.Dense(NUM_CLASSES, name="logits")(x)
    if probabilities:
        x = layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, x, name=name)


def join(readers: list[keras.Model], name: str = "string") -> keras.Model:
    """One model that runs several trained readers (each with its softmax) on a strip: (N, H, W, 1) ->
    (N, W // 4, M, 11), each reader's frame probabilities. Readers trained from different seeds misread different
    strips; the decoder (recognizer/string_reader.py) reads the string they find likeliest together, which reads
    more numbers exactly than any of them (docs/RESULTS.md "Paper", fifth round). One model with one ONNX twin.
    Joined readers among `readers` count with each of their own."""
    readers = [r for reader in readers for r in members(reader)]
    if len(readers) < 2:
        raise ValueError(f"join needs two or more readers; got {len(readers)}.")
    inp = keras.Input(shape=(readers[0].input_shape[1], None, 1), name="strip")
    frames = []
    for i, reader in enumerate(readers, start=1):
        reader.name = f"reader{i}"  # nested models need names of their own
        frames.append(layers.Reshape((-1, 1, NUM_CLASSES), name=f"frames{i}")(reader(inp)))
    return keras.Model(inp, layers.Concatenate(axis=2, name="probabilities")(frames), name=name)
