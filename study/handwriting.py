"""Real handwriting for training and writer-held-out validation: find the sets, split them by writer,
prepare them the recognizer's way, cache the result.

Sources: an explicit folder (``--handwriting DIR``) or ``HANDWRITING_PATH``; the folder holds the sets in
SOURCE.md's layout (pendigits/, ujipenchars2/, chars74k/, cvl/, semeion/). Sets that are missing are skipped
with one log line each; with no folder given, `load_handwriting` returns None so training can fall back to
MNIST alone.

Split, always by writer (a model that has seen a writer's other digits looks better than it is), seeded with
study.data.SPLIT_SEED and stable:
  * pen sets (pendigits, uji, chars74k): a seeded quarter of each set's writers -> validation, the rest -> train;
  * CVL: its `train` writers -> train; a seeded half of its `valid` writers -> validation, the other half
    -> train (more writers to learn from: models read unseen CVL writers well below the ones they trained
    on); validation writers come only from `valid`, so a model trained on CVL `train` alone is still
    judged on writers it never saw; test -> test (touched once, at the end);
  * Semeion (no writer ids) -> train only.
A checksum over the writer ids per side and the labels identifies the split (describe(), metrics.json).

Preparation (study/handwriting_render.py): every pen digit of a training writer is rendered TRAIN_RENDERS
times with the app's brush at random widths, sizes and positions, a validation writer's digit once (fixed
seed); scans are upscaled; then Recognizer.prepare makes the 28x28 image. Digits that do not come out as
exactly one segment are dropped and counted. The prepared arrays are cached outside the repository
(~/.cache/digit-recognizer/handwriting, or HANDWRITING_CACHE), one file per set, keyed by the raw file's
sha256 and the source of every module the preparation runs through, so a second run loads in
seconds and a change to the segmenter rebuilds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from common.checksum import code_digest, file_sha256
from study.data import SPLIT_SEED
from study.handwriting_formats import FILES, LOADERS, PEN_SETS, HandwritingError, Sample
from study import handwriting_render as render

__all__ = ["HandwritingData", "HandSplit", "HandwritingError", "load_handwriting", "find", "split_sides",
           "split_checksum", "split_meta", "ENV_VAR", "CACHE_ENV"]

log = logging.getLogger(__name__)

ENV_VAR = "HANDWRITING_PATH"
CACHE_ENV = "HANDWRITING_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "digit-recognizer" / "handwriting"
VAL_SHARE = 0.25          # share of each pen set's writers held out for validation
CVL_VAL_SHARE = 0.5       # share of CVL's `valid` writers held out; the rest train (see split_sides)
TRAIN_RENDERS = 3         # renderings per training pen digit (different brush, size, position)
RENDER_SEED = 20_261_130  # fixed: the same canvases on every run
CODE_VERSION = 1          # bump when the preparation changes in a way the source hashes below cannot see
SIDES = ("train", "val", "test")
_ROOT = Path(__file__).resolve().parents[1]
# every file whose code decides the prepared pixels: a change to any of them rebuilds the cache
# (tests/test_handwriting.py checks that the recognizer's are all here)
_CODE_FILES = ("study/handwriting.py", "study/handwriting_formats.py", "study/handwriting_render.py",
               "common/brush.py", "recognizer/images.py", "recognizer/segment.py",
               "recognizer/normalize.py", "recognizer/skeleton.py", "recognizer/prepare.py")
HOW_TO_PROVIDE = (
    "Give the real-handwriting folder (the layout of SOURCE.md: pendigits/, ujipenchars2/, chars74k/, cvl/, "
    f"semeion/) with --handwriting DIR or the environment variable {ENV_VAR}=DIR."
)


@dataclass(frozen=True)
class HandSplit:
    """One side of the handwriting data: images as the model contract wants them, plus where each came from."""

    x: np.ndarray       # float32 (N, 28, 28, 1) in [0, 1], white digit on black
    y: np.ndarray       # uint8 (N,)
    writer: np.ndarray  # str (N,): "<set>:<id>", "" where the set has no writer ids (Semeion)
    set: np.ndarray     # str (N,): the set's name

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class HandwritingData:
    train: HandSplit
    val: HandSplit
    test: HandSplit
    path: str
    checksum: str                                # identifies the writer split (writer ids per side + labels)
    sets: dict = field(default_factory=dict)     # set name -> counts, writers, drops, seconds, cached
    missing: tuple = ()

    def describe(self) -> dict:
        """What metrics.json records: which sets, how many digits and writers per side, the split's checksum."""
        return {
            "path": self.path,
            "sets": sorted(self.sets),
            "missing": list(self.missing),
            "train": len(self.train), "val": len(self.val), "test": len(self.test),
            "split_seed": SPLIT_SEED, "val_writer_share": VAL_SHARE, "cvl_val_writer_share": CVL_VAL_SHARE,
            "train_renders": TRAIN_RENDERS,
            "checksum": self.checksum,
            "per_set": {k: {kk: vv for kk, vv in v.items() if kk not in ("seconds", "cached")}
                        for k, v in sorted(self.sets.items())},
        }


