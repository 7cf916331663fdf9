"""Real-handwriting data module: each raw format and each kind of bad file, the writer split, the rendering
through the recognizer's own preparation, the cache, and (when present) the real sets' counts."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from study import handwriting as hw
from study import handwriting_formats as fmt
from study import handwriting_render as render
from study.data import DataError
from study.handwriting_formats import HandwritingError

REAL = Path(__file__).resolve().parents[2] / "shared/data/handwriting"


# --------------------------------------------------------------------------------- fake sets
def digit_strokes(label: int, writer: int = 0) -> list:
    """A pen digit the segmenter sees as one piece: an ellipse (a '0'-ish loop) plus a tail; label and writer
    only change the proportions, which is all the plumbing tests need."""
    t = np.linspace(0, 2 * np.pi, 40)
    w = 60 + 8 * label + 3 * writer
    loop = np.stack([200 + w * np.cos(t), 200 + 90 * np.sin(t)], 1)
    tail = np.stack([np.full(10, 200 + w), np.linspace(200, 320, 10)], 1)
    return [np.round(np.concatenate([loop, tail])).astype(int).tolist()]


def write_pendigits(path: Path, writers=range(1, 9)) -> Path:
    lines = [".INCLUDE dene.doc", '.LEXICON "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"', ".HIERARCHY DIGIT", ""]
    n = 0
    for w in writers:
        for d in range(10):
            lines += [f'.SEGMENT DIGIT {n} ? "{d}"', f".COMMENT {d} {w} {n}"]
            for stroke in digit_strokes(d, w):
                lines.append(".PEN_DOWN")
                lines += [f" {x} {500 - y}" for x, y in stroke]  # the file's y grows upwards
                lines.append(".PEN_UP")
            lines.append(".DT 100")
            n += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_uji(path: Path, per_digit: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rawData": {str(d): [digit_strokes(d, i // 2) for i in range(per_digit)]
                                            for d in range(10)}}))
    return path


def write_chars74k(path: Path, per_char: int = 6) -> Path:
    table = {str(d): [digit_strokes(d, i) for i in range(per_char)] for d in range(10)}
    table["A"] = [[[[0, 0], [5, 5]]]] * per_char  # letters are ignored
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table))
    return path


def scan_digit(label: int) -> np.ndarray:
    """A 28x28 'scan': dark ring (and bar) on light paper."""
    img = np.full((28, 28), 240, np.uint8)
    cv2.ellipse(img, (14, 14), (4 + label % 3, 9), 0, 0, 360, 30, 2)
    return img


def write_cvl(path: Path, parts=(("train", (1, 2, 3)), ("valid", (4, 5)), ("test", (6, 7))), names=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for part, writers in parts:
            for w in writers:
                for d in range(10):
                    ok, png = cv2.imencode(".png", scan_digit(d))
                    name = (names or {}).get((part, w, d), f"{part}/{d}-{w:04d}-01-02.png")
                    info = tarfile.TarInfo(name)
                    info.size = len(png)
                    tar.addfile(info, io.BytesIO(png.tobytes()))
    return path


def write_semeion(path: Path, n: int = 20) -> Path:
    rows = []
    for i in range(n):
        pix = np.zeros((16, 16), int)
        pix[2:14, 4:6] = pix[2:14, 10:12] = pix[2:4, 4:12] = pix[12:14, 4:12] = 1
        rows.append(" ".join(map(str, pix.ravel())) + " " + " ".join("1" if k == i % 10 else "0" for k in range(10)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" \r\n".join(rows) + " \r\n")
    return path


def make_root(root: Path, skip=()) -> Path:
    writers = {"pendigits": write_pendigits, "uji": write_uji, "chars74k": write_chars74k, "cvl": write_cvl,
               "semeion": write_semeion}
    for name, write in writers.items():
        if name not in skip:
            write(root / fmt.FILES[name])
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("handwriting"))


# --------------------------------------------------------------------------------- loaders
def test_pendigits_reader_flips_y_and_reads_writers(root):
    samples = fmt.load_pendigits(root / fmt.FILES["pendigits"])
    assert len(samples) == 80 and {s.writer for s in samples} == {f"pendigits:{w}" for w in range(1, 9)}
    assert [s.label for s in samples[:10]] == list(range(10))
    expected = np.array(digit_strokes(3, 1)[0], float)   # written with y' = 500 - y, read back as y
    np.testing.assert_array_equal(samples[3].strokes[0], expected)


def test_uji_and_chars74k_readers(root):
    uji = fmt.load_uji(root / fmt.FILES["uji"])
    assert len(uji) == 80 and sorted({s.writer for s in uji}) == [f"uji:{w}" for w in range(4)]
    assert uji[5].writer == "uji:2" and uji[5].label == 0 and uji[5].strokes[0].shape == (50, 2)
    c74 = fmt.load_chars74k(root / fmt.FILES["chars74k"])
    assert len(c74) == 60 and {s.label for s in c74} == set(range(10))  # the letter A is ignored
    assert c74[7].writer == "chars74k:1" and c74[7].label == 1


def test_scan_readers(root):
    cvl = fmt.load_cvl(root / fmt.FILES["cvl"])
    assert len(cvl) == 70 and cvl[0].image.shape == (28, 28) and cvl[0].image.dtype == np.uint8
    assert {(s.part, s.writer) for s in cvl if s.label == 0} == {
        ("train", "cvl:0001"), ("train", "cvl:0002"), ("train", "cvl:0003"), ("valid", "cvl:0004"),
        ("valid", "cvl:0005"), ("test", "cvl:0006"), ("test", "cvl:0007")}
    np.testing.assert_array_equal(cvl[4].image, scan_digit(4))
    sem = fmt.load_semeion(root / fmt.FILES["semeion"])
    assert len(sem) == 20 and sem[13].label == 3 and sem[13].writer is None
    assert sem[0].image[2, 4] == 0 and sem[0].image[0, 0] == 255  # dark ink on white paper


def _bad(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / Path(fmt.FILES[name]).name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _good_text(tmp_path, name):
    writer = {"pendigits": write_pendigits, "uji": write_uji, "chars74k": write_chars74k,
              "semeion": write_semeion}[name]
    return writer(tmp_path / "good" / name).read_text()


@pytest.mark.parametrize("name,corrupt,message", [
    # truncated
    ("pendigits", lambda t: t[: t.index(".PEN_UP", 2000)], "without .PEN_UP"),
    ("uji", lambda t: t[: len(t) // 2], "not valid JSON"),
    ("chars74k", lambda t: t[:-10], "not valid JSON"),
    ("semeion", lambda t: t[:-40], "expected 266 values"),
    # wrong keys
    ("pendigits", lambda t: t.replace(".PEN_DOWN", ".PEN_DWN", 1), "unknown keyword '.PEN_DWN'"),
    ("uji", lambda t: t.replace('"rawData"', '"raw"'), "no 'rawData' key"),
    ("chars74k", lambda t: t.replace('"7":', '"seven":'), "no samples for digit(s) 7"),
    ("uji", lambda t: t.replace("[[[[", "[[[[1, 2, 3], [", 1), "points must be"),
    # wrong label
    ("pendigits", lambda t: t.replace('? "3"', '? "x"', 1), "label 'x' is not a digit"),
    ("pendigits", lambda t: t.replace(".COMMENT 3 1", ".COMMENT 4 1", 1), "differs from the .SEGMENT label"),
    ("semeion", lambda t: t.replace(" 1 0 0 0 0 0 0 0 0 0 \n", " 1 1 0 0 0 0 0 0 0 0 \n", 1), "one-hot label"),
    # empty
    ("pendigits", lambda t: "", "holds no digits"),
    ("semeion", lambda t: "\n", "holds no digits"),
    ("uji", lambda t: "", "not valid JSON"),
    ("chars74k", lambda t: "{}", "no samples for digit(s) 0"),
])
def test_a_malformed_file_is_rejected_with_the_problem_named(tmp_path, name, corrupt, message):
    path = _bad(tmp_path, name, corrupt(_good_text(tmp_path, name)))
    with pytest.raises(HandwritingError) as err:
        fmt.LOADERS[name](path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert isinstance(err.value, DataError)  # the training entry point reports DataErrors cleanly


@pytest.mark.parametrize("kind", ["truncated", "wrong name", "wrong label", "not a png", "empty"])
def test_a_malformed_cvl_archive_is_rejected(tmp_path, kind):
    path = tmp_path / "cvl.tar.gz"
    if kind == "truncated":
        raw = write_cvl(tmp_path / "full.tar.gz").read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
        message = "unreadable or truncated"
    elif kind in ("wrong name", "wrong label"):
        bad = "train/0001-3-01-02.png" if kind == "wrong name" else "train/x-0001-01-02.png"
        write_cvl(path, names={("train", 1, 3): bad})
        message = f"unexpected member {bad!r}"
    elif kind == "not a png":
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("test/3-0001-01-02.png")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
        message = "not a readable PNG"
    else:
        with tarfile.open(path, "w:gz"):
            pass
        message = "holds no digits"
    with pytest.raises(HandwritingError) as err:
        fmt.load_cvl(path)
    assert message in str(err.value) and str(path) in str(err.value)


# --------------------------------------------------------------------------------- finding
def test_no_folder_given_means_mnist_alone(monkeypatch, caplog):
    monkeypatch.delenv(hw.ENV_VAR, raising=False)
    with caplog.at_level(logging.INFO, logger="study.handwriting"):
        assert hw.load_handwriting() is None
    assert [r.getMessage() for r in caplog.records] == [
        "no real handwriting given (--handwriting DIR or HANDWRITING_PATH): MNIST alone"]


def test_missing_folder_and_folder_without_sets_are_errors(tmp_path, monkeypatch):
    with pytest.raises(HandwritingError, match="does not exist") as err:
        hw.load_handwriting(tmp_path / "nope")
    assert "--handwriting DIR" in str(err.value)
    monkeypatch.setenv(hw.ENV_VAR, str(tmp_path))   # the variable is used, and an empty folder is an error
    with pytest.raises(HandwritingError, match="holds none of the handwriting sets"):
        hw.load_handwriting(cache=tmp_path / "cache")


def test_a_missing_set_is_skipped_with_one_log_line(tmp_path, caplog):
    root = make_root(tmp_path / "hw", skip=("pendigits", "uji", "chars74k", "cvl"))
    with caplog.at_level(logging.INFO, logger="study.handwriting"):
        data = hw.load_handwriting(root, cache=tmp_path / "cache")
    skipped = [r.getMessage() for r in caplog.records if "not found" in r.getMessage()]
    assert len(skipped) == 4 and any(m.startswith("handwriting: cvl not found") for m in skipped)
    assert data.describe()["sets"] == ["semeion"] and data.describe()["missing"] == ["pendigits", "uji",
                                                                                     "chars74k", "cvl"]
    assert len(data.train) == 20 and len(data.val) == len(data.test) == 0


# --------------------------------------------------------------------------------- split
def _all_sides(root):
    return {name: (s := fmt.LOADERS[name](root / fmt.FILES[name]), hw.split_sides(name, s)) for name in fmt.FILES}


def test_writer_split_has_no_writer_on_both_sides_and_is_stable(root):
    per_set = _all_sides(root)
    for name, (samples, sides) in per_set.items():
        by_side = {side: {samples[i].writer for i in np.nonzero(sides == side)[0]} for side in hw.SIDES}
        assert not (by_side["train"] & by_side["val"]) and not (by_side["train"] & by_side["test"])
        assert not (by_side["val"] & by_side["test"])
        np.testing.assert_array_equal(sides, hw.split_sides(name, samples))  # stable across calls
    pen = per_set["pendigits"]
    val_writers = {pen[0][i].writer for i in np.nonzero(pen[1] == "val")[0]}
    assert len(val_writers) == 2  # a quarter of 8 writers
    assert set(per_set["semeion"][1]) == {"train"}
    cvl_samples, cvl_sides = per_set["cvl"]
    by_part = {part: {(s.writer, side) for s, side in zip(cvl_samples, cvl_sides) if s.part == part}
               for part in ("train", "valid", "test")}
    assert {side for _, side in by_part["train"]} == {"train"} and {side for _, side in by_part["test"]} == {"test"}
    assert sorted(side for _, side in by_part["valid"]) == ["train", "val"]  # half of CVL's 2 `valid` writers
    assert hw.split_checksum(per_set) == hw.split_checksum(_all_sides(root))


def test_split_checksum_changes_when_the_data_changes(root):
    per_set = _all_sides(root)
    base = hw.split_checksum(per_set)
    samples, sides = per_set["uji"]
    samples[0].label = 9                                 # one label
    assert hw.split_checksum(per_set) != base
    samples[0].label = 0
    assert hw.split_checksum(per_set) == base
    moved = sides.copy()
    moved[samples.index(next(s for s in samples if s.writer == "uji:0"))] = "val"  # one digit to the other side
    assert hw.split_checksum({**per_set, "uji": (samples, moved)}) != base


def test_pen_split_holds_out_about_a_quarter_of_writers_for_many_writers():
    samples = [fmt.Sample(label=d, writer=f"x:{w}", strokes=[]) for w in range(60) for d in range(10)]
    sides = hw.split_sides("uji", samples)
    val = {s.writer for s, side in zip(samples, sides) if side == "val"}
    assert len(val) == 15
    assert sides.tolist() == hw.split_sides("uji", samples).tolist()
    assert {s.writer for s, side in zip(samples, sides) if side == "val"} != {
        s.writer for s, side in zip(samples, hw.split_sides("chars74k", samples)) if side == "val"}  # per set


def test_cvl_validation_writers_are_half_of_its_valid_writers_and_never_its_train_writers():
    samples = [fmt.Sample(label=d, writer=f"cvl:{w:04d}", image=None, part=part)
               for part, writers in (("train", range(0, 67)), ("valid", range(67, 127)), ("test", range(127, 140)))
               for w in writers for d in range(10)]
    sides = hw.split_sides("cvl", samples)
    val = {s.writer for s, side in zip(samples, sides) if side == "val"}
    assert len(val) == 30 and all(67 <= int(w[4:]) < 127 for w in val)
    trained_valid = {s.writer for s, side in zip(samples, sides) if side == "train" and s.part == "valid"}
    assert len(trained_valid) == 30 and not (trained_valid & val)
    assert all(side == "test" for s, side in zip(samples, sides) if s.part == "test")
    assert sides.tolist() == hw.split_sides("cvl", samples).tolist()


# --------------------------------------------------------------------------------- rendering
def test_brush_render_is_what_the_app_draws():
    from gui.drawing import Drawing

    from common import brush

    strokes = [[(10, 10), (50, 60.5), (90, 20)], [(30, 80)]]
    d = Drawing(120, 100)
    for pts, w in zip(strokes, (9, 14)):
        d.begin(*pts[0], w)
        for p in pts[1:]:
            d.extend(*p)
    img = np.asarray(brush.render(strokes, (120, 100), (9, 14)))
    np.testing.assert_array_equal(img, d.array())
    assert img.min() == 0 and img.max() == 255


def test_a_pen_digit_goes_through_exactly_recognizer_prepare():
    from recognizer.pipeline import Recognizer

    strokes = [np.array(s, float) for s in digit_strokes(4)]
    canvas = render.pen_canvas(strokes, np.random.default_rng(5))
    assert canvas.shape == (480, 640) and canvas.dtype == np.uint8
    ys, xs = np.nonzero(canvas < 128)
    assert 0.40 * 480 - 2 <= ys.max() - ys.min() + 1 <= 0.75 * 480 + 2  # digit height in the app's range
    x, n = render.prepare(canvas)
    assert n == 1
    expected = Recognizer(store=None).prepare(canvas).batch[0, :, :, 0]
    np.testing.assert_array_equal(x, expected)


def test_renderings_vary_brush_size_and_position_but_are_seeded():
    strokes = [np.array(s, float) for s in digit_strokes(2)]
    a = render.pen_canvas(strokes, np.random.default_rng(1))
    b = render.pen_canvas(strokes, np.random.default_rng(1))
    c = render.pen_canvas(strokes, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_number_canvas_holds_every_digit_on_one_line():
    from recognizer.pipeline import Recognizer

    digits = [[np.array(s, float) for s in digit_strokes(d)] for d in (1, 5, 7, 2, 0, 3, 8, 9)]
    canvas = render.number_canvas(digits, np.random.default_rng(3))
    assert canvas.shape[0] == 480 and canvas.shape[1] >= 640
    prep = Recognizer(store=None).prepare(canvas)
    assert len(prep.boxes) == 8 and set(prep.lines) == {0}
    xs = [b[0] for b in prep.boxes]
    assert xs == sorted(xs)


# --------------------------------------------------------------------------------- building and cache
def test_load_handwriting_builds_splits_and_caches(root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    data = hw.load_handwriting(root, cache=cache)
    d = data.describe()
    assert d["sets"] == sorted(fmt.FILES) and d["missing"] == []
    per = d["per_set"]
    # pen training writers are rendered TRAIN_RENDERS times, validation writers once
    assert per["pendigits"]["train_digits"] == 60 and per["pendigits"]["val_digits"] == 20
    assert per["pendigits"]["train"] + sum(per["pendigits"]["dropped"]["train"].values()) == 60 * hw.TRAIN_RENDERS
    assert per["pendigits"]["val"] + sum(per["pendigits"]["dropped"]["val"].values()) == 20
    assert per["cvl"]["train"] + sum(per["cvl"]["dropped"]["train"].values()) == 40  # train + half of valid
    assert per["cvl"]["train_writers"] == 4 and per["cvl"]["val_writers"] == 1
    assert per["cvl"]["test_writers"] == 2 and per["semeion"]["val"] == 0
    for side in (data.train, data.val, data.test):
        assert side.x.dtype == np.float32 and side.x.shape[1:] == (28, 28, 1) and side.y.dtype == np.uint8
        assert 0.0 <= side.x.min() and side.x.max() <= 1.0 and len(side.writer) == len(side.set) == len(side)
    assert set(data.test.set) == {"cvl"} and "semeion" not in set(data.val.set)
    assert not set(data.train.writer) & set(data.val.writer)
    assert sum(len(x) for x in (data.train, data.val, data.test)) > 0.9 * (
        3 * 60 + 20 + 3 * 60 + 20 + 3 * 45 + 15 + 70 + 20)  # few drops on these clean digits
    assert not any(v["cached"] for v in data.sets.values())

    def no_parsing(path):
        raise AssertionError(f"{path} parsed although cached")

    for name in fmt.LOADERS:
        monkeypatch.setitem(fmt.LOADERS, name, no_parsing)
    again = hw.load_handwriting(root, cache=cache)
    assert all(v["cached"] for v in again.sets.values()) and again.checksum == data.checksum
    assert again.describe() == data.describe()
    np.testing.assert_array_equal(again.train.x, data.train.x)
    np.testing.assert_array_equal(again.val.writer, data.val.writer)
    assert len(list(cache.glob("*.npz"))) == 5


def test_cached_images_are_exactly_what_prepare_gives(root, tmp_path):
    samples = fmt.load_uji(root / fmt.FILES["uji"])
    sides = hw.split_sides("uji", samples)
    built = hw.build_set("uji", samples, sides, renders=2)
    j = 0  # the first job: sample 0, first rendering, with the seed build_set documents
    i = int(built["source_index"][j])
    rng = np.random.default_rng([hw.RENDER_SEED, list(fmt.FILES).index("uji"), i,
                                 0 if sides[i] == "train" else 1000])
    x, n = render.prepare(render.pen_canvas(samples[i].strokes, rng))
    np.testing.assert_array_equal(built["x"][j].astype(np.float32) / 255.0, x)  # uint8 storage is lossless
    assert (built["side"] == "train").sum() <= 2 * (sides == "train").sum()


def test_a_damaged_cache_file_is_rebuilt(tmp_path, caplog):
    root = make_root(tmp_path / "hw", skip=("pendigits", "cvl", "chars74k", "uji"))
    cache = tmp_path / "cache"
    first = hw.load_handwriting(root, cache=cache)
    (f,) = cache.glob("semeion-*.npz")
    f.write_bytes(f.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="study.handwriting"):
        second = hw.load_handwriting(root, cache=cache)
    assert "unreadable" in caplog.text and not second.sets["semeion"]["cached"]
    np.testing.assert_array_equal(second.train.x, first.train.x)


def test_a_changed_raw_file_rebuilds_its_set_only(tmp_path):
    root = make_root(tmp_path / "hw", skip=("pendigits", "cvl", "chars74k"))
    cache = tmp_path / "cache"
    first = hw.load_handwriting(root, cache=cache)
    write_semeion(root / fmt.FILES["semeion"], n=30)
    second = hw.load_handwriting(root, cache=cache)
    assert second.sets["uji"]["cached"] and not second.sets["semeion"]["cached"]
    assert second.sets["semeion"]["train"] == 30 and second.checksum != first.checksum
    assert len(list(cache.glob("semeion-*.npz"))) == 1  # the stale file went


# --------------------------------------------------------------------------------- the real sets
@pytest.mark.skipif(not REAL.is_dir(), reason=f"real handwriting not found at {REAL}")
@pytest.mark.parametrize("name,digits,writers", [
    ("pendigits", 7494, 30), ("uji", 1200, 60), ("chars74k", 550, 55), ("cvl", 35780, 303), ("semeion", 1593, 0)])
def test_real_sets_match_source_md(name, digits, writers):
    samples = fmt.LOADERS[name](REAL / fmt.FILES[name])
    assert len(samples) == digits and len({s.writer for s in samples if s.writer}) == writers
    sides = hw.split_sides(name, samples)
    by_side = {side: {samples[i].writer for i in np.nonzero(sides == side)[0]} for side in hw.SIDES}
    assert not (by_side["train"] & by_side["val"]) and not (by_side["train"] & by_side["test"])
    if name == "cvl":
        counts = {side: int((sides == side).sum()) for side in hw.SIDES}
        assert counts == {"train": 10368, "val": 3632, "test": 21780}  # CVL train + half of valid / the other half
        assert [len(by_side[s]) for s in hw.SIDES] == [97, 30, 176]
        assert all(samples[i].part == "valid" for i in np.nonzero(sides == "val")[0])
    elif name in fmt.PEN_SETS:
        assert len(by_side["val"]) == round(0.25 * writers) and not by_side["test"]


def test_no_handwriting_data_in_the_repository():
    """The sets' licences and the project's size budget: neither the raw files nor arrays made from them."""
    import re
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                           text=True).stdout.split()
    assert len(files) > 20
    pattern = r"(pendigits-orig|ujipenchars2\.json|char74k\.json|cvl-single-digits|semeion\.data|" \
              r"(pendigits|uji|chars74k|cvl|semeion)-[0-9a-f]{20}\.npz)"
    assert not [f for f in files if re.search(pattern, f, re.I)]


def test_command_line_builds_the_cache_and_prints_the_description(root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(hw.ENV_VAR, raising=False)
    assert hw.main([str(root), "--cache", str(tmp_path / "c")]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["sets"] == sorted(fmt.FILES) and len(list((tmp_path / "c").glob("*.npz"))) == 5
    assert hw.main([str(tmp_path / "missing")]) == 1 and "does not exist" in capsys.readouterr().out
    assert hw.main([]) == 1  # nothing given: nothing to build


def test_cache_key_covers_every_file_that_decides_the_pixels():
    root = Path(hw.__file__).resolve().parent.parent
    assert all((root / f).is_file() for f in hw._CODE_FILES)
    readers = {f"recognizer/{p.name}" for p in (root / "recognizer").glob("*.py")}
    not_pixels = {"recognizer/__init__.py", "recognizer/errors.py", "recognizer/learner.py", "recognizer/models.py",
                  "recognizer/threshold.py",
                  "recognizer/pipeline.py", "recognizer/head.py", "recognizer/adapt.py", "recognizer/profile_store.py",
                  "recognizer/profile.py", "recognizer/calibration.py",
                  # the paper path: its training strips are keyed on its own code (study/paper_data.py)
                  "recognizer/paper.py", "recognizer/paper_reader.py", "recognizer/string_reader.py"}
    assert readers - not_pixels <= set(hw._CODE_FILES)


def test_prepared_digits_do_not_depend_on_opencv_threads():
    """Issue 39: the validation checksum differed between two machines. Thread counts are what differs first
    between machines; the same strokes and scans must give the same pixels with 1 or 4 OpenCV threads."""
    import cv2

    def prepared():
        out = []
        for label in range(10):
            strokes = [np.array(s, float) for s in digit_strokes(label, writer=label % 3)]
            out.append(render.prepare(render.pen_canvas(strokes, np.random.default_rng(label)))[0])
            out.append(render.prepare(render.scan_image(scan_digit(label), "cvl"))[0])
        return [x for x in out if x is not None]

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = prepared()
        cv2.setNumThreads(4)
        four = prepared()
    finally:
        cv2.setNumThreads(before)
    assert len(one) == len(four) >= 15
    for a, b in zip(one, four, strict=True):
        np.testing.assert_array_equal(a, b)
