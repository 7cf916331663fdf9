"""The one MNIST data module every model uses: find the file, check it, split it the same way every time.

Sources, in order: an explicit path (``--data`` or ``MNIST_PATH``), the Keras cache, a Keras download.
The 60,000 training images are split 48,000 / 12,000 (train / validation), stratified and seeded; the
10,000 test images are only for the final evaluation.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ENV_VAR = "MNIST_PATH"
N_TRAIN, N_VAL = 48_000, 12_000
SPLIT_SEED = 1234  # fixed on purpose: the split must not move when a user changes the training seed
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HOW_TO_PROVIDE = (
    "Provide MNIST in one of these ways:\n"
    "  * pass --data PATH (a Keras-layout mnist.npz, or a folder with the four IDX files, gzipped or not)\n"
    f"  * set the environment variable {ENV_VAR}=PATH\n"
    "  * put mnist.npz into the Keras cache (~/.keras/datasets/mnist.npz, or $KERAS_HOME/datasets/)\n"
    "  * or run once with internet access so that Keras can download it."
)


class DataError(Exception):
    """A problem with the MNIST data that the user can fix; the message says how."""


@dataclass(frozen=True)
class Split:
    """Scaled float32 images (N, 28, 28, 1) in [0, 1] and uint8 labels, for one part of the data."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class MnistData:
    """The data one training run uses. MNIST alone, or (`with_handwriting`) MNIST plus real handwriting:
    its training writers appended to train, its validation writers to val, its test writers kept apart."""

    train: Split
    val: Split
    test: Split  # MNIST test: the comparison's one look at unseen data
    source: str
    checksum: str  # identifies the exact MNIST split (indices + labels), recorded in metrics.json
    redraw_rows: int | None = None  # the leading train rows that are MNIST (redrawn by augmentation); None: all
    val_parts: dict = field(default_factory=dict)  # name -> Split: the parts of val, reported one by one
    test_parts: dict = field(default_factory=dict)  # name -> Split: further test sets (real writers), once at the end
    handwriting: dict | None = None  # what the real handwriting was (sets, counts, writer split checksum)
    teacher: np.ndarray | None = None  # (len(train), 10) the distillation teacher's rows (study/distill.py), or None

    @property
    def val_checksum(self) -> str:
        """Identifies the exact validation data (pixels and labels): models are compared on it only if equal."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.val.x).tobytes())
        digest.update(np.ascontiguousarray(self.val.y).tobytes())
        return digest.hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
            "seed": SPLIT_SEED,
            "stratified": True,
            "checksum": self.checksum,
            "val_checksum": self.val_checksum,
            "source": self.source,
            "handwriting": self.handwriting,
        }


def with_handwriting(mnist: MnistData, hand, limit: int | None = None, repeat: int = 1) -> MnistData:
    """MNIST plus real handwriting (study.handwriting): training writers join train, validation writers join
    val, test writers stay apart for the end. `hand` None: MNIST as it is. `limit`: the first N of each side.
    `repeat`: the training writers' digits appear this many times per epoch (the mix ratio: real handwriting
    is a third of 77k images once, three fifths when repeated three times); validation is never repeated."""
    if hand is None:
        return mnist
    if int(repeat) != repeat or repeat < 1:
        raise ValueError(f"repeat must be a whole number >= 1, got {repeat!r}")
    if limit is not None:
        def first(split):
            return replace(split, **{f: getattr(split, f)[:limit] for f in split.__dataclass_fields__})

        hand = replace(hand, train=first(hand.train), val=first(hand.val), test=first(hand.test))

    def joined(a: Split, b: Split, times: int = 1) -> Split:
        return Split(np.concatenate([a.x] + [b.x] * times).astype(np.float32),
                     np.concatenate([a.y] + [b.y] * times).astype(np.uint8))

    hand_val = Split(hand.val.x, hand.val.y)
    return replace(
        mnist,
        train=joined(mnist.train, Split(hand.train.x, hand.train.y), int(repeat)),
        val=joined(mnist.val, hand_val),
        redraw_rows=len(mnist.train),
        val_parts={"mnist": mnist.val, "handwriting": hand_val},
        test_parts={"handwriting": Split(hand.test.x, hand.test.y)} if hand.test is not None and len(hand.test.y)
        else {},
        handwriting={**hand.describe(), "train_repeat": int(repeat)},
    )


# ----------------------------------------------------------------------------------------- reading
def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"Cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise DataError(f"{path} is truncated or padded: header says {dims}, file holds {len(raw) - header} bytes.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"Folder {folder} has no {stem} (or {stem}.gz).\n{HOW_TO_PROVIDE}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in IDX_FILES if k not in f.files]
            if missing:
                raise DataError(
                    f"{path} lacks the key(s) {missing}; a Keras-layout MNIST file has x_train, y_train, "
                    f"x_test, y_test (found {sorted(f.files)})."
                )
            return {k: f[k] for k in IDX_FILES}
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError...
        raise DataError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}).") from exc


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read MNIST from a Keras-layout .npz or a folder of IDX files, and validate it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"MNIST path {path} does not exist.\n{HOW_TO_PROVIDE}")
    arrays = {k: _read_idx(_find_idx(path, stem)) for k, stem in IDX_FILES.items()} if path.is_dir() else _read_npz(path)
    validate(arrays, str(path))
    return arrays


def validate(arrays: dict[str, np.ndarray], origin: str = "MNIST") -> None:
    """Reject anything that is not MNIST-shaped, naming the problem (wrong data gives silently wrong models)."""
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataError(f"{origin}: x_{part}/y_{part} must be uint8, got {x.dtype}/{y.dtype}.")
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{origin}: x_{part} must have shape (N, 28, 28), got {x.shape}.")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{origin}: y_{part} must have shape ({len(x)},) to match x_{part}, got {y.shape}.")
        if len(y) and y.max() > 9:
            raise DataError(f"{origin}: y_{part} has labels outside 0-9 (max {int(y.max())}).")
    if len(arrays["x_train"]) < N_TRAIN + N_VAL:
        raise DataError(
            f"{origin}: x_train has {len(arrays['x_train'])} images; the 48,000/12,000 split needs 60,000."
        )


def _keras_cache_file() -> Path:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "datasets" / "mnist.npz"


def locate(path: str | os.PathLike | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Return (arrays, description of the source), trying the sources in the documented order."""
    explicit = path or os.environ.get(ENV_VAR)
    if explicit:
        return read_arrays(explicit), str(explicit)
    cached = _keras_cache_file()
    if cached.is_file():
        log.info("Using the Keras cache %s", cached)
        return read_arrays(cached), str(cached)
    log.info("No local MNIST given; asking Keras to download it.")
    try:
        from keras.datasets import mnist

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as exc:
        raise DataError(f"MNIST is not available locally and the download failed ({exc}).\n{HOW_TO_PROVIDE}") from exc
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    validate(arrays, "downloaded MNIST")
    return arrays, "keras download"


