"""Learning the writer's hand in the app: corrections, their undo, adaptation and the profile's figures.

Everything that touches the profile (recognizer/profile.py: an SQLite database, and a NumPy refit that takes a
few seconds) runs off the Tk thread, beside the recognition worker: the window never waits for it, and drawings
keep being read while it adapts. The UI submits jobs to the `Learner` here, whose thread stores and removes
corrections; adapting is recognizer/learner.py's, the learner the page's server uses too (debounced, one at a
time), which the Learner here asks and listens to. Answers come back through the same queue the recognition worker
uses, as the frozen messages below. Neither thread touches Tk.

The rest of this module is the view logic kept apart from Tk so it can be tested alone: which digits of a
reading the writer corrected (`Corrections`, keyed by the digit's box: the same strokes give the same box, so a
correction follows its digit through re-readings and is dropped once the digit is redrawn), the text shown with
them, and the one line the status bar says about an adaptation.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

log = logging.getLogger("gui.learning")

ALL_MODELS = "all"  # pseudo model name, the picker's "All three": the base models side by side
LIST_LIMIT = 50  # corrections "My handwriting" lists, newest first: enough to find a mistyped one
THUMB_PX = 32  # a listed correction's crop is shown this high
ADAPT_DELAY_S: float | None = None  # None: the one learner's pause (recognizer/learner.DELAY_S); tests shorten it


# --- messages to the UI ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProfileOpened:
    folder: str | None  # None: no profile (--profile none, or it could not be opened: see error)
    moved_aside: str | None = None  # an unreadable database was moved here and a fresh one started
    error: str | None = None


@dataclass(frozen=True)
class CorrectionStored:
    token: int
    id: int | None  # None: this very correction was already stored


@dataclass(frozen=True)
class CorrectionUndone:
    token: int | None  # None: removed from the list, not a correction made in this session
    id: int | None
    deleted: bool  # False: it was never stored (undone before it was written) or already gone


@dataclass(frozen=True)
class AdaptationStarted:
    model: str  # the base model adapting now (seconds: the status line says so)


@dataclass(frozen=True)
class AdaptationDone:
    model: str
    accepted: bool  # some base model now reads with a new adaptation
    changed: bool  # what reads changed (a new adaptation, or one set aside): the drawing on screen is read again
    text: str  # one line for the status bar
    decisions: dict = field(default_factory=dict)  # base model -> Decision.summary()


@dataclass(frozen=True)
class Listed:
    """One stored correction as "My handwriting" lists it."""

    id: int
    label: int
    read: int | None
    thumbnail: bytes | None  # PNG, THUMB_PX high (made in the learner's thread); None: no crop was kept


@dataclass(frozen=True)
class ProfileStats:
    lines: tuple[str, ...]
    corrections: int = 0  # none: "Forget my handwriting" has nothing to forget
    recent: tuple[Listed, ...] = ()  # the newest LIST_LIMIT corrections, newest first


@dataclass(frozen=True)
class ProfileReset:
    export: str | None  # where the corrections were kept before they were forgotten


@dataclass(frozen=True)
class ProfileFailed:
    action: str
    message: str


# --- jobs from the UI --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Correct:
    token: int  # the UI's name for this correction until the database gives it an id
    label: int
    reading: Any  # the recognizer's Reading the digit belongs to (its input, what was read, the model)
    digit: int  # the digit's place in reading.digits
    image: Any  # what was read (the drawing's array, or the photo's path): the profile keeps the digit's crop of it

    def right_text(self) -> str:
        """The right text Profile.correct_reading takes: this digit's label, '?' (skip) for the others."""
        return "".join(str(self.label) if i == self.digit else "?" for i in range(len(self.reading.digits)))


@dataclass(frozen=True)
class Undo:
    token: int


@dataclass(frozen=True)
class Remove:
    id: int  # a stored correction, picked in "My handwriting": deleted like an undone one


@dataclass(frozen=True)
class Adapt:
    model: str
    only_if_stale: bool = False  # at start and on a model change: only when corrections are unseen


