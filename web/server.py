"""The web app: a JSON API and a drawing page over the same recognizer the desktop app uses.

``create_app(models_dir=..., store=None)`` builds the FastAPI app; ``serve.py`` runs it on uvicorn. Every
reading goes through ``recognizer.Recognizer`` (no preprocessing here) and answers ``Reading.to_dict()``,
the object ``recognize.py --json`` prints. Models are loaded once when the app starts and shared by every
request (the ModelStore is thread-safe); readings run in worker threads, at most ``workers`` at a time,
which also bounds the memory that decoded images can take.

Errors are JSON ``{"error": message, "status": code}``: 400 for a body that is not a readable image, 413
for too many bytes or pixels, 422 for a bad parameter (unknown model, threshold outside [0, 1], no field
``image``), 503 when a model is missing or broken (with the command that trains it). The server never opens
a path a client names and writes nothing a client sends to disk (see web/upload.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import os
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.names import BASE_MODELS, DEFAULT_MODELS_DIR, ENSEMBLE, MODEL_NAMES, train_hint
from recognizer import DEFAULT_THRESHOLD, ModelStore, Recognizer, RecognizerError

from . import upload
from .errors import ApiError

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
]
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


def create_app(models_dir: str | os.PathLike = DEFAULT_MODELS_DIR, store: ModelStore | None = None, *,
               max_body: int = upload.MAX_BODY, max_pixels: int = upload.MAX_PIXELS, workers: int | None = None,
               preload: bool = True) -> FastAPI:
    """The app. `store` replaces the ModelStore of `models_dir` (tests inject one); `preload` loads every
    present model at start-up; `workers` caps simultaneous readings (default: the CPU count, at least 2)."""
    store = store if store is not None else ModelStore(models_dir)
    workers = workers or max(2, os.cpu_count() or 2)
    slots = {"sem": None}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        slots["sem"] = asyncio.Semaphore(workers)
        if preload:
            await run_in_threadpool(_preload, store)
        yield

    app = FastAPI(title="Handwritten digit recognizer", version="1.0",
                  description="Read handwritten digits (one or a whole number, several lines) from a drawing or "
                              "photo. The same recognizer as the desktop app and `recognize.py`; "
                              "`POST /api/read` answers exactly what `recognize.py --json` prints.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.store = store
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
        async with slots["sem"] or asyncio.Semaphore(workers):
            return await run_in_threadpool(fn, *args)

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
        name = await run_in_threadpool(check_model, params.get("model"))  # a first load must not block the loop
        rec = Recognizer(store, threshold=threshold)
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
        rec = Recognizer(store, threshold=threshold)
        readings = await run_reading(decode_and, up, lambda im: rec.read_models(im, names))
        out = {}
        for n, r in readings.items():
            out[n] = r.to_dict()
            for d, dd in zip(r.digits, out[n]["digits"]):
                dd["probabilities"] = [round(float(p), 6) for p in d.probabilities]
        request.state.text = " ".join(f"{n}:{r.text}" for n, r in readings.items())
        return {"readings": out, "unavailable": {n: s for n, s in status.items() if s != "ok"}}

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
                "limits": {"max_body_bytes": max_body, "max_pixels": max_pixels, "formats": list(upload.FORMATS)}}

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

    for fname, media in (("app.js", "text/javascript; charset=utf-8"), ("docs.js", "text/javascript; charset=utf-8"),
                         ("style.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")):
        app.add_api_route(f"/static/{fname}", (lambda f=fname, m=media: static(f, m)), methods=["GET"],
                          include_in_schema=False)
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
