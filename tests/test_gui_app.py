"""The real window under Xvfb, driven with real X pointer and key events (see gui_driver.py).

What the app read comes from its one-line INFO log (`recognized text=... model=... ms=...`).
Needs Xvfb and xdotool (CI installs them) and, for the reading tests, a trained models/cnn.keras
(GUI_TEST_MODELS_DIR=<folder> points the tests at another folder holding cnn.keras).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import gui_driver
from gui_driver import RECOGNIZED, GuiApp, Xvfb

REPO = Path(__file__).resolve().parents[1]
STARTUP_LIMIT_S = 3.0
MODEL_TIMEOUT_S = 120  # without .onnx twins the first recognition waits for TensorFlow + Keras on shared CPUs

pytestmark = pytest.mark.skipif(bool(gui_driver.missing_tools()),
                                reason=f"GUI tests need {', '.join(gui_driver.missing_tools())} "
                                       "(apt-get install -y xvfb xdotool)")


def _models_source() -> Path | None:
    folder = Path(os.environ.get("GUI_TEST_MODELS_DIR", REPO / "models"))
    return folder if (folder / "cnn.keras").is_file() else None


@pytest.fixture(scope="module")
def xvfb():
    with Xvfb() as x:
        yield x


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """cnn.keras and ann.keras from the repo's models (ann stands in as a copy of cnn if not trained yet).

    VGG16 is left out on purpose: loading it would cost the suite many seconds on two CPUs.
    """
    src = _models_source()
    if src is None:
        pytest.skip("no trained models/cnn.keras yet (run python train_all.py, or set GUI_TEST_MODELS_DIR)")
    d = tmp_path_factory.mktemp("models")
    ann = "ann" if (src / "ann.keras").is_file() else "cnn"
    for name, source in (("cnn", "cnn"), ("ann", ann)):
        for suffix in (".keras", ".onnx"):  # the .onnx twins, where exported, make loading take milliseconds
            if (src / f"{source}{suffix}").is_file():
                (d / f"{name}{suffix}").symlink_to((src / f"{source}{suffix}").resolve())
    return d


@pytest.fixture(scope="module")
def app(xvfb, models_dir):
    t0 = time.monotonic()
    a = GuiApp(xvfb, models_dir, "--model", "cnn")
    try:
        a.wait_window()
        a.clear(10)  # responding = a key press is handled and answered
        a.startup_s = time.monotonic() - t0
        # Drawing while the model loads works too (test_number_drawn_at_once_is_read...), but waiting here
        # keeps the per-test timeouts about the GUI, not about how fast two shared CPUs load a model.
        a.wait_for(r"model cnn loaded", MODEL_TIMEOUT_S)
        yield a
    finally:
        a.close()


def _fresh(app: GuiApp) -> None:
    assert app.clear()["text"] == ""


def test_window_is_usable_within_3_seconds(app, record_property):
    record_property("startup_s", round(app.startup_s, 3))
    assert app.startup_s < STARTUP_LIMIT_S, f"window took {app.startup_s:.2f}s to map and answer a key"


def test_reads_a_drawn_three_digit_number_and_saves_screenshot(app, tmp_path):
    _fresh(app)
    app.draw_number("147")
    since = app.mark()
    m = app.recognize(MODEL_TIMEOUT_S)
    assert (m["text"], m["model"]) == ("147", "cnn"), app.lines[-10:]
    shot = Path(os.environ.get("GUI_SCREENSHOT", tmp_path / "screenshot.png"))
    app.screenshot(shot, since)
    from PIL import Image

    with Image.open(shot) as im:
        lo, hi = im.convert("L").getextrema()
        assert im.width > 600 and im.height > 400 and lo < 100 < hi


def test_clear_gives_empty_text(app):
    app.draw_number("7")
    assert app.clear()["text"] == ""


def test_undo_removes_the_last_stroke(app):
    _fresh(app)
    app.draw_number("17")
    assert app.recognize(MODEL_TIMEOUT_S)["text"] == "17"
    since = app.mark()
    app.key("ctrl+z")
    app.wait_for(r"undo: 1 strokes left", 10, since)
    m = app.recognize(MODEL_TIMEOUT_S)
    assert (m["text"], m["model"]) == ("1", "cnn")


def test_model_switch_by_shortcut_is_logged(app):
    _fresh(app)
    app.draw_number("10")
    assert app.recognize(MODEL_TIMEOUT_S)["model"] == "cnn"
    since = app.mark()
    app.key("ctrl+1")  # ANN
    i, _ = app.wait_for(r"model selected: ann", 10, since)
    m = app.wait_for(RECOGNIZED, MODEL_TIMEOUT_S, i)[1]
    assert m["model"] == "ann" and len(m["text"]) == 2
    assert app.recognize(MODEL_TIMEOUT_S)["model"] == "ann"
    since = app.mark()
    app.key("ctrl+5")  # All three: every available model side by side, in one log line
    i, _ = app.wait_for(r"model selected: all", 10, since)
    m = app.wait_for(RECOGNIZED, MODEL_TIMEOUT_S, i)[1]
    assert m["model"] == "all" and m["text"].startswith("ann:") and ",cnn:" in m["text"]


def test_missing_and_broken_models_window_still_works(xvfb, tmp_path):
    """No model at all (and one corrupt file): no TensorFlow needed, the window says what is missing."""
    (tmp_path / "vgg16.keras").write_bytes(b"not a keras file")
    t0 = time.monotonic()
    a = GuiApp(xvfb, tmp_path)
    try:
        a.wait_window()
        _, m = a.wait_for(r"models missing: (.*); train missing models with: python train_all.py", 30)
        assert m[1].split(", ")[:2] == ["ann", "cnn"]
        a.wait_for(r"vgg16=error: ", 5)
        elapsed = time.monotonic() - t0
        a.draw_number("1")
        since = a.mark()
        a.key("Return")
        a.wait_for(r"recognition failed model=.*python train_all.py", 30, since)
        since = a.mark()
        a.key("ctrl+2")  # CNN is greyed out: refused with the reason, no crash
        a.wait_for(r"model cnn not usable: missing", 10, since)
        assert a.proc.poll() is None, "the app died"
        since = a.mark()
        a.key("ctrl+q")
        a.wait_for(r"quit", 10, since)
        assert a.proc.wait(15) == 0
        assert elapsed < 30
    finally:
        a.close()


def test_number_drawn_at_once_is_read_when_the_model_is_ready(xvfb, models_dir):
    """Draw and press Return as soon as the window is there: the drawing is not lost while the model loads."""
    a = GuiApp(xvfb, models_dir, "--model", "cnn")
    try:
        a.wait_window()
        a.draw_number("7")
        since = a.mark()
        a.key("Return")
        m = a.wait_for(RECOGNIZED, MODEL_TIMEOUT_S, since)[1]
        assert (m["text"], m["model"]) == ("7", "cnn")
        a.wait_for(r"model cnn ready ms=\d+", 5)
    finally:
        a.close()
