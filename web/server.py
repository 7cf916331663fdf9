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
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.names import BASE_MODELS, DEFAULT_MODELS_DIR, ENSEMBLE, MODEL_NAMES, train_hint
from recognizer import DEFAULT_THRESHOLD, ModelStore, Recognizer, RecognizerError
from recognizer.adapt import MIN_CORRECTIONS
from recognizer.learner import DELAY_S, Learner
from recognizer.paper_reader import SOURCES
from recognizer.profile_store import MAX_READING_KEY
from recognizer.images import MAX_SIDE
from recognizer.profile import Profile, members, stats_lines

from . import guard, upload
from .errors import ApiError
from .learning import LEARN_HINT, status_line

log = logging.getLogger("web")
access_log = logging.getLogger("web.access")

STATIC = Path(__file__).resolve().parent / "static"
# the page works offline: everything it loads comes from this server
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

THRESHOLD_HELP = f"digits less confident than this read as '?' (default {DEFAULT_THRESHOLD})"
IMAGE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "format": "binary", "description": "PNG, JPEG, BMP or WebP image"},
            "model": {"type": "string", "enum": list(MODEL_NAMES), "description": "default: the server's default"},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": THRESHOLD_HELP}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
COMPARE_BODY = copy.deepcopy(IMAGE_BODY)  # every model reads: no model field
del COMPARE_BODY["content"]["multipart/form-data"]["schema"]["properties"]["model"]
QUERY_PARAMS = [
    {"name": "model", "in": "query", "required": False,
     "schema": {"type": "string", "enum": list(MODEL_NAMES)}, "description": "model to read with"},
    {"name": "threshold", "in": "query", "required": False, "schema": {"type": "number", "minimum": 0, "maximum": 1},
     "description": THRESHOLD_HELP},
    {"name": "probabilities", "in": "query", "required": False, "schema": {"type": "boolean"},
     "description": "also answer every digit's 10 probabilities (the page's bars); off: exactly recognize.py --json"},
    {"name": "source", "in": "query", "required": False, "schema": {"type": "string", "enum": list(SOURCES)},
     "description": "canvas: one contour, one digit (drawings); paper: lines read whole (scans and photos of paper); "
                    "auto (default): paper unless the image has a drawing's flat background"},
]
TEXT_HELP = ("the right text: one character per digit read, in reading order (line breaks and spaces ignored), "
             "a digit 0-9 to teach or '?' to skip that digit; e.g. '?7?' says the 2nd of three digits is a 7")
COUNTED_HELP = ("true when the client counts this reading itself with POST /api/profile/readings, as this "
                "server's page does when a drawing is cleared (the default for requests from the page); false, the "
                "default for other clients (curl, scripts), counts the reading here, once per request")
CORRECTION_BODY = copy.deepcopy(IMAGE_BODY)
CORRECTION_BODY["content"]["multipart/form-data"]["schema"] = {"type": "object", "required": ["image", "text"],
                                                              "properties": {
    "image": {"type": "string", "format": "binary", "description": "the image that was read (PNG, JPEG, BMP, WebP)"},
    "text": {"type": "string", "description": TEXT_HELP},
    "model": {"type": "string", "enum": list(MODEL_NAMES), "description": "the model that read it (default: the "
                                                                         "server's default)"},
    "reading": {"type": "string", "maxLength": MAX_READING_KEY,
                "description": "the client's name for this reading (letters, digits, '-', '_'): a digit corrected "
                               "again under the same name replaces its earlier correction (the page sends one)"},
    "counted": {"type": "boolean", "description": COUNTED_HELP}}}
CORRECTION_PARAMS = [{"name": "text", "in": "query", "required": False, "schema": {"type": "string"},
                      "description": TEXT_HELP + " (here or as a form field)"}, QUERY_PARAMS[0]]
READINGS_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["digits"], "properties": {
        "digits": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "digits in the finished reading"},
        "adapted": {"type": "boolean", "description": "read with the writer's adaptation (the reading's 'adapted')"}}},
    "example": {"digits": 3, "adapted": False}}}}
