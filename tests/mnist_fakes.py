"""Small MNIST-shaped data sets the tests make themselves (the real MNIST is never needed for these)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# the real MNIST, for the few tests that need it: $MNIST_PATH, else the shared copy beside the checkout
REAL_MNIST = Path(os.environ.get("MNIST_PATH") or Path(__file__).resolve().parents[2] / "shared/data/mnist/mnist.npz")
_CHUNK = 2_000  # images drawn per call in fake_arrays


def fake_arrays(n_train: int = 60_000, n_test: int = 1_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Learnable fake digits: class k lights up a 4x4 square at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = np.empty((n, 28, 28), np.uint8)
        for i in range(0, n, _CHUNK):  # the same draws as one call, without its 376 MB of int64 (6 s, not 0.2)
            x[i : i + _CHUNK] = rng.integers(0, 40, (min(_CHUNK, n - i), 28, 28))
        for k in range(10):
            r, c = 4 + 5 * (k // 5) * 2, 2 + 5 * (k % 5)
            x[y == k, r : r + 4, c : c + 4] = 255
        out[f"x_{part}"], out[f"y_{part}"] = x, y
    return out


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)  # uncompressed: the tests write it often and size does not matter
    return path


def write_idx(folder: Path, arrays: dict[str, np.ndarray], gz: bool) -> Path:
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in names.items():
        a = arrays[key]
        header = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
        raw = header + a.tobytes()
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder
