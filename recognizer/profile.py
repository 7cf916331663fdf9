"""A writer's profile: their corrections, and the model heads adapted to their hand, used when they read.

One folder per profile (default: the platform's user data folder via platformdirs; `--profile DIR` or
$DIGITS_PROFILE; "none" reads with the shipped models alone) holding one SQLite database
(recognizer/profile_store.py). An adaptation belongs to one base model, by the checksum of its `.keras` file:
when the shipped models change, the next reading finds none for the new checksum and adapts again from the
stored corrections, so nothing the writer taught is lost by a model update.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from common.names import APP_NAME, BASE_MODELS, ENSEMBLE, MODEL_NAMES, NO_PROFILE, PROFILE_DB, PROFILE_ENV

from . import adapt
from .profile_store import ProfileStore, png_bytes
from .errors import RecognizerError
from .head import BaseHead, Head, load_base_head
from .models import ModelStore

log = logging.getLogger(__name__)

MAX_CORRECTIONS = 2000  # the newest this many are fitted on (older ones stay stored and exported)
# No digit is much wider than it is tall: of MNIST's 70,000 the widest is 2.5 times its height (99.99% are at most
# 2.0). A stroke wider than this is a bar or a line, and is never stored as a digit.
MAX_DIGIT_ASPECT = 3.0


def default_profile_dir() -> Path:
    """The per-user profile folder of this platform (e.g. ~/.local/share/digit-recognizer/profile on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "profile"


def resolve_profile_dir(spec: str | os.PathLike | None) -> Path | None:
    """`spec`, else $DIGITS_PROFILE, else the default folder; None for "none" (shipped models alone)."""
    if spec is None:
        spec = os.environ.get(PROFILE_ENV) or None
    if spec is None:
        return default_profile_dir()
    if str(spec).strip().lower() == NO_PROFILE:
        return None
    path = Path(spec).expanduser()
    if path.exists() and not path.is_dir():
        raise RecognizerError(f"profile {path} is a file; give a folder (it is made if missing) or 'none'")
    return path


def existing_profile_dir(spec: str | os.PathLike | None) -> Path | None:
    """The profile folder to read with when it already holds a database (reading alone never makes one)."""
    folder = resolve_profile_dir(spec)
    return folder if folder is not None and (folder / PROFILE_DB).is_file() else None


def not_a_digit(box) -> str | None:
    """Why a digit's box (x, y, w, h) cannot hold a digit (a line or a bar: far wider than tall), else None."""
    w, h = int(box[2]), int(box[3])
    if w > MAX_DIGIT_ASPECT * max(h, 1):
        return (f"is a {w}x{h}-pixel line, not a digit (no digit is more than {MAX_DIGIT_ASPECT:g} times as wide "
                "as it is tall)")
    return None


def members(model: str) -> tuple[str, ...]:
    """The base models a reading with `model` runs (the ensemble: all three)."""
    return BASE_MODELS if model == ENSEMBLE else (model,)


@dataclass(frozen=True)
class Adapted:
    """The adaptation in use for one base model."""

    head: Head
    base_sha256: str
    corrections: int       # how many it was fitted on (at most MAX_CORRECTIONS)
    last_correction: int   # the id of the newest of them: corrections with a higher id came after it


class Profile:
    """Corrections and adaptations of one writer, over the shipped models of a ModelStore. Thread-safe."""

    def __init__(self, folder: str | os.PathLike, store: ModelStore):
        self.folder = Path(folder)
        self.store = store
        self.db = ProfileStore(self.folder / PROFILE_DB)
        self._lock = threading.Lock()
        self._adapt_lock = threading.Lock()
        self._bases: dict[str, BaseHead] = {}
        self._in_use: dict[str, Adapted | None] = {}
        self._fitted_on_deleted: set[str] = set()  # in use, fitted on a correction deleted since: replace or drop

    @property
    def read_only(self) -> str | None:
        """Why the profile cannot be written (a read-only folder or file), None when it can."""
        return self.db.read_only

    @property
    def moved_aside(self) -> Path | None:
        """Where an unreadable database was moved when this profile was opened (the user is told)."""
        return self.db.moved_aside

    # ------------------------------------------------------------------- base models
    def _base(self, name: str) -> BaseHead:
        with self._lock:
            if name in self._bases:
                return self._bases[name]
        base = load_base_head(self.store.adapt_path(name))
        model_sha = self.store.load(name).sha256
        if model_sha is not None and base.sha256 != model_sha:
            raise RecognizerError(f"{self.store.adapt_path(name)} belongs to another {name}.keras (retrained "
                                  f"since?); remake it with: python scripts/export_adapt.py {name}")
        with self._lock:
            self._bases[name] = base
        return base

    def can_adapt(self, name: str) -> str | None:
        """None if base model `name` can learn a writer's hand here, else the reason why not."""
        try:
            self._base(name)
            if self.store.load(name).features is None:
                self.store.features(name, np.zeros((0, 28, 28, 1), np.float32))
        except RecognizerError as exc:
            return str(exc)
        return None

    def prepare(self, model: str) -> None:
        """Load what adapting `model` needs and make its seeded draws (adapt.prepare) ahead of the first
        adaptation; a base model that cannot adapt is left for adapt() to report."""
        for name in members(model):
            if self.can_adapt(name) is None:
                base = self._base(name)
                adapt.prepare(base.head, base.stats)

    # ------------------------------------------------------------------- adaptations
    def adapted(self, name: str) -> Adapted | None:
        """The accepted adaptation of base model `name` for the current shipped model, or None."""
        with self._lock:
            if name in self._in_use:
                return self._in_use[name]
        found = None
        sha = self.store.load(name).sha256
        if sha:
            row = self.db.latest_adaptation(name, sha, accepted_only=True)
            if row is not None and row.head:
                found = Adapted(Head.from_bytes(row.head), sha, row.corrections, row.last_correction)
        with self._lock:
            self._in_use[name] = found
        return found

    def stale(self, name: str) -> bool:
        """True when there are corrections no adaptation attempt for the current model has seen (new ones, or
        a new shipped model)."""
        sha = self.store.load(name).sha256
        if not sha:
            return False
        newest = self.db.newest_id()
        if newest == 0:
            return False
        row = self.db.latest_adaptation(name, sha)
        return row is None or row.last_correction < newest

    def adapt(self, model: str, settings: adapt.AdaptSettings = adapt.DEFAULT_SETTINGS) -> dict[str, adapt.Decision]:
        """Adapt every base model of `model` to the stored corrections now; {base model: Decision}. An accepted
        head is used from the next reading on; a refused one leaves the one in use as it was, unless that one
        misread the newest corrections more than the shipped model (adapt.set_aside): then the shipped head
        reads again, and the refusal's reason says so."""
        self.db.check_writable()  # before the work, not after it
        decisions = {}
        with self._adapt_lock:
            x, y, ids = self.db.training_set(newest=MAX_CORRECTIONS)
            newest = int(ids[-1]) if len(ids) else 0
            for name in members(model):
                why = self.can_adapt(name)
                if why is not None:
                    decisions[name] = adapt.Decision(False, why, len(y), 0, 0, 1.0, 0.0)
                    continue
                base = self._base(name)
                sha = self.store.load(name).sha256 or base.sha256
                feats = self.store.features(name, x) if len(y) else np.zeros((0, base.head.w1.shape[0]), np.float32)
                temperature = self.store.calibration.temperature(name) if self.store.calibration else 1.0
                decision = adapt.decide(base.head, base.stats, feats, y, settings, temperature)
                aside = None
                in_use = self.adapted(name) if not decision.accepted else None
                made_since = ids > in_use.last_correction if in_use is not None else None  # while it was reading
                if in_use is not None and in_use.base_sha256 == sha and made_since.any():
                    aside = adapt.set_aside(in_use.head, base.head, feats[made_since], y[made_since])
                with self._lock:
                    fitted_on_deleted = name in self._fitted_on_deleted
                    self._fitted_on_deleted.discard(name)
                if fitted_on_deleted and not decision.accepted and self.adapted(name) is not None:
                    aside = "the adaptation fitted on the deleted correction is set aside"
                if aside:
                    decision = dataclasses.replace(decision, reason=f"{decision.reason}; {aside}", set_aside=True)
                self.db.add_adaptation(name, sha, decision.summary(), newest,
                                       decision.head.to_bytes() if decision.head is not None else None,
                                       decides_reading=decision.accepted or aside is not None)
                if decision.accepted or aside:
                    with self._lock:
                        self._in_use[name] = Adapted(decision.head, sha, len(y), newest) if decision.accepted else None
                log.info("%s: %s (%.2f s)", name, decision.reason, decision.seconds)
                decisions[name] = decision
        return decisions

    def adapt_if_stale(self, model: str, on_start: Callable[[str], None] | None = None) -> dict[str, adapt.Decision]:
        """Adapt the base models of `model` that have unseen corrections (after new corrections, or a model
        update); {} when none needed it, or when the profile is read-only (the adaptation stored is used).
        `on_start(base model)` is told before each one adapts (seconds each: a progress line, a status)."""
        if self.read_only:
            return {}
        todo = [n for n in members(model) if self.can_adapt(n) is None and self.stale(n)]
        out = {}
        for name in todo:
            if on_start is not None:
                on_start(name)
            out.update(self.adapt(name))
        return out

    # ---------------------------------------------------------------------- reading
    def predict(self, name: str, batch: np.ndarray) -> tuple[np.ndarray, bool]:
        """(probabilities (N, 10), whether an adaptation read them) for model `name` (the ensemble averages its
        members, each adapted where it has an adaptation)."""
        if not any(self.adapted(m) for m in members(name)) or len(batch) == 0:
            return self.store.predict(name, batch), False
        calibration = self.store.calibration
        probs = []
        for member in members(name):
            adapted = self.adapted(member)
            if adapted is None:
                probs.append(self.store.predict(member, batch))
            else:  # the shipped model's temperature applies to its adapted head too (calibrated like the rest)
                p = adapted.head.probabilities(self.store.features(member, batch))
                probs.append(calibration.apply(member, p) if calibration else p)
        mean = np.mean(probs, axis=0).astype(np.float32)
        if name == ENSEMBLE and calibration:
            mean = calibration.apply(ENSEMBLE, mean)
        return mean, True

    def count_reading(self, digits: int, adapted: bool) -> None:
        """Count one reading shown to the user (not at all in a read-only profile: reading goes on there)."""
        if not self.read_only:
            self.db.count_reading(digits, adapted)

    # -------------------------------------------------------------------- corrections
    def sha_of(self, model: str) -> str:
        return "+".join(self.store.load(m).sha256 or "?" for m in members(model))

    def add_correction(self, *, label: int, input: np.ndarray, model: str, source: str, read: int | None,
                       probabilities=None, adapted: bool = False, crop: np.ndarray | None = None,
                       reading: str | None = None, digit: int | None = None) -> int | None:
        """Store what the writer said a digit is (its prepared input and crop, what was read). The crop (the
        digit's box) must be shaped like a digit: a line is refused, RecognizerError. With `reading` and `digit`
        it replaces that digit's earlier correction (ProfileStore.add)."""
        why = not_a_digit((0, 0, np.shape(crop)[1], np.shape(crop)[0])) if crop is not None and np.ndim(crop) >= 2 \
            else None
        if why:
            raise RecognizerError(f"this digit {why}; nothing stored")
        cid = self.db.add(label=label, input=input, model=model, source=source, read=read,
                          probabilities=probabilities, base_sha256=self.sha_of(model), adapted=adapted,
                          crop_png=png_bytes(crop), reading=reading, digit=digit)
        if reading is not None:  # a replacement drops the adaptations: read them again from the database
            with self._lock:
                self._in_use.clear()
        return cid

    def correct_reading(self, reading, text: str, source: str, image=None, counted: bool = False,
                        key: str | None = None) -> list[int]:
        """Store the right digits of a whole reading: `text` has one character per digit in reading order (line
        breaks and spaces ignored), a digit 0-9 to teach, or "?" / "_" to skip that digit. `image` (the array
        or path that was read) gives each stored digit its crop; `key` (the client's name for this reading)
        makes a digit corrected again replace its earlier correction. The reading is counted with them (the
        error rate's denominator) unless `counted`: its caller counts it (count_reading). Returns the ids
        stored; RecognizerError, storing nothing, when `text` does not match the reading or names a digit that
        cannot be one."""
        wanted = [c for c in str(text) if not c.isspace()]
        bad = [c for c in wanted if not (c.isdigit() and c.isascii()) and c not in "?_"]
        if bad:
            raise RecognizerError(f"the right text may hold digits 0-9 and '?' for a digit to skip; got {bad[0]!r}")
        if len(wanted) != len(reading.digits):
            raise RecognizerError(f"the image reads as {len(reading.digits)} digit(s) ({reading.text!r}) but the "
                                  f"right text {text!r} has {len(wanted)}; nothing stored")
        if all(c in "?_" for c in wanted):
            raise RecognizerError("the right text names no digit (only '?'); nothing stored")
        # a paper reading's digits were read by the string reader; their 28x28 inputs teach the canvas models
        model = reading.model if reading.model in MODEL_NAMES else (self.store.default_name() or BASE_MODELS[1])
        for i, (c, d) in enumerate(zip(wanted, reading.digits)):
            why = not_a_digit(d.box)
            if c not in "?_" and why:
                raise RecognizerError(f"digit {i + 1} of the reading {why}; nothing stored (give '?' to skip it)")
        gray = None
        if image is not None:
            from .images import load_gray

            gray = load_gray(image)
        rows = []
        for place, (c, d) in enumerate(zip(wanted, reading.digits)):
            if c in "?_":
                continue
            crop = None
            if gray is not None:
                x, y, w, h = d.box
                crop = gray[y:y + h, x:x + w]
            rows.append(dict(label=int(c), input=d.input, model=model, source=source, read=d.digit,
                             probabilities=d.probabilities, base_sha256=self.sha_of(model),
                             adapted=reading.adapted, crop_png=png_bytes(crop), key=key,
                             place=None if key is None else place))
        ids = self.db.add_all(rows, reading=None if counted else (len(reading.digits), reading.adapted))
        if key is not None:  # a replacement drops the adaptations: read them again from the database
            with self._lock:
                self._in_use.clear()
        return [i for i in ids if i is not None]

    def delete(self, correction_id: int) -> bool:
        """Remove one correction. The adaptations in use read on until the next attempt (the caller's re-adapt)
        replaces them, or sets them aside when it is refused: a reading flips at most once (issue 37)."""
        gone = self.db.delete(correction_id)
        if gone:
            with self._lock:
                self._fitted_on_deleted.update(n for n, a in self._in_use.items() if a is not None)
        return gone

    def reset(self, keep_export: bool = True) -> Path | None:
        """Forget the writer's hand; first export the corrections beside the database unless told not to.
        Returns the export's path (None when not kept or there was nothing to keep)."""
        name = f"corrections-before-reset-{time.strftime('%Y%m%d-%H%M%S')}.json"  # -2, -3... within a second
        kept = self.db.reset(export_to=self.folder / name if keep_export else None)
        with self._lock:
            self._in_use.clear()
        return kept

    # ---------------------------------------------------------------------- monitoring
    def stats(self, model: str | None = None) -> dict:
        """Counts for the user and a maintainer: readings, corrections, error rate in use before and after
        adaptation, the latest adaptation decision per model, the writer's most frequent confusions."""
        usage = self.db.usage()

        def rate(rows):
            digits = sum(r["digits"] for r in rows)
            corrected = sum(r["corrected"] for r in rows)
            return {"readings": sum(r["readings"] for r in rows), "digits": digits, "corrected": corrected,
                    "error_rate": round(corrected / digits, 4) if digits else None}

        adaptations = {}
        for name in members(model) if model else BASE_MODELS:
            try:
                sha = self.store.load(name).sha256
            except RecognizerError:
                continue
            row = self.db.latest_adaptation(name, sha) if sha else None
            in_use = self.adapted(name)
            adaptations[name] = {"in_use": in_use is not None,
                                 "corrections": in_use.corrections if in_use else 0,
                                 "last": row.report if row else None}
        corrections = self.db.corrections()
        return {
            "profile": str(self.folder),
            "corrections": len(corrections),
            "corrected_digits": sum(1 for c in corrections if c.read is not None and c.read != c.label),
            "confirmed_digits": sum(1 for c in corrections if c.read is not None and c.read == c.label),
            "before_adaptation": rate([r for r in usage if not r["adapted"]]),
            "with_adaptation": rate([r for r in usage if r["adapted"]]),
            "by_day": usage,
            "confusions": self.db.confusions(),
            "adaptations": adaptations,
        }


def stats_lines(stats: dict) -> list[str]:
    """The profile's figures as short lines for a terminal or a dialog."""
    def rate(part):
        r = part["error_rate"]
        return (f"{part['digits']} digits in {part['readings']} readings, {part['corrected']} corrected"
                + (f" ({r:.1%})" if r is not None else ""))

    lines = [f"profile: {stats['profile']}",
             f"corrections stored: {stats['corrections']} ({stats['corrected_digits']} misread, "
             f"{stats['confirmed_digits']} read right and confirmed)",
             f"before adaptation: {rate(stats['before_adaptation'])}",
             f"with adaptation:   {rate(stats['with_adaptation'])}"]
    for name, a in stats["adaptations"].items():
        last = a["last"]
        state = f"in use, learned from {a['corrections']} corrections" if a["in_use"] else "not adapted"
        lines.append(f"{name}: {state}" + (f"; last attempt: {last['reason']}" if last else ""))
    if stats["confusions"]:
        lines.append("most frequent misreadings: " + ", ".join(
            f"{c['label']} read as {c['read']} ({c['count']}x)" for c in stats["confusions"]))
    return lines
