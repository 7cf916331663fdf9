"""Atomic file writes: a crash or Ctrl-C leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`.

    The temporary file keeps the target's suffix so that writers which infer the
    format from the extension (Keras `.keras`, Matplotlib `.png`) still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_text_new(target: str | os.PathLike, text: str) -> Path:
    """Write `text` to `target`, or where that name is taken to `<stem>-2<suffix>`, `-3`...; the path written.

    Why: an export kept before a reset must never replace an earlier one (two resets within the second that
    names them). The file is complete before it gets its name (a hard link of the finished temporary file,
    which fails when the name exists), so no name ever holds half a file and no existing file is replaced.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        for n in itertools.count(1):
            name = target if n == 1 else target.with_name(f"{target.stem}-{n}{target.suffix}")
            try:
                os.link(tmp, name)
                return name
            except FileExistsError:
                continue
            except OSError as exc:  # no hard links here (FAT, some network shares): claim the name, then fill it
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                try:
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                except FileExistsError:
                    continue
                os.replace(tmp, name)
                return name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(target: str | os.PathLike, data) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model(model, target: str | os.PathLike) -> None:
    """Save a Keras model without optimizer state (smaller, and all inference needs).

    Keras 3 ignores ``include_optimizer`` for ``.keras`` files (and ``clone_model`` keeps the compile state),
    so a model rebuilt from its config, uncompiled, carrying the same weights (batch-norm statistics included)
    is what gets saved.
    """
    plain = model.__class__.from_config(model.get_config())
    plain.set_weights(model.get_weights())
    with atomic_path(target) as tmp:
        plain.save(tmp)