# ------------------------------------------------------------------------------------------ finding
def find(path: str | os.PathLike | None = None) -> Path | None:
    """The handwriting folder: `path`, else $HANDWRITING_PATH, else None (none given). Missing -> error."""
    explicit = path or os.environ.get(ENV_VAR)
    if not explicit:
        return None
    root = Path(explicit).expanduser()
    if not root.exists():
        raise HandwritingError(f"handwriting folder {root} does not exist.\n{HOW_TO_PROVIDE}")
    if not root.is_dir():
        raise HandwritingError(f"{root} is not a folder.\n{HOW_TO_PROVIDE}")
    return root


def available(root: Path) -> tuple[dict[str, Path], list[str]]:
    """({set name: file} of the sets present, [names of the missing ones]); none at all is an error."""
    found = {name: root / rel for name, rel in FILES.items() if (root / rel).is_file()}
    missing = [name for name in FILES if name not in found]
    for name in missing:
        log.info("handwriting: %s not found (%s), skipped", name, root / FILES[name])
    if not found:
        raise HandwritingError(f"{root} holds none of the handwriting sets (looked for "
                               f"{', '.join(FILES.values())}).\n{HOW_TO_PROVIDE}")
    return found, missing


# ------------------------------------------------------------------------------------------ split
def split_sides(name: str, samples: list[Sample], val_share: float = VAL_SHARE) -> np.ndarray:
    """Side ("train" / "val" / "test") of every sample; whole writers go to one side (see module doc)."""
    if name == "cvl":
        val = _held_out(name, [s for s in samples if s.part == "valid"], CVL_VAL_SHARE)
        return np.array(["test" if s.part == "test" else "val" if s.writer in val else "train" for s in samples])
    if name not in PEN_SETS:  # Semeion: no writer ids, training only
        return np.full(len(samples), "train")
    val = _held_out(name, samples, val_share)
    return np.array(["val" if s.writer in val else "train" for s in samples])


def _held_out(name: str, samples: list[Sample], share: float) -> set[str]:
    """A seeded share of these samples' writers, drawn per set (the same writers on every run)."""
    writers = sorted({s.writer for s in samples}, key=_writer_key)
    rng = np.random.default_rng([SPLIT_SEED, zlib.crc32(name.encode())])
    order = rng.permutation(len(writers))
    n_val = int(round(share * len(writers))) if len(writers) > 1 else 0
    return {writers[i] for i in order[:n_val]}


def _writer_key(w: str):
    tail = w.rsplit(":", 1)[-1]
    return (0, int(tail), w) if tail.isdigit() else (1, 0, w)


def split_meta(samples: list[Sample], sides: np.ndarray) -> dict:
    """Per raw digit: label, writer ("" for none) and side; what the checksum and the counts are made of
    (kept in the cache, so that a cached set needs no parsing)."""
    return {"raw_label": np.array([s.label for s in samples], np.uint8),
            "raw_writer": np.array([s.writer or "" for s in samples], dtype=str),
            "raw_side": np.asarray(sides).astype(str)}


