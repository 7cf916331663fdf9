"""Learning the writer's hand in the background: the one learner of the app and the page's server.

A correction asks for an adaptation (`Learner.request`); one daemon thread runs it a moment later, so that a writer
fixing three digits in a row causes one adaptation, not three, and whoever asked never waits for it (an adaptation
takes seconds). One adaptation runs at a time; a request that comes while one runs is run once after it. What the
learner is doing, and how the last adaptation went, is its `status`: views read it, or are told each change of it
(`on_change`, called on the learner's thread), and only say it in their own words.

Removing or replacing a correction must not race an adaptation that read the old one (the adaptation would be kept
as if it had seen the new state): `between_adaptations(fn)` runs such a change while none runs, and `reset`
also drops the adaptations still waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .errors import RecognizerError

log = logging.getLogger(__name__)

DELAY_S = 0.5  # after the last request: a writer correcting digits one after another within it causes one adaptation

IDLE, WAITING, ADAPTING, STOPPED = "idle", "waiting", "adapting", "stopped"


@dataclass(frozen=True)
class Outcome:
    """One finished adaptation: the model asked for, each base model's decision, or why it failed."""

    model: str
    decisions: dict = field(default_factory=dict)  # base model -> adapt.Decision; {} when none needed adapting
    forced: bool = False  # adapted whether or not some corrections were unseen (after a correction was removed)
    error: str | None = None  # the adaptation failed: why, in words (logged with its traceback when unexpected)
    seconds: float = 0.0


@dataclass(frozen=True)
class LearnerStatus:
    """What the learner does now (IDLE, WAITING for the writer to pause, ADAPTING, STOPPED) and its last outcome."""

    state: str = IDLE
    model: str | None = None  # ADAPTING: the base model adapting now
    last: Outcome | None = None

    @property
    def busy(self) -> bool:
        """An adaptation waits or runs: what reads may still change."""
        return self.state in (WAITING, ADAPTING)


class Learner:
    """Debounced, one-at-a-time adaptation of one Profile on one daemon thread (made on the first request)."""

    def __init__(self, profile, delay: float = DELAY_S,
                 on_change: Callable[[LearnerStatus], None] | None = None) -> None:
        self.profile = profile
        self.delay = float(delay)
        self.on_change = on_change
        self._cond = threading.Condition()
        self._work = threading.Lock()  # held while an adaptation runs, and by changes that must not race one
        self._pending: dict[str, bool] = {}  # model -> forced, in the order asked
        self._due = 0.0
        self._status = LearnerStatus()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ asking
    def request(self, model: str, *, delay: float | None = None, force: bool = False) -> None:
        """Adapt `model` (its base models with unseen corrections; all of them when `force`) `delay` seconds from
        now (the learner's delay when None), unless asked again before then."""
        with self._cond:
            if self._status.state == STOPPED:
                return
            self._pending[model] = self._pending.get(model, False) or force
            self._due = time.monotonic() + (self.delay if delay is None else max(0.0, delay))
            if self._status.state == IDLE:
                self._status = LearnerStatus(WAITING, last=self._status.last)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="learner", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def between_adaptations(self, fn: Callable[[], object]):
        """fn(), while no adaptation runs (waiting for a running one to end)."""
        with self._work:
            return fn()

    def delete(self, correction_id: int, model: str) -> bool:
        """Remove one correction, then adapt `model` again without it (forced: no unseen correction says so)."""
        gone = self.between_adaptations(lambda: self.profile.delete(correction_id))
        if gone:
            self.request(model, force=True)
        return gone

    def reset(self, keep_export: bool = True):
        """Profile.reset once a running adaptation ends; the waiting ones are dropped (nothing is left to learn)."""
        def forget():
            self._drop_waiting()  # asked for while the running one ended: of corrections about to go
            return self.profile.reset(keep_export=keep_export)

        self._drop_waiting()
        return self.between_adaptations(forget)

    def _drop_waiting(self) -> None:
        with self._cond:
            self._pending.clear()
            if self._status.state == WAITING:
                self._status = LearnerStatus(IDLE, last=self._status.last)
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------------ telling
    @property
    def status(self) -> LearnerStatus:
        with self._cond:
            return self._status

    @property
    def busy(self) -> bool:
        return self.status.busy

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no adaptation waits or runs (tests, a command that must see the result); False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._status.busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float | None = 10.0) -> None:
        """Drop the waiting adaptations and end the thread, waiting up to `timeout` s for a running one."""
        with self._cond:
            self._pending.clear()
            self._status = LearnerStatus(STOPPED, last=self._status.last)
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ------------------------------------------------------------------------------------------ the thread
    def _set(self, state: str, model: str | None, last: Outcome | None) -> None:
        """The new status (IDLE: WAITING when a request came meanwhile; STOPPED stays), told to `on_change`."""
        with self._cond:
            if self._status.state == STOPPED:
                state = STOPPED
            elif state == IDLE and self._pending:
                state = WAITING
            self._status = status = LearnerStatus(state, model, last)
            self._cond.notify_all()
        if self.on_change is not None and status.state != STOPPED:
            try:
                self.on_change(status)
            except Exception:  # a view that cannot show it must not end the learner
                log.exception("on_change failed")

    def _next(self) -> tuple[str, bool] | None:
        """The next model to adapt once the writer has paused; None when stopped."""
        with self._cond:
            while self._status.state != STOPPED and (not self._pending or time.monotonic() < self._due):
                self._cond.wait(max(0.005, self._due - time.monotonic()) if self._pending else None)
            if self._status.state == STOPPED:
                return None
            model = next(iter(self._pending))
            return model, self._pending.pop(model)

    def _loop(self) -> None:
        self._prepare()
        while (job := self._next()) is not None:
            model, forced = job
            with self._work:
                outcome = self._adapt(model, forced)
            self._set(IDLE, None, outcome)

    def _prepare(self) -> None:
        """While the first request's pause runs: what the first adaptation would otherwise load and draw first
        (half a second on busy cores). A failure here is the adaptation's to report."""
        with self._cond:
            models = list(self._pending)
        for model in models:
            try:
                self.profile.prepare(model)
            except Exception:  # noqa: BLE001 - the adaptation itself says what is wrong
                log.debug("preparing %s failed", model, exc_info=True)

    def _adapt(self, model: str, forced: bool) -> Outcome:
        t0 = time.perf_counter()
        last = self.status.last
        try:
            if forced:
                self._set(ADAPTING, model, last)
                decisions = self.profile.adapt(model)
            else:  # said only when some base model has unseen corrections
                decisions = self.profile.adapt_if_stale(
                    model, on_start=lambda name: self._set(ADAPTING, name, last))
        except Exception as exc:  # a broken model or database: the status says it, the log has the traceback
            if isinstance(exc, RecognizerError):
                log.warning("adaptation for %s failed: %s", model, exc)
                error = str(exc)
            else:
                log.exception("adaptation for %s failed", model)
                error = f"{type(exc).__name__}: {exc}"
            return Outcome(model, {}, forced, error, time.perf_counter() - t0)
        seconds = time.perf_counter() - t0
        if decisions:  # each decision is logged by the profile
            log.info("adapted for %s in %.2f s", model, seconds)
        return Outcome(model, decisions, forced, None, seconds)
