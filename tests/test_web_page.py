"""The drawing page in a real browser: Playwright drives Debian's chromium against `serve.py` on 127.0.0.1.

Draws a 3-digit number with pointer events (mouse strokes shaped like digits, plus a pen stroke), checks the
reading the page shows, its boxes over the drawing on a HiDPI (devicePixelRatio 2) page, the probability bars,
Undo (Ctrl+Z), Clear (Escape), the model picker (one model, and all side by side), uploads (a drawing, and a
large photo-like JPEG scaled in the browser), corrections by key and by the probability list (issue 40: a key
corrects only a chosen digit, then moves on; a digit corrected again keeps one record; one removed from My
handwriting), and a 390x844 phone drawn on with a finger. Saves screenshots (to $WEB_SCREENSHOT,
$WEB_PHONE_SCREENSHOT and $WEB_CORRECTIONS_SCREENSHOT, else a temporary folder: the committed docs/web_*.png are
made with WEB_SCREENSHOT=docs/web_screenshot.png WEB_PHONE_SCREENSHOT=docs/web_phone.png
WEB_CORRECTIONS_SCREENSHOT=docs/web_corrections.png). Skips when chromium or
the models are missing (scripts/test.sh installs chromium with apt-get).
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
        context = browser.new_context(viewport={"width": 1200, "height": 760}, device_scale_factor=2)
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
    # before anything is read the number's place is a faint dash, not a black bar
    assert "empty" in pg.locator("#number").get_attribute("class")
    assert pg.evaluate("() => getComputedStyle(document.getElementById('number')).color") == "rgb(208, 215, 222)"
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


def test_clear_and_pen(page):
    pg = page
    pg.keyboard.press("Escape")
    pg.wait_for_function("() => document.getElementById('number').dataset.text === ''")
    assert pg.locator("#overlay .box").count() == 0 and pg.locator("#number").inner_text() == "—"
    blank = pg.evaluate("() => { const c = document.getElementById('pad'); const d = c.getContext('2d')"
                        ".getImageData(0, 0, c.width, c.height).data; let dark = 0;"
                        "for (let i = 0; i < d.length; i += 4) if (d[i] < 200) dark++; return dark; }")
    assert blank == 0
    n = reads(pg)
    draw_number(pg, "14", how=pen_stroke, x0=80)
    draw_number(pg, "7", how=mouse_stroke, x0=80 + 2 * 0.85 * 220)
    assert wait_reading(pg, n, "147") == "147"
    pg.locator("#clear").click()
    pg.wait_for_function("() => document.getElementById('number').dataset.text === ''")
    assert not pg.errors


def test_labels_of_close_digits_do_not_overlap(page):
    """Two 1s drawn close together: the second label goes below its box (or shows its digit alone)."""
    pg = page
    pg.keyboard.press("Escape")
    n = reads(pg)
    draw_number(pg, "1", x0=200)
    draw_number(pg, "1", x0=232)
    assert wait_reading(pg, n, "11") == "11"
    tags = pg.evaluate("() => [...document.querySelectorAll('#overlay .tag')].map(t => {"
                       "const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })")
    (a, b) = tags
    assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], tags
    pg.keyboard.press("Escape")
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


def photo_like(digits: str, w: int = 4000, h: int = 3000, seed: int = 3) -> bytes:
    """A phone photo of a number in blue ballpoint on paper: 12 megapixels, uneven light, sensor noise, JPEG."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.17 * (xx / w) - 0.11 * (yy / h)                       # darker towards the bottom right
    paper = np.stack([228 * light, 232 * light, 238 * light], -1)         # BGR: slightly warm paper
    img = np.clip(paper + rng.normal(0, 5, paper.shape), 0, 255).astype(np.uint8)
    for i, d in enumerate(digits):
        for stroke in STROKES[d]:
            pts = np.array([(900 + 620 * i + x * 420, 1050 + y * 760) for x, y in stroke], np.int32)
            cv2.polylines(img, [pts], False, (120, 50, 40), 34, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", cv2.GaussianBlur(img, (5, 5), 0), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


def test_a_large_photo_is_scaled_in_the_browser_and_shows_its_boxes(page, server, tmp_path):
    """Issue 36 item 7: a 12-megapixel phone photo is scaled to the side the recognizer reads before it is sent,
    read, and shown with its boxes over the digits; the file inputs offer the camera on phones."""
    from recognizer.images import MAX_SIDE

    pg = page
    assert pg.locator("#file").get_attribute("accept") == "image/*"
    assert pg.locator("#camera").get_attribute("capture") == "environment"
    f = tmp_path / "IMG_0001.jpg"
    f.write_bytes(photo_like("7140"))
    sent: list[int] = []
    pg.on("request", lambda r: sent.append(len(r.post_data_buffer or b"")) if "/api/read" in r.url else None)
    pg.locator("#model").select_option("")        # the default model again (the upload before chose VGG16)
    n = reads(pg)
    pg.locator("#file").set_input_files(str(f))
    text = wait_reading(pg, n)          # read the paper way (a photo); which digits it gets right, test_paper_*
    assert len(text) >= 3 and set(text) <= set("7140"), text
    natural = pg.evaluate("() => [document.getElementById('photo').naturalWidth, "
                          "document.getElementById('photo').naturalHeight]")
    assert natural == [MAX_SIDE, MAX_SIDE * 3 // 4]        # what was sent and is shown: 1600 x 1200, not 4000 x 3000
    assert sent and max(sent) < f.stat().st_size
    shown = pg.locator("#photo").bounding_box()
    scale = shown["width"] / 4000                           # page pixels per pixel of the original photo
    got = boxes(pg)
    assert [b["tag"].split()[0] for b in got] == list(text)
    for b in got:                                           # each box over a digit it names, drawn at x = 900 + 620 i
        d = b["tag"].split()[0]
        lefts = [900 + 620 * i + min(x for stroke in STROKES[d] for x, _ in stroke) * 420 - 17
                 for i, c in enumerate("7140") if c == d]
        assert min(abs(b["x"] - (shown["x"] + left * scale)) for left in lefts) < 20 * scale + 4, b
        assert abs(b["y"] - (shown["y"] + (1050 - 17) * scale)) < 20 * scale + 4, b
    pg.keyboard.press("Escape")
    pg.wait_for_function("() => !document.getElementById('pad').hidden")
    assert not pg.errors


def chip_classes(pg) -> list[str]:
    return pg.evaluate("() => [...document.querySelectorAll('#chips .chip')].map(c => c.className)")


def status(pg) -> str:
    return pg.locator("#status").inner_text()


def test_a_key_corrects_only_a_chosen_digit_and_a_recorrection_replaces(page, profile_dir):
    """Issue 40: no digit is chosen until the user chooses one, so a bare key stores nothing; a key corrects the
    chosen digit and the choice moves on; the same digit corrected again leaves one record; the probability list
    corrects the chosen digit; clearing counts the reading."""
    from recognizer.profile_store import ProfileStore

    pg = page
    db = ProfileStore(profile_dir / "profile.sqlite")
    pg.evaluate("() => document.activeElement.blur()")   # the file input of the upload before keeps the keys
    pg.keyboard.press("Escape")
    pg.wait_for_function("() => document.getElementById('number').dataset.text === ''")
    assert pg.locator("#learn-badge").is_visible() and "Learning is on" in pg.locator("#learn-hint").inner_text()
    assert db.count() == 0 and pg.locator("#forget").is_disabled()   # nothing to forget yet
    n = reads(pg)
    draw_number(pg, "147")
    assert wait_reading(pg, n, "147") == "147"
    assert not any("selected" in c for c in chip_classes(pg)) and pg.locator("#bars").is_hidden()
    pg.keyboard.press("9")                         # a bare key: no digit chosen
    assert status(pg).startswith("Nothing stored: choose a digit first")
    time.sleep(0.5)
    assert db.count() == 0 and pg.locator("#number").inner_text() == "147"
    pg.locator("#chips .chip").nth(1).click()     # the 4 ...
    pg.keyboard.press("9")                         # ... is a 9 (this writer's style)
    assert pg.locator("#number").inner_text() == "197"  # at once, before the server answers
    classes = chip_classes(pg)
    assert "corrected" in classes[1] and "selected" in classes[2]   # the choice moved on to the 7
    assert pg.locator("#overlay .box").nth(1).locator(".tag").inner_text().startswith("9")
    pg.wait_for_function("() => document.body.dataset.corrections === '1'")
    (row,) = db.corrections()
    assert (row.label, row.read, row.source) == (9, 4, "web") and row.crop_png
    # with one correction it cannot learn yet: the status line says so plainly
    pg.wait_for_function("() => document.getElementById('status').textContent.includes("
                         "'Learning starts after 3 corrections — 1 so far')", timeout=60_000)
    assert status(pg).startswith("Corrected: the 2nd digit is a 9, not a 4.")
    # the 9 was a slip: back to the 4 with the arrow key, and confirm it: one record for that digit, the last word
    pg.keyboard.press("ArrowLeft")
    assert "selected" in chip_classes(pg)[1]
    pg.keyboard.press("4")
    pg.wait_for_function("() => document.body.dataset.corrections === '2'")
    assert [(c.label, c.read) for c in db.corrections()] == [(4, 4)]
    assert pg.locator("#number").inner_text() == "147" and "confirmed" in chip_classes(pg)[1]
    assert "✓ confirmed" in pg.locator("#chips .chip").nth(1).inner_text()
    assert sum(u["corrected"] for u in db.usage()) == 0      # the slip is not counted as a misread
    # the probability list corrects the chosen digit (the 7, chosen again after the 4): it is a 1
    assert "selected" in chip_classes(pg)[2]
    pg.locator("#bars-rows .bar-row[data-digit='1']").click()
    assert pg.locator("#number").inner_text() == "141"
    pg.wait_for_function("() => document.body.dataset.corrections === '3'")
    assert [(c.label, c.read) for c in db.corrections()] == [(4, 4), (1, 7)]
    # clearing the finished drawing counts its reading (three digits); nothing of the drawing is kept
    def total(key):
        return sum(u[key] for u in db.usage())

    counted, digits = total("readings"), total("digits")
    pg.keyboard.press("Escape")
    deadline = time.monotonic() + 20
    while total("readings") == counted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total("readings") == counted + 1 and total("digits") == digits + 3
    assert not pg.errors


def test_typing_the_number_it_read_confirms_each_digit_once(page, profile_dir):
    from recognizer.profile_store import ProfileStore

    pg = page
    db = ProfileStore(profile_dir / "profile.sqlite")
    before = [c.id for c in db.corrections()]
    n = reads(pg)
    draw_number(pg, "471")
    assert wait_reading(pg, n, "471") == "471"
    stored = int(pg.evaluate("() => document.body.dataset.corrections"))
    pg.locator("#chips .chip").nth(0).click()
    pg.keyboard.type("471")
    pg.wait_for_function("(n) => Number(document.body.dataset.corrections) === n", arg=stored + 3)
    new = [c for c in db.corrections() if c.id not in before]
    assert [(c.label, c.read) for c in new] == [(4, 4), (7, 7), (1, 1)]     # three confirmations, three digits
    assert all("confirmed" in c for c in chip_classes(pg)) and not any("selected" in c for c in chip_classes(pg))
    assert pg.locator("#number").inner_text() == "471"
    pg.wait_for_function("() => document.getElementById('status').textContent.startsWith("
                         "'Confirmed: the 3rd digit is a 1.')")
    pg.keyboard.press("5")                         # past the last digit nothing is chosen: nothing stored
    time.sleep(0.5)
    assert len(db.corrections()) == len(before) + 3
    assert not pg.errors


def test_my_handwriting_lists_the_corrections_and_removes_one(page, profile_dir, tmp_path):
    from recognizer.profile_store import ProfileStore

    pg = page
    db = ProfileStore(profile_dir / "profile.sqlite")
    ids = [c.id for c in db.corrections()]
    assert len(ids) == 5                           # the 4 confirmed, the 7 that is a 1, and 4 7 1 confirmed
    pg.locator("#profile summary").click()
    pg.wait_for_function("(n) => document.querySelectorAll('#corrections-list li').length === n", arg=len(ids))
    items = pg.locator("#corrections-list li")
    assert [int(items.nth(i).get_attribute("data-id")) for i in range(len(ids))] == ids[::-1]   # newest first
    pg.wait_for_function("() => [...document.querySelectorAll('#corrections-list img')].every("
                         "i => i.complete && i.naturalWidth > 0)")                   # each with its crop
    assert "✎ was read as 7" in pg.locator(f"#corrections-list li[data-id='{ids[1]}']").inner_text()
    figures = pg.locator("#profile-figures").inner_text()
    assert "1 misread digit corrected, 4 confirmed" in figures
    assert "%" not in figures                      # a handful of digits read: counts, no rate
    from common.atomic import atomic_path

    shot = Path(os.environ.get("WEB_CORRECTIONS_SCREENSHOT", tmp_path / "web_corrections.png"))
    with atomic_path(shot) as tmp:
        pg.locator("#result").screenshot(path=str(tmp), scale="css")
    # remove the newest (the confirmed 1 of the 471 shown): it goes from the profile, the list and the digit
    assert "confirmed" in chip_classes(pg)[2]
    pg.locator(f"#corrections-list li[data-id='{ids[-1]}'] .remove").click()
    pg.wait_for_function("(n) => document.querySelectorAll('#corrections-list li').length === n", arg=len(ids) - 1)
    assert [c.id for c in db.corrections()] == ids[:-1]
    assert "confirmed" not in chip_classes(pg)[2] and "confirmed" in chip_classes(pg)[1]
    assert pg.locator("#status").inner_text().startswith("Removed a correction; 4 corrections left.")
    assert not pg.errors


def test_forget_returns_to_the_shipped_model(page, profile_dir):
    """After Forget the page is as with the shipped model: no marks, no "your handwriting", Forget disabled."""
    from recognizer.profile_store import ProfileStore

    pg = page
    db = ProfileStore(profile_dir / "profile.sqlite")
    assert pg.locator("#forget").is_enabled()
    n = reads(pg)
    pg.evaluate("""() => {  // every status the line shows from here on, however briefly
        const line = document.getElementById('status');
        window.statuses = [];
        new MutationObserver(() => window.statuses.push(line.textContent))
            .observe(line, {childList: true, characterData: true, subtree: true});
    }""")
    pg.once("dialog", lambda d: d.accept())
    pg.locator("#forget").click()
    wait_reading(pg, n, "471")                     # the drawing shown is read again, as shipped
    # and then says what was forgotten and where its copy is: the new reading's status does not hide it
    pg.wait_for_function("() => window.statuses.some(s => s.startsWith('Forgot '))")
    statuses = pg.evaluate("() => window.statuses")
    said = [s for s in statuses if s.startswith("Forgot ")][-1]
    assert said.startswith("Forgot 4 corrections") and "corrections-before-reset-" in said, statuses
    assert db.count() == 0 and len(list(profile_dir.glob("corrections-before-reset-*.json"))) == 1
    pg.wait_for_function("() => document.getElementById('profile-figures').dataset.corrections === '0'")
    assert not any("corrected" in c or "confirmed" in c for c in chip_classes(pg))
    assert "your handwriting" not in pg.locator("#meta").inner_text()
    assert pg.locator("#forget").is_disabled() and pg.locator("#corrections-list li").count() == 0
    pg.locator("#profile summary").click()
    pg.keyboard.press("Escape")
    assert not pg.errors


def test_a_phone_shows_the_reading_after_drawing_with_a_finger(server, page, tmp_path):
    """At 390x844 the number read is inside the viewport after a finger draws (the reading sits above a shorter
    canvas), the page keeps room outside the canvas to scroll, and no keyboard hints are shown."""
    from common.atomic import atomic_path

    url, _ = server
    context = page.context.browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3,
                                               is_mobile=True, has_touch=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url + "/")
    pg.wait_for_function("() => document.getElementById('model').options.length >= 6")
    pg.wait_for_function("() => !document.getElementById('learn-badge').hidden")
    n = reads(pg)
    draw_number(pg, "147", how=touch_stroke, x0=16, y0=24, height=150)
    assert wait_reading(pg, n, "147") == "147"
    assert pg.evaluate("() => window.scrollY") == 0          # the finger drew, it did not scroll
    number = pg.locator("#number").bounding_box()
    assert number["y"] >= 0 and number["y"] + number["height"] <= 844, number
    board = pg.locator("#pad").bounding_box()
    assert board["height"] <= 0.5 * 844 and board["width"] <= 390          # room outside it to scroll
    assert pg.locator("footer .keys").is_hidden() and pg.locator("#take-photo").is_visible()
    assert "tap" in pg.locator("#learn-hint").inner_text().lower()
    pg.locator("#chips .chip").nth(1).tap()                 # a tapped digit shows its probabilities
    pg.wait_for_function("() => !document.getElementById('bars').hidden")
    shot = Path(os.environ.get("WEB_PHONE_SCREENSHOT", tmp_path / "web_phone.png"))
    pg.evaluate("() => window.scrollTo(0, 0)")
    time.sleep(0.5)                                          # the smooth scroll to the bars, undone
    with atomic_path(shot) as tmp:
        pg.screenshot(path=str(tmp), scale="css")
    assert shot.stat().st_size > 10_000
    assert not errors
    context.close()


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
    pg.locator("#chips .chip").nth(0).click()
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
    # an endpoint with a path parameter is tried with the value given, not the template
    crop = pg.locator("section.endpoint", has_text="/api/corrections/{correction_id}/crop")
    crop.locator("input[name='correction_id']").fill("999999")
    crop.locator("button[type='submit']").click()
    pg.wait_for_function("(s) => s.querySelector('pre.answer').textContent.startsWith('404')", arg=crop.element_handle())
    assert "no crop of a correction 999999" in crop.locator("pre.answer").inner_text()
    pg.close()
