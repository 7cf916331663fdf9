"""Recognition off the UI thread.

Tk is single-threaded, and loading models and reading take time (seconds when a model falls back to
TensorFlow), so all of it happens in one background thread. The UI submits requests; the worker answers through a
`queue.Queue` that the UI polls with `after`. The worker never touches Tk. A newer request
replaces an older one that has not started yet (only the latest drawing matters), and in idle
time the worker loads the models one by one so that load errors show up in the picker early.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from common.names import BASE_MODELS, ENSEMBLE, train_hint

from .learning import ALL_MODELS, Learner, ProfileOpened, is_user_error
from .session import ready_models

log = logging.getLogger("gui.worker")



@dataclass(frozen=True)
class Request:
    id: int
    image: Any  # np.ndarray (uint8) or a file path; the recognizer loads and normalises it
    model: str | None  # a recognizer model name, ALL_MODELS, or None for the store's default
    source: str = "drawing"  # "drawing" or "image": tells the UI how to place the boxes


@dataclass(frozen=True)
class StatusUpdate:
    status: dict[str, str]  # like ModelStore.status(): "ok" | "missing" | "error: <reason>"
    default: str | None
    loaded: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecognitionDone:
    request: Request
    readings: dict[str, Any]  # model name -> recognizer.Reading
    primary: str  # the reading whose boxes are drawn
    ms: float


@dataclass(frozen=True)
class RecognitionFailed:
    request: Request
    model: str | None
    message: str


def default_factory(models_dir: str, profile: str | None = None):
    """Import the recognizer here, in the worker thread, so the UI thread never imports TensorFlow.

    `profile`: the --profile value (a folder, "none", or None for $DIGITS_PROFILE / the per-user default).
    Returns (store, recognizer, ProfileOpened); a profile that cannot be opened is said, and reading goes on
    with the shipped models alone."""
    from recognizer import ModelStore, Recognizer, RecognizerError
    from recognizer.profile import Profile, resolve_profile_dir

    store = ModelStore(models_dir)
    folder = None
    try:
        folder = resolve_profile_dir(profile)
        opened = Profile(folder, store) if folder is not None else None
    except RecognizerError as exc:
        log.warning("profile not used: %s", exc)
        return store, Recognizer(store), ProfileOpened(None, None, str(exc))
    moved = str(opened.moved_aside) if opened is not None and opened.moved_aside else None
    if opened is not None and opened.read_only:  # it reads with the adaptation stored; corrections are not kept
        try:
            opened.db.check_writable()
        except RecognizerError as exc:
            log.warning("profile read-only: %s", exc)
            return store, Recognizer(store, profile=opened), ProfileOpened(None, moved, str(exc))
    return store, Recognizer(store, profile=opened), ProfileOpened(str(folder) if folder else None, moved)


@dataclass
class _State:
    pending: Request | None = None
    preload: list[str] = field(default_factory=list)
    stop: bool = False


class RecognitionWorker:
    """One daemon thread owning the ModelStore and Recognizer."""

    def __init__(self, models_dir: str, results: "queue.Queue[Any]",
                 factory: Callable[[str], tuple[Any, Any]] = default_factory) -> None:
        self.models_dir = models_dir
        self.results = results
        self._factory = factory
        self._cond = threading.Condition()
        self._state = _State()
        self._errors: dict[str, str] = {}
        self._loaded: list[str] = []
        self._store = None
        self._rec = None
        self._thread = threading.Thread(target=self._run, name="recognition-worker", daemon=True)
        self.learner = Learner(results)  # the writer's profile, in its own thread (attached once it is open)

    def start(self, first_model: str | None = None) -> None:
        """Start the thread; it loads `first_model` (or the store's default) before anything else."""
        with self._cond:
            if first_model:
                self._state.preload.insert(0, first_model)
        self._thread.start()

    def submit(self, request: Request) -> None:
        """Queue `request`, replacing any request that has not started yet."""
        with self._cond:
            if self._state.pending is not None:
                log.debug("request %d superseded by %d", self._state.pending.id, request.id)
            self._state.pending = request
            self._cond.notify()

    def preload(self, name: str) -> None:
        """Load `name` next when idle (the user picked it, so it should be warm by the next stroke)."""
        with self._cond:
            if name in self._state.preload:
                self._state.preload.remove(name)
            self._state.preload.insert(0, name)
            self._cond.notify()

    def stop(self, timeout: float | None = None) -> None:
        with self._cond:
            self._state.stop = True
            self._cond.notify()
        self.learner.stop(timeout)
        if self._thread.is_alive() and timeout:
            self._thread.join(timeout)

    # --- worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            made = self._factory(self.models_dir)
            self._store, self._rec = made[0], made[1]
        except Exception as exc:  # the window must stay usable and say why
            log.exception("could not create the recognizer")
            reason = f"error: recognizer unavailable: {exc}"
            self.results.put(StatusUpdate({n: reason for n in (*BASE_MODELS, ENSEMBLE)}, None))
            self.results.put(ProfileOpened(None, None, f"recognizer unavailable: {exc}"))
            self.learner.attach(None)
            self._serve_without_recognizer(str(exc))
            return
        profile = getattr(self._rec, "profile", None)
        opened = made[2] if len(made) > 2 else ProfileOpened(str(getattr(profile, "folder", "")) or None)
        self.results.put(opened)
        self.learner.attach(profile)
        status = self._post_status()
        default = self._default()
        with self._cond:
            wanted = [default] if default else []
            wanted += [n for n in BASE_MODELS if status.get(n) == "ok"]
            for name in wanted:
                if name not in self._state.preload:
                    self._state.preload.append(name)
        while True:
            with self._cond:
                while not (self._state.stop or self._state.pending or self._state.preload):
                    self._cond.wait()
                if self._state.stop:
                    return
                request, self._state.pending = self._state.pending, None
                name = None if request else self._state.preload.pop(0)
            if request is not None:
                self._handle(request)
            else:
                self._load(name)

    def _serve_without_recognizer(self, reason: str) -> None:
        while True:
            with self._cond:
                while not (self._state.stop or self._state.pending):
                    self._cond.wait()
                if self._state.stop:
                    return
                request, self._state.pending = self._state.pending, None
            self.results.put(RecognitionFailed(request, request.model, f"recognizer unavailable: {reason}"))

    def _default(self) -> str | None:
        try:
            return self._store.default_name()
        except Exception:
            log.exception("default_name failed")
            return None

    def _status(self) -> dict[str, str]:
        try:
            status = dict(self._store.status())
        except Exception as exc:
            log.exception("status failed")
            status = {n: f"error: {exc}" for n in (*BASE_MODELS, ENSEMBLE)}
        for name, reason in self._errors.items():  # a failed load wins over "ok" (file present)
            if status.get(name) == "ok":
                status[name] = f"error: {reason}"
        return status

    def _post_status(self) -> dict[str, str]:
        status = self._status()
        self.results.put(StatusUpdate(status, self._default(), tuple(self._loaded)))
        return status

    def _load(self, name: str | None) -> None:
        if not name or name == ALL_MODELS:
            for single in BASE_MODELS if name == ALL_MODELS else ():
                self.preload(single)
            return
        if name in self._loaded or name in self._errors or self._status().get(name) != "ok":
            return
        import numpy as np  # worker thread only: keeps numpy off the UI's startup path

        t0 = time.perf_counter()
        try:
            # ModelStore is lazy: a one-image predict is the documented way to make it load.
            self._store.predict(name, np.zeros((1, 28, 28, 1), np.float32))
        except Exception as exc:
            self._errors[name] = str(exc) or type(exc).__name__
            log.warning("model %s failed to load: %s", name, self._errors[name])
        else:
            self._mark_loaded(name)
            log.info("model %s loaded in %.0f ms", name, (time.perf_counter() - t0) * 1000)
        self._post_status()

    def _mark_loaded(self, name: str) -> None:
        for n in sorted(ready_models([*self._loaded, name]) - set(self._loaded)):
            self._loaded.append(n)

    def _handle(self, request: Request) -> None:
        t0 = time.perf_counter()
        try:
            if request.model == ALL_MODELS:
                status = self._status()
                names = [n for n in BASE_MODELS if status.get(n) == "ok"]
                if not names:
                    raise LookupError(f"no model available; {train_hint()}")
                readings = dict(self._rec.read_models(request.image, names))
                primary = "cnn" if "cnn" in readings else next(iter(readings))
                ms = max(float(r.ms) for r in readings.values())
            else:
                reading = self._rec.read(request.image, model=request.model)
                primary = reading.model
                readings = {primary: reading}
                ms = float(reading.ms)
        except Exception as exc:
            if not is_user_error(exc):
                log.exception("recognition failed unexpectedly")
            self.results.put(RecognitionFailed(request, request.model, str(exc) or type(exc).__name__))
            self._post_status()  # a model that failed to load now reports "error: ..." in the store
            return
        log.debug("request %d done in %.0f ms wall", request.id, (time.perf_counter() - t0) * 1000)
        if any(name not in self._loaded for name in readings):
            for name in readings:
                self._mark_loaded(name)
            self._post_status()
        self.results.put(RecognitionDone(request, readings, primary, ms))

