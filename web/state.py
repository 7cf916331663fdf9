"""The one object a request's handler needs: the models, the writer's profile and its learner, the limits, and the
pool of threads readings run on. `build_state` makes it once per app (web/server.py keeps it on `app.state.server`);
handlers get it with `Depends(server_state)`, so that they are plain module-level functions, not closures."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fastapi import Request

from common.names import MODEL_NAMES, train_hint
from recognizer import ModelStore, RecognizerError
from recognizer.learner import Learner
from recognizer.profile import Profile, members

from . import guard, upload
from .errors import ApiError
from .learning import LEARN_HINT


@dataclass(frozen=True)
class ServerState:
    """What the app was made with; one per app, shared by every request (ModelStore and Profile are thread-safe)."""

    store: ModelStore
    profile: Profile | None       # None: reading with the shipped models alone
    learner: Learner | None       # the one background adapter of `profile` (None without a profile)
    learn: bool                   # clients may change the profile (serve.py --learn)
    hosts: frozenset[str]         # the names a request that changes the profile may address (web/guard.py)
    max_body: int
    max_pixels: int
    readers: ThreadPoolExecutor   # the one limit on readings: a request waits off the event loop for a free thread
    preload: bool                 # load every present model at start-up

    def check_model(self, name: str | None) -> str:
        """A loadable model name (the default when None): 422 unknown, 503 missing or broken."""
        if name in (None, ""):
            name = self.store.default_name()
            if name is None:
                raise ApiError(503, f"no trained model in {self.store.models_dir}/; {train_hint()}")
        if name not in MODEL_NAMES:
            raise ApiError(422, f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)} "
                                "(GET /api/models says which are loaded)")
        try:
            self.store.load(name)  # loaded at start-up; this only returns the cached model, or says what is wrong
        except RecognizerError as exc:
            raise ApiError(503, f"model {name!r} is not available: {exc}", model=name, hint=train_hint(name)) from None
        return name

    def stale(self, name: str) -> bool:
        """Some member of `name` has corrections that no adaptation of its current model has seen."""
        return any(self.store.status()[m] == "ok" and self.profile.can_adapt(m) is None and self.profile.stale(m)
                   for m in members(name))

    async def take_image(self, request: Request):
        """The upload (at most `max_body` bytes) and its parameters, form fields over the query string."""
        body = await upload.read_body(request, self.max_body)
        up = upload.split_upload(body, request.headers.get("content-type", ""))
        params = {**request.query_params, **up.fields}
        return up, params

    async def run_reading(self, fn, *args):
        """fn(*args) on one of the `workers` reading threads (whether or not the lifespan ran)."""
        return await asyncio.get_running_loop().run_in_executor(self.readers, fn, *args)

    def decode_and(self, up, fn):
        """fn(the uploaded image), the image decoded within `max_pixels` and closed after; unreadable: 400."""
        image = upload.open_image(up.image, self.max_pixels)
        try:
            return fn(image)
        except RecognizerError as exc:
            raise ApiError(400, f"cannot read this image: {exc}") from None
        finally:
            image.close()

    async def may_change(self, request: Request, what: str) -> None:
        """403 (the body dropped unread) unless the request comes from this server's page or no page, and the
        server learns."""
        try:
            guard.check(request, self.hosts, what)
            if not self.learn:
                raise ApiError(403, f"this server does not accept changes to a profile: {LEARN_HINT}",
                               hint="python serve.py --learn")
        except ApiError:
            await upload.discard(request, self.max_body)
            raise


def build_state(store: ModelStore, *, profile: Profile | None, learn: bool, host: str | None, max_body: int,
                max_pixels: int, workers: int | None, preload: bool, adapt_delay: float) -> ServerState:
    """The app's state, its arguments checked first: a wrong combination is the caller's bug, so ValueError."""
    if profile is not None and profile.store is not store:
        raise ValueError("the profile must be over the app's ModelStore")
    if learn and profile is None:
        raise ValueError("learn=True needs a profile")
    workers = workers or max(2, os.cpu_count() or 2)
    learner = Learner(profile, adapt_delay) if profile is not None else None
    return ServerState(store=store, profile=profile, learner=learner, learn=learn, hosts=guard.allowed_names(host),
                       max_body=max_body, max_pixels=max_pixels, preload=preload,
                       readers=ThreadPoolExecutor(workers, thread_name_prefix="reading"))


async def server_state(request: Request) -> ServerState:
    """The dependency every handler takes (async: FastAPI would run a plain function on a thread)."""
    return request.app.state.server