@dataclass(frozen=True)
class CountReading:
    digits: int
    adapted: bool


@dataclass(frozen=True)
class Stats:
    model: str | None


@dataclass(frozen=True)
class Reset:
    pass


QUICK = (Correct, Undo, Remove, CountReading, Reset)  # still done when the app quits; Adapt and Stats are not


def profile_model(model: str | None) -> str | None:
    """The profile's name for the picker's model: "All three" adapts the three members like the ensemble."""
    return "ensemble" if model == ALL_MODELS else model


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def adaptation_text(decisions: dict[str, dict]) -> tuple[bool, str]:
    """(accepted, one status line) from {base model: Decision.summary()}: how much of the change was kept when
    it was scaled back, and how many corrections were set aside as mistyped."""
    if not decisions:
        return False, ""
    accepted = {n: d for n, d in decisions.items() if d["accepted"]}
    if accepted:
        n = max(d["corrections"] - d.get("ignored", 0) for d in accepted.values())
        names = ", ".join(m.upper() for m in accepted)
        text = f"{names} learned from {_plural(n, 'correction')} of your handwriting"
        kept = min(d.get("kept", 1.0) for d in accepted.values())
        if kept < 1.0:
            text += f"; kept {kept:.0%} of the change, so that other people's digits read as before"
        ignored = max(d.get("ignored", 0) for d in accepted.values())
        if ignored:
            text += f"; left out {_plural(ignored, 'correction')} nothing else supports (mistyped?)"
        return True, text
    name, d = next(iter(decisions.items()))
    return False, f"{name.upper()} not adapted: {d['reason']}"


def in_use_text(model: str, adapted: dict[str, int], corrections: int) -> str:
    """The status line when nothing new was learned (at start, after switching models): {base model: the
    corrections its adaptation in use learned from}; "" when there is nothing to say (no corrections)."""
    if not adapted:
        return f"{model.upper()} reads as shipped (not adapted to your handwriting)" if corrections else ""
    names = ", ".join(m.upper() for m in adapted)
    return f"{names} reads with your handwriting (learned from {_plural(max(adapted.values()), 'correction')})"


def listed_text(label: int, read: int | None) -> str:
    """A listed correction in plain words."""
    if read is None:
        return f"you said {label}"
    return f"confirmed {label}" if read == label else f"read as {read}, you said {label}"


def thumbnail_png(png: bytes | None, height: int = THUMB_PX) -> bytes | None:
    """A stored crop made `height` high for the list (the same shape), as PNG that Tk shows without PIL."""
    if not png:
        return None
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("L")
        small = im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    return buf.getvalue()


def handwriting_lines(stats: dict) -> list[str]:
    """What the profile holds, in plain words, for the "My handwriting" window (Profile.stats())."""
    def part(p: dict, when: str) -> str:
        if not p["digits"]:
            return f"{when}: no digits read yet."
        return (f"{when}: {_plural(p['digits'], 'digit')} read, {p['corrected']} of them corrected"
                + (f" ({p['error_rate']:.1%})." if p["error_rate"] is not None else "."))

    lines = [f"Your corrections are kept in {stats['profile']}.",
             f"{_plural(stats['corrections'], 'correction')} kept: {stats['corrected_digits']} of digits it "
             f"misread, {stats['confirmed_digits']} of digits it read right that you confirmed.",
             part(stats["before_adaptation"], "Before it learned your handwriting"),
             part(stats["with_adaptation"], "Since it learned your handwriting")]
    for name, a in stats["adaptations"].items():
        last = a["last"]
        if a["in_use"]:
            lines.append(f"{name.upper()} reads with your handwriting, learned from "
                         f"{_plural(a['corrections'], 'correction')}.")
        elif last:
            lines.append(f"{name.upper()} reads as shipped: the last try to learn was not used ({last['reason']}).")
        else:
            lines.append(f"{name.upper()} reads as shipped.")
    if stats["confusions"]:
        lines.append("Misread most often: " + ", ".join(
            f"your {c['label']} read as {c['read']} ({_plural(c['count'], 'time')})" for c in stats["confusions"])
            + ".")
    return lines


