"""The app's routes, on four routers that web/server.py includes in this order (the order /docs lists them):
reading an image, the writer's profile and corrections, what the server has loaded, and the page's own files.

Each handler is a module-level function that takes the app's ServerState (web/state.py) through `Depends`; the
handlers read their input from the raw request (web/upload.py, web/params.py), so web/api_docs.py tells OpenAPI
what they accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from common.names import BASE_MODELS, ENSEMBLE, MODEL_NAMES, train_hint
from recognizer import DEFAULT_THRESHOLD, Recognizer, RecognizerError
from recognizer.adapt import MIN_CORRECTIONS
from recognizer.images import MAX_SIDE
from recognizer.profile import stats_lines

from . import guard, upload
from .api_docs import (COMPARE_BODY, CORRECTION_BODY, CORRECTION_PARAMS, ERRORS, FORBIDDEN, IMAGE_BODY,
                       QUERY_PARAMS, READING_EXAMPLE, READINGS_BODY)
from .errors import ApiError
from .learning import status_line
from .params import (LIST_LIMIT, check_key, check_text, is_on, parse_correction_id, parse_count, parse_flag, parse_keep,
                     parse_limit, parse_source, parse_threshold)
from .state import ServerState, server_state

State = Annotated[ServerState, Depends(server_state)]

STATIC = Path(__file__).resolve().parent / "static"
# the page works offline: everything it loads comes from this server
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

reading_api = APIRouter()
profile_api = APIRouter()
server_api = APIRouter()
page = APIRouter()
ROUTERS = (reading_api, profile_api, server_api, page)


# ------------------------------------------------------------------------------------------ reading
@reading_api.post("/api/read", summary="Read the digits of an image",
                  description="Send the image as a multipart file field `image` or as the raw body. Answers the "
                              "object `recognize.py --json` prints (`Reading.to_dict()`): text ('?' for digits "
                              "under the threshold, lines joined with newlines), digits in reading order with "
                              "digit, confidence, box [x, y, w, h] in image pixels, top3, uncertain, line; the "
                              "model; ms (segmentation + normalisation + inference).",
                  openapi_extra={"requestBody": IMAGE_BODY, "parameters": QUERY_PARAMS},
                  responses={200: {"description": "the reading",
                                   "content": {"application/json": {"example": READING_EXAMPLE}}}, **ERRORS})
async def read(request: Request, state: State):
    up, params = await state.take_image(request)
    threshold = parse_threshold(params.get("threshold"))
    source = parse_source(params.get("source"))
    name = await run_in_threadpool(state.check_model, params.get("model"))  # a first load must not block the loop
    rec = Recognizer(state.store, threshold=threshold, profile=state.profile, source=source)
    reading = await state.run_reading(state.decode_and, up, lambda im: rec.read(im, model=name))
    request.state.text = reading.text
    out = reading.to_dict()
    if is_on(params.get("probabilities", "")):
        for d, dd in zip(reading.digits, out["digits"]):
            dd["probabilities"] = [round(float(p), 6) for p in d.probabilities]
    return out


@reading_api.post("/api/compare", summary="Read an image with every available model, side by side",
                  description="One segmentation, one batched inference per model. Answers {\"readings\": {model: "
                              "reading}} (each as /api/read, with probabilities) and {\"unavailable\": {model: "
                              "reason}} for the models that are missing or broken.",
                  openapi_extra={"requestBody": COMPARE_BODY, "parameters": QUERY_PARAMS[1:2]},
                  responses={200: {"description": "one reading per available model"}, **ERRORS})
async def compare(request: Request, state: State):
    up, params = await state.take_image(request)
    threshold = parse_threshold(params.get("threshold"))
    store = state.store
    status = store.status()
    names = [n for n in MODEL_NAMES if status[n] == "ok"]
    if not names:
        raise ApiError(503, f"no trained model in {store.models_dir}/; {train_hint()}")
    rec = Recognizer(store, threshold=threshold, profile=state.profile)
    readings = await state.run_reading(state.decode_and, up, lambda im: rec.read_models(im, names))
    out = {}
    for n, r in readings.items():
        out[n] = r.to_dict()
        for d, dd in zip(r.digits, out[n]["digits"]):
            dd["probabilities"] = [round(float(p), 6) for p in d.probabilities]
    request.state.text = " ".join(f"{n}:{r.text}" for n, r in readings.items())
    return {"readings": out, "unavailable": {n: s for n, s in status.items() if s != "ok"}}


# ------------------------------------------------------------------------------------------ profile
@profile_api.get("/api/profile", summary="The writer's profile: counts, error rate before/after adaptation, state",
                 description="Readings counted, corrections stored, the error rate on corrected digits in use without "
                             "and with the writer's adaptation (`before_adaptation`, `with_adaptation`, `by_day`), "
                             "the most frequent confusions, each base model's adaptation (`in_use`, and the `last` "
                             "decision with its reason), whether an adaptation is running (`adapting`), and `status`: "
                             "one line for the user. Read-only; works without --learn (`learn` says which). "
                             "`profile` is null when the server reads with the shipped models alone.",
                 responses={200: {"description": "the profile's figures"}, **FORBIDDEN})
def profile_get(request: Request, state: State, model: str | None = None):
    guard.check(request, state.hosts, "read the profile")
    profile, learner, learn = state.profile, state.learner, state.learn
    if profile is None:
        return {"profile": None, "learn": False, "adapting": False, "model": None,
                "status": "no profile: reading with the shipped models alone (serve.py --profile DIR)"}
    if model not in (None, "") or state.store.default_name() is not None:
        model = state.check_model(model)
    stats = profile.stats(model or None)
    status, detail = status_line(learner.status, stats, profile, learn)
    return {**stats, "learn": learn, "model": model or None, "adapting": learner.busy, "status": status,
            "status_detail": detail, "min_corrections": MIN_CORRECTIONS, "lines": stats_lines(stats)}


@profile_api.post("/api/corrections", status_code=201, summary="Correct a reading: store the right digits, then adapt",
                  description="Send the image that was read (multipart field `image` or the raw body, as for "
                              "/api/read), `text` (the right text, one character per digit read, '?' to skip a "
                              "digit) and optionally `model`. The image is read again, the digits named are stored in "
                              "the profile, and the reader adapts to them in the background a moment later (poll GET "
                              "/api/profile: `adapting`, `status`). The reading counts toward the error rate unless "
                              "`counted` "
                              "(the page counts its readings itself). Answers 201 {stored: [ids], reading, adapting}; "
                              "422 when `text` does not match the digits read (nothing stored). Needs `serve.py "
                              "--learn` and a request from this server's page or from no page (curl).",
                  openapi_extra={"requestBody": CORRECTION_BODY, "parameters": CORRECTION_PARAMS},
                  responses={201: {"description": "stored; an adaptation follows", "content": {"application/json": {
                      "example": {"stored": [12], "reading": READING_EXAMPLE, "adapting": True}}}},
                      **FORBIDDEN, **ERRORS})
async def corrections(request: Request, state: State):
    await state.may_change(request, "add corrections")
    up, params = await state.take_image(request)
    text = check_text(params.get("text"))
    key = check_key(params.get("reading"))
    counted = parse_flag("counted", params.get("counted"), "origin" in request.headers,
                          "the client counts the reading itself")
    name = await run_in_threadpool(state.check_model, params.get("model"))
    profile, learner = state.profile, state.learner
    rec = Recognizer(state.store, profile=profile)

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

    reading, ids = await state.run_reading(state.decode_and, up, read_and_store)
    request.state.text = f"{reading.text} -> {text}"
    learner.request(name)
    return JSONResponse({"stored": ids, "reading": reading.to_dict(), "adapting": True}, status_code=201)


@profile_api.get("/api/corrections", summary="The corrections stored, newest first, each with its crop",
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
def corrections_list(request: Request, state: State):
    guard.check(request, state.hosts, "read the corrections")
    limit = parse_limit(request.query_params.get("limit"))
    if state.profile is None:
        return {"total": 0, "corrections": []}
    rows = state.profile.db.corrections()
    out = []
    for c in reversed(rows[-limit:]):
        kind = "confirmation" if c.read is not None and c.read == c.label else "correction"
        out.append({**c.summary(), "kind": kind,
                    "crop": f"/api/corrections/{c.id}/crop" if c.crop_png else None})
    return {"total": len(rows), "corrections": out}


@profile_api.get("/api/corrections/{correction_id}/crop", summary="A correction's digit as a PNG",
                 responses={200: {"content": {"image/png": {}}, "description": "the crop"},
                            404: {"description": "no such correction, or it has no crop"}, **FORBIDDEN})
def correction_crop(request: Request, state: State, correction_id: str):
    guard.check(request, state.hosts, "read the corrections")
    cid = parse_correction_id(correction_id)
    data = state.profile.db.crop(cid) if state.profile is not None else None
    if not data:
        raise ApiError(404, f"no crop of a correction {cid}; GET /api/corrections lists them")
    # an id is never reused (AUTOINCREMENT), so its crop never changes
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400",
                                                           "X-Content-Type-Options": "nosniff"})


@profile_api.delete("/api/corrections/{correction_id}", summary="Remove one correction, then adapt again without it",
                    description="Deletes the correction (and the adaptations fitted on it; its misread is no longer "
                                "counted); the reader adapts again to the others in the background, for `model` "
                                "(default: the server's default). Needs --learn.",
                    openapi_extra={"parameters": [QUERY_PARAMS[0]]},
                    responses={200: {"description": "removed", "content": {"application/json": {"example": {
                        "deleted": 12, "corrections": 22, "adapting": True}}}},
                        404: {"description": "no such correction"}, **FORBIDDEN})
async def correction_delete(request: Request, state: State, correction_id: str):
    await state.may_change(request, "remove a correction")
    cid = parse_correction_id(correction_id)
    name = await run_in_threadpool(state.check_model, request.query_params.get("model"))
    if not await run_in_threadpool(state.learner.delete, cid, name):
        raise ApiError(404, f"there is no correction {cid} (removed already?); GET /api/corrections lists them")
    request.state.text = f"deleted {cid}"
    left = await run_in_threadpool(state.profile.db.count)
    return {"deleted": cid, "corrections": left, "adapting": state.learner.busy}


@profile_api.post("/api/profile/readings", summary="Count a finished reading (counts only: nothing drawn is stored)",
                  description="The page sends this when the user clears a drawing it read: how many digits the last "
                              "reading had and whether the writer's adaptation read them. With the corrections this "
                              "gives the error rate in use. Needs --learn, like every change to the profile.",
                  openapi_extra={"requestBody": READINGS_BODY},
                  responses={200: {"description": "counted"}, **FORBIDDEN,
                             422: {"description": "not JSON {\"digits\": n, \"adapted\": bool}"}})
async def profile_readings(request: Request, state: State):
    await state.may_change(request, "count readings")
    digits, adapted = parse_count(await upload.read_body(request, 4096))
    await run_in_threadpool(state.profile.count_reading, digits, adapted)
    return {"counted": True, "digits": digits, "adapted": adapted}


@profile_api.delete("/api/profile", summary="Forget my handwriting: reset the profile (its corrections exported first)",
                    description="Deletes every correction, count and adaptation of the profile. Unless `keep=false`, "
                                "the corrections are first exported beside the database; `export` says where "
                                "(null when there was nothing to keep). Needs --learn.",
                    openapi_extra={"parameters": [{"name": "keep", "in": "query", "required": False,
                                                   "schema": {"type": "boolean", "default": True},
                                                   "description": "export the corrections before forgetting them"}]},
                    responses={200: {"description": "reset", "content": {"application/json": {"example": {
                        "reset": True, "forgotten": 23, "export": "/home/me/.local/share/digit-recognizer/profile/"
                        "corrections-before-reset-20260101-120000.json"}}}}, **FORBIDDEN})
async def profile_delete(request: Request, state: State):
    await state.may_change(request, "reset the profile")
    keep = parse_keep(request.query_params.get("keep"))
    before = await run_in_threadpool(state.profile.db.count)
    export = await run_in_threadpool(state.learner.reset, keep)
    return {"reset": True, "forgotten": before, "export": str(export) if export else None,
            "profile": str(state.profile.folder)}


# ------------------------------------------------------------------------------------------ what is loaded
@server_api.get("/api/models", summary="Which models are loaded, missing or broken, and the default")
def models(state: State):
    store = state.store
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
            "limits": {"max_body_bytes": state.max_body, "max_pixels": state.max_pixels,
                       "formats": list(upload.FORMATS), "read_side": MAX_SIDE}}


@server_api.get("/healthz", summary="Liveness: the server answers; ready when a model is available")
def healthz(state: State):
    default = state.store.default_name()
    return {"status": "ok", "ready": default is not None, "default": default}


# ------------------------------------------------------------------------------------------ the page
def static(name: str, media: str) -> FileResponse:
    """One of the page's own files: never cached stale, and under the page's content security policy."""
    return FileResponse(STATIC / name, media_type=media,
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                                 "X-Content-Type-Options": "nosniff"})


@page.get("/", include_in_schema=False)
def index():
    return static("index.html", "text/html; charset=utf-8")


@page.get("/docs", include_in_schema=False)
def docs():
    """API docs that work offline (FastAPI's default page loads Swagger UI from a CDN)."""
    return static("docs.html", "text/html; charset=utf-8")


def serves(name: str, media: str):
    """A handler with no parameters: a keyword default would be a query parameter a client could set."""
    return lambda: static(name, media)


for fname, media in (("app.js", "text/javascript; charset=utf-8"), ("docs.js", "text/javascript; charset=utf-8"),
                     ("style.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")):
    page.add_api_route(f"/static/{fname}", serves(fname, media), methods=["GET"], include_in_schema=False)
page.add_api_route("/favicon.ico", serves("favicon.svg", "image/svg+xml"), methods=["GET"], include_in_schema=False)
