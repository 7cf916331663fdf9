"""Unit tests for the GUI's parts that need no display: drawing model, geometry, worker, saving."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gui import overlay
from gui.app import log_text
from gui.drawing import Drawing
from gui.files import save_png
from gui.picker import reason_for
from gui.statusbar import describe
from gui.worker import ALL_MODELS, RecognitionDone, RecognitionFailed, RecognitionWorker, Request, StatusUpdate

REPO = Path(__file__).resolve().parents[1]


# --- drawing -------------------------------------------------------------------------------------

def test_drawing_renders_strokes_with_round_caps_and_undo_rerenders():
    d = Drawing(200, 100)
    assert d.empty and d.array().min() == 255
    d.begin(20, 50, 10)
    d.extend(120, 50)
    a = d.array()
    assert a.shape == (100, 200) and a.dtype == np.uint8
    assert a[50, 70] == 0  # on the line
    assert a[50, 16] == 0 and a[50, 124] == 0  # round caps reach past the end points
    assert a[40, 70] == 255  # not wider than the brush
    before = d.array()
    d.begin(60, 10, 6)
    d.extend(60, 90)
    assert (d.array() != before).any()
    assert d.undo()
    np.testing.assert_array_equal(d.array(), before)
    assert d.undo() and d.empty and not d.undo()


def test_single_click_leaves_a_dot_and_clear_wipes():
    d = Drawing(50, 50)
    d.begin(25, 25, 8)
    assert d.array()[25, 25] == 0
    d.clear()
    assert d.empty and d.array().min() == 255


def test_resize_keeps_strokes_and_array_is_a_copy():
    d = Drawing(100, 100)
    d.begin(10, 10, 4)
    d.extend(90, 90)
    d.resize(300, 200)
    a = d.array()
    assert a.shape == (200, 300) and a[50, 50] == 0 and a[150, 250] == 255
    d.clear()
    assert a[50, 50] == 0  # the request's copy did not change


# --- geometry and texts --------------------------------------------------------------------------

@dataclass
class FakeDigit:
    digit: int = 7
    confidence: float = 0.98
    box: tuple = (10, 20, 30, 40)
    uncertain: bool = False
    label: str = "7"
    probabilities: np.ndarray = field(default_factory=lambda: np.eye(10)[7])
    top3: list = field(default_factory=list)
    line: int = 0


def test_fit_scales_and_centres():
    p = overlay.fit((1000, 500), (520, 520), margin=10)
    assert p.scale == pytest.approx(0.5)
    assert p.box((0, 0, 1000, 500)) == pytest.approx((10, 135, 510, 385))
    assert overlay.Placement().box((1, 2, 3, 4)) == (1, 2, 4, 6)


def test_labels_and_colours_mark_uncertain_digits():
    assert overlay.label(FakeDigit()) == "7 98%"
    unsure = FakeDigit(confidence=0.41, uncertain=True, label="?")
    assert overlay.label(unsure) == "? 41%"
    assert overlay.colour(unsure) != overlay.colour(FakeDigit())


def test_status_texts_say_how_to_train():
    st = {"ann": "missing", "cnn": "ok", "vgg16": "error: bad zip", "ensemble": "error: vgg16: bad zip"}
    text = describe(st, loaded=("cnn",))
    assert "CNN ready" in text and "ANN missing" in text and "VGG16 failed to load" in text
    assert describe({n: "ok" for n in st}, loaded=("cnn",)).startswith("ANN loading... · CNN ready · VGG16 loading")
    assert describe({n: "ok" for n in st}, loaded=("ann", "cnn", "vgg16")).endswith("Ensemble ready")
    assert "python train_all.py" in text
    assert "python train_all.py" in reason_for("missing")
    assert reason_for("error: bad zip") == "error: bad zip"
    assert log_text("12\n34") == "12\\n34"


# --- worker (fake store and recognizer) ----------------------------------------------------------

@dataclass
class FakeReading:
    text: str
    model: str
    ms: float = 1.0
    digits: list = field(default_factory=list)


class FakeStore:
    def __init__(self, status=None, broken=()):
        self._status = status or {"ann": "ok", "cnn": "ok", "vgg16": "missing", "ensemble": "missing"}
        self.broken = set(broken)
        self.loaded: list[str] = []

    def status(self):
        return dict(self._status)

    def default_name(self):
        return "cnn"

    def predict(self, name, batch):
        if name in self.broken:
            raise RuntimeError(f"model {name} could not be loaded (corrupt)")
        self.loaded.append(name)
        return np.full((len(batch), 10), 0.1, np.float32)


class FakeRecognizer:
    def __init__(self, store, gate: threading.Event | None = None):
        self.store, self.gate, self.seen = store, gate, []

    def read(self, image, model=None):
        self.seen.append(int(image[0, 0]))
        if self.gate is not None:
            self.gate.wait(10)
        return FakeReading(str(int(image[0, 0])), model or "cnn")

    def read_models(self, image, models):
        return {m: FakeReading("7", m) for m in models}


def _collect(results, kind, n=1, timeout=10.0):
    got = []
    while len(got) < n:
        msg = results.get(timeout=timeout)
        if isinstance(msg, kind):
            got.append(msg)
    return got


def _image(v):
    return np.full((4, 4), v, np.uint8)


def test_worker_reports_status_preloads_and_newer_request_supersedes_pending():
    gate = threading.Event()
    store = FakeStore()
    rec = FakeRecognizer(store, gate)
    results: queue.Queue = queue.Queue()
    w = RecognitionWorker("unused", results, factory=lambda _d: (store, rec))
    w.start("cnn")
    try:
        first = _collect(results, StatusUpdate)[0]
        assert first.status["cnn"] == "ok" and first.default == "cnn"
        w.submit(Request(1, _image(1), "cnn"))
        for _ in range(200):  # wait until request 1 is running (blocked on the gate)
            if rec.seen:
                break
            threading.Event().wait(0.01)
        w.submit(Request(2, _image(2), "cnn"))
        w.submit(Request(3, _image(3), "cnn"))  # replaces 2 before it starts
        gate.set()
        done = _collect(results, RecognitionDone, 2)
        assert [d.request.id for d in done] == [1, 3]
        assert rec.seen == [1, 3]
        assert done[1].readings["cnn"].text == "3" and done[1].primary == "cnn"
        w.submit(Request(4, _image(0), ALL_MODELS))
        both = _collect(results, RecognitionDone)[0]
        assert set(both.readings) == {"ann", "cnn"}  # only the models that are there
        assert "cnn" in store.loaded and "ann" in store.loaded
    finally:
        w.stop(5)


def test_worker_marks_a_model_that_fails_to_load_as_error():
    store = FakeStore(status={"ann": "ok", "cnn": "ok", "vgg16": "ok", "ensemble": "ok"}, broken={"vgg16"})
    results: queue.Queue = queue.Queue()
    w = RecognitionWorker("unused", results, factory=lambda _d: (store, FakeRecognizer(store)))
    w.start()
    try:
        for _ in range(20):
            st = _collect(results, StatusUpdate)[0]
            if st.status["vgg16"].startswith("error"):
                break
        assert "corrupt" in st.status["vgg16"] and st.status["cnn"] == "ok"
    finally:
        w.stop(5)


def test_worker_without_recognizer_says_why_and_keeps_answering():
    def broken(_d):
        raise ImportError("no module named tensorflow")

    results: queue.Queue = queue.Queue()
    w = RecognitionWorker("unused", results, factory=broken)
    w.start()
    try:
        st = _collect(results, StatusUpdate)[0]
        assert all("recognizer unavailable" in v for v in st.status.values())
        w.submit(Request(1, _image(1), None))
        failed = _collect(results, RecognitionFailed)[0]
        assert failed.request.id == 1 and "tensorflow" in failed.message
    finally:
        w.stop(5)


# --- saving --------------------------------------------------------------------------------------

def test_save_png_is_atomic_and_failure_keeps_old_file(tmp_path):
    target = tmp_path / "drawing.png"
    save_png(Image.new("L", (30, 20), 255), target)
    assert Image.open(target).size == (30, 20)
    old = target.read_bytes()

    class Exploding:
        def save(self, path, format=None):
            Path(path).write_bytes(b"half a png")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_png(Exploding(), target)
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawing.png"]  # no temp file left


def test_ui_import_path_does_not_load_tensorflow_or_numpy():
    heavy = "{'tensorflow', 'keras', 'numpy', 'recognizer'}"
    code = f"import sys, gui.app, gui_digit_recognizer; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_entry_point_arguments():
    import gui_digit_recognizer as entry

    args = entry.parse_args(["--models-dir", "m", "--model", "all", "--brush", "25"])
    assert (args.models_dir, args.model, args.brush, args.log_level) == ("m", "all", 25, "INFO")
    with pytest.raises(SystemExit):
        entry.parse_args(["--model", "resnet"])


# --- model choice policy -------------------------------------------------------------------------

def test_choose_model_prefers_the_request_then_falls_back_to_the_default():
    from gui.session import choose_model, ready_models

    st = {"ann": "ok", "cnn": "error: cnn.onnx expects input (N, 32, 32, 1)", "vgg16": "missing"}
    usable = {"ann": True, "cnn": False, "vgg16": False}.get
    assert choose_model("", "ann", "ann", usable, st).model == "ann"
    first = choose_model("", "cnn", "ann", usable, st)
    assert first.model == "ann" and "model cnn not usable (error: cnn.onnx expects input" in first.warning
    switch = choose_model("cnn", None, "ann", usable, st)
    assert switch.model == "ann" and "switching to ann" in switch.warning
    assert choose_model("ann", None, "ann", usable, st).model is None  # keep what the user has
    assert choose_model("cnn", None, None, usable, st).model is None  # nothing better to switch to
    assert ready_models(("cnn",)) == {"cnn"}
    assert ready_models(("ann", "cnn", "vgg16")) == {"ann", "cnn", "vgg16", "ensemble"}
    assert ready_models(("ensemble",)) == {"ann", "cnn", "vgg16", "ensemble"}


def test_is_user_error_compares_the_class():
    from gui.learning import is_user_error as _is_user_error
    from recognizer import RecognizerError

    lookalike = type("RecognizerError", (Exception,), {})  # same name, another class

    assert _is_user_error(RecognizerError("bad file")) and _is_user_error(OSError("x"))
    assert not _is_user_error(lookalike("not the recognizer's"))
    assert not _is_user_error(RuntimeError("bug"))


# --- learning the writer's hand: view logic and the Learner thread (gui/learning.py) -------------------

def test_corrections_follow_their_box_and_make_the_shown_text():
    from gui.learning import Corrections, Mark, digit_key

    digits = [FakeDigit(digit=7, box=(0, 0, 10, 10), line=0), FakeDigit(digit=1, label="1", box=(20, 0, 10, 10), line=0),
              FakeDigit(digit=3, box=(0, 30, 10, 10), line=1, uncertain=True, label="?")]
    c = Corrections()
    assert c.text(digits) == "71\n?" and c.labels(digits) == {}
    assert c.set(digit_key(digits[1]), Mark(4, 1, None)) is None
    assert c.set(digit_key(digits[2]), Mark(8, 3, None)) is None
    assert c.text(digits) == "74\n8" and c.labels(digits) == {1: 4, 2: 8}
    assert c.set(digit_key(digits[1]), None).label == 4  # removed, the old mark returned
    moved = [FakeDigit(digit=7, box=(0, 0, 10, 10)), FakeDigit(digit=1, label="1", box=(20, 0, 12, 10))]  # the 1 was redrawn
    c.set(digit_key(digits[1]), Mark(4, 1, None))
    assert c.text(moved) == "71"


def test_adaptation_line_says_what_was_learned_or_why_not():
    from gui.learning import adaptation_text, profile_model

    ok = {"accepted": True, "reason": "learned from 23 corrections", "corrections": 23}
    no = {"accepted": False, "reason": "needs at least 3 corrections to judge, has 1", "corrections": 1}
    assert adaptation_text({"cnn": ok}) == (True, "CNN learned from 23 corrections of your handwriting")
    assert adaptation_text({"ann": no, "cnn": ok})[0] is True
    assert adaptation_text({"cnn": no}) == (False, "CNN not adapted: needs at least 3 corrections to judge, has 1")
    assert adaptation_text({}) == (False, "")
    assert profile_model("all") == "ensemble" and profile_model("cnn") == "cnn"
    held_back = dict(ok, kept=0.8, ignored=1, corrections=24)  # the README promises the share kept
    assert adaptation_text({"cnn": held_back}) == (True, "CNN learned from 23 corrections of your handwriting; kept "
                                                   "80% of the change, so that other people's digits read as "
                                                   "before; left out 1 correction nothing else supports (mistyped?)")


def test_the_line_after_a_restart_or_a_model_switch_says_what_reads():
    from gui.learning import in_use_text

    assert in_use_text("ensemble", {"cnn": 23, "ann": 20}, 23) == \
        "CNN, ANN reads with your handwriting (learned from 23 corrections)"
    assert in_use_text("vgg16", {}, 23) == "VGG16 reads as shipped (not adapted to your handwriting)"
    assert in_use_text("cnn", {}, 0) == ""


def test_my_handwriting_is_in_plain_words_and_lists_every_model():
    from gui.learning import handwriting_lines

    rate = {"readings": 4, "digits": 12, "corrected": 3, "error_rate": 0.25}
    stats = {"profile": "/home/me/profile", "corrections": 5, "corrected_digits": 3, "confirmed_digits": 2,
             "before_adaptation": rate, "with_adaptation": {**rate, "digits": 0, "error_rate": None},
             "confusions": [{"label": 2, "read": 1, "count": 2}],
             "adaptations": {"ann": {"in_use": True, "corrections": 5, "last": None},
                             "cnn": {"in_use": True, "corrections": 5, "last": None},
                             "vgg16": {"in_use": False, "corrections": 0,
                                       "last": {"reason": "needs at least 3 corrections to judge, has 2"}}}}
    text = "\n".join(handwriting_lines(stats))
    assert "ANN reads with your handwriting, learned from 5 corrections." in text
    assert "CNN reads with your handwriting" in text and "VGG16 reads as shipped" in text
    assert "your 2 read as 1 (2 times)" in text and "5 corrections kept: 3 of digits it misread" in text
    assert "12 digits read, 3 of them corrected (25.0%)" in text and "Since it learned your handwriting: no" in text
    for jargon in ("->", "held out", "last attempt", "2x"):
        assert jargon not in text


def test_probability_rows_and_corrected_labels():
    from gui.probabilities import ROW, TOP_Y, row_at

    assert row_at(TOP_Y - 1) is None and row_at(TOP_Y) == 0 and row_at(TOP_Y + 9 * ROW + ROW - 1) == 9
    assert row_at(TOP_Y + 10 * ROW) is None
    assert overlay.corrected_label(1, 7) == "1 \u270e (read 7)"
    assert overlay.corrected_label(7, 7) == "7 \u270e"  # a confirmation


class RecordingProfile:
    def __init__(self):
        self.calls = []

    def correct_reading(self, reading, text, source, image=None, counted=False, key=None):
        self.calls.append(("add", text))
        return [41]

    def delete(self, cid):
        self.calls.append(("delete", cid))
        return True

    def count_reading(self, digits, adapted):
        self.calls.append(("count", digits))

    def adapt(self, model):
        self.calls.append(("adapt", model))
        return {}

    def adapt_if_stale(self, model, on_start=None):
        self.calls.append(("adapt if stale", model))
        return {}


def test_learner_drops_an_undone_correction_before_it_is_written_and_drains_on_stop(monkeypatch):
    from gui import learning
    from gui.learning import (Adapt, Correct, CorrectionStored, CorrectionUndone, CountReading, Learner, ProfileFailed,
                              Undo)

    monkeypatch.setattr(learning, "ADAPT_DELAY_S", 0.05)
    results: queue.Queue = queue.Queue()
    learner = Learner(results)
    reading = FakeReading("7", "cnn", digits=[object()])
    job = lambda token, label: Correct(token, label, reading, 0, np.zeros((40, 30), np.uint8))  # noqa: E731
    learner.submit(job(1, 1))
    learner.submit(Undo(1))  # not attached yet: the correction was never written
    assert results.get_nowait() == CorrectionUndone(1, None, False)
    learner.submit(Adapt("cnn"))
    learner.submit(Adapt("all"))  # only the latest adaptation request is kept
    learner.submit(CountReading(3, False))
    profile = RecordingProfile()
    learner.attach(profile)
    learner.submit(job(2, 1))
    assert _collect(results, CorrectionStored)[0] == CorrectionStored(2, 41)
    learner.submit(Undo(2))  # written: deleted from the profile
    assert _collect(results, CorrectionUndone)[0] == CorrectionUndone(2, 41, True)
    deadline = time.monotonic() + 5
    while ("adapt", "ensemble") not in profile.calls and time.monotonic() < deadline:  # the adapting thread's
        time.sleep(0.01)
    learner.stop(5)
    assert [c for c in profile.calls if c[0] != "adapt"] == [("count", 3), ("add", "1"), ("delete", 41)]
    assert [c for c in profile.calls if c[0] == "adapt"] == [("adapt", "ensemble")]  # "All three": once

    quitting = Learner(results)
    later = RecordingProfile()
    quitting.submit(Adapt("cnn"))
    quitting.submit(CountReading(2, True))
    quitting.attach(later)
    quitting.stop(5)
    assert ("count", 2) in later.calls  # a quitting app still counts its last reading

    none = Learner(results)
    none.attach(None)
    none.submit(job(3, 5))
    assert _collect(results, ProfileFailed)[0].message == "no profile: corrections are not kept"
    none.stop(5)


def test_entry_point_profile_argument():
    import gui_digit_recognizer as entry

    assert entry.parse_args([]).profile is None  # $DIGITS_PROFILE, else the per-user folder
    assert entry.parse_args(["--profile", "none"]).profile == "none"
