"""The drawing page in a real browser: Playwright drives Debian's chromium against `serve.py` on 127.0.0.1.

Draws a 3-digit number with pointer events (mouse strokes shaped like digits, plus a pen and a touch stroke),
checks the reading the page shows, its boxes over the drawing on a HiDPI (devicePixelRatio 2) page, the
probability bars, Undo (Ctrl+Z), Clear (Escape), the model picker (one model, and all side by side) and an
upload, and saves a screenshot (to $WEB_SCREENSHOT, else a temporary folder: the committed
docs/web_screenshot.png is made with WEB_SCREENSHOT=docs/web_screenshot.png). Skips when chromium or the models
are missing (scripts/test.sh installs chromium with apt-get).
"""

import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from gui_driver import STROKES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_server import free_port  # noqa: E402  (one way to find a free loopback port)
MODELS = ROOT / "models"
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(not (MODELS / "cnn.keras").is_file() and not (MODELS / "cnn.onnx").is_file(),
                       reason="committed models not present"),
]


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory):
    """The server's profile: a folder of this test module's own, never the user's."""
    return tmp_path_factory.mktemp("profile")


@pytest.fixture(scope="module")
def server(profile_dir):
    """serve.py --learn as a subprocess on a free loopback port; yields its base URL and its log lines."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DIGITS_PROFILE", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--port", str(port), "--models-dir", str(MODELS),
                             "--profile", str(profile_dir), "--learn"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stderr), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("serve.py did not start:\n" + "\n".join(lines[-30:]))
        time.sleep(0.3)
    yield url, lines
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as pw:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses to sandbox as root
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        context = browser.new_context(viewport={"width": 1200, "height": 760}, device_scale_factor=2, has_touch=True)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        external: list[str] = []
        pg.on("request", lambda r: external.append(r.url) if not r.url.startswith((url, "blob:", "data:")) else None)
        pg.goto(url + "/")
        pg.wait_for_function("() => document.getElementById('model').options.length >= 6")
        pg.errors, pg.external = errors, external
        yield pg
        assert not external, f"the page loaded something from elsewhere: {external}"
        context.close()
        browser.close()


# ------------------------------------------------------------------------------------------- helpers
def reads(pg) -> int:
    return int(pg.evaluate("() => Number(document.body.dataset.reads)"))


def wait_reading(pg, since: int, text: str | None = None, timeout: float = 60) -> str:
    """Wait for a reading newer than `since` (and showing `text`, if given); return the text shown."""
    pg.wait_for_function("([n, t]) => Number(document.body.dataset.reads) > n && "
                         "(t === null || document.getElementById('number').dataset.text === t)",
                         arg=[since, text], timeout=timeout * 1000)
    return pg.evaluate("() => document.getElementById('number').dataset.text")


def digit_strokes(digit: str, x: float, y: float, height: float) -> list[list[tuple[float, float]]]:
    """The digit's strokes in page pixels, top-left at (x, y), interpolated every 6 px."""
    width = height * 0.6
    out = []
    for stroke in STROKES[digit]:
        pts = [(x + px * width, y + py * height) for px, py in stroke]
        dense = [pts[0]]
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            n = max(1, int(math.hypot(bx - ax, by - ay) / 6))
            dense += [(ax + (bx - ax) * k / n, ay + (by - ay) * k / n) for k in range(1, n + 1)]
        out.append(dense)
    return out


def mouse_stroke(pg, pts) -> None:
    pg.mouse.move(*pts[0])
    pg.mouse.down()
    for p in pts[1:]:
        pg.mouse.move(*p)
    pg.mouse.up()


def pen_stroke(pg, pts) -> None:
    """A stylus stroke: CDP mouse events with pointerType "pen" reach the page as pen PointerEvents."""
    cdp = pg.context.new_cdp_session(pg)
    common = {"button": "left", "pointerType": "pen", "force": 0.5}
    cdp.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": pts[0][0], "y": pts[0][1],
                                          "clickCount": 1, "buttons": 1, **common})
    for x, y in pts[1:]:
        cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "buttons": 1, **common})
    cdp.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": pts[-1][0], "y": pts[-1][1],
                                          "clickCount": 1, "buttons": 0, **common})
    cdp.detach()


