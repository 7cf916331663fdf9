"""The app learns the writer's hand (issue 31), for real: the app under Xvfb with the shipped CNN and a profile
folder of the test's own, driven with real X pointer and key events (gui_driver.py).

A European 1 with a long flag (gui_driver.EU1) is read as 7 by the shipped CNN: the writer clicks its box and
types 1, sees it at once, takes it back with Ctrl+Z, corrects it again in the probability panel; with a few more
corrections of that style (seeded through the profile API, as if made earlier) the app adapts by itself and reads
the same style right. ("My handwriting" and "Forget my handwriting" with the real profile are in test_gui_window.py:
Tk in this process must stay on that module's X server.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gui_driver
from gui_driver import GuiApp, Xvfb
from test_gui_app import MODEL_TIMEOUT_S, _models_source

pytestmark = pytest.mark.skipif(bool(gui_driver.missing_tools()),
                                reason="GUI tests need Xvfb and xdotool (apt-get install -y xvfb xdotool)")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return adapt_models_dir(tmp_path_factory)


def adapt_models_dir(tmp_path_factory) -> Path:
    """The CNN with what adapting needs: .keras (its checksum), .onnx (features) and .adapt.npz (head, stats)."""
    src = _models_source()
    if src is None or not (src / "cnn.adapt.npz").is_file() or not (src / "cnn.onnx").is_file():
        pytest.skip("needs models/cnn.keras, cnn.onnx and cnn.adapt.npz")
    d = tmp_path_factory.mktemp("models")
    for suffix in (".keras", ".onnx", ".adapt.npz"):
        (d / f"cnn{suffix}").symlink_to((src / f"cnn{suffix}").resolve())
    return d


def render(strokes, x: float, y: float, height: float, size=(900, 620)):
    """`strokes` (unit box) drawn like the app draws them, as the uint8 image the app reads."""
    from gui.drawing import Drawing

    d = Drawing(*size)
    for s in strokes:
        pts = [(x + px * height * 0.6, y + py * height) for px, py in s]
        d.begin(*pts[0], 18)
        for p in pts[1:]:
            d.extend(*p)
    return d.array()


def seed_eu1(profile, store, n: int) -> list[int]:
    """`n` corrections of the writer's European 1 (flag and size varied), read by the shipped CNN as 7."""
    from recognizer import Recognizer

    rec = Recognizer(store)
    ids = []
    for i in range(n):
        strokes = [[(0.05 * (i % 3), 0.08 + 0.1 * (i % 4) / 3), (0.7, 0.0), (0.6, 1.0)]]
        reading = rec.read(render(strokes, 40 + 60 * (i % 7), 40 + 50 * (i % 5), 150 + 10 * (i % 6)), "cnn")
        d = reading.digits[0]
        ids.append(profile.add_correction(label=1, input=d.input, model="cnn", source="app", read=d.digit,
                                          probabilities=d.probabilities, crop=None))
    return ids


def test_correct_undo_learn_and_read_the_writers_style(models_dir, tmp_path):
    from recognizer import ModelStore
    from recognizer.profile import Profile

    folder = tmp_path / "profile"
    with Xvfb() as xvfb:
        a = GuiApp(xvfb, models_dir, "--model", "cnn", "--profile", str(folder))
        try:
            a.wait_window()
            a.wait_for(rf"profile {folder}$", 20)
            a.wait_for(r"model cnn loaded", MODEL_TIMEOUT_S)
            a.draw_digit("1eu", 60, 80, 180)
            assert a.recognize(MODEL_TIMEOUT_S)["text"] == "7"  # the writer's 1, misread

            # click its box with the mouse and type the right digit: shown at once, stored, adapting refused
            since = a.mark()
            a.click_box(0)
            a.key("1")
            a.wait_for(r"correction digit=1 read=7 label=1 shown=1$", 10, since)
            _, m = a.wait_for(r"correction stored id=(\d+)", 10, since)
            first_id = int(m[1])
            a.wait_for(r"adaptation accepted=False model=cnn: CNN not adapted: needs at least 3", 20, since)

            # Ctrl+Z takes the correction back (the last thing done), out of the profile too
            since = a.mark()
            a.key("ctrl+z")
            a.wait_for(r"undo: correction label=1 \(read 7\) shown=7$", 10, since)
            a.wait_for(rf"correction undone id={first_id} deleted=True", 10, since)
            a.wait_for(r"adaptation accepted=False model=cnn: .* has 0", 20, since)  # re-adapted on what is left
            store = ModelStore(models_dir)
            profile = Profile(folder, store)
            assert profile.db.count() == 0

            # corrections of that style made earlier (another process writes the same profile meanwhile)
            seed_eu1(profile, store, 6)

            # correct it again, this time in the probability panel: the app adapts by itself and re-reads
            since = a.mark()
            a.click_probability(1)
            a.wait_for(r"correction digit=1 read=7 label=1 shown=1$", 10, since)
            i, m = a.wait_for(r"adaptation accepted=(\w+) model=cnn: (.*)", 60, since)
            assert m[1] == "True" and "learned from 7 corrections" in m[2], m[0]
            assert a.wait_for(gui_driver.RECOGNIZED, 20, i)[1]["text"] == "1"  # the drawing on screen, re-read

            # a second drawing of that style is read right
            a.clear()
            a.draw_digit("1eu", 420, 160, 150)
            assert a.recognize(MODEL_TIMEOUT_S)["text"] == "1"
            a.clear()  # finished drawings are counted (counts only)
            since = a.mark()
            a.key("ctrl+q")
            a.wait_for("quit", 10, since)
            assert a.proc.wait(15) == 0
        finally:
            a.close()
    stats = Profile(folder, ModelStore(models_dir)).stats("cnn")
    assert stats["corrections"] == 7 and stats["adaptations"]["cnn"]["in_use"]
    assert stats["before_adaptation"]["readings"] + stats["with_adaptation"]["readings"] == 2