# --- the thread --------------------------------------------------------------------------------------

class Learner:
    """One daemon thread owning the writer's Profile (or None when there is none), and the recognizer's learner
    that adapts it (made when the profile is attached)."""

    def __init__(self, results) -> None:
        self.results = results
        self._cond = threading.Condition()
        self._jobs: list[Any] = []
        self._attached = False
        self._stop = False
        self._profile = None
        self._adapting = None  # recognizer.learner.Learner over the profile
        self._ids: dict[int, int | None] = {}  # token -> database id
        self._thread = threading.Thread(target=self._run, name="profile-learner", daemon=True)

    def attach(self, profile) -> None:
        """Start serving jobs with `profile` (None: jobs that need one answer ProfileFailed)."""
        adapting = None
        if profile is not None:
            from recognizer.learner import Learner as Adapting

            delay = {} if ADAPT_DELAY_S is None else {"delay": ADAPT_DELAY_S}
            adapting = Adapting(profile, on_change=self._on_change, **delay)
        with self._cond:
            self._profile, self._adapting, self._attached = profile, adapting, True
            self._cond.notify()
        if not self._thread.is_alive():
            self._thread.start()

    def submit(self, job) -> None:
        with self._cond:
            if isinstance(job, Undo):
                for queued in self._jobs:  # not written yet: drop it, nothing to delete
                    if isinstance(queued, Correct) and queued.token == job.token:
                        self._jobs.remove(queued)
                        self.results.put(CorrectionUndone(job.token, None, False))
                        return
            if isinstance(job, (Adapt, Stats)):  # only the latest of these matters
                self._jobs = [j for j in self._jobs if type(j) is not type(job)]
            self._jobs.append(job)
            self._cond.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the quick jobs still queued (corrections, counts), skip the rest (and the adaptations waiting),
        end the thread, waiting up to `timeout` s. An adaptation running ends with the app: not waited for (its
        write is one transaction, and the next start adapts again)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
            adapting = self._adapting
        if adapting is not None:
            adapting.stop(timeout=0)
        if self._thread.is_alive() and timeout:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stop or (self._attached and self._jobs)):
                    self._cond.wait()
                if self._stop:
                    self._jobs = [j for j in self._jobs if isinstance(j, QUICK)]
                    if not self._jobs or not self._attached:
                        return
                job = self._jobs.pop(0)
            try:
                self._do(job)
            except Exception as exc:  # the window must keep working and say why
                if not is_user_error(exc):
                    log.exception("profile job %s failed", type(job).__name__)
                self.results.put(ProfileFailed(type(job).__name__.lower(), str(exc) or type(exc).__name__))

    def _do(self, job) -> None:
        p = self._profile
        if p is None:
            if isinstance(job, (Correct, Undo, Remove, Reset)):
                self.results.put(ProfileFailed(type(job).__name__.lower(), "no profile: corrections are not kept"))
            return
        if isinstance(job, Correct):  # the reading is counted when it is finished (CountReading)
            ids = p.correct_reading(job.reading, job.right_text(), source="app", image=job.image, counted=True)
            self._ids[job.token] = cid = ids[0] if ids else None
            self.results.put(CorrectionStored(job.token, cid))
        elif isinstance(job, Undo):
            cid = self._ids.pop(job.token, None)
            deleted = cid is not None and self._adapting.between_adaptations(lambda: p.delete(cid))
            self.results.put(CorrectionUndone(job.token, cid, bool(deleted)))
        elif isinstance(job, Remove):  # if it was made in this session, its undo now has nothing to delete
            token = next((t for t, cid in self._ids.items() if cid == job.id), None)
            self._ids.pop(token, None)
            self.results.put(CorrectionUndone(token, job.id, self._adapting.between_adaptations(
                lambda: p.delete(job.id))))
        elif isinstance(job, Adapt):  # after a correction: a moment later; at start: now, if anything is unseen
            self._adapting.request(profile_model(job.model), delay=0 if job.only_if_stale else None,
                                   force=not job.only_if_stale)
        elif isinstance(job, CountReading):
            p.count_reading(job.digits, job.adapted)
        elif isinstance(job, Stats):  # every base model, not only the one picked: each may have adapted
            stats = p.stats()
            recent = tuple(Listed(c.id, c.label, c.read, thumbnail_png(c.crop_png))
                           for c in reversed(p.db.corrections(limit=LIST_LIMIT)))
            self.results.put(ProfileStats(tuple(handwriting_lines(stats)), stats["corrections"], recent))
        elif isinstance(job, Reset):
            kept = self._adapting.reset(keep_export=True)
            self._ids.clear()
            self.results.put(ProfileReset(str(kept) if kept else None))

    def _on_change(self, status) -> None:
        """The recognizer's learner started or ended an adaptation (its thread): the messages the window shows."""
        from recognizer.learner import ADAPTING

        if status.state == ADAPTING:
            self.results.put(AdaptationStarted(status.model))
            return
        outcome = status.last
        if outcome is None:
            return
        if outcome.error is not None:
            self.results.put(ProfileFailed("adapt", outcome.error))
        elif outcome.decisions:
            summaries = {n: d.summary() for n, d in outcome.decisions.items()}
            accepted, text = adaptation_text(summaries)
            changed = accepted or any(d.get("set_aside") for d in summaries.values())
            self.results.put(AdaptationDone(outcome.model, accepted, changed, text, summaries))
        elif not outcome.forced:  # nothing new: say what reads (after a restart, after switching models)
            from recognizer.profile import members

            p = self._profile
            adapted = {n: a.corrections for n in members(outcome.model) if (a := p.adapted(n)) is not None}
            self.results.put(AdaptationDone(outcome.model, False, False,
                                            in_use_text(outcome.model, adapted, p.db.count())))