def touch_stroke(pg, pts) -> None:
    """A finger stroke: CDP touch events (the page must not scroll: touch-action none on the canvas)."""
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": pts[0][0], "y": pts[0][1]}]})
    for x, y in pts[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def draw_number(pg, digits: str, how=mouse_stroke, x0: float = 70, y0: float = 70, height: float = 220) -> list:
    """Draw `digits` on the canvas; returns each digit's drawn extent (x0, y0, x1, y1) in page pixels."""
    box = pg.locator("#pad").bounding_box()
    extents = []
    for i, d in enumerate(digits):
        strokes = digit_strokes(d, box["x"] + x0 + i * height * 0.85, box["y"] + y0, height)
        for s in strokes:
            how(pg, s)
        xs = [p[0] for s in strokes for p in s]
        ys = [p[1] for s in strokes for p in s]
        extents.append((min(xs), min(ys), max(xs), max(ys)))
    return extents


def boxes(pg) -> list[dict]:
    return pg.evaluate("() => [...document.querySelectorAll('#overlay .box')].map(b => {"
                       "const r = b.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height,"
                       "tag: b.querySelector('.tag').textContent}; })")


# ------------------------------------------------------------------------------------------- tests
def test_draw_a_number_and_read_it(page):
    pg = page
    n = reads(pg)
    extents = draw_number(pg, "147")
    assert wait_reading(pg, n, "147") == "147"
    assert pg.locator("#number").inner_text() == "147"
    # the PNG sent is the canvas's own backing store: twice the CSS size on this devicePixelRatio-2 page
    w, cw, h, ch = pg.evaluate("() => { const c = document.getElementById('pad');"
                               "return [c.width, c.clientWidth, c.height, c.clientHeight]; }")
    assert (w, h) == (2 * cw, 2 * ch)
    # ... and the boxes that come back in those pixels sit over the strokes drawn, in CSS pixels
    got = boxes(pg)
    assert [b["tag"].split()[0] for b in got] == ["1", "4", "7"]
    for b, (x0, y0, x1, y1) in zip(got, extents):
        assert abs(b["x"] - x0) < 20 and abs(b["y"] - y0) < 20, (b, (x0, y0, x1, y1))
        assert abs(b["x"] + b["w"] - x1) < 20 and abs(b["y"] + b["h"] - y1) < 20, (b, (x0, y0, x1, y1))
    from recognizer import ModelStore

    default = ModelStore(MODELS).default_name()
    assert pg.locator("#meta").inner_text().startswith(default)  # the committed models' default
    # a clicked digit shows its ten probabilities, the read digit on top
    pg.locator("#chips .chip").nth(1).click()
    assert pg.locator("#bars").is_visible()
    rows = pg.locator("#bars-rows .bar-row")
    assert rows.count() == 10 and pg.locator("#bars-rows .bar-row.top").get_attribute("data-digit") == "4"
    assert "Digit 2 of 3" in pg.locator("#bars-title").inner_text()
    pg.locator("#overlay .box .tag").nth(2).click()  # or its label over the drawing
    assert pg.locator("#bars-rows .bar-row.top").get_attribute("data-digit") == "7"
    assert not pg.errors


def test_undo_enter_and_the_model_picker(page, tmp_path):
    pg = page
    n = reads(pg)
    pg.keyboard.press("Control+z")  # the 7 was one stroke
    assert wait_reading(pg, n, "14") == "14"
    n = reads(pg)
    box = pg.locator("#pad").bounding_box()
    for s in digit_strokes("7", box["x"] + 70 + 2 * 220 * 0.85, box["y"] + 70, 220):
        mouse_stroke(pg, s)
    assert wait_reading(pg, n, "147") == "147"
    n = reads(pg)
    pg.keyboard.press("Enter")
    assert wait_reading(pg, n) == "147"
    n = reads(pg)
    pg.locator("#model").select_option("cnn")
    assert wait_reading(pg, n, "147") == "147"
    assert pg.locator("#meta").inner_text().startswith("cnn")
    n = reads(pg)
    pg.locator("#model").select_option("all")
    wait_reading(pg, n)
    table = pg.locator("#compare tbody tr")
    assert table.count() == 4
    assert [table.nth(i).get_attribute("data-model") for i in range(4)] == ["ann", "cnn", "vgg16", "ensemble"]
    assert [table.nth(i).locator("td.reads").inner_text() for i in range(4)] == ["147"] * 4
    table.nth(0).click()  # show the ANN's reading over the drawing
    assert pg.locator("#meta").inner_text().startswith("ann")
    pg.locator("#chips .chip").nth(0).click()
    from common.atomic import atomic_path

    shot = Path(os.environ.get("WEB_SCREENSHOT", tmp_path / "web_screenshot.png"))
    with atomic_path(shot) as tmp:
        pg.screenshot(path=str(tmp), scale="css")
    assert shot.stat().st_size > 10_000
    n = reads(pg)
    pg.locator("#model").select_option("")  # back to the default
    wait_reading(pg, n, "147")
    assert not pg.errors


def test_clear_and_pen_and_touch(page):
    pg = page
    pg.keyboard.press("Escape")
    pg.wait_for_function("() => document.getElementById('number').dataset.text === ''")
    assert pg.locator("#overlay .box").count() == 0 and pg.locator("#number").inner_text() == "—"
    blank = pg.evaluate("() => { const c = document.getElementById('pad'); const d = c.getContext('2d')"
                        ".getImageData(0, 0, c.width, c.height).data; let dark = 0;"
                        "for (let i = 0; i < d.length; i += 4) if (d[i] < 200) dark++; return dark; }")
    assert blank == 0
    n = reads(pg)
    draw_number(pg, "1", how=pen_stroke, x0=80)
    draw_number(pg, "4", how=touch_stroke, x0=80 + 0.85 * 220)
    draw_number(pg, "7", how=mouse_stroke, x0=80 + 2 * 0.85 * 220)
    assert wait_reading(pg, n, "147") == "147"
    assert pg.evaluate("() => window.scrollY") == 0  # the touch stroke drew, it did not scroll
    pg.locator("#clear").click()
    pg.wait_for_function("() => document.getElementById('number').dataset.text === ''")
    assert not pg.errors


def test_brush_width(page):
    """The slider sets the width of the next stroke, in CSS pixels (twice as many canvas pixels here)."""
    pg = page
    box = pg.locator("#pad").bounding_box()
    y = box["y"] + 200
    widths = {}
    for w in (6, 30):
        pg.locator("#brush").fill(str(w))
        assert pg.locator("#brush-out").inner_text() == str(w)
        mouse_stroke(pg, [(box["x"] + 100 + k * 10, y) for k in range(30)])
        widths[w] = pg.evaluate("([x, y]) => { const c = document.getElementById('pad'); const s = c.width / c.clientWidth;"
                                "const d = c.getContext('2d').getImageData(Math.round(x * s), 0, 1, c.height).data;"
                                "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n / s; }",
                                [250, 200])
        pg.keyboard.press("Escape")
    assert abs(widths[6] - 6) <= 1.5 and abs(widths[30] - 30) <= 1.5, widths
    pg.locator("#brush").fill("16")


def test_upload_shows_the_image_with_its_boxes(page, tmp_path):
    pg = page
    img = np.full((360, 760, 3), 255, np.uint8)
    for i, d in enumerate("704"):
        for stroke in STROKES[d]:
            pts = np.array([(60 + 240 * i + x * 140, 50 + y * 260) for x, y in stroke], np.int32)
            cv2.polylines(img, [pts], False, (30, 30, 30), 16, cv2.LINE_AA)
    f = tmp_path / "photo.png"
    cv2.imwrite(str(f), img)
    n = reads(pg)
    pg.locator("#file").set_input_files(str(f))
    assert wait_reading(pg, n, "704") == "704"
    assert pg.locator("#photo").is_visible() and not pg.locator("#pad").is_visible()
    shown = pg.locator("#photo").bounding_box()
    scale = shown["width"] / 760
    got = boxes(pg)
    assert len(got) == 3
    first = got[0]  # the 7 starts at x=60 of the image: its box is there on the shown image
    assert abs(first["x"] - (shown["x"] + 52 * scale)) < 12 and abs(first["y"] - (shown["y"] + 42 * scale)) < 12
    n = reads(pg)
    pg.locator("#model").select_option("vgg16")  # another model re-reads the same upload
    assert wait_reading(pg, n, "704") == "704"
    pg.keyboard.press("Escape")  # back to an empty canvas
    pg.wait_for_function("() => !document.getElementById('pad').hidden")
    assert pg.locator("#photo").is_hidden() and pg.locator("#overlay .box").count() == 0
    assert not pg.errors


def test_correct_a_digit_with_a_key_and_the_probability_list(page, profile_dir):
    """Click a digit, type the right one: shown at once, stored in the profile; the status line says what the
    profile did; a pick from the probability list does the same; clearing counts the reading; Forget resets."""
    from recognizer.profile_store import ProfileStore

    pg = page
    db = ProfileStore(profile_dir / "profile.sqlite")
    pg.keyboard.press("Escape")
    pg.wait_for_function("() => document.getElementById('number').dataset.text === ''")
    n = reads(pg)
    draw_number(pg, "147")
    assert wait_reading(pg, n, "147") == "147"
    assert pg.locator("#learn-hint").is_hidden() and pg.locator("#forget").is_enabled()
    pg.locator("#chips .chip").nth(1).click()  # the 4 ...
    pg.keyboard.press("9")                      # ... is a 9 (this writer's style)
    assert pg.locator("#number").inner_text() == "197"  # at once, before the server answers
    assert "corrected" in pg.locator("#chips .chip").nth(1).get_attribute("class")
    assert pg.locator("#overlay .box").nth(1).locator(".tag").inner_text().startswith("9")
    pg.wait_for_function("() => document.body.dataset.corrections === '1'")
    (row,) = db.corrections()
    assert (row.label, row.read, row.source) == (9, 4, "web") and row.crop_png
    # with one correction the profile cannot judge an adaptation yet: the status line says why
    pg.wait_for_function("() => document.getElementById('status').textContent.includes('needs at least 3')",
                         timeout=60_000)
    # the probability list: the 7 is a 1
    pg.locator("#chips .chip").nth(2).click()
    pg.locator("#bars-rows .bar-row[data-digit='1']").click()
    assert pg.locator("#number").inner_text() == "191"
    pg.wait_for_function("() => document.body.dataset.corrections === '2'")
    assert [(c.label, c.read) for c in db.corrections()] == [(9, 4), (1, 7)]
    # the figures: the panel shows the corrections and the writer's confusions
    pg.locator("#profile summary").click()
    pg.wait_for_function("() => document.getElementById('profile-figures').dataset.corrections === '2'")
    assert "your 9 read as 4" in pg.locator("#profile-confusions").inner_text()
    # clearing the finished drawing counts its reading (three digits; the earlier tests' drawings were counted
    # as they were cleared too); nothing of the drawing is kept
    def total(key):
        return sum(u[key] for u in db.usage())

    counted, digits = total("readings"), total("digits")
    assert counted >= 1 and total("corrected") == 2
    pg.keyboard.press("Escape")
    deadline = time.monotonic() + 20
    while total("readings") == counted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total("readings") == counted + 1 and total("digits") == digits + 3
    # Forget my handwriting (confirmed): the corrections go, a copy stays beside the profile
    pg.once("dialog", lambda d: d.accept())
    pg.locator("#forget").click()
    pg.wait_for_function("() => document.getElementById('status').textContent.startsWith('Forgot 2 corrections')")
    assert db.count() == 0 and len(list(profile_dir.glob("corrections-before-reset-*.json"))) == 1
    pg.wait_for_function("() => document.getElementById('profile-figures').dataset.corrections === '0'")
    pg.locator("#profile summary").click()
    assert not pg.errors


def test_without_learn_corrections_are_off_with_a_hint(server, page, profile_dir):
    """A server without --learn (its GET /api/profile answer, as such a server gives it): typing a digit stores
    nothing and the page says how to turn corrections on."""
    import json

    from recognizer.profile_store import ProfileStore

    url, _ = server
    pg = page.context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    off = {"profile": str(profile_dir), "learn": False, "adapting": False, "model": "cnn", "corrections": 0,
           "corrected_digits": 0, "confirmed_digits": 0, "confusions": [], "adaptations": {},
           "before_adaptation": {"readings": 0, "digits": 0, "corrected": 0, "error_rate": None},
           "with_adaptation": {"readings": 0, "digits": 0, "corrected": 0, "error_rate": None},
           "status": "reading with your adaptation when there is one; start the server with --learn"}
    pg.route("**/api/profile*", lambda route: route.fulfill(status=200, content_type="application/json",
                                                            body=json.dumps(off)))
    pg.goto(url + "/")
    pg.wait_for_function("() => document.getElementById('model').options.length >= 6")
    pg.wait_for_function("() => !document.getElementById('learn-hint').hidden")
    assert "--learn" in pg.locator("#learn-hint").inner_text() and pg.locator("#forget").is_disabled()
    before = ProfileStore(profile_dir / "profile.sqlite").count()
    n = reads(pg)
    draw_number(pg, "1")
    wait_reading(pg, n, "1")
    pg.keyboard.press("7")
    pg.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "--learn" in pg.locator("#status").inner_text() and pg.locator("#number").inner_text() == "1"
    assert ProfileStore(profile_dir / "profile.sqlite").count() == before
    assert not errors
    pg.close()


def test_requests_were_logged(server, page):
    _, lines = server
    reads_logged = [ln for ln in lines if "web.access: POST /api/read 200" in ln]
    assert reads_logged and any("text='147'" in ln for ln in reads_logged)
    assert any("web.access: POST /api/compare 200" in ln for ln in lines)


def test_offline_docs_page(server, page):
    url, _ = server
    pg = page.context.new_page()
    pg.goto(url + "/docs")
    pg.wait_for_selector("section.endpoint")
    text = pg.locator("#endpoints").inner_text()
    assert "/api/read" in text and "/api/models" in text and "multipart/form-data" in text
    pg.close()
