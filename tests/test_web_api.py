"""The JSON API (web/server.py) with FastAPI's TestClient: the same readings as the recognizer, every error case.

Small models are made here (a dense layer each, saved like train_all saves them); the committed models in
models/ read a drawn number when they are present.
"""

import contextlib
import logging
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from common import atomic
from recognizer import ModelStore, Recognizer
from test_recognizer_models import tiny_model
from web import create_app

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_server import png_bomb  # noqa: E402  (one maker of decompression bombs, shared with the benchmark)
COMMITTED = ROOT / "models"


# ------------------------------------------------------------------------------------------- inputs
def drawing(digits: str = "147", bw: int = 14) -> np.ndarray:
    """A canvas-like drawing of 1, 4, 7 and 0 strokes in dark ink on white (what the page sends)."""
    shapes = {"1": [[(0.5, 0), (0.45, 1)]], "4": [[(0.2, 0), (0.05, 0.62), (0.95, 0.62)], [(0.72, 0.05), (0.72, 1)]],
              "7": [[(0, 0), (1, 0), (0.4, 1)]],
              "0": [[(0.5 + 0.45 * np.sin(2 * np.pi * i / 32), 0.5 - 0.5 * np.cos(2 * np.pi * i / 32))
                     for i in range(33)]]}
    img = np.full((400, 150 + 170 * len(digits), 3), 255, np.uint8)
    for k, d in enumerate(digits):
        for stroke in shapes[d]:
            pts = np.array([(80 + 170 * k + x * 130, 60 + y * 280) for x, y in stroke], np.int32)
            cv2.polylines(img, [pts], False, (20, 20, 20), bw, cv2.LINE_AA)
    return img


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    for i, name in enumerate(("ann", "cnn", "vgg16")):
        atomic.save_model(tiny_model(i), d / f"{name}.keras")
    return d


@pytest.fixture(scope="module")
def store(models_dir):
    return ModelStore(models_dir)


