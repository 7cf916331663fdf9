"""Readers for the five raw real-handwriting formats (see ../shared/data/handwriting/SOURCE.md).

Each reader returns a list of `Sample`: label, writer id (None where the set has none), and either pen
strokes (list of float (K, 2) arrays of x, y with y growing downwards, in the set's own units) or a grey
image (uint8, dark ink on light paper). A malformed file is rejected with a `HandwritingError` that names
the file and the problem: wrong data silently gives wrong models.

Writer ids carry the set's name ("uji:7") so that writers of different sets never collide.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.data import DataError


class HandwritingError(DataError):
    """A problem with the real-handwriting data that the user can fix; the message says how."""


@dataclass
class Sample:
    """One handwritten digit as the set stores it."""

    label: int
    writer: str | None               # "<set>:<id>", None when the set has no writer ids (Semeion)
    strokes: list | None = None      # pen sets: [float64 (K, 2) array of x, y (y down)], one per pen-down
    image: np.ndarray | None = None  # scanned sets: uint8 (H, W), dark ink on light paper
    part: str | None = None          # CVL: the folder it came from ("train", "valid", "test")


# set name -> file inside the handwriting folder (SOURCE.md's layout)
FILES = {
    "pendigits": "pendigits/pendigits-orig.tra",
    "uji": "ujipenchars2/ujipenchars2.json",
    "chars74k": "chars74k/char74k.json",
    "cvl": "cvl/cvl-single-digits-28x28.tar.gz",
    "semeion": "semeion/semeion.data",
}
PEN_SETS = ("pendigits", "uji", "chars74k")
SCAN_SETS = ("cvl", "semeion")
PENDIGITS_BOX = 500  # pendigits' tablet box; its y grows upwards
DIGITS = [str(d) for d in range(10)]


def _label(value, where: str) -> int:
    text = str(value).strip()
    if text not in DIGITS:
        raise HandwritingError(f"{where}: label {value!r} is not a digit 0-9")
    return int(text)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise HandwritingError(f"{path}: not a text file ({exc})") from None
    except OSError as exc:
        raise HandwritingError(f"{path}: cannot read ({exc})") from None


def _check_nonempty(samples: list, path: Path) -> list:
    if not samples:
        raise HandwritingError(f"{path}: holds no digits (empty or not this set's format)")
    return samples


# ------------------------------------------------------------------------------------- pendigits
def load_pendigits(path: str | os.PathLike) -> list[Sample]:
    """UNIPEN-style `.SEGMENT DIGIT n ? "label"` / `.COMMENT label writer n` / `.PEN_DOWN`...`.PEN_UP` blocks.

    y is flipped (y' = 500 - y) so that it grows downwards like on a screen.
    """
    path = Path(path)
    samples: list[Sample] = []
    cur: Sample | None = None
    stroke: list | None = None
    seg_re = re.compile(r'^\.SEGMENT\s+DIGIT\s+\S+\s+\S+\s+"([^"]*)"\s*$')

    def finish(lineno: int) -> None:
        if cur is None:
            return
        if stroke is not None:
            raise HandwritingError(f"{path}:{lineno}: .PEN_DOWN without .PEN_UP (truncated file?)")
        if cur.writer is None:
            raise HandwritingError(f"{path}:{lineno}: digit without a .COMMENT line (no writer id)")
        if not cur.strokes:
            raise HandwritingError(f"{path}:{lineno}: digit {cur.label} of writer {cur.writer} has no strokes")
        samples.append(cur)

    lineno = 0
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s[0] != ".":
            if stroke is None:
                raise HandwritingError(f"{path}:{lineno}: point {s!r} outside a .PEN_DOWN block")
            parts = s.split()
            if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
                raise HandwritingError(f"{path}:{lineno}: expected two integers 'x y', got {s!r}")
            stroke.append((float(parts[0]), PENDIGITS_BOX - float(parts[1])))
            continue
        key = s.split()[0]
        if key == ".SEGMENT":
            finish(lineno)
            m = seg_re.match(s)
            if not m:
                raise HandwritingError(f"{path}:{lineno}: expected '.SEGMENT DIGIT <n> ? \"<label>\"', got {s!r}")
            cur, stroke = Sample(label=_label(m.group(1), f"{path}:{lineno}"), writer=None, strokes=[]), None
        elif key == ".COMMENT":
            parts = s.split()
            if cur is None or len(parts) < 3 or not parts[2].isdigit():
                raise HandwritingError(f"{path}:{lineno}: expected '.COMMENT <label> <writer> <n>' after "
                                       f".SEGMENT, got {s!r}")
            if _label(parts[1], f"{path}:{lineno}") != cur.label:
                raise HandwritingError(f"{path}:{lineno}: .COMMENT label {parts[1]} differs from the "
                                       f".SEGMENT label {cur.label}")
            cur.writer = f"pendigits:{int(parts[2])}"
        elif key == ".PEN_DOWN":
            if cur is None or stroke is not None:
                raise HandwritingError(f"{path}:{lineno}: .PEN_DOWN outside a digit or inside another stroke")
            stroke = []
        elif key == ".PEN_UP":
            if stroke is None:
                raise HandwritingError(f"{path}:{lineno}: .PEN_UP without .PEN_DOWN")
            if not stroke:
                raise HandwritingError(f"{path}:{lineno}: stroke without points")
            cur.strokes.append(np.array(stroke, np.float64))
            stroke = None
        elif key in (".DT", ".INCLUDE", ".LEXICON", ".HIERARCHY", ".COORD", ".X_DIM", ".Y_DIM"):
            continue
        else:
            raise HandwritingError(f"{path}:{lineno}: unknown keyword {key!r} (not a pendigits-orig file?)")
    finish(lineno)
    return _check_nonempty(samples, path)


# ------------------------------------------------------------------------------------ UJI, Chars74K
def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise HandwritingError(f"{path}: not valid JSON, truncated? ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HandwritingError(f"{path}: cannot read ({exc})") from None


def _strokes(sample, where: str) -> list:
    if not isinstance(sample, list) or not sample:
        raise HandwritingError(f"{where}: a sample must be a non-empty list of strokes")
    out = []
    for k, st in enumerate(sample):
        try:
            a = np.asarray(st, dtype=np.float64)
        except (TypeError, ValueError):
            raise HandwritingError(f"{where}, stroke {k}: points must be [x, y] numbers") from None
        if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0 or not np.isfinite(a).all():
            raise HandwritingError(f"{where}, stroke {k}: expected a non-empty list of [x, y] points, "
                                   f"got shape {a.shape}")
        out.append(a)
    return out


def _digit_table(table, path: Path, writer_of, name: str) -> list[Sample]:
    if not isinstance(table, dict):
        raise HandwritingError(f"{path}: expected an object with keys '0'..'9'")
    missing = [d for d in DIGITS if d not in table]
    if missing:
        raise HandwritingError(f"{path}: no samples for digit(s) {', '.join(missing)} (keys found: "
                               f"{', '.join(sorted(map(str, table))[:12])})")
    samples = []
    for d in DIGITS:
        if not isinstance(table[d], list) or not table[d]:
            raise HandwritingError(f"{path}: digit {d} has no list of samples")
        for i, s in enumerate(table[d]):
            samples.append(Sample(label=int(d), writer=f"{name}:{writer_of(i)}",
                                  strokes=_strokes(s, f"{path}: digit {d}, sample {i}")))
    return samples


def load_uji(path: str | os.PathLike) -> list[Sample]:
    """`{"rawData": {"0": [sample, ...], ...}}`; sample i of each digit is writer i // 2 (60 writers x 2)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or "rawData" not in data:
        raise HandwritingError(f"{path}: no 'rawData' key (not the UJI Pen Characters JSON?)")
    return _digit_table(data["rawData"], path, lambda i: i // 2, "uji")


def load_chars74k(path: str | os.PathLike) -> list[Sample]:
    """`{"0": [sample, ...], ..., "A": ...}`; letters are ignored; sample i of each digit is volunteer i."""
    path = Path(path)
    return _digit_table(_load_json(path), path, lambda i: i, "chars74k")


# ------------------------------------------------------------------------------------------ CVL
CVL_NAME = re.compile(r"^(?:\./)?(train|valid|test)/(\d)-(\d+)(?:-\d+){2,}\.png$")


def load_cvl(path: str | os.PathLike) -> list[Sample]:
    """The tar.gz of 28x28 grey PNGs `<part>/<label>-<writer>-<nn>-<nn>.png`, part = train/valid/test."""
    import cv2

    path = Path(path)
    samples = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                m = CVL_NAME.match(member.name)
                if not m:
                    raise HandwritingError(f"{path}: unexpected member {member.name!r}; expected "
                                           "<train|valid|test>/<label>-<writer>-<nn>-<nn>.png")
                raw = tar.extractfile(member).read()
                img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
                if img is None or img.size == 0:
                    raise HandwritingError(f"{path}: {member.name} is not a readable PNG")
                samples.append(Sample(label=int(m.group(2)), writer=f"cvl:{m.group(3)}", image=img,
                                      part=m.group(1)))
    except HandwritingError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise HandwritingError(f"{path}: unreadable or truncated tar.gz ({type(exc).__name__}: {exc})") from None
    return _check_nonempty(samples, path)


# -------------------------------------------------------------------------------------- Semeion
def load_semeion(path: str | os.PathLike) -> list[Sample]:
    """One digit per line: 256 pixel values (0/1, 16x16, 1 = ink) then 10 one-hot label values.

    The image comes back as dark ink (0) on white (255) paper, 16x16, like a scan.
    """
    path = Path(path)
    samples = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            v = np.array(line.split(), dtype=np.float64)
        except ValueError:
            raise HandwritingError(f"{path}:{lineno}: values must be numbers") from None
        if v.size != 266:
            raise HandwritingError(f"{path}:{lineno}: expected 266 values (256 pixels + 10 label), got {v.size}")
        pix, onehot = v[:256], v[256:]
        if not np.isin(pix, (0.0, 1.0)).all():
            raise HandwritingError(f"{path}:{lineno}: pixel values must be 0 or 1")
        if not (np.isin(onehot, (0.0, 1.0)).all() and onehot.sum() == 1):
            raise HandwritingError(f"{path}:{lineno}: the last 10 values must be a one-hot label")
        img = np.where(pix.reshape(16, 16) > 0, 0, 255).astype(np.uint8)
        samples.append(Sample(label=int(onehot.argmax()), writer=None, image=img))
    return _check_nonempty(samples, path)


LOADERS = {"pendigits": load_pendigits, "uji": load_uji, "chars74k": load_chars74k, "cvl": load_cvl,
           "semeion": load_semeion}
