"""What the reading side needs to adapt a model to one writer: its head's weights and its features' statistics.

The adaptation (recognizer/adapt.py) refits a model's classifier head, the last two dense layers, on the
features its ONNX twin gives (study/export.py adds that output), in NumPy: a user who installed only the app can
teach it. To keep the head from forgetting everyone else without shipping any data set, it rehearses on
features drawn from per-class mixtures of diagonal Gaussians fitted here on the training images: per class
eight parts (k-means), each a mean and a standard deviation of each feature and its share (~1.3 MB for the
CNN). These are parameters of the model, like its weights, not data: each part averages hundreds of digits,
and no image and no single digit's features can be recovered from them.

The file `models/<name>.adapt.npz` records the checksum of the `.keras` file it was made from; the reader
ignores a file that does not belong to the model beside it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from common.atomic import atomic_path
from common.checksum import file_sha256
from common.names import adapt_file
from recognizer.head import save_base_head

log = logging.getLogger(__name__)

PER_CLASS = 3000  # training digits per class the statistics are taken from (seeded sample; more moves nothing)
COMPONENTS = 8    # Gaussians per class (k-means parts): 1 per class let adaptations forget twice as much


def _dense_layers(model) -> tuple:
    """(penultimate Dense, its batch norm or None, last Dense): the head the adaptation refits."""
    import keras

    layers = list(model.layers)
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense)]
    if len(dense) < 2:
        raise ValueError(f"{model.name} has fewer than two dense layers: no classifier head to adapt")
    first, last = dense[-2], dense[-1]
    norms = [layer for layer in layers[first + 1:last] if isinstance(layer, keras.layers.BatchNormalization)]
    return layers[first], (norms[0] if norms else None), layers[last]


def head_weights(model) -> dict[str, np.ndarray]:
    """w1, b1, w2, b2 (float32) of the head, a batch norm between the two dense layers folded into w1 and b1."""
    hidden, norm, out = _dense_layers(model)
    w1 = np.asarray(hidden.kernel, np.float64)
    b1 = np.asarray(hidden.bias, np.float64) if hidden.use_bias else np.zeros(w1.shape[1])
    if norm is not None:
        gamma = np.asarray(norm.gamma) if norm.scale else np.ones(w1.shape[1])
        beta = np.asarray(norm.beta) if norm.center else np.zeros(w1.shape[1])
        scale = gamma / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
        w1, b1 = w1 * scale, (b1 - np.asarray(norm.moving_mean)) * scale + beta
    return {"w1": w1.astype(np.float32), "b1": b1.astype(np.float32),
            "w2": np.asarray(out.kernel, np.float32), "b2": np.asarray(out.bias, np.float32)}


def feature_model(model):
    """A Keras model from the images to the head's input (what the ONNX `features` output gives)."""
    import keras

    hidden, _, _ = _dense_layers(model)
    return keras.Model(model.inputs, hidden.input)


def sample_per_class(y: np.ndarray, per_class: int = PER_CLASS, seed: int = 0) -> np.ndarray:
    """Indices of up to `per_class` digits of each class, seeded."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == k))[:per_class] for k in range(10)]
    return np.sort(np.concatenate(picks))


def feature_statistics(features: np.ndarray, y: np.ndarray, components: int = COMPONENTS,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Per class, a mixture of `components` diagonal Gaussians of the features: k-means (scikit-learn) splits
    the class's digits, each part gives a mean, a standard deviation and its share. Also the count per class."""
    from sklearn.cluster import KMeans

    means, stds, weights = [], [], []
    for k in range(10):
        f = features[y == k]
        parts = KMeans(components, n_init=3, random_state=seed).fit(f).labels_
        means.append([f[parts == j].mean(0) for j in range(components)])
        stds.append([f[parts == j].std(0) for j in range(components)])
        weights.append(np.bincount(parts, minlength=components) / len(f))
    return {"mean": np.asarray(means, np.float32), "std": np.asarray(stds, np.float32),
            "weight": np.asarray(weights, np.float64), "count": np.bincount(y, minlength=10).astype(np.int64)}


def write_adapt_file(model, keras_path: str | os.PathLike, x: np.ndarray, y: np.ndarray,
                     batch_size: int = 256, per_class: int = PER_CLASS) -> Path:
    """Write `<name>.adapt.npz` beside `keras_path` from the saved `model` and its training images `x`, `y`."""
    keras_path = Path(keras_path)
    target = keras_path.with_name(adapt_file(keras_path.stem))
    idx = sample_per_class(np.asarray(y), per_class)
    features = np.asarray(feature_model(model).predict(x[idx], batch_size=batch_size, verbose=0), np.float32)
    features = features.reshape(len(idx), -1)
    arrays = {**head_weights(model), **feature_statistics(features, np.asarray(y)[idx])}
    # the head must give the model's own probabilities: a mismatch means the head was read wrong
    hidden = np.maximum(features[:64] @ arrays["w1"] + arrays["b1"], 0.0)
    logits = hidden @ arrays["w2"] + arrays["b2"]
    mine = np.exp(logits - logits.max(1, keepdims=True))
    mine /= mine.sum(1, keepdims=True)
    theirs = np.asarray(model.predict(x[idx[:64]], verbose=0))
    diff = float(np.abs(mine - theirs).max())
    if diff > 1e-4:
        raise ValueError(f"{keras_path.name}: the extracted head differs from the model by {diff:.1e}")
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            save_base_head(f, arrays, arrays, file_sha256(keras_path))
    log.info("wrote %s (head %s -> %s -> 10, statistics of %d digits, %.0f KB)", target, arrays["w1"].shape[0],
             arrays["w1"].shape[1], len(idx), target.stat().st_size / 1024)
    return target
