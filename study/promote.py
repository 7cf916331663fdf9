"""No silent loss of shipped models: a run's model replaces the one in `models/` only when it is better.

Each run trains into its own folder (runs/<preset>-<time>/). A model is promoted into the shipped folder when
there is none there, when it beats the shipped one on this run's validation data, or when asked to (--replace).
Whatever it replaces moves to `models/previous/` (one command puts it back: `train_all.py --restore`).

A promotion moves several files (model, ONNX twin) and a metrics entry. It is journalled: the new files are
first copied beside the target, a journal names them, then each is renamed into place and the metrics rewritten.
An interruption at any point is finished by `recover()` (run at every start of train_all.py), so `models/`
only ever holds whole, consistent replacements. Interrupts (Ctrl-C) wait until a promotion is done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

from common import atomic
from common.checksum import file_sha256
from common.names import BASE_MODELS, METRICS_FILE, adapt_file, model_file

log = logging.getLogger(__name__)

PREVIOUS = "previous"  # models/previous/: what the last promotion replaced
INCOMING = ".incoming"  # models/.incoming/: complete copies of the new files, waiting to be renamed into place
JOURNAL = ".promotion.json"


def model_files(name: str) -> tuple[str, str, str]:
    """The files that make up one shipped model: the Keras file, its ONNX twin and what adapting it needs."""
    keras_name = model_file(name)
    return keras_name, keras_name[: -len(".keras")] + ".onnx", adapt_file(name)


def read_metrics(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _table_order(name: str) -> int:
    return BASE_MODELS.index(name) if name in BASE_MODELS else len(BASE_MODELS)


def _set_entry(folder: Path, name: str, entry: dict | None) -> None:
    metrics = read_metrics(folder)
    models = metrics.setdefault("models", {})
    if entry is None:
        models.pop(name, None)
    else:
        models[name] = entry
    metrics["models"] = {n: models[n] for n in sorted(models, key=_table_order)}
    metrics.pop("ensemble", None)  # its members changed; the caller writes a new one if it can
    atomic.write_json(Path(folder) / METRICS_FILE, metrics)


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C / SIGTERM during the block are held and delivered after it, so a promotion is never cut in two."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in held:
            os.kill(os.getpid(), s)


def promote(name: str, source: Path, target: Path, entry: dict | None) -> None:
    """Install model `name` from folder `source` into `target`, its old files and metrics entry into
    target/previous/. `entry`: the new metrics entry (None: take it from source's metrics.json)."""
    source, target = Path(source), Path(target)
    if entry is None:
        entry = read_metrics(source).get("models", {}).get(name)
    incoming = target / INCOMING
    files = [f for f in model_files(name) if (source / f).is_file()]
    if model_file(name) not in files:
        raise FileNotFoundError(f"{source / model_file(name)} does not exist; nothing to promote.")
    with interrupts_deferred():
        incoming.mkdir(parents=True, exist_ok=True)
        for f in files:
            with atomic.atomic_path(incoming / f) as tmp:
                shutil.copyfile(source / f, tmp)
        old_entry = read_metrics(target).get("models", {}).get(name)
        journal = {"name": name, "files": files, "entry": entry, "previous_entry": old_entry,
                   "drop": [f for f in model_files(name) if f not in files]}
        atomic.write_json(target / JOURNAL, journal)
        _finish(target, journal)


def _finish(target: Path, journal: dict) -> None:
    """Carry out a journalled promotion; safe to repeat from any point it was interrupted at."""
    name, incoming, previous = journal["name"], target / INCOMING, target / PREVIOUS
    previous.mkdir(parents=True, exist_ok=True)
    for f in journal["files"] + journal.get("drop", []):
        new = incoming / f
        if f in journal["files"] and not new.exists():
            continue  # already installed
        if (target / f).exists():
            os.replace(target / f, previous / f)
        if f in journal["files"]:
            os.replace(new, target / f)
    _set_entry(previous, name, journal["previous_entry"])
    _set_entry(target, name, journal["entry"])
    (target / JOURNAL).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        incoming.rmdir()
    log.debug("installed %s in %s (the one it replaced is in %s)", name, target, previous)


def recover(target: Path) -> bool:
    """Finish a promotion that was interrupted; True if there was one."""
    path = Path(target) / JOURNAL
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text())
    except ValueError:
        # the journal is written atomically, so a broken one was never completed: the old files are all there
        path.unlink()
        shutil.rmtree(Path(target) / INCOMING, ignore_errors=True)
        return False
    log.warning("finishing the promotion of %s that an interrupted run left half done", journal.get("name"))
    with interrupts_deferred():
        _finish(Path(target), journal)
    return True


def restore(name: str, target: Path) -> None:
    """Put models/previous/<name> back; the current one goes to previous/, so a restore can be undone."""
    target = Path(target)
    previous = target / PREVIOUS
    if not (previous / model_file(name)).is_file():
        raise FileNotFoundError(f"no earlier {name} in {previous}/ to restore.")
    staging = target / ".restoring"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for f in model_files(name):
        if (previous / f).is_file():
            shutil.copyfile(previous / f, staging / f)
    entry = read_metrics(previous).get("models", {}).get(name)
    promote(name, staging, target, entry)
    shutil.rmtree(staging, ignore_errors=True)


def consistent(target: Path) -> list[str]:
    """Problems that would make `target` inconsistent (empty list: fine): every model file must have a metrics
    entry that records its checksum, and no promotion may be pending."""
    target = Path(target)
    problems = []
    if (target / JOURNAL).exists():
        problems.append(f"a promotion is pending ({target / JOURNAL})")
    entries = read_metrics(target).get("models", {})
    for path in sorted(target.glob("*.keras")):
        name = path.stem
        sha = entries.get(name, {}).get("keras_sha256")
        if sha is not None and sha != file_sha256(path):
            problems.append(f"{path.name} does not match its metrics entry")
    return problems
