"""Adaptation off the event loop: a correction asks for one, a single background thread runs it a moment later.

Debounced: corrections that come in quick succession (a user fixing three digits) cause one adaptation, started
`delay` seconds after the last of them; a correction during an adaptation causes one more after it. A reset
waits for a running adaptation to end and drops the pending ones, so that no adaptation of forgotten
corrections is kept; so do a correction that replaces another and the removal of one. The thread is made on
first use and ends with the app.
"""

from __future__ import annotations

import logging
import threading
import time

from recognizer.profile import Profile

log = logging.getLogger("web.learning")

DELAY_S = 0.8


class Learner:
    def __init__(self, profile: Profile, delay: float = DELAY_S):
        self.profile = profile
        self.delay = float(delay)
        self._cond = threading.Condition()
        self._work = threading.Lock()      # held while an adaptation (or a reset) runs
        self._pending: list[str] = []      # models to adapt, in the order asked
        self._due = 0.0
        self._running = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None      # the last adaptation that failed unexpectedly (logged too)

    # ------------------------------------------------------------------------- asking
    def request(self, model: str, delay: float | None = None) -> None:
        """Adapt `model` (its base models with unseen corrections) `delay` seconds from now, unless asked again."""
        with self._cond:
            if self._stopped:
                return
            if model not in self._pending:
                self._pending.append(model)
            self._due = time.monotonic() + (self.delay if delay is None else delay)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="adapt", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """True while an adaptation is pending or running."""
        with self._cond:
            return bool(self._pending) or self._running

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until nothing is pending or running (tests, shutdown); False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def reset(self, keep_export: bool = True):
        """Profile.reset, after a running adaptation ends; pending ones are dropped."""
        with self._cond:
            self._pending.clear()
        with self._work:
            with self._cond:
                self._pending.clear()
            return self.profile.reset(keep_export=keep_export)

    def store(self, fn):
        """fn(), after a running adaptation ends: a correction that replaces or removes another must not race an
        adaptation that read the old one (it would be kept as if it had seen the new state)."""
        with self._work:
            return fn()

    def delete(self, correction_id: int, model: str) -> bool:
        """Remove one correction (Profile.delete drops the adaptations), then adapt `model` again."""
        gone = self.store(lambda: self.profile.delete(correction_id))
        if gone:
            self.request(model)
        return gone

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------------- the thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._pending or time.monotonic() < self._due):
                    self._cond.wait(max(0.01, self._due - time.monotonic()) if self._pending else None)
                if self._stopped:
                    return
                self._running = True
            try:
                with self._work:
                    with self._cond:
                        models, self._pending = self._pending, []
                    for model in models:
                        self._adapt(model)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()

    def _adapt(self, model: str) -> None:
        try:
            t0 = time.perf_counter()
            decisions = self.profile.adapt_if_stale(model)
            for name, d in decisions.items():
                log.info("adaptation of %s: %s", name, d.reason)
            if decisions:
                log.info("adapted for %s in %.2f s", model, time.perf_counter() - t0)
            self.error = None
        except Exception as exc:  # a broken model or database: said in GET /api/profile and the log
            self.error = f"adaptation failed ({type(exc).__name__}: {exc})"
            log.exception("adaptation for %s failed", model)