READING_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
LIST_LIMIT = 100          # corrections GET /api/corrections answers by default (newest first)
MAX_READING_DIGITS = 1000
FORBIDDEN = {403: {"description": "the server was started without --learn, or the request comes from another "
                                  "site or names another host",
                   "content": {"application/json": {"example": {
                       "error": "this server does not accept corrections: " + LEARN_HINT, "status": 403}}}}}
ERRORS = {code: {"description": text, "content": {"application/json": {"example": {"error": text, "status": code}}}}
          for code, text in ((400, "not an image, or a truncated one"),
                             (413, "body over the byte limit or image over the pixel limit"),
                             (422, "unknown model, threshold outside [0, 1], or no field 'image'"),
                             (503, "the model is missing or broken; the message says how to train it"))}
READING_EXAMPLE = {"text": "147", "digits": [
    {"digit": 1, "confidence": 0.999, "box": [61, 80, 40, 181], "top3": [[1, 0.999], [7, 0.0008], [4, 0.0001]],
     "uncertain": False, "line": 0}], "model": "cnn", "ms": 6.1}


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


def _parse_source(raw) -> str:
    if raw in (None, ""):
        return "auto"
    if raw not in SOURCES:
        raise ApiError(422, f"source {raw!r} is not one of {', '.join(SOURCES)}; auto reads drawings as a canvas "
                            "and scans or photos of paper line by line")
    return raw


def _parse_threshold(raw) -> float:
    if raw is None or raw == "":
        return DEFAULT_THRESHOLD
    try:
        t = float(raw)
    except (TypeError, ValueError):
        raise ApiError(422, f"threshold {raw!r} is not a number; give one between 0 and 1, e.g. 0.5") from None
    if not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise ApiError(422, f"threshold {raw!r} is outside [0, 1]; e.g. 0.5 shows digits under 50% as '?'")
    return t


def _flag(raw) -> bool:
    return str(raw).strip().lower() in ("1", "true", "yes", "on")


def _check_text(raw) -> str:
    """The `text` of a correction, checked before anything is read: 422 with what to send."""
    if raw is None or not str(raw).strip():
        raise ApiError(422, "no text: send the right text as 'text', one character per digit read (a digit "
                            "0-9, or '?' to skip one), e.g. -F text=7 or text=?4?; nothing stored")
    text = str(raw)
    if len(text) > 4 * MAX_READING_DIGITS:
        raise ApiError(422, f"text is {len(text)} characters long; a reading has at most "
                            f"{MAX_READING_DIGITS} digits; nothing stored")
    bad = [c for c in text if not c.isspace() and c not in "?_" and not (c.isascii() and c.isdigit())]
    if bad:
        raise ApiError(422, f"text {text!r} holds {bad[0]!r}: the right text may hold only digits 0-9 and '?' "
                            "for a digit to skip; nothing stored")
    return text


def _check_key(raw) -> str | None:
    """The `reading` a correction names (None: none), checked before anything is read: 422 with what to send."""
    if raw is None or raw == "":
        return None
    key = str(raw)
    if len(key) > MAX_READING_KEY or not set(key) <= READING_KEY_CHARS:
        raise ApiError(422, f"reading {key[:80]!r} is not a reading's name: give 1 to {MAX_READING_KEY} letters, "
                            "digits, '-' or '_' (or leave it out); nothing stored")
    return key


def _correction_id(raw: str) -> int:
    try:
        cid = int(raw)
    except ValueError:
        cid = -1
    if cid < 1:
        raise ApiError(422, f"{raw!r} is not a correction's id; GET /api/corrections lists them")
    return cid


def _parse_limit(raw) -> int:
    if raw is None or raw == "":
        return LIST_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 10_000:
        raise ApiError(422, f"limit={raw!r}: give a whole number from 1 to 10000")
    return limit