@pytest.fixture(scope="module")
def client(store):
    with TestClient(create_app(store=store, max_body=2_000_000, max_pixels=5_000_000),
                    raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "digits.png"
    p.write_bytes(png(drawing()))
    return p


def without_ms(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "ms"}


def assert_error(r, status: int, *words: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == status and isinstance(body["error"], str) and len(body["error"]) > 20
    for w in words:
        assert w in body["error"], (w, body["error"])
    return body


# ------------------------------------------------------------------------------------------- readings
def test_read_answers_exactly_the_recognizers_reading(client, store, image_file):
    data = image_file.read_bytes()
    expected = Recognizer(store).read(image_file).to_dict()  # what recognize.py --json prints for the file
    assert len(expected["digits"]) == 3  # segmentation found the three strokes groups
    by_form = client.post("/api/read", files={"image": ("digits.png", data, "image/png")})
    by_body = client.post("/api/read", content=data, headers={"content-type": "image/png"})
    by_curl_data = client.post("/api/read", content=data,  # curl --data-binary sends a form content type
                               headers={"content-type": "application/x-www-form-urlencoded"})
    for r in (by_form, by_body, by_curl_data):
        assert r.status_code == 200, r.text
        got = r.json()
        assert list(got) == list(expected) and without_ms(got) == without_ms(expected)
        assert got["ms"] > 0
        assert got["model"] == store.default_name()


def test_model_and_threshold_by_form_field_or_query(client, store, image_file):
    data = image_file.read_bytes()
    for model, threshold in (("ann", 0.0), ("vgg16", 1.0), ("ensemble", 0.3)):
        want = without_ms(Recognizer(store, threshold=threshold).read(image_file, model=model).to_dict())
        r1 = client.post("/api/read", files={"image": ("d.png", data)}, data={"model": model, "threshold": threshold})
        r2 = client.post(f"/api/read?model={model}&threshold={threshold}", content=data)
        assert without_ms(r1.json()) == want == without_ms(r2.json())
        assert r1.json()["model"] == model
    strict = client.post("/api/read?threshold=1", content=data).json()
    assert strict["text"] == "???" and all(d["uncertain"] for d in strict["digits"])


def test_probabilities_are_added_only_on_request(client, image_file):
    data = image_file.read_bytes()
    plain = client.post("/api/read", content=data).json()
    full = client.post("/api/read?probabilities=1", content=data).json()
    assert all("probabilities" not in d for d in plain["digits"])
    for p, f in zip(plain["digits"], full["digits"]):
        probs = f.pop("probabilities")
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-3 and max(probs) == pytest.approx(f["confidence"], abs=1e-6)
        assert p == f


def test_compare_reads_with_every_model_from_one_segmentation(client, store, image_file):
    r = client.post("/api/compare", files={"image": ("d.png", image_file.read_bytes())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["readings"]) == ["ann", "cnn", "vgg16", "ensemble"] and body["unavailable"] == {}
    want = Recognizer(store).read_models(image_file, ["ann", "cnn", "vgg16", "ensemble"])
    for name, reading in body["readings"].items():
        for d in reading["digits"]:
            assert len(d.pop("probabilities")) == 10
        assert without_ms(reading) == without_ms(want[name].to_dict())


def test_blank_and_jpeg_and_rgba_images(client, store):
    blank = client.post("/api/read", content=png(np.full((300, 400), 255, np.uint8))).json()
    assert blank["text"] == "" and blank["digits"] == []
    ok, jpg = cv2.imencode(".jpg", drawing("70"), [cv2.IMWRITE_JPEG_QUALITY, 90])
    r = client.post("/api/read", files={"image": ("x.jpg", jpg.tobytes(), "image/jpeg")})
    assert r.status_code == 200 and len(r.json()["digits"]) == 2
    ink = drawing("47")[..., 0] < 128
    rgba = np.zeros(ink.shape + (4,), np.uint8)  # black ink on a transparent canvas, as an unfilled <canvas> sends
    rgba[..., 3] = np.where(ink, 255, 0)
    r = client.post("/api/read", content=png(rgba))
    assert r.status_code == 200 and len(r.json()["digits"]) == 2


@pytest.mark.skipif(not (COMMITTED / "cnn.keras").is_file(), reason="committed models not present")
def test_committed_models_read_a_drawn_number():
    with TestClient(create_app(COMMITTED)) as c:
        for model in ("cnn", "ensemble"):
            r = c.post(f"/api/read?model={model}", files={"image": ("n.png", png(drawing("1470")))})
            assert r.status_code == 200 and r.json()["text"] == "1470", r.text
            assert all(d["confidence"] > 0.8 for d in r.json()["digits"])


def test_concurrent_requests_share_the_models(client, store, image_file):
    from concurrency import run_in_threads

    data = image_file.read_bytes()
    want = without_ms(Recognizer(store, threshold=0.5).read(image_file, model="cnn").to_dict())

    def read():
        r = client.post("/api/read?model=cnn", content=data)
        return r.status_code, without_ms(r.json())

    out, errors = run_in_threads(read, threads=8, repeats=3)
    assert not errors and len(out) == 24 and all(o == (200, want) for o in out)


@pytest.mark.parametrize("started", [True, False], ids=["lifespan", "no lifespan"])
def test_no_more_readings_run_at_once_than_workers(store, image_file, monkeypatch, started):
    """workers=2 and 4 slow readings at once: never more than 2 run together, whether or not the app's lifespan
    ran (a TestClient outside `with`, or a server that skips it); each answers."""
    import threading
    import time

    from concurrency import run_in_threads

    running, most, lock = [0], [0], threading.Lock()
    read = Recognizer.read

    def slow_read(self, image, model=None):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)
            return read(self, image, model=model)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Recognizer, "read", slow_read)
    client = TestClient(create_app(store=store, preload=False, workers=2), raise_server_exceptions=False)
    data = image_file.read_bytes()
    with client if started else contextlib.nullcontext():
        out, errors = run_in_threads(lambda: client.post("/api/read?model=cnn", content=data).status_code,
                                     threads=4, repeats=1)
    assert not errors and out == [200] * 4
    assert most[0] == 2


# ------------------------------------------------------------------------------------------- errors
def test_empty_body_and_empty_field(client):
    assert_error(client.post("/api/read"), 400, "empty", "-F image=@")
    assert_error(client.post("/api/read", files={"image": ("e.png", b"", "image/png")}), 400, "empty")


def test_text_and_other_formats_are_not_images(client):
    body = assert_error(client.post("/api/read", content=b"hello, this is not a picture"), 400, "not an image", "text")
    assert "PNG" in body["error"]
    assert_error(client.post("/api/read", files={"image": ("notes.txt", b"1 2 3\n", "text/plain")}), 400, "not an image")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"  # Ghostscript is never run on uploads
    assert_error(client.post("/api/read", content=eps), 400, "not an image")
    ok, tif = cv2.imencode(".tiff", drawing("1"))
    assert_error(client.post("/api/read", content=tif.tobytes()), 400, "PNG/JPEG/BMP/WEBP")


def test_truncated_png(client):
    data = png(drawing())
    for cut in (len(data) // 2, 60, 20):
        assert_error(client.post("/api/read", content=data[:cut]), 400)
    assert_error(client.post("/api/read", content=data[:len(data) // 2]), 400, "truncated PNG")
    assert_error(client.post("/api/read", content=data[:30]), 400, "truncated PNG", "header")
    ok, jpg = cv2.imencode(".jpg", drawing("1"))
    assert_error(client.post("/api/read", content=jpg.tobytes()[:len(jpg) // 2]), 400, "truncated JPEG")


def test_too_many_pixels_is_refused_before_decoding(client):
    bomb = png_bomb()
    assert len(bomb) < 200_000  # small on the wire ...
    body = assert_error(client.post("/api/read", files={"image": ("bomb.png", bomb, "image/png")}), 413,
                        "400 megapixels")
    assert "limit is 5 megapixels" in body["error"]
    assert_error(client.post("/api/read", content=png_bomb(3000, 2000)), 413, "3000 x 2000", "limit is 5 megapixels")
    assert client.post("/api/read", content=png(np.full((2000, 2400), 255, np.uint8))).status_code == 200


def test_over_size_body_is_refused(client):
    big = b"\x89PNG\r\n\x1a\n" + bytes(3_000_000)
    assert_error(client.post("/api/read", content=big), 413, "too large", "2 MB")
    assert_error(client.post("/api/read", files={"image": ("big.png", big, "image/png")}), 413, "too large")

    def chunks():  # no Content-Length: counted while reading
        for _ in range(30):
            yield bytes(100_000)

    assert_error(client.post("/api/read", content=chunks()), 413, "too large")
    assert client.get("/healthz").json()["status"] == "ok"


def test_wrong_field_name(client, image_file):
    body = assert_error(client.post("/api/read", files={"file": ("d.png", image_file.read_bytes(), "image/png")}),
                        422, "no field 'image'", "'file'")
    assert "-F image=@digits.png" in body["error"]
    assert_error(client.post("/api/read", data={"model": "cnn"},
                             headers={"content-type": "multipart/form-data; boundary=xyz"}), 400)
    assert_error(client.post("/api/read", content=b"--xyz\r\nbroken", headers={
        "content-type": "multipart/form-data; boundary=xyz"}), 422, "no field")
    assert_error(client.post("/api/read", content=b"x", headers={"content-type": "multipart/form-data"}), 400,
                 "boundary")


def test_bad_model_and_threshold(client, image_file):
    data = image_file.read_bytes()
    assert_error(client.post("/api/read?model=resnet", content=data), 422, "unknown model 'resnet'", "ann, cnn")
    assert_error(client.post("/api/read", files={"image": ("d.png", data)}, data={"model": "../etc/passwd"}), 422,
                 "unknown model")
    for bad in ("2", "-0.1", "nan", "abc", "inf"):
        assert_error(client.post(f"/api/read?threshold={bad}", content=data), 422, "threshold")
    assert_error(client.post("/api/compare?threshold=7", content=data), 422, "threshold")


def test_missing_and_broken_models_say_how_to_train(tmp_path, models_dir, image_file):
    data = image_file.read_bytes()
    (tmp_path / "cnn.keras").write_bytes((models_dir / "cnn.keras").read_bytes())
    (tmp_path / "ann.keras").write_bytes(b"not a zip file")
    with TestClient(create_app(tmp_path), raise_server_exceptions=False) as c:
        body = assert_error(c.post("/api/read?model=vgg16", content=data), 503, "vgg16",
                            "train it with: python train_all.py --models vgg16")
        assert body["model"] == "vgg16" and body["hint"] == "train it with: python train_all.py --models vgg16"
        assert_error(c.post("/api/read?model=ann", content=data), 503, "ann", "--models ann")
        assert_error(c.post("/api/read?model=ensemble", content=data), 503, "ensemble")
        assert c.post("/api/read", content=data).json()["model"] == "cnn"  # the one that is there
        compare = c.post("/api/compare", content=data).json()
        assert list(compare["readings"]) == ["cnn"] and compare["unavailable"]["vgg16"] == "missing"
        models = {m["name"]: m for m in c.get("/api/models").json()["models"]}
        assert models["cnn"]["status"] == "ok" and "hint" not in models["cnn"]
        assert models["vgg16"]["status"] == "missing" and models["vgg16"]["hint"].endswith("--models vgg16")
        assert models["ann"]["status"] == "error" and models["ann"]["detail"]
    with TestClient(create_app(tmp_path / "empty"), raise_server_exceptions=False) as c:
        assert_error(c.post("/api/read", content=data), 503, "no trained model", "python train_all.py")
        assert_error(c.post("/api/compare", content=data), 503, "no trained model")
        assert c.get("/healthz").json() == {"status": "ok", "ready": False, "default": None}


def test_random_and_mangled_inputs_never_give_500(client, image_file):
    rng = np.random.default_rng(0)
    good = image_file.read_bytes()
    ok, jpg = cv2.imencode(".jpg", drawing("14"))
    ok, bmp = cv2.imencode(".bmp", drawing("7"))
    seen = set()
    for base in (good, jpg.tobytes(), bmp.tobytes()):
        for _ in range(12):
            b = bytearray(base)
            for i in rng.integers(0, len(b), 1 + rng.integers(0, 30)):
                b[i] = rng.integers(0, 256)
            cut = int(rng.integers(8, len(b) + 1))
            r = client.post("/api/read", content=bytes(b[:cut]))
            assert r.status_code in (200, 400, 413), (r.status_code, r.text)
            seen.add(r.status_code)
    for n in (1, 7, 100, 5000):
        assert_error(client.post("/api/read", content=rng.integers(0, 256, n).astype(np.uint8).tobytes()), 400)
    assert 400 in seen


def test_nothing_is_written_to_disk(client, image_file, monkeypatch):
    """A 1.5 MB multipart upload (Starlette would spool it to a temporary file) stays in memory."""
    def refuse(*a, **k):
        raise AssertionError("the server tried to write a temporary file")

    import builtins

    import starlette.formparsers

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)  # what request.form() would use
    real_open = builtins.open

    def read_only_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            refuse()
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", read_only_open)
    noisy = png(np.random.default_rng(1).integers(0, 256, (800, 700, 3)).astype(np.uint8))
    assert 1_100_000 < len(noisy) < 2_000_000
    r = client.post("/api/read", files={"image": ("n.png", noisy, "image/png")})
    assert r.status_code == 200, r.text


def test_client_filename_is_never_opened(client, image_file):
    r = client.post("/api/read", files={"image": (str(image_file), b"", "image/png")})
    assert_error(r, 400, "empty")  # the named path exists; only the bytes sent count
    r = client.post("/api/read", data={"image": str(image_file)})  # a path as a plain form field
    assert_error(r, 400, "not an image")


def test_static_files_ignore_query_parameters(client):
    """A static route serves its one file: a query parameter can name no other (it once could: the handler's
    keyword defaults were query parameters, and ?f=/etc/passwd served that file)."""
    own = client.get("/static/app.js").content
    for query in ("f=../server.py", f"f={Path(__file__).resolve()}", "f=../../README.md&m=text/plain"):
        r = client.get(f"/static/app.js?{query}")
        assert r.status_code == 200 and r.content == own, query
        assert r.headers["content-type"] == "text/javascript; charset=utf-8", query
    assert client.get("/favicon.ico?f=../server.py").content == client.get("/static/favicon.svg").content


# ------------------------------------------------------------------------------------------- the rest
def test_models_healthz_and_unknown_paths(client):
    info = client.get("/api/models").json()
    assert info["default"] in ("ann", "cnn", "vgg16", "ensemble")
    assert [m["name"] for m in info["models"]] == ["ann", "cnn", "vgg16", "ensemble"]
    assert all(m["status"] == "ok" for m in info["models"])
    from recognizer.images import MAX_SIDE

    # read_side: the long side the recognizer reads at; the page scales larger photos to it before sending
    assert info["limits"] == {"max_body_bytes": 2_000_000, "max_pixels": 5_000_000,
                              "formats": ["PNG", "JPEG", "BMP", "WEBP"], "read_side": MAX_SIDE}
    assert client.get("/healthz").json() == {"status": "ok", "ready": True, "default": info["default"]}
    assert_error(client.get("/api/nothing"), 404, "/api/nothing", "/docs")
    assert_error(client.get("/api/read"), 405, "GET")


def test_page_and_docs_are_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<canvas id="pad"' in page.text and "/static/app.js" in page.text
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text
    spec = client.get("/openapi.json").json()
    assert {"/api/read", "/api/compare", "/api/models", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/api/read"]["post"]["requestBody"]["content"]
    assert "image" in body["multipart/form-data"]["schema"]["properties"] and "image/png" in body
    for name in ("index.html", "app.js", "style.css", "docs.html", "docs.js", "favicon.svg"):
        r = client.get("/" if name == "index.html" else "/docs" if name == "docs.html" else f"/static/{name}")
        assert r.status_code == 200, name
        text = r.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a download
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
    assert client.get("/redoc").status_code == 404


def test_docs_list_every_api_route_with_its_summary(client):
    """/docs (web/static/docs.js) lists spec["paths"] in order, each with its summary: every endpoint, once."""
    spec = client.get("/openapi.json").json()
    listed = [(path, method) for path, ops in spec["paths"].items() for method in ops]
    assert listed == [("/api/read", "post"), ("/api/compare", "post"), ("/api/profile", "get"),
                      ("/api/profile", "delete"), ("/api/corrections", "post"), ("/api/corrections", "get"),
                      ("/api/corrections/{correction_id}/crop", "get"), ("/api/corrections/{correction_id}", "delete"),
                      ("/api/profile/readings", "post"), ("/api/models", "get"), ("/healthz", "get")]
    assert all(len(spec["paths"][p][m]["summary"]) > 20 for p, m in listed)
    assert spec["paths"]["/api/corrections"]["post"]["summary"] == ("Correct a reading: store the right digits, "
                                                                    "then adapt")


def test_each_app_answers_with_its_own_state(store):
    """The routes are shared by every app made in a process; each app's handlers see that app's limits."""
    with TestClient(create_app(store=store, preload=False, max_body=1000, max_pixels=2000)) as small, \
            TestClient(create_app(store=store, preload=False, max_body=3000, max_pixels=4000)) as large:
        assert small.get("/api/models").json()["limits"]["max_body_bytes"] == 1000
        assert large.get("/api/models").json()["limits"]["max_pixels"] == 4000
        assert small.post("/api/read", content=b"x" * 2000).status_code == 413
        assert large.post("/api/read", content=b"x" * 2000).status_code == 400  # within its limit: not an image


def test_request_log_line(client, image_file, caplog):
    with caplog.at_level(logging.INFO, logger="web.access"):
        client.post("/api/read?model=cnn&threshold=0", content=image_file.read_bytes())
        client.post("/api/read", content=b"nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "web.access"]
    assert len(lines) == 2
    first, second = lines
    assert first.startswith("POST /api/read 200 ") and " ms text='" in first
    text = first.split("text=")[1].strip("'")
    assert len(text) == 3 and text.isdigit()
    assert second.startswith("POST /api/read 400 ") and "text=" not in second


def test_serve_cli(monkeypatch, caplog, tmp_path):
    sys.path.insert(0, str(ROOT))
    import serve

    assert not serve.exposed("127.0.0.1") and not serve.exposed("::1") and not serve.exposed("localhost")
    assert serve.exposed("0.0.0.0") and serve.exposed("192.168.1.5") and serve.exposed("::")
    calls = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    with caplog.at_level(logging.WARNING, logger="serve"):
        assert serve.main(["--host", "0.0.0.0", "--port", "8123", "--models-dir", str(tmp_path)]) == 0
    assert calls[0][1]["host"] == "0.0.0.0" and calls[0][1]["port"] == 8123
    assert any("reachable from the network" in r.getMessage() for r in caplog.records)
    caplog.clear()
    assert serve.main(["--models-dir", str(tmp_path)]) == 0
    assert calls[1][1]["host"] == "127.0.0.1" and calls[1][1]["port"] == 8000
    assert not any("reachable" in r.getMessage() for r in caplog.records)
    with pytest.raises(SystemExit):
        serve.parse_args(["--port", "70000"])
