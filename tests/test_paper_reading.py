"""Reading paper end to end with the shipped string reader (models/string.onnx): canvas or paper chosen by the
picture, touching digits, separators, ruling lines, faint ink and uneven light, on pages made here; and the
register validation pages when ../shared is there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognizer import ModelStore, Recognizer, RecognizerError
from recognizer.paper_reader import choose_source, sure_lines
from recognizer.string_reader import StringDigit, decode

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
REGISTERS = ROOT.parent / "shared/data/paper/registers-rowid.tar"
needs_reader = pytest.mark.skipif(not (MODELS / "string.onnx").is_file(), reason="models/string.onnx not shipped")


def write(text: str, paper: float = 228.0, ink: float = 45.0, size: float = 1.6, thickness: int = 3,
          gap: int = 0, gradient: float = 0.0, rules: bool = False, seed: int = 0, width: int = 360,
          height: int = 130) -> np.ndarray:
    """A grey page with `text` handwritten-like (Hershey script-simplex, one glyph at a time, `gap` px apart:
    negative overlaps them), paper grain, optional light fall-off and ruling lines."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    x, base = 24, height // 2 + 22
    for ch in text:
        (w, _), _ = cv2.getTextSize(ch, cv2.FONT_HERSHEY_SIMPLEX, size, thickness)
        cv2.putText(mask, ch, (x, base), cv2.FONT_HERSHEY_SIMPLEX, size, 255, thickness, cv2.LINE_AA)
        x += w + gap if ch.isdigit() else w // 2 + 4
    page = np.full((height, width), paper, np.float32)
    if gradient:
        page *= 1.0 - gradient * np.linspace(0, 1, width, dtype=np.float32)[None, :]
    if rules:  # ruled paper, 60 px apart, the number written on a line
        for y in range((base + 3) % 60, height, 60):
            page[y:y + 2] -= 70
    a = mask.astype(np.float32) / 255.0
    page = page * (1 - a) + ink * a + rng.normal(0, 3, page.shape)
    return np.clip(page, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rec():
    return Recognizer(ModelStore(MODELS))


def test_drawings_stay_on_the_canvas_path_and_paper_goes_to_paper():
    drawing = np.full((200, 300), 255, np.uint8)
    cv2.line(drawing, (100, 40), (110, 160), 0, 12, cv2.LINE_AA)
    assert choose_source(drawing, photo=False) == "canvas"
    assert choose_source(write("12"), photo=False) == "paper"  # grain: no exact background level
    assert choose_source(drawing, photo=True) == "paper"


def test_unknown_source_is_refused_with_the_choices():
    with pytest.raises(RecognizerError, match="auto, canvas, paper"):
        Recognizer(ModelStore(MODELS), source="scan")


def test_decoding_merges_repeats_and_keeps_blank_separated_doubles():
    frames = np.full((9, 11), 0.01, np.float32)
    for t, k in enumerate([0, 3, 3, 0, 3, 0, 0, 8, 8]):  # "2", "2", "7": a double two split by a blank
        frames[t, k] = 0.9
    found = decode(frames)
    assert [d.digit for d in found] == [2, 2, 7]
    assert [(d.first, d.last) for d in found] == [(1, 2), (4, 4), (7, 8)]
    assert all(abs(d.probabilities.sum() - 1) < 1e-5 for d in found)


def test_a_digit_spread_over_frames_that_a_blank_wins_is_read():
    """Each frame alone says blank (0.4), but "1" is the likelier string over both (0.35 x 0.35 + 2 x 0.35 x 0.4 =
    0.40 against 0.16 for nothing): read "1", as register pages with a faint lone digit need, placed on its frames."""
    frames = np.zeros((4, 11), np.float32)
    frames[:, 0] = 1.0
    frames[1:3, :3] = [0.4, 0.25, 0.35]  # blank, "0", "1"
    found = decode(frames)
    assert [d.digit for d in found] == [1]
    assert found[0].first >= 1 and found[0].last <= 2
    assert found[0].probabilities.argmax() == 1


def test_a_double_digit_needs_a_blank_between_its_two_frames():
    one, blank = np.zeros(11, np.float32), np.zeros(11, np.float32)
    one[2], blank[0] = 0.9, 0.9
    one[0] = blank[2] = 0.1
    assert [d.digit for d in decode(np.stack([one, one, blank]))] == [1]
    found = decode(np.stack([one, blank, one]))
    assert [d.digit for d in found] == [1, 1] and [(d.first, d.last) for d in found] == [(0, 0), (2, 2)]


def _spikes(spikes: dict, frames: int = 6) -> np.ndarray:
    """One reader's frames: blank everywhere but at the given frames, where it is sure of {frame: {digit: p}}."""
    f = np.full((frames, 11), 1e-3, np.float32)
    f[:, 0] = 1.0
    for t, digits in spikes.items():
        f[t, 0] = max(1e-3, 1.0 - sum(digits.values()))
        for d, p in digits.items():
            f[t, d + 1] = p
    return f / f.sum(axis=1, keepdims=True)


def test_joined_readers_whose_spikes_lie_a_frame_apart_read_what_each_reads():
    """Two readers each read "33", one a frame later than the other (readers of other seeds do): averaged frames
    read "3"; joined readers (T, M, 11) read "33", each digit boxed over both readers' frames."""
    a, b = _spikes({1: {3: 1.0}, 3: {3: 1.0}}), _spikes({2: {3: 1.0}, 4: {3: 1.0}})
    assert [d.digit for d in decode(a)] == [d.digit for d in decode(b)] == [3, 3]
    assert [d.digit for d in decode((a + b) / 2)] == [3]
    found = decode(np.stack([a, b], axis=1))
    assert [(d.digit, d.first, d.last) for d in found] == [(3, 1, 2), (3, 3, 4)]


def test_joined_readers_read_the_string_they_find_likeliest_together_with_their_mean_digit():
    """One reader is sure of "12", the other leans to "17": the pair reads "12", and the second digit's
    distribution is the mean of theirs (the unsure reader lowers the confidence shown)."""
    sure = _spikes({1: {1: 0.98}, 3: {2: 0.97}})
    unsure = _spikes({1: {1: 0.98}, 3: {7: 0.55, 2: 0.43}})
    assert [d.digit for d in decode(unsure)] == [1, 7]
    found = decode(np.stack([sure, unsure], axis=1))
    assert [d.digit for d in found] == [1, 2]
    assert 0.6 < found[1].probabilities[2] < 0.8 and found[1].probabilities[7] > 0.2


def test_without_the_string_reader_paper_falls_back_to_the_canvas_path(tmp_path):
    for f in ("cnn.keras", "cnn.onnx", "metrics.json", "calibration.json"):
        shutil.copy(MODELS / f, tmp_path / f)
    r = Recognizer(ModelStore(tmp_path)).read(write("47"), model="cnn")
    assert r.source == "canvas" and r.model == "cnn"
    with pytest.raises(RecognizerError, match="string.onnx is missing"):
        Recognizer(ModelStore(tmp_path), source="paper").read(write("47"), model="cnn")


@needs_reader
@pytest.mark.parametrize("case, page, want", [
    ("plain", dict(text="4071"), "4071"),
    ("touching pair", dict(text="200", gap=-6), "200"),
    ("separators", dict(text="25.441"), "25441"),
    ("dash and slash", dict(text="12-7/9"), "1279"),
    ("ruling lines", dict(text="3581", rules=True), "3581"),
    ("faint ink on grey paper", dict(text="6094", paper=165.0, ink=135.0), "6094"),
    ("light falls off", dict(text="8256", gradient=0.5), "8256"),
])
def test_paper_conditions_read_right(rec, case, page, want):
    r = rec.read(write(**page))
    assert r.source == "paper" and r.model == "string"
    assert r.text == want, case
    for d in r.digits:  # each digit keeps what the UI and corrections need
        x, y, w, h = d.box
        assert w > 0 and h > 0 and len(d.top3) == 3 and d.input.shape == (28, 28)
    xs = [d.box[0] for d in r.digits]
    assert xs == sorted(xs)


def test_a_line_read_much_less_surely_than_the_number_is_left_out():
    """A register crop holds the number and bits of its neighbours (a glyph of the next column, a note, print),
    read as digits with less sureness: 50 of 2,697 validation pages read such a second line. A second number
    read as surely stays, and so does one whose digits are sure but for one."""
    def line(*confidences):
        digits = []
        for c in confidences:
            p = np.full(10, (1 - c) / 9, np.float32)
            p[4] = c
            digits.append(StringDigit(4, p, 0, 0))
        return object(), digits

    number, fragment, second, one_unsure = line(0.99, 0.98), line(0.81), line(0.97, 0.99, 0.98), line(0.99, 0.55, 0.98)
    pages = [[number, fragment], [number, second], [number, one_unsure], [fragment]]
    kept = [sure_lines([ln for ln, _ in lines], {id(ln): d for ln, d in lines}) for lines in pages]
    assert kept == [[number[0]], [number[0], second[0]], [number[0], one_unsure[0]], [fragment[0]]]


@needs_reader
def test_a_lone_narrow_digit_is_read_not_lost(rec):
    """A lone "1," is stretched to the narrowest strip and read as nothing (every seed here; 6 of the 42 register
    validation pages read as nothing): read again centred in paper, it is found, its box on its own ink."""
    for seed in range(4):
        page = write("1,", size=1.2, thickness=3, width=120, height=150, seed=seed)
        r = rec.read(page)
        assert r.text == "1", seed
        x, y, w, h = r.digits[0].box
        cols = np.nonzero((page < 140).any(axis=0))[0]
        assert cols[0] - 3 <= x and x + w <= cols[-1] + 3 and h >= 20


@needs_reader
def test_two_numbers_on_two_lines_are_both_read(rec):
    assert rec.read(np.vstack([write("4071"), write("3581")])).text == "4071\n3581"


@needs_reader
def test_canvas_readings_do_not_change(rec):
    drawing = np.full((200, 400), 255, np.uint8)
    cv2.putText(drawing, "71", (60, 150), cv2.FONT_HERSHEY_SIMPLEX, 4, 0, 14, cv2.LINE_AA)
    auto = rec.read(drawing)
    canvas = Recognizer(rec.store, source="canvas").read(drawing)
    assert auto.source == "canvas" and auto.to_dict()["digits"] == canvas.to_dict()["digits"]


@needs_reader
@pytest.mark.skipif(not REGISTERS.is_file(), reason="register scans not present (../shared/data/paper)")
def test_real_register_validation_pages(rec):
    """The first 300 digits-only register validation pages: far above the canvas path's 4%."""
    from study.paper_data import read_registers

    pages = read_registers(REGISTERS, "validation")[:300]
    right = sum(rec.read(g).text == y for _, g, y in pages)
    recorded = json.loads((ROOT / "benchmarks/results/paper.json").read_text())["registers"]["exact"]
    assert right / len(pages) >= min(0.85, recorded - 0.05)


@needs_reader
def test_a_paper_reading_corrected_teaches_the_profile(rec, tmp_path):
    """Corrections of paper readings are stored like canvas ones: each digit's 28x28 input, for the canvas models."""
    from recognizer.profile import Profile

    profile = Profile(tmp_path / "me", rec.store)
    img = write("47")
    reading = rec.read(img)
    assert reading.source == "paper" and len(reading.digits) == 2
    ids = profile.correct_reading(reading, "41", source="cli", image=img)
    assert len(ids) == 2
    stored = profile.db.corrections()
    assert sorted(int(c.label) for c in stored) == [1, 4]
    assert all(c.input.shape == (28, 28) and c.input.max() > 0.5 for c in stored)