def _parse_count(body: bytes) -> tuple[int, bool]:
    example = 'send JSON like {"digits": 3, "adapted": false}'
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(422, f"the body is not JSON; {example}") from None
    if not isinstance(data, dict) or "digits" not in data:
        raise ApiError(422, f"no 'digits' in the body; {example}")
    digits, adapted = data["digits"], data.get("adapted", False)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_READING_DIGITS:
        raise ApiError(422, f"'digits' must be a whole number from 1 to {MAX_READING_DIGITS}, got {digits!r}")
    if not isinstance(adapted, bool):
        raise ApiError(422, f"'adapted' must be true or false, got {adapted!r}")
    return digits, adapted


def _parse_flag(name: str, raw, default: bool, meaning: str) -> bool:
    if raw is None or raw == "":
        return default
    v = str(raw).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ApiError(422, f"{name}={raw!r}: give true ({meaning}) or false")


def _parse_keep(raw) -> bool:
    return _parse_flag("keep", raw, True, "export the corrections first, the default")


def create_app(models_dir: str | os.PathLike = DEFAULT_MODELS_DIR, store: ModelStore | None = None, *,
               max_body: int = upload.MAX_BODY, max_pixels: int = upload.MAX_PIXELS, workers: int | None = None,
               preload: bool = True, profile: Profile | None = None, learn: bool = False, host: str | None = None,
               adapt_delay: float = DELAY_S) -> FastAPI:
    """The app. `store` replaces the ModelStore of `models_dir` (tests inject one); `preload` loads every
    present model at start-up; `workers` caps simultaneous readings (default: the CPU count, at least 2).
    `profile` (over the same store) reads with the writer's accepted adaptation; `learn` lets clients add
    corrections and reset it; `host` is the address the server listens on (a request that changes the
    profile must name it or a loopback name); `adapt_delay`: seconds after the last correction to adapt."""
    store = store if store is not None else ModelStore(models_dir)
    if profile is not None and profile.store is not store:
        raise ValueError("the profile must be over the app's ModelStore")
    if learn and profile is None:
        raise ValueError("learn=True needs a profile")
    workers = workers or max(2, os.cpu_count() or 2)
    # the one limit on readings, made with the app: a request waits off the event loop for a free thread
    readers = ThreadPoolExecutor(workers, thread_name_prefix="reading")
    learner = Learner(profile, adapt_delay) if profile is not None else None
    hosts = guard.allowed_names(host)

    def stale(name: str) -> bool:
        return any(store.status()[m] == "ok" and profile.can_adapt(m) is None and profile.stale(m)
                   for m in members(name))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if preload:
            await run_in_threadpool(_preload, store)
        # corrections no adaptation of the current models has seen (a model update, the app or the CLI taught
        # them): adapt now, in the background, so that every model reads with them
        if learner is not None and store.default_name() is not None and await run_in_threadpool(stale, ENSEMBLE):
            learner.request(ENSEMBLE, delay=0)
        yield
        if learner is not None:
            learner.stop()

    app = FastAPI(title="Handwritten digit recognizer", version="1.0",
                  description="Read handwritten digits (one or a whole number, several lines) from a drawing or "
                              "photo. The same recognizer as the desktop app and `recognize.py`; "
                              "`POST /api/read` answers exactly what `recognize.py --json` prints.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.profile = profile
    app.state.learner = learner
    app.add_middleware(AccessLog)

    # ------------------------------------------------------------------------------------ errors
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        msg = {404: f"no such page or endpoint: {request.url.path}; see /docs for the API",
               405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(exc.status_code,
                                                                                            str(exc.detail))
        return JSONResponse({"error": msg, "status": exc.status_code}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        what = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {what}", "status": 422}, status_code=422)

    @app.exception_handler(RecognizerError)
    async def recognizer_error(request: Request, exc: RecognizerError):
        """A problem the user can fix outside the request (the profile busy past its timeout, read-only): 503."""
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": str(exc), "status": 503}, status_code=503)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal server error ({type(exc).__name__}); see the server log",
                             "status": 500}, status_code=500)

    # ------------------------------------------------------------------------------------ helpers
    def check_model(name: str | None) -> str:
        """A loadable model name (the default when None): 422 unknown, 503 missing or broken."""
        if name in (None, ""):
            name = store.default_name()
            if name is None:
                raise ApiError(503, f"no trained model in {store.models_dir}/; {train_hint()}")
        if name not in MODEL_NAMES:
            raise ApiError(422, f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)} "
                                "(GET /api/models says which are loaded)")
        try:
            store.load(name)  # loaded at start-up; this only returns the cached model, or says what is wrong
        except RecognizerError as exc:
            raise ApiError(503, f"model {name!r} is not available: {exc}", model=name, hint=train_hint(name)) from None
        return name

    async def take_image(request: Request):
        body = await upload.read_body(request, max_body)
        up = upload.split_upload(body, request.headers.get("content-type", ""))
        params = {**request.query_params, **up.fields}
        return up, params

    async def run_reading(fn, *args):
        """fn(*args) on one of the `workers` reading threads (whether or not the lifespan ran)."""
        return await asyncio.get_running_loop().run_in_executor(readers, fn, *args)

    def decode_and(up, fn):
        image = upload.open_image(up.image, max_pixels)
        try:
            return fn(image)
        except RecognizerError as exc:
            raise ApiError(400, f"cannot read this image: {exc}") from None
        finally:
            image.close()

    # ------------------------------------------------------------------------------------ API
    @app.post("/api/read", summary="Read the digits of an image",
              description="Send the image as a multipart file field `image` or as the raw body. Answers the "
                          "object `recognize.py --json` prints (`Reading.to_dict()`): text ('?' for digits "
                          "under the threshold, lines joined with newlines), digits in reading order with "
                          "digit, confidence, box [x, y, w, h] in image pixels, top3, uncertain, line; the "
                          "model; ms (segmentation + normalisation + inference).",
              openapi_extra={"requestBody": IMAGE_BODY, "parameters": QUERY_PARAMS},
              responses={200: {"description": "the reading",
                               "content": {"application/json": {"example": READING_EXAMPLE}}}, **ERRORS})
    async def read(request: Request):
        up, params = await take_image(request)
        threshold = _parse_threshold(params.get("threshold"))
        source = _parse_source(params.get("source"))
        name = await run_in_threadpool(check_model, params.get("model"))  # a first load must not block the loop
        rec = Recognizer(store, threshold=threshold, profile=profile, source=source)
        reading = await run_reading(decode_and, up, lambda im: rec.read(im, model=name))
        request.state.text = reading.text
        out = reading.to_dict()
        if _flag(params.get("probabilities", "")):
            for d, dd in zip(reading.digits, out["digits"]):
                dd["probabilities"] = [round(float(p), 6) for p in d.probabilities]
        return out

    @app.post("/api/compare", summary="Read an image with every available model, side by side",
              description="One segmentation, one batched inference per model. Answers {\"readings\": {model: "
                          "reading}} (each as /api/read, with probabilities) and {\"unavailable\": {model: "
                          "reason}} for the models that are missing or broken.",
              openapi_extra={"requestBody": COMPARE_BODY, "parameters": QUERY_PARAMS[1:2]},
              responses={200: {"description": "one reading per available model"}, **ERRORS})
    async def compare(request: Request):
        up, params = await take_image(request)
        threshold = _parse_threshold(params.get("threshold"))
        status = store.status()
        names = [n for n in MODEL_NAMES if status[n] == "ok"]
        if not names:
            raise ApiError(503, f"no trained model in {store.models_dir}/; {train_hint()}")
        rec = Recognizer(store, threshold=threshold, profile=profile)
        readings = await run_reading(decode_and, up, lambda im: rec.read_models(im, names))
        out = {}
        for n, r in readings.items():
            out[n] = r.to_dict()
            for d, dd in zip(r.digits, out[n]["digits"]):
                dd["probabilities"] = [round(float(p), 6) for p in d.probabilities]
        request.state.text = " ".join(f"{n}:{r.text}" for n, r in readings.items())
        return {"readings": out, "unavailable": {n: s for n, s in status.items() if s != "ok"}}

    # ------------------------------------------------------------------------------------ profile
    async def may_change(request: Request, what: str) -> None:
        """403 (the body dropped unread) unless the request comes from this server's page or no page, and the
        server learns."""
        try:
            guard.check(request, hosts, what)
            if not learn:
                raise ApiError(403, f"this server does not accept changes to a profile: {LEARN_HINT}",
                               hint="python serve.py --learn")
        except ApiError:
            await upload.discard(request, max_body)
            raise

    @app.get("/api/profile", summary="The writer's profile: counts, error rate before/after adaptation, state",
             description="Readings counted, corrections stored, the error rate on corrected digits in use without "
                         "and with the writer's adaptation (`before_adaptation`, `with_adaptation`, `by_day`), "
                         "the most frequent confusions, each base model's adaptation (`in_use`, and the `last` "
                         "decision with its reason), whether an adaptation is running (`adapting`), and `status`: "
                         "one line for the user. Read-only; works without --learn (`learn` says which). "
                         "`profile` is null when the server reads with the shipped models alone.",
             responses={200: {"description": "the profile's figures"}, **FORBIDDEN})
    def profile_get(request: Request, model: str | None = None):
        guard.check(request, hosts, "read the profile")
        if profile is None:
            return {"profile": None, "learn": False, "adapting": False, "model": None,
                    "status": "no profile: reading with the shipped models alone (serve.py --profile DIR)"}
        if model not in (None, "") or store.default_name() is not None:
            model = check_model(model)
        stats = profile.stats(model or None)
        status, detail = status_line(learner.status, stats, profile, learn)
        return {**stats, "learn": learn, "model": model or None, "adapting": learner.busy, "status": status,
                "status_detail": detail, "min_corrections": MIN_CORRECTIONS, "lines": stats_lines(stats)}

    @app.post("/api/corrections", status_code=201, summary="Correct a reading: store the right digits, then adapt",
              description="Send the image that was read (multipart field `image` or the raw body, as for "
                          "/api/read), `text` (the right text, one character per digit read, '?' to skip a "
                          "digit) and optionally `model`. The image is read again, the digits named are stored in "
                          "the profile, and the reader adapts to them in the background a moment later (poll GET "
                          "/api/profile: `adapting`, `status`). The reading counts toward the error rate unless `counted` "
                          "(the page counts its readings itself). Answers 201 {stored: [ids], reading, adapting}; "
                          "422 when `text` does not match the digits read (nothing stored). Needs `serve.py "
                          "--learn` and a request from this server's page or from no page (curl).",
              openapi_extra={"requestBody": CORRECTION_BODY, "parameters": CORRECTION_PARAMS},
              responses={201: {"description": "stored; an adaptation follows", "content": {"application/json": {
                  "example": {"stored": [12], "reading": READING_EXAMPLE, "adapting": True}}}},
                  **FORBIDDEN, **ERRORS})
    async def corrections(request: Request):
        await may_change(request, "add corrections")
        up, params = await take_image(request)
        text = _check_text(params.get("text"))
        key = _check_key(params.get("reading"))
        counted = _parse_flag("counted", params.get("counted"), "origin" in request.headers,
                              "the client counts the reading itself")
        name = await run_in_threadpool(check_model, params.get("model"))
        rec = Recognizer(store, profile=profile)

        def read_and_store(image):
            reading = rec.read(image, model=name)
            try:
                if key is None:
                    ids = profile.correct_reading(reading, text, source="web", image=image, counted=counted)
                else:  # it may replace a correction an adaptation is reading: after that adaptation
                    ids = learner.between_adaptations(lambda: profile.correct_reading(
                        reading, text, source="web", image=image, counted=counted, key=key))
            except RecognizerError as exc:
                raise ApiError(422, str(exc), reading=reading.to_dict()) from None
            return reading, ids

        reading, ids = await run_reading(decode_and, up, read_and_store)
        request.state.text = f"{reading.text} -> {text}"
        learner.request(name)
        return JSONResponse({"stored": ids, "reading": reading.to_dict(), "adapting": True}, status_code=201)

    @app.get("/api/corrections", summary="The corrections stored, newest first, each with its crop",
             description="Each correction: id, created, label (what the writer said), read (what the model read), "
                         "kind (`correction` when they differ, `confirmation` when the writer confirmed the digit "
                         "read), model, source, and `crop`: the URL of the digit's image as the model saw it "
                         "(null when none was kept). `limit` (default 100) newest; `total` counts them all. "
                         "Read-only; works without --learn.",
             openapi_extra={"parameters": [{"name": "limit", "in": "query", "required": False,
                                            "schema": {"type": "integer", "minimum": 1, "default": LIST_LIMIT}}]},
             responses={200: {"description": "the corrections", "content": {"application/json": {"example": {
                 "total": 1, "corrections": [{"id": 12, "created": "2026-01-01T12:00:00", "label": 9, "read": 4,
                                              "kind": "correction", "model": "cnn", "source": "web",
                                              "adapted": False, "crop": "/api/corrections/12/crop"}]}}}},
                        **FORBIDDEN})
    def corrections_list(request: Request):
        guard.check(request, hosts, "read the corrections")
        limit = _parse_limit(request.query_params.get("limit"))
        if profile is None:
            return {"total": 0, "corrections": []}
        rows = profile.db.corrections()
        out = []
        for c in reversed(rows[-limit:]):
            kind = "confirmation" if c.read is not None and c.read == c.label else "correction"
            out.append({**c.summary(), "kind": kind,
                        "crop": f"/api/corrections/{c.id}/crop" if c.crop_png else None})
        return {"total": len(rows), "corrections": out}

    @app.get("/api/corrections/{correction_id}/crop", summary="A correction's digit as a PNG",
             responses={200: {"content": {"image/png": {}}, "description": "the crop"},
                        404: {"description": "no such correction, or it has no crop"}, **FORBIDDEN})
    def correction_crop(request: Request, correction_id: str):
        guard.check(request, hosts, "read the corrections")
        cid = _correction_id(correction_id)
        data = profile.db.crop(cid) if profile is not None else None
        if not data:
            raise ApiError(404, f"no crop of a correction {cid}; GET /api/corrections lists them")
        # an id is never reused (AUTOINCREMENT), so its crop never changes
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400",
                                                               "X-Content-Type-Options": "nosniff"})

    @app.delete("/api/corrections/{correction_id}", summary="Remove one correction, then adapt again without it",
                description="Deletes the correction (and the adaptations fitted on it; its misread is no longer "
                            "counted); the reader adapts again to the others in the background, for `model` "
                            "(default: the server's default). Needs --learn.",
                openapi_extra={"parameters": [QUERY_PARAMS[0]]},
                responses={200: {"description": "removed", "content": {"application/json": {"example": {
                    "deleted": 12, "corrections": 22, "adapting": True}}}},
                    404: {"description": "no such correction"}, **FORBIDDEN})
    async def correction_delete(request: Request, correction_id: str):
        await may_change(request, "remove a correction")
        cid = _correction_id(correction_id)
        name = await run_in_threadpool(check_model, request.query_params.get("model"))
        if not await run_in_threadpool(learner.delete, cid, name):
            raise ApiError(404, f"there is no correction {cid} (removed already?); GET /api/corrections lists them")
        request.state.text = f"deleted {cid}"
        left = await run_in_threadpool(profile.db.count)
        return {"deleted": cid, "corrections": left, "adapting": learner.busy}

    @app.post("/api/profile/readings", summary="Count a finished reading (counts only: nothing drawn is stored)",
              description="The page sends this when the user clears a drawing it read: how many digits the last "
                          "reading had and whether the writer's adaptation read them. With the corrections this "
                          "gives the error rate in use. Needs --learn, like every change to the profile.",
              openapi_extra={"requestBody": READINGS_BODY},
              responses={200: {"description": "counted"}, **FORBIDDEN,
                         422: {"description": "not JSON {\"digits\": n, \"adapted\": bool}"}})
    async def profile_readings(request: Request):
        await may_change(request, "count readings")
        digits, adapted = _parse_count(await upload.read_body(request, 4096))
        await run_in_threadpool(profile.count_reading, digits, adapted)
        return {"counted": True, "digits": digits, "adapted": adapted}

    @app.delete("/api/profile", summary="Forget my handwriting: reset the profile (its corrections exported first)",
                description="Deletes every correction, count and adaptation of the profile. Unless `keep=false`, "
                            "the corrections are first exported beside the database; `export` says where "
                            "(null when there was nothing to keep). Needs --learn.",
                openapi_extra={"parameters": [{"name": "keep", "in": "query", "required": False,
                                               "schema": {"type": "boolean", "default": True},
                                               "description": "export the corrections before forgetting them"}]},
                responses={200: {"description": "reset", "content": {"application/json": {"example": {
                    "reset": True, "forgotten": 23, "export": "/home/me/.local/share/digit-recognizer/profile/"
                    "corrections-before-reset-20260101-120000.json"}}}}, **FORBIDDEN})
    async def profile_delete(request: Request):
        await may_change(request, "reset the profile")
        keep = _parse_keep(request.query_params.get("keep"))
        before = await run_in_threadpool(profile.db.count)
        export = await run_in_threadpool(learner.reset, keep)
        return {"reset": True, "forgotten": before, "export": str(export) if export else None,
                "profile": str(profile.folder)}

    @app.get("/api/models", summary="Which models are loaded, missing or broken, and the default")
    def models():
        status, acc = store.status(), store.metrics()
        entries = []
        for n in MODEL_NAMES:
            st = status[n]
            e = {"name": n, "status": st.split(":", 1)[0]}
            if st.startswith("error"):
                e["detail"] = st.split(":", 1)[1].strip()
            if e["status"] != "ok":
                e["hint"] = train_hint(n)
            if n in acc:
                e["test_accuracy"] = acc[n]
            if n == ENSEMBLE:
                e["of"] = list(BASE_MODELS)
            entries.append(e)
        return {"default": store.default_name(), "models": entries, "threshold": DEFAULT_THRESHOLD,
                "limits": {"max_body_bytes": max_body, "max_pixels": max_pixels, "formats": list(upload.FORMATS),
                           "read_side": MAX_SIDE}}

    @app.get("/healthz", summary="Liveness: the server answers; ready when a model is available")
    def healthz():
        default = store.default_name()
        return {"status": "ok", "ready": default is not None, "default": default}

    # ------------------------------------------------------------------------------------ page
    def static(name: str, media: str):
        return FileResponse(STATIC / name, media_type=media,
                            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                                     "X-Content-Type-Options": "nosniff"})

    @app.get("/", include_in_schema=False)
    def index():
        return static("index.html", "text/html; charset=utf-8")

    @app.get("/docs", include_in_schema=False)
    def docs():
        """API docs that work offline (FastAPI's default page loads Swagger UI from a CDN)."""
        return static("docs.html", "text/html; charset=utf-8")

    def serves(name: str, media: str):
        """A handler with no parameters: a keyword default would be a query parameter a client could set."""
        return lambda: static(name, media)

    for fname, media in (("app.js", "text/javascript; charset=utf-8"), ("docs.js", "text/javascript; charset=utf-8"),
                         ("style.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")):
        app.add_api_route(f"/static/{fname}", serves(fname, media), methods=["GET"], include_in_schema=False)
    app.add_api_route("/favicon.ico", lambda: static("favicon.svg", "image/svg+xml"), methods=["GET"],
                      include_in_schema=False)
    return app


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