# ----------------------------------------------------------------------------------------- splitting
def split_indices(labels: np.ndarray, n_val: int = N_VAL, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/validation indices: identical on every run, machine and model."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(idx, test_size=n_val, stratify=labels, random_state=seed, shuffle=True)
    return np.sort(train_idx), np.sort(val_idx)


def scale(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]: the model contract."""
    return (x.astype(np.float32) / 255.0)[..., None]


def load(path: str | os.PathLike | None = None, limit: int | None = None) -> MnistData:
    """Load, validate and split MNIST. `limit` keeps only the first N images of each split (quick runs)."""
    arrays, source = locate(path)
    x_all, y_all = arrays["x_train"][: N_TRAIN + N_VAL], arrays["y_train"][: N_TRAIN + N_VAL]
    train_idx, val_idx = split_indices(y_all)
    digest = hashlib.sha256()
    for part in (train_idx, val_idx, y_all):
        digest.update(np.ascontiguousarray(part).tobytes())
    sl = slice(None) if limit is None else slice(0, int(limit))
    data = MnistData(
        train=Split(scale(x_all[train_idx][sl]), y_all[train_idx][sl]),
        val=Split(scale(x_all[val_idx][sl]), y_all[val_idx][sl]),
        test=Split(scale(arrays["x_test"][sl]), arrays["y_test"][sl]),
        source=source,
        checksum=digest.hexdigest()[:16],
    )
    log.info("MNIST from %s: %d train / %d val / %d test", source, len(data.train), len(data.val), len(data.test))
    return data
