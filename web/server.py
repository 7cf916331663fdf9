"""The web app: a JSON API and a drawing page over the same recognizer the desktop app uses.

``create_app(models_dir=..., store=None)`` builds the FastAPI app; ``serve.py`` runs it on uvicorn. Every
reading goes through ``recognizer.Recognizer`` (no preprocessing here) and answers ``Reading.to_dict()``,
the object ``recognize.py --json`` prints. Models are loaded once when the app starts and shared by every
request (the ModelStore is thread-safe); readings run in worker threads, at most ``workers`` at a time,
which also bounds the memory that decoded images can take.

Errors are JSON ``{"error": message, "status": code}``: 400 for a body that is not a readable image, 413
for too many bytes or pixels, 422 for a bad parameter (unknown model, threshold outside [0, 1], no field
``image``), 503 when a model is missing or broken (with the command that trains it). The server never opens
a path a client names and writes nothing a client sends to disk (see web/upload.py), but for the digits a
user corrects, which go into their profile (recognizer/profile.py) when the server was started with
``learn=True`` (``serve.py --learn``); without it the endpoints that change a profile answer 403. Those
endpoints also refuse cross-site requests and DNS rebinding (web/guard.py), and adaptation runs in a
background thread (recognizer/learner.py), never on the event loop; web/learning.py says what it does.

Where things are: this module puts the app together; web/state.py holds what every request needs (ServerState),
web/routes.py the handlers, web/params.py the checks of their parameters, web/api_docs.py what /docs shows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.names import DEFAULT_MODELS_DIR, ENSEMBLE, train_hint
from recognizer import ModelStore, Recognizer, RecognizerError
from recognizer.learner import DELAY_S
from recognizer.profile import Profile

from . import upload
from .errors import ApiError
from .routes import ROUTERS
from .state import ServerState, build_state

log = logging.getLogger("web")
access_log = logging.getLogger("web.access")

TITLE = "Handwritten digit recognizer"
DESCRIPTION = ("Read handwritten digits (one or a whole number, several lines) from a drawing or photo. The same "
               "recognizer as the desktop app and `recognize.py`; `POST /api/read` answers exactly what "
               "`recognize.py --json` prints.")


def create_app(models_dir: str | os.PathLike = DEFAULT_MODELS_DIR, store: ModelStore | None = None, *,
               max_body: int = upload.MAX_BODY, max_pixels: int = upload.MAX_PIXELS, workers: int | None = None,
               preload: bool = True, profile: Profile | None = None, learn: bool = False, host: str | None = None,
               adapt_delay: float = DELAY_S) -> FastAPI:
    """The app. `store` replaces the ModelStore of `models_dir` (tests inject one); `preload` loads every
    present model at start-up; `workers` caps simultaneous readings (default: the CPU count, at least 2).
    `profile` (over the same store) reads with the writer's accepted adaptation; `learn` lets clients add
    corrections and reset it; `host` is the address the server listens on (a request that changes the
    profile must name it or a loopback name); `adapt_delay`: seconds after the last correction to adapt."""
    state = build_state(store if store is not None else ModelStore(models_dir), profile=profile, learn=learn,
                        host=host, max_body=max_body, max_pixels=max_pixels, workers=workers, preload=preload,
                        adapt_delay=adapt_delay)
    app = make_app(state)
    install_error_handlers(app)
    include_routes(app)
    log_every_request(app)
    return app


def make_app(state: ServerState) -> FastAPI:
    """The FastAPI app holding `state` for the handlers, without FastAPI's CDN docs pages (ours work offline)."""
    app = FastAPI(title=TITLE, version="1.0", description=DESCRIPTION, docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.server = state
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """Start-up: load the models and catch up on unadapted corrections; shut-down: stop the learner's thread."""
    state: ServerState = app.state.server
    store, learner = state.store, state.learner
    if state.preload:
        await run_in_threadpool(_preload, store)
    # corrections no adaptation of the current models has seen (a model update, the app or the CLI taught
    # them): adapt now, in the background, so that every model reads with them
    if learner is not None and store.default_name() is not None and await run_in_threadpool(state.stale, ENSEMBLE):
        learner.request(ENSEMBLE, delay=0)
    yield
    if learner is not None:
        learner.stop()


def install_error_handlers(app: FastAPI) -> None:
    """Every error answers JSON {"error", "status"} with a message a user can act on, never a traceback."""
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(RecognizerError, recognizer_error)
    app.add_exception_handler(Exception, internal_error)


def include_routes(app: FastAPI) -> None:
    """The handlers live on routers in web/routes.py, included in the order /docs lists them."""
    for router in ROUTERS:
        app.include_router(router)


def log_every_request(app: FastAPI) -> None:
    """One access-log line per request, with the text read (serve.py turns uvicorn's own access log off)."""
    app.add_middleware(AccessLog)


# ------------------------------------------------------------------------------------------ errors
async def api_error(request: Request, exc: ApiError):
    return JSONResponse(exc.body(), status_code=exc.status)


async def http_error(request: Request, exc: StarletteHTTPException):
    msg = {404: f"no such page or endpoint: {request.url.path}; see /docs for the API",
           405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(exc.status_code,
                                                                                        str(exc.detail))
    return JSONResponse({"error": msg, "status": exc.status_code}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def validation_error(request: Request, exc: RequestValidationError):
    what = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
    return JSONResponse({"error": f"invalid request: {what}", "status": 422}, status_code=422)


async def recognizer_error(request: Request, exc: RecognizerError):
    """A problem the user can fix outside the request (the profile busy past its timeout, read-only): 503."""
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc), "status": 503}, status_code=503)


async def internal_error(request: Request, exc: Exception):
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal server error ({type(exc).__name__}); see the server log",
                         "status": 500}, status_code=500)


# ------------------------------------------------------------------------------------------ access log, start-up
class AccessLog:
    """ASGI middleware: one log line per request - method, path, status, milliseconds, and the text read."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            text = scope.get("state", {}).get("text")
            extra = f" text={text!r}" if text is not None else ""
            access_log.info("%s %s %d %.1f ms%s", scope["method"], scope["path"], status["code"], ms, extra)


def _preload(store: ModelStore) -> None:
    """Load every present model now, so that no request pays for it; log what is missing and how to make it."""
    t0 = time.perf_counter()
    for name, st in store.status().items():
        if name == ENSEMBLE:
            continue
        if st == "ok":
            try:
                store.load(name)
            except RecognizerError as exc:
                log.warning("%s", exc)
        else:
            log.warning("model %s: %s; %s", name, st, train_hint(name))
    Recognizer.warm_up()
    log.info("models ready in %.1f s: %s; default %s", time.perf_counter() - t0,
             ", ".join(f"{n} {s}" for n, s in store.status().items()), store.default_name())
