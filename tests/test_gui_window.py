"""The window in-process under Xvfb with a fake recognizer: photo display, boxes, "All three",
greyed-out models, stale answers and failed saves. Fast (no TensorFlow), so it runs everywhere
Xvfb is installed."""

from __future__ import annotations

import gc
import logging
import sys
import time
import tkinter as tk
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

import gui_driver
from test_gui_learning import adapt_models_dir, seed_eu1
from gui import app as app_module
from gui import learning as learning_module
from gui.motion import keep_all_motion_events
from gui.worker import RecognitionDone, Request

pytestmark = pytest.mark.skipif(bool(gui_driver.missing_tools()),
                                reason="needs Xvfb (apt-get install -y xvfb xdotool)")


@dataclass
class Event:
    x: int
    y: int


@dataclass
class Digit:
    digit: int
    confidence: float
    box: tuple
    uncertain: bool = False
    line: int = 0
    probabilities: np.ndarray = field(default=None)
    top3: list = field(default_factory=list)

    def __post_init__(self):
        if self.probabilities is None:
            p = np.full(10, (1 - self.confidence) / 9)
            p[self.digit] = self.confidence
            self.probabilities = p

    @property
    def label(self) -> str:
        return "?" if self.uncertain else str(self.digit)


@dataclass
class Reading:
    digits: list
    model: str
    ms: float = 3.0

    @property
    def text(self) -> str:
        return "".join(d.label for d in self.digits)


class Store:
    def __init__(self):
        self.st = {"ann": "ok", "cnn": "ok", "vgg16": "error: not a Keras model file", "ensemble": "error: vgg16"}

    def status(self):
        return dict(self.st)

    def default_name(self):
        return "cnn"

    def predict(self, name, batch):
        return np.full((len(batch), 10), 0.1, np.float32)


class Rec:
    def __init__(self):
        self.requests = []

    def _reading(self, image, model):
        self.requests.append((image if isinstance(image, str) else image.shape, model))
        return Reading([Digit(4, 0.97, (10, 10, 40, 60)), Digit(2, 0.41, (60, 10, 40, 60), uncertain=True)], model)

    def read(self, image, model=None):
        return self._reading(image, model or "cnn")

    def read_models(self, image, models):
        return {m: self._reading(image, m) for m in models}


@pytest.fixture(scope="module")
def display():
    with gui_driver.Xvfb() as x:
        yield x.display


@pytest.fixture
def win(display):
    root = tk.Tk(screenName=display)
    rec = Rec()
    a = app_module.DigitApp(root, "unused", worker_factory=lambda _d: (Store(), rec))
    a.rec = rec
    pump_until(root, lambda: a.status and a.picker.get() == "cnn")
    yield a
    a.worker.stop(5)
    root.destroy()
    # Collect Tk variables here, in the main thread: a later collection in some worker thread
    # would make their __del__ call Tcl from the wrong thread.
    a.__dict__.clear()
    gc.collect()