def is_user_error(exc: Exception) -> bool:
    """RecognizerError (bad file, missing model, a read-only profile...) and the OS's and the user's bad values are
    expected; anything else is a bug worth a traceback. The one rule for the worker threads of reading and
    learning. Imported here, in a worker thread, where the recognizer is already loaded: the UI thread never pays
    for importing it."""
    from recognizer.errors import RecognizerError

    return isinstance(exc, (RecognizerError, LookupError, OSError, ValueError))


# --- view logic --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """The writer's word on one digit: its right label, what the model read, the job that stored it."""

    label: int
    read: int | None
    job: Correct | None  # None: not kept (no profile)


@dataclass(frozen=True)
class Fix:
    """One correction in the undo history: which digit, the mark given, the mark it replaced."""

    key: tuple
    mark: Mark
    prev: Mark | None = None


def digit_key(digit: Any) -> tuple:
    return tuple(int(v) for v in digit.box)


class Corrections:
    """The corrections of the drawing (or photo) on screen, by digit box."""

    def __init__(self) -> None:
        self.marks: dict[tuple, Mark] = {}

    def clear(self) -> None:
        self.marks.clear()

    def get(self, digit: Any) -> Mark | None:
        return self.marks.get(digit_key(digit))

    def set(self, key: tuple, mark: Mark | None) -> Mark | None:
        """Set (or remove, with None) the mark of the digit with box `key`; returns the one it replaces."""
        prev = self.marks.pop(key, None)
        if mark is not None:
            self.marks[key] = mark
        return prev

    def labels(self, digits: Sequence[Any]) -> dict[int, int]:
        """{index in digits: the writer's label} for the digits they corrected or confirmed."""
        return {i: m.label for i, d in enumerate(digits) if (m := self.get(d)) is not None}

    def text(self, digits: Sequence[Any]) -> str:
        """The reading's text with the writer's labels (lines joined with newlines, like Reading.text)."""
        labels = self.labels(digits)
        lines: dict[int, list[str]] = {}
        for i, d in enumerate(digits):
            lines.setdefault(d.line, []).append(str(labels[i]) if i in labels else d.label)
        return "\n".join("".join(lines[k]) for k in sorted(lines))
