"""A model's classifier head in NumPy: features -> Dense(hidden, ReLU) -> Dense(10) -> probabilities.

Why NumPy: learning a writer's hand refits only these two layers, on the features the model's ONNX twin gives,
so it runs in the reading environment (no TensorFlow) in well under a second. The shipped head's weights and the
per-class feature statistics come from `models/<name>.adapt.npz` (study/adapt_export.py).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RecognizerError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Head:
    """Weights of the two dense layers (float32): w1 (d, h), b1 (h), w2 (h, 10), b2 (10)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.maximum(features @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(self.logits(np.asarray(features, np.float32))).astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Head:
        with np.load(io.BytesIO(blob)) as z:
            return cls(*(np.asarray(z[k], np.float32) for k in ("w1", "b1", "w2", "b2")))


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Per class, a mixture of diagonal Gaussians of the training images' features: mean and std (10, m, d),
    weight (10, m). What rehearsal draws from, so that an adapted head keeps reading everyone else's digits.
    Compared and hashed by identity: recognizer/adapt.py keeps its seeded draws per statistics object.

    Why a mixture: a class holds several ways of writing it (a 7 with and without a bar, a 1 with and without
    a flag); one Gaussian per class draws between them and misses the conventions that lie next to a writer's
    own, which are what an adaptation forgets (docs/RESULTS.md, Decision notes)."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray

    @classmethod
    def single(cls, mean: np.ndarray, std: np.ndarray) -> FeatureStats:
        """One Gaussian per class (mean and std (10, d)): the statistics of adapt files of format 1."""
        return cls(np.asarray(mean, np.float32)[:, None], np.asarray(std, np.float32)[:, None],
                   np.ones((len(mean), 1)))

    @property
    def dim(self) -> int:
        return self.mean.shape[2]

    def sample(self, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`per_class` features of every class (each from a component picked by its weight), clipped at 0 like
        the ReLU/max-pool outputs they stand for; and their classes."""
        labels = np.repeat(np.arange(10), per_class)
        parts = len(self.weight[0])
        comp = (np.zeros(len(labels), np.int64) if parts == 1 else
                np.concatenate([rng.choice(parts, per_class, p=w / w.sum()) for w in self.weight]))
        noise = rng.standard_normal((len(labels), self.dim), dtype=np.float32)
        return np.maximum(self.mean[labels, comp] + self.std[labels, comp] * noise, 0.0), labels


@dataclass(frozen=True)
class BaseHead:
    """A shipped model's head and feature statistics, and the `.keras` checksum they belong to."""

    head: Head
    stats: FeatureStats
    sha256: str


ADAPT_FORMAT = 2  # 2: mean/std (10, components, d) and weight (10, components); 1 (still read): mean/std (10, d)
HEAD_KEYS = ("w1", "b1", "w2", "b2")


def save_base_head(file, head: dict, stats: dict, keras_sha256: str) -> None:
    """Write an adapt file's arrays to `file` (an open binary file): the one definition of the format, beside
    `load_base_head` that reads it (study/adapt_export.py computes what goes in)."""
    np.savez(file, **{k: np.asarray(head[k], np.float32) for k in HEAD_KEYS},
             **{k: np.asarray(stats[k]) for k in ("mean", "std", "weight")},
             keras_sha256=np.array(keras_sha256), format=np.array(ADAPT_FORMAT))


def load_base_head(path: str | Path) -> BaseHead:
    """Read `<name>.adapt.npz`; RecognizerError (saying how to make it) when missing or unreadable."""
    path = Path(path)
    hint = f"make it with: python scripts/export_adapt.py {path.name.split('.')[0]} (training environment)"
    if not path.is_file():
        raise RecognizerError(f"{path} is missing, so this model cannot learn a writer's hand; {hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            head = Head(*(np.asarray(z[k], np.float32) for k in HEAD_KEYS))
            mean, std = np.asarray(z["mean"], np.float32), np.asarray(z["std"], np.float32)
            if mean.ndim == 2:  # format 1: one Gaussian per class
                stats = FeatureStats.single(mean, std)
            else:
                stats = FeatureStats(mean, std, np.asarray(z["weight"], np.float64))
            sha = str(z["keras_sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise RecognizerError(f"{path} could not be read ({exc}); {hint}") from None
    if (head.w1.shape[0] != stats.dim or head.w2.shape != (head.w1.shape[1], 10)
            or stats.std.shape != stats.mean.shape or stats.weight.shape != stats.mean.shape[:2]):
        raise RecognizerError(f"{path} holds inconsistent shapes; {hint}")
    return BaseHead(head, stats, sha)