def pump_until(root: tk.Tk, cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        root.update()
        time.sleep(0.005)  # yield the GIL to the worker thread between event-loop turns


def recognize_and_wait(a, caplog) -> str:
    caplog.clear()
    a.recognize()
    pump_until(a.root, lambda: any("recognized text=" in r.getMessage() for r in caplog.records))
    return next(r.getMessage() for r in caplog.records if "recognized text=" in r.getMessage())


def test_broken_model_is_greyed_out_with_its_reason(win):
    assert str(win.picker.buttons["vgg16"]["state"]) == "disabled"
    assert "not a Keras model" in win.picker._tips["vgg16"].text
    assert str(win.picker.buttons["cnn"]["state"]) == "normal"
    assert "VGG16 failed to load" in win.statusbar.models["text"]


def test_drawing_is_sent_as_uint8_array_and_boxes_are_drawn(win, caplog):
    caplog.set_level(logging.INFO, logger="gui")
    win.drawing.begin(20, 20, 10)
    win.drawing.extend(30, 60)
    line = recognize_and_wait(win, caplog)
    assert line == "recognized text=4? model=cnn ms=3"
    h, w = win.drawing.size[1], win.drawing.size[0]
    assert win.rec.requests[-1] == ((h, w), "cnn")
    assert win.number["text"] == "4?"
    assert len(win.canvas.find_withtag("overlay-1")) == 2  # box and label
    assert win.canvas.itemcget(win.canvas.find_withtag("overlay-1")[-1], "text") == "? 41%"
    assert win._selected == 0 and "Digit 1/2" in win.probs.itemcget(win.probs.find_all()[0], "text")
    strokes = len(win.drawing.strokes)
    click = Event(x=80, y=40)  # inside the second box (60..100, 10..70)
    win._on_press(click)
    win._on_release(click)
    assert win._selected == 1 and len(win.drawing.strokes) == strokes  # a click selects, it does not draw
    assert "Digit 2/2: ?" in win.probs.itemcget(win.probs.find_all()[0], "text")
    win._on_press(click)
    win._on_drag(Event(x=90, y=50))  # a drag starting on a box draws
    win._on_release(Event(x=90, y=50))
    assert len(win.drawing.strokes) == strokes + 1


def test_photo_is_shown_scaled_with_its_boxes(win, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="gui")
    photo = tmp_path / "scan.png"
    Image.new("RGB", (2000, 1000), "white").save(photo)
    caplog.clear()
    win.show_image(str(photo))
    pump_until(win.root, lambda: any("recognized" in r.getMessage() for r in caplog.records))
    assert win.rec.requests[-1] == (str(photo), "cnn")  # the recognizer loads the file itself
    assert win.canvas.find_withtag("photo")
    x0, y0, x1, y1 = win.canvas.coords(win.canvas.find_withtag("overlay-0")[0])
    scale = win._photo.placement.scale
    assert scale < 1 and (x1 - x0 - 6) == pytest.approx(40 * scale)
    win.undo()  # closes the photo, back to the drawing
    assert not win.canvas.find_withtag("photo")


def test_all_three_reads_side_by_side(win, caplog):
    caplog.set_level(logging.INFO, logger="gui")
    win.drawing.begin(20, 20, 10)
    win.select_model("all")
    pump_until(win.root, lambda: any("model=all" in r.getMessage() for r in caplog.records))
    line = next(r.getMessage() for r in caplog.records if "model=all" in r.getMessage())
    assert line == "recognized text=ann:4?,cnn:4? model=all ms=3"
    assert win.per_model["text"].splitlines() == ["ANN      4?  #1: 4 97%", "CNN      4?  #1: 4 97%"]
    caplog.clear()
    win.select_model("vgg16")  # greyed out: refused
    assert win.picker.get() == "all"


def test_stale_answer_is_ignored(win):
    win.drawing.begin(5, 5, 5)
    win.recognize()
    stale = RecognitionDone(Request(win._wanted_id - 1, None, "cnn"), {"cnn": Reading([], "cnn")}, "cnn", 1.0)
    win.results.put(stale)
    win.root.update()
    assert win._readings is None or win._readings["cnn"] is not stale.readings["cnn"]


def test_failed_save_says_why_and_keeps_the_drawing(win, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(app_module.messagebox, "showerror", lambda *a, **k: shown.append(a))
    win.drawing.begin(10, 10, 8)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert not win.save_to(str(blocker / "drawing.png"))
    assert shown and "still here" in shown[0][1]
    assert not win.drawing.empty
    assert win.save_to(str(tmp_path / "ok.png"))
    assert Image.open(tmp_path / "ok.png").mode == "L"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ctypes path to libtk is Linux-specific")
def test_motion_events_are_not_merged(win):
    """Without this, a fast "7" drawn while a model loads loses its corner and reads as "1"."""
    assert keep_all_motion_events(win.root)


def test_offscreen_image_follows_canvas_resize(win):
    win.drawing.begin(30, 30, 10)
    win.drawing.extend(30, 80)
    win.root.geometry("1200x850")
    pump_until(win.root, lambda: win.canvas.winfo_width() > 900)
    pump_until(win.root, lambda: win.drawing.size == (win.canvas.winfo_width(), win.canvas.winfo_height()))
    assert win.drawing.array()[50, 30] == 0  # the stroke survived the resize


class SlowStore(Store):
    """A store whose first load takes until the test opens the gate."""

    def __init__(self, gate):
        super().__init__()
        self.gate = gate

    def predict(self, name, batch):
        self.gate.wait(20)
        return super().predict(name, batch)


def test_drawing_sent_while_the_model_loads_is_read_once_it_is_ready(display, caplog):
    import threading

    caplog.set_level(logging.INFO, logger="gui")
    gate = threading.Event()
    root = tk.Tk(screenName=display)
    rec = Rec()
    a = app_module.DigitApp(root, "unused", worker_factory=lambda _d: (SlowStore(gate), rec))
    try:
        pump_until(root, lambda: a.status and a.picker.get() == "cnn")
        assert "CNN loading..." in a.statusbar.models["text"]  # present, but cannot answer yet
        assert "ready" not in a.statusbar.models["text"].split("·")[1]
        a.drawing.begin(20, 20, 10)
        a.drawing.extend(30, 60)
        a.recognize()
        assert "loading CNN... then reading" in a.statusbar.timing["text"]
        assert any("waiting for model cnn to load" in r.getMessage() for r in caplog.records)
        t_end = time.monotonic() + 0.3
        while time.monotonic() < t_end:  # the window keeps answering while the worker is blocked
            root.update()
            time.sleep(0.01)
        assert not any("recognized text=" in r.getMessage() for r in caplog.records)
        gate.set()
        pump_until(root, lambda: any("recognized text=4? model=cnn" in r.getMessage() for r in caplog.records))
        pump_until(root, lambda: "CNN ready" in a.statusbar.models["text"])
        assert any(r.getMessage().startswith("model cnn ready ms=") for r in caplog.records)
    finally:
        gate.set()
        a.worker.stop(5)
        root.destroy()
        a.__dict__.clear()
        gc.collect()


# --- corrections and learning (gui/learning.py) with a fake profile ----------------------------------

@dataclass
class InputDigit(Digit):
    input: np.ndarray = field(default_factory=lambda: np.zeros((28, 28), np.float32))


class FakeDecision:
    def __init__(self, n):
        self.n = n

    def summary(self):
        return {"accepted": True, "reason": f"learned from {self.n} corrections", "corrections": self.n}


class FakeProfile:
    folder = "fake-profile"

    def __init__(self):
        self.added, self.deleted, self.adapt_calls, self.counted = [], [], [], []

    def correct_reading(self, reading, text, source, image=None, counted=False, key=None):
        self.added.append(dict(reading=reading, text=text, source=source, image=image, counted=counted))
        return [len(self.added)]

    def delete(self, cid):
        self.deleted.append(cid)
        return True

    def adapt(self, model):
        self.adapt_calls.append(model)
        return {"cnn": FakeDecision(len(self.added) - len(self.deleted))}

    def adapt_if_stale(self, model, on_start=None):
        return {}

    def adapted(self, name):
        return None

    class db:  # noqa: N801 - the profile's database, as far as the Learner asks it
        @staticmethod
        def count():
            return 0

    def count_reading(self, digits, adapted):
        self.counted.append((digits, adapted))


class LearningRec(Rec):
    def __init__(self, profile):
        super().__init__()
        self.profile = profile

    def _reading(self, image, model):
        self.requests.append((image if isinstance(image, str) else image.shape, model))
        return Reading([InputDigit(4, 0.97, (10, 10, 40, 60)), InputDigit(2, 0.41, (60, 10, 40, 60), uncertain=True)],
                       model)


@pytest.fixture
def learning(display, monkeypatch):
    monkeypatch.setattr(learning_module, "ADAPT_DELAY_S", 0.06)
    root = tk.Tk(screenName=display)
    profile = FakeProfile()
    rec = LearningRec(profile)
    a = app_module.DigitApp(root, "unused", worker_factory=lambda _d: (Store(), rec))
    a.rec, a.fake_profile = rec, profile
    pump_until(root, lambda: a.status and a.picker.get() == "cnn" and a._kept())
    yield a
    a.worker.stop(5)
    root.destroy()
    a.__dict__.clear()
    gc.collect()


def test_after_a_restart_the_status_line_says_the_adaptation_reads(display, monkeypatch):
    """Nothing new to learn at start (no unseen corrections): the line still says what reads."""
    from types import SimpleNamespace

    monkeypatch.setattr(FakeProfile, "adapted", lambda self, name: SimpleNamespace(corrections=5))
    root = tk.Tk(screenName=display)
    a = app_module.DigitApp(root, "unused", worker_factory=lambda _d: (Store(), LearningRec(FakeProfile())))
    try:
        pump_until(root, lambda: "CNN reads with your handwriting (learned from 5 corrections)"
                   in a.statusbar.learning["text"])
    finally:
        a.worker.stop(5)
        root.destroy()
        a.__dict__.clear()
        gc.collect()


def _stroke(a, x0, y0, x1, y1):
    a._on_press(Event(x0, y0))
    a._on_drag(Event(x1, y1))
    a._on_release(Event(x1, y1))


def _label(a, i):
    item = a.canvas.find_withtag(f"overlay-{i}")[-1]
    return a.canvas.itemcget(item, "text"), a.canvas.itemcget(item, "fill")


def test_typed_digit_corrects_the_selected_box_and_one_undo_history(learning, caplog):
    from gui import overlay

    a, profile = learning, learning.fake_profile
    caplog.set_level(logging.INFO, logger="gui")
    _stroke(a, 200, 200, 220, 260)
    recognize_and_wait(a, caplog)
    a._on_press(Event(80, 40))  # click the second box ("?", read as 2)
    a._on_release(Event(80, 40))
    requests = len(a.rec.requests)
    a._typed(7)
    assert a.number["text"] == "47"  # at once, before anything is stored
    assert _label(a, 1) == ("7 \u270e (read 2)", overlay.CORRECTED_COLOUR)
    assert a.probs.find_withtag("chosen") and "yours: 7" in a.probs.itemcget(a.probs.find_all()[0], "text")
    pump_until(a.root, lambda: profile.added)
    kw = profile.added[0]  # the second digit (read 2) is a 7; the profile cuts its crop from the image read
    assert (kw["text"], kw["source"], kw["counted"]) == ("?7", "app", True)  # counted once finished
    assert kw["reading"].digits[1].digit == 2 and kw["image"].shape == a.drawing.array().shape
    pump_until(a.root, lambda: "learned from 1 correction of" in a.statusbar.learning["text"])
    pump_until(a.root, lambda: len(a.rec.requests) > requests)  # accepted: the drawing is read again
    assert a.number["text"] == "47"  # the same box: the writer's label follows the re-reading
    assert a.per_model["text"].split() == ["CNN", "47"]  # the model's row agrees with the Number

    _stroke(a, 300, 200, 320, 260)
    strokes = len(a.drawing.strokes)
    a.undo()  # the stroke was the last thing done
    assert len(a.drawing.strokes) == strokes - 1 and a.number["text"] == "47"
    requests, adapted = len(a.rec.requests), len(profile.adapt_calls)
    a.undo()  # now the correction: gone from the screen and from the profile
    assert a.number["text"] == "4?" and _label(a, 1)[0] == "? 41%"
    assert a.per_model["text"].split() == ["CNN", "4?"]
    pump_until(a.root, lambda: profile.deleted == [1])
    pump_until(a.root, lambda: len(profile.adapt_calls) > adapted and len(a.rec.requests) > requests)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        a.root.update()
    assert len(a.rec.requests) == requests + 1  # read again once, after re-adapting (not at once and again)
    a.undo()
    assert len(a.drawing.strokes) == strokes - 2


def test_probability_row_click_corrects_and_adaptation_waits_for_a_pause(learning, caplog):
    from gui.probabilities import ROW, TOP_Y

    a, profile = learning, learning.fake_profile
    caplog.set_level(logging.INFO, logger="gui")
    _stroke(a, 200, 200, 220, 260)
    recognize_and_wait(a, caplog)
    assert a._selected == 0
    a.probs._click(Event(50, TOP_Y + 9 * ROW + 5))  # row "9"
    assert a.statusbar.learning["text"].startswith("correction kept;")
    a._typed(8)  # changed their mind: the 9 is taken back, the 8 kept
    assert a.number["text"] == "8?"
    pump_until(a.root, lambda: profile.adapt_calls)
    assert [k["text"] for k in profile.added] == ["9?", "8?"] and profile.deleted == [1]
    assert profile.adapt_calls == ["cnn"]  # one adaptation for both corrections
    a._typed(8)  # the same label again: nothing new
    a.clear()  # a finished drawing is counted once
    pump_until(a.root, lambda: profile.counted)
    assert profile.counted == [(2, False)] and len(profile.added) == 2
    _stroke(a, 200, 200, 220, 260)
    recognize_and_wait(a, caplog)
    a._typed(4)  # the digit it read (4): a confirmation, and the line says so
    assert a.statusbar.learning["text"].startswith("confirmed;")


def test_removing_a_correction_of_the_digit_on_screen_unmarks_it(learning, caplog):
    """Removed from "My handwriting" (by id): deleted through the learner, no longer shown as corrected, and
    Ctrl+Z has no correction left to take back."""
    a, profile = learning, learning.fake_profile
    caplog.set_level(logging.INFO, logger="gui")
    _stroke(a, 200, 200, 220, 260)
    recognize_and_wait(a, caplog)
    a._typed(9)
    assert a.number["text"] == "9?"
    pump_until(a.root, lambda: profile.added)
    pump_until(a.root, lambda: any("correction stored id=1" in r.getMessage() for r in caplog.records))
    a.remove_correction(1)
    pump_until(a.root, lambda: profile.deleted == [1] and a.number["text"] == "4?")
    assert a.statusbar.learning["text"] == "correction forgotten"
    strokes = len(a.drawing.strokes)
    a.undo()  # the stroke, not the removed correction
    assert len(a.drawing.strokes) == strokes - 1 and profile.deleted == [1]


def test_without_a_profile_a_correction_is_shown_and_not_kept(win, caplog):
    caplog.set_level(logging.INFO, logger="gui")
    pump_until(win.root, lambda: win.profile_opened is not None)
    win.drawing.begin(20, 20, 10)
    recognize_and_wait(win, caplog)
    assert win.correct(1)
    assert win.number["text"] == "1?" and "not kept" in win.statusbar.learning["text"]
    win.undo()
    assert win.number["text"] == "4?"


@pytest.fixture(scope="module")
def learn_models(tmp_path_factory):
    return adapt_models_dir(tmp_path_factory)


def test_my_handwriting_shows_the_figures_and_forget_keeps_an_export(display, learn_models, tmp_path, caplog,
                                                                     monkeypatch):
    """The real profile and CNN (ONNX, no TensorFlow): figures, "No" keeps everything, "Yes" empties it and
    keeps an export beside it."""
    from pathlib import Path

    from recognizer import ModelStore
    from recognizer.profile import Profile

    caplog.set_level(logging.INFO, logger="gui")
    folder = tmp_path / "profile"
    seed_eu1(Profile(folder, ModelStore(learn_models)), ModelStore(learn_models), 2)
    said = lambda text: any(text in r.getMessage() for r in caplog.records)  # noqa: E731
    root, a = handwriting_dialog(display, learn_models, folder)
    try:
        pump_until(root, lambda: said("profile stats: "))
        text = a._handwriting_text["text"]
        assert "2 corrections kept: 2 of digits it misread" in text and "your 1 read as 7 (2 times)" in text
        assert "CNN reads" in text and "held out" not in text and "last attempt" not in text
        assert a._forget_button["state"] == "normal"
        top = a._handwriting
        top.geometry("420x200")  # a small window: the text wraps and Close stays in view
        pump_until(root, lambda: top.winfo_height() <= 260)
        close = a._handwriting_close
        assert close.winfo_ismapped() and close.winfo_y() + close.winfo_height() <= top.winfo_height()
        assert a._handwriting_text["wraplength"] and "Courier" not in str(a._handwriting_text["font"])
        asked = []
        monkeypatch.setattr(app_module.messagebox, "askyesno", lambda *args, **k: asked.append(args) or False)
        a.forget_handwriting()  # "No": nothing forgotten
        assert asked and not said("forgetting handwriting")
        question = asked[0][1]
        assert "inside your profile folder" in question and "recognize.py" not in question and "beside" not in question
        monkeypatch.setattr(app_module.messagebox, "askyesno", lambda *args, **k: True)
        a._forget_button.invoke()
        pump_until(root, lambda: said("profile reset, corrections kept in "))
        export = Path(next(r.getMessage() for r in caplog.records if "profile reset" in r.getMessage())
                      .rsplit(" ", 1)[1])
        assert export.parent == folder and export.is_file() and "kept in" in a.statusbar.learning["text"]
        assert Profile(folder, ModelStore(learn_models)).db.count() == 0
        pump_until(root, lambda: "0 corrections kept" in a._handwriting_text["text"])
        assert "Forgot your handwriting" in a._handwriting_note["text"]
        assert a._forget_button["state"] == "disabled"  # nothing left to forget
    finally:
        a.worker.stop(5)
        root.destroy()
        a.__dict__.clear()
        gc.collect()


def test_my_handwriting_lists_the_corrections_with_crops_and_removes_one(display, learn_models, tmp_path, caplog,
                                                                        monkeypatch):
    """The real profile: the newest first, each with its crop (small) and what was read and said; Remove deletes
    that one correction through the learner, the app adapts again as after an undo, and the list follows."""
    from recognizer import ModelStore
    from recognizer.profile import Profile

    monkeypatch.setattr(learning_module, "ADAPT_DELAY_S", 0.06)
    caplog.set_level(logging.INFO, logger="gui")
    folder = tmp_path / "profile"
    profile = Profile(folder, ModelStore(learn_models))
    seed_eu1(profile, ModelStore(learn_models), 2)  # ids 1, 2: no crops
    crop = np.zeros((120, 80), np.uint8)
    crop[10:110, 35:45] = 255
    one = profile.add_correction(label=1, input=np.zeros((28, 28), np.float32), model="cnn", source="app", read=7,
                                 crop=crop)
    four = profile.add_correction(label=4, input=np.zeros((28, 28), np.float32), model="cnn", source="app", read=4,
                                  crop=crop[:, :60])
    said = lambda text: any(text in r.getMessage() for r in caplog.records)  # noqa: E731
    root, a = handwriting_dialog(display, learn_models, folder)
    try:
        pump_until(root, lambda: list(a._remove_buttons) == [four, one, 2, 1], timeout=30)
        rows = a._corrections_list.get("1.0", "end").strip().splitlines()
        assert [r.strip() for r in rows] == ["confirmed 4", "read as 7, you said 1", "read as 7, you said 1",
                                            "read as 7, you said 1"]
        assert a._corrections_title["text"] == "Your corrections (4):"
        assert set(a._thumbs) == {four, one}  # only those with a crop kept
        assert a._thumbs[one].height() == app_module.THUMB_PX and a._thumbs[one].width() == 21  # 120x80, small
        top = a._handwriting
        top.geometry("420x260")  # a small window: Close stays in view, the list scrolls
        pump_until(root, lambda: top.winfo_height() <= 320)
        close = a._handwriting_close
        assert close.winfo_ismapped() and close.winfo_y() + close.winfo_height() <= top.winfo_height()

        caplog.clear()
        a._remove_buttons[one].invoke()
        pump_until(root, lambda: said(f"correction undone id={one} deleted=True"), timeout=30)
        assert [c.id for c in Profile(folder, ModelStore(learn_models)).db.corrections()] == [1, 2, four]
        pump_until(root, lambda: list(a._remove_buttons) == [four, 2, 1], timeout=30)
        assert set(a._thumbs) == {four} and a._corrections_title["text"] == "Your corrections (3):"
        assert a.statusbar.learning["text"] == "correction forgotten"
        pump_until(root, lambda: said("adapting model=cnn"), timeout=30)  # adapts again, as after an undo
    finally:
        a.worker.stop(5)
        root.destroy()
        a.__dict__.clear()
        gc.collect()


def handwriting_dialog(display, learn_models, folder):
    """A real window of the app on `folder`'s profile, its profile open and My handwriting shown."""
    root = tk.Tk(screenName=display)
    a = app_module.DigitApp(root, str(learn_models), model="cnn", profile=str(folder))
    try:
        pump_until(root, lambda: a._kept() and a.picker.get() == "cnn")
        a.show_handwriting()
    except BaseException:
        root.destroy()
        raise
    return root, a