def split_checksum(per_set: dict) -> str:
    """sha256 over, per set and side, the sorted writer ids and the labels in file order.

    per_set: {set name: (samples, sides)} or {set name: split_meta(...)}.
    """
    h = hashlib.sha256()
    for name in sorted(per_set):
        meta = per_set[name]
        if isinstance(meta, tuple):
            meta = split_meta(*meta)
        for side in SIDES:
            on = meta["raw_side"] == side
            h.update(f"{name}|{side}|{','.join(sorted(set(meta['raw_writer'][on].tolist())))}|".encode())
            h.update(meta["raw_label"][on].tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------ building
def code_version() -> str:
    """Hash of the preparation's code (and CODE_VERSION and OpenCV's version, whose pixels it uses), not of its
    comments: part of every cache key."""
    h = hashlib.sha256(f"v{CODE_VERSION}|{TRAIN_RENDERS}|{render.CANVAS}|{render.BRUSH}|{render.HEIGHT_FRAC}"
                       f"|{render.SCAN_UPSCALE}|opencv {cv2.__version__}".encode())
    for rel in _CODE_FILES:
        p = _ROOT / rel
        h.update(code_digest(p).encode() if p.is_file() else b"-")
    return h.hexdigest()[:16]


def build_set(name: str, samples: list[Sample], sides: np.ndarray, renders: int = TRAIN_RENDERS) -> dict:
    """Prepare one set: arrays x (uint8 (N, 28, 28), exact: the normaliser's output is k/255), y, writer, side,
    plus how many digits segmentation dropped. Single process, with a progress log."""
    set_idx = list(FILES).index(name)
    pen = name in PEN_SETS
    jobs = [(i, k) for i, side in enumerate(sides) for k in range(renders if pen and side == "train" else 1)]
    xs = np.zeros((len(jobs), 28, 28), np.uint8)
    keep = np.zeros(len(jobs), bool)
    dropped = {side: {"none": 0, "several": 0} for side in SIDES}
    t0 = last = time.perf_counter()
    for j, (i, k) in enumerate(jobs):
        s = samples[i]
        if pen:
            # val digits get one rendering of their own seed stream (k=-1), independent of TRAIN_RENDERS
            rng = np.random.default_rng([RENDER_SEED, set_idx, i, k if sides[i] == "train" else 1000])
            image = render.pen_canvas(s.strokes, rng)
        else:
            image = render.scan_image(s.image, name)
        x, n = render.prepare(image)
        if x is None:
            dropped[sides[i]]["none" if n == 0 else "several"] += 1
        else:
            xs[j] = np.rint(x * 255.0).astype(np.uint8)
            keep[j] = True
        now = time.perf_counter()
        if now - last > 15:
            last = now
            rate = (j + 1) / (now - t0)
            log.info("handwriting: %s %d/%d prepared (%.0f/s, about %.0f s left)", name, j + 1, len(jobs), rate,
                     (len(jobs) - j - 1) / rate)
    idx = np.array([i for i, _ in jobs], np.int64)[keep]
    return {
        "x": xs[keep], "y": np.array([samples[i].label for i in idx], np.uint8),
        "writer": np.array([samples[i].writer or "" for i in idx], dtype=str),
        "side": sides[idx].astype(str), "source_index": idx,
        "dropped": dropped, "seconds": time.perf_counter() - t0,
    }


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def _load_or_build(name: str, path: Path, cdir: Path, renders: int, version: str) -> tuple[dict, bool]:
    """The prepared arrays of one set (with split_meta's raw_* arrays): from the cache when the raw file and
    the code are unchanged (no parsing then), else read, split, prepared and cached."""
    key = hashlib.sha256(f"{file_sha256(path)}|{version}|{renders}".encode()).hexdigest()[:20]
    target = cdir / f"{name}-{key}.npz"
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            arrays["dropped"] = _unpack_dropped(arrays.pop("dropped_counts"))
            arrays["seconds"] = float(arrays.pop("build_seconds"))
            return arrays, True
        except Exception as exc:  # a damaged cache file is rebuilt, not trusted
            log.warning("handwriting: cache %s unreadable (%s); rebuilding", target, exc)
    samples = LOADERS[name](path)
    sides = split_sides(name, samples)
    log.info("handwriting: preparing %s (%d digits) the recognizer's way; cached afterwards in %s",
             name, len(samples), cdir)
    arrays = {**build_set(name, samples, sides, renders), **split_meta(samples, sides)}
    _save(target, arrays)
    for old in cdir.glob(f"{name}-*.npz"):  # older keys of this set are stale
        if old != target:
            old.unlink(missing_ok=True)
    return arrays, False


def _pack_dropped(d: dict) -> np.ndarray:
    return np.array([[d[s]["none"], d[s]["several"]] for s in SIDES], np.int64)


def _unpack_dropped(a: np.ndarray) -> dict:
    return {s: {"none": int(a[i, 0]), "several": int(a[i, 1])} for i, s in enumerate(SIDES)}


def _save(target: Path, arrays: dict) -> None:
    from common.atomic import atomic_path

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: v for k, v in arrays.items() if k not in ("dropped", "seconds")},
                         dropped_counts=_pack_dropped(arrays["dropped"]),
                         build_seconds=np.float64(arrays["seconds"]))
    except OSError as exc:  # no cache is slower, not wrong
        log.warning("handwriting: cannot write the cache %s (%s); it will be rebuilt next time", target, exc)


def _side(parts: list[tuple[str, dict]], side: str) -> HandSplit:
    xs, ys, ws, ss = [], [], [], []
    for name, a in parts:
        on = a["side"] == side
        xs.append(a["x"][on])
        ys.append(a["y"][on])
        ws.append(a["writer"][on])
        ss.append(np.full(int(on.sum()), name))
    if not xs:
        return HandSplit(np.zeros((0, 28, 28, 1), np.float32), np.zeros(0, np.uint8), np.zeros(0, str),
                         np.zeros(0, str))
    x = np.concatenate(xs).astype(np.float32)[..., None] / np.float32(255.0)
    return HandSplit(x, np.concatenate(ys), np.concatenate(ws).astype(str), np.concatenate(ss).astype(str))


def load_handwriting(path: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                     renders: int = TRAIN_RENDERS, sets=None) -> HandwritingData | None:
    """Load, split and prepare the real-handwriting sets; None (one log line) when no folder is given.

    path: the handwriting folder (else $HANDWRITING_PATH). cache: where prepared arrays live (else
    $HANDWRITING_CACHE, else ~/.cache/digit-recognizer/handwriting). sets: a subset of the set names.
    Raises HandwritingError for a folder that does not exist, holds no set, or a malformed file.
    """
    root = find(path)
    if root is None:
        log.info("no real handwriting given (--handwriting DIR or %s): MNIST alone", ENV_VAR)
        return None
    found, missing = available(root)
    if sets is not None:
        unknown = sorted(set(sets) - set(FILES))
        if unknown:
            raise HandwritingError(f"unknown handwriting set(s) {', '.join(unknown)}; known: {', '.join(FILES)}")
        found = {k: v for k, v in found.items() if k in sets}
    cdir, version = cache_dir(cache), code_version()
    parts, info, per_set = [], {}, {}
    t0 = time.perf_counter()
    for name, file in found.items():
        t = time.perf_counter()
        arrays, cached = _load_or_build(name, file, cdir, renders, version)
        per_set[name] = {k: arrays[k] for k in ("raw_label", "raw_writer", "raw_side")}
        parts.append((name, arrays))
        sides, writers = arrays["raw_side"], arrays["raw_writer"]
        info[name] = {
            "digits": len(sides),
            **{f"{side}_digits": int((sides == side).sum()) for side in SIDES},
            **{f"{side}_writers": len(set(writers[(sides == side) & (writers != "")].tolist())) for side in SIDES},
            **{side: int((arrays["side"] == side).sum()) for side in SIDES},
            "dropped": arrays["dropped"],
            "seconds": round(time.perf_counter() - t, 2), "build_seconds": round(float(arrays["seconds"]), 1),
            "cached": cached,
        }
    data = HandwritingData(train=_side(parts, "train"), val=_side(parts, "val"), test=_side(parts, "test"),
                           path=str(root), checksum=split_checksum(per_set), sets=info, missing=tuple(missing))
    log.info("handwriting from %s: %s; %d train / %d val / %d test images in %.1f s (split %s)", root,
             ", ".join(f"{k} ({v['digits']:,} digits{', cached' if v['cached'] else ''})" for k, v in info.items()),
             len(data.train), len(data.val), len(data.test), time.perf_counter() - t0, data.checksum)
    return data


def main(argv=None) -> int:
    """`python -m study.handwriting [DIR]`: build (or check) the cache ahead of training and print describe()."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m study.handwriting", description=main.__doc__)
    ap.add_argument("path", nargs="?", default=None, help=f"the handwriting folder (default ${ENV_VAR})")
    ap.add_argument("--cache", default=None, help=f"cache folder (default ${CACHE_ENV} or {DEFAULT_CACHE})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        data = load_handwriting(args.path, cache=args.cache)
    except HandwritingError as exc:
        print(f"error: {exc}")
        return 1
    if data is None:
        return 1
    print(json.dumps(data.describe(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
