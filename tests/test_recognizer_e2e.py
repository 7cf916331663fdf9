"""End to end: a small model trained here on real MNIST reads drawn canvases; the recognize.py CLI."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from common import atomic
from recognizer import DEFAULT_THRESHOLD, ModelStore, Reading, Recognizer
from study.drawn import drawn_numbers, drawn_singles, number_canvas
from mnist_fakes import REAL_MNIST as MNIST

ROOT = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(not MNIST.is_file(), reason=f"real MNIST not found at {MNIST}")


@pytest.fixture(scope="module")
def mnist():
    if not MNIST.is_file():
        pytest.skip(f"real MNIST not found at {MNIST}")
    d = np.load(MNIST)
    return {k: d[k] for k in ("x_train", "y_train", "x_test", "y_test")}


@pytest.fixture(scope="module")
def models_dir(mnist, tmp_path_factory):
    """A small CNN trained on 6000 MNIST training images (a few seconds), saved as cnn.keras."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    x = mnist["x_train"][:6000, :, :, None].astype("float32") / 255.0
    y = mnist["y_train"][:6000]
    m = keras.Sequential([keras.Input((28, 28, 1)),
                          layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                          layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
                          layers.Flatten(), layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=64, epochs=5, verbose=0)
    d = tmp_path_factory.mktemp("models")
    atomic.save_model(m, d / "cnn.keras")  # as train_all saves: no optimizer state
    return d


@pytest.fixture(scope="module")
def rec(models_dir):
    return Recognizer(ModelStore(models_dir))


@needs_mnist
def test_drawn_digits_read_nearly_as_well_as_mnist(rec, mnist):
    x, y = mnist["x_test"][:2000], mnist["y_test"][:2000]
    p = rec.store.predict("cnn", x[:, :, :, None].astype(np.float32) / 255.0)
    mnist_acc = float((p.argmax(1) == y).mean())
    singles = list(drawn_singles(x, y, 120, seed=3))
    readings = [rec.read(c) for c, _ in singles]
    assert all(r.model == "cnn" for r in readings)
    found_one = np.mean([len(r.digits) == 1 for r in readings])
    acc = np.mean([len(r.digits) == 1 and r.digits[0].digit == lab for r, (_, lab) in zip(readings, singles)])
    assert mnist_acc >= 0.92                       # the small test model (measured 0.938)
    assert found_one >= 0.97                       # one digit found on a single-digit canvas (measured 1.0)
    assert acc >= max(0.85, mnist_acc - 0.09), (acc, mnist_acc)  # measured 0.875 (a weak model widens the gap)
    numbers = list(drawn_numbers(x, y, 12, seed=3))
    got = [rec.read(c) for c, _ in numbers]
    assert np.mean([len(r.digits) == len(lab) for r, (_, lab) in zip(got, numbers)]) >= 11 / 12
    pairs = [(str(d.digit), c) for r, (_, lab) in zip(got, numbers) if len(r.digits) == len(lab)
             for d, c in zip(r.digits, lab)]
    assert np.mean([a == b for a, b in pairs]) >= 0.8  # per digit inside numbers (smaller, bolder digits)
    r = got[0]
    assert [d.line for d in r.digits] == [0] * len(r.digits) and "\n" not in r.text
    xs = [d.box[0] for d in r.digits]
    assert xs == sorted(xs)


@needs_mnist
def test_reading_fields_boxes_and_threshold(rec, mnist):
    rng = np.random.default_rng(0)
    canvas, boxes = number_canvas([mnist["x_test"][i] for i in (0, 1, 2)], rng)
    big = cv2.resize(canvas, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)  # scaled down inside
    r = rec.read(big)
    assert isinstance(r, Reading) and len(r.digits) == 3 and r.ms > 0
    for d, (bx, by, bw, bh) in zip(r.digits, boxes):
        x, y, w, h = d.box  # in input pixels: 5x the drawing's boxes
        assert abs(x - 5 * bx) <= 25 and abs(y - 5 * by) <= 25 and abs(w - 5 * bw) <= 40 and abs(h - 5 * bh) <= 40
        assert d.probabilities.shape == (10,) and abs(float(d.probabilities.sum()) - 1) < 1e-4
        assert d.top3[0] == (d.digit, d.confidence) and d.top3[0][1] >= d.top3[1][1] >= d.top3[2][1]
        assert d.label == ("?" if d.uncertain else str(d.digit))
    strict = Recognizer(rec.store, threshold=1.0).read(canvas)
    assert strict.text == "???" and all(d.uncertain for d in strict.digits)
    two_lines = np.vstack([canvas, canvas])
    assert rec.read(two_lines).text.count("\n") == 1


@needs_mnist
@pytest.mark.parametrize("bw", [6, 20])
def test_known_hard_cases(rec, bw):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_recognizer_segment import canvas, draw_4_two_strokes, draw_5_detached_bar, draw_7, line

    img = canvas(1280, 480)
    line(img, [(120, 80), (120, 400)], bw)
    line(img, [(120, 80), (75, 135)], bw)                       # 1 with a flag ...
    line(img, [(70, 400), (170, 400)], bw)                      # ... and a base
    draw_7(img, 260, 80, 320, bw)
    line(img, [(270, 240), (370, 240)], bw)                     # 7 with a crossbar
    draw_4_two_strokes(img, 520, 80, 320, bw)                   # 4 in two strokes that do not touch
    draw_5_detached_bar(img, 800, 80, 320, bw)                  # 5 with a separate top bar
    line(img, [(1150, 80), (1150, 400)], bw)                    # plain 1
    assert rec.read(img).text == "17451"
    corner = canvas(2400, 1800)                                 # small digits in a corner of a big canvas
    draw_7(corner, 2250, 1680, 80, max(4, bw // 3))
    line(corner, [(2200, 1680), (2200, 1760)], max(4, bw // 3))
    r = rec.read(corner)
    assert r.text == "17" and r.digits[1].box[0] >= 2240


def fake_photo(canvas, rng):
    """Dark ink on paper under uneven light, slightly blurred, noisy, JPEG-compressed."""
    h, w = canvas.shape
    yy, xx = np.mgrid[:h, :w]
    light = 110 + 120 * (xx / w) * rng.uniform(0.5, 1) + 30 * (yy / h)
    p = light * (1 - 0.7 * (255 - canvas) / 255.0)
    p = np.clip(cv2.GaussianBlur(p, (3, 3), 0) + rng.normal(0, 4, (h, w)), 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", p, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_GRAYSCALE)


@needs_mnist
def test_photo_reads_like_the_clean_canvas(rec, mnist):
    from recognizer.images import to_ink

    rng = np.random.default_rng(4)
    same = 0
    for canvas, lab in drawn_numbers(mnist["x_test"], mnist["y_test"], 6, seed=9):
        photo = fake_photo(canvas, rng)
        assert to_ink(photo).photo  # took the adaptive (uneven light) path
        a, b = rec.read(photo), rec.read(canvas)
        assert len(a.digits) == len(lab)
        same += a.text == b.text
    assert same >= 5


def test_blank_image_is_an_empty_reading(rec):
    for img in (np.full((480, 640), 255, np.uint8), np.zeros((480, 640, 3), np.uint8), np.full((1, 1), 9, np.uint8)):
        r = rec.read(img)
        assert r.text == "" and r.digits == [] and r.model == "cnn"


def test_read_models_one_segmentation(models_dir, mnist, tmp_path):
    for n in ("ann", "vgg16"):
        (tmp_path / f"{n}.keras").write_bytes((models_dir / "cnn.keras").read_bytes())
    (tmp_path / "cnn.keras").write_bytes((models_dir / "cnn.keras").read_bytes())
    rec3 = Recognizer(ModelStore(tmp_path))
    canvas, _ = number_canvas([mnist["x_test"][i] for i in (3, 4)], np.random.default_rng(1))
    out = rec3.read_models(canvas, ["cnn", "ann", "ensemble"])
    assert set(out) == {"cnn", "ann", "ensemble"}
    assert out["cnn"].text == out["ensemble"].text and len(out["cnn"].digits) == 2
    assert [d.box for d in out["ann"].digits] == [d.box for d in out["cnn"].digits]
    assert np.allclose(out["ensemble"].digits[0].probabilities, out["cnn"].digits[0].probabilities, atol=1e-5)


# ------------------------------------------------------------------------------------------------ CLI
def run_cli(argv, capsys):
    sys.path.insert(0, str(ROOT))
    import recognize

    code = recognize.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@needs_mnist
def test_cli_json_folders_bad_files_and_annotate(models_dir, mnist, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(2)
    canvas, _ = number_canvas([mnist["x_test"][i] for i in (5, 6, 7, 8)], rng)
    cv2.imwrite(str(imgs / "a_number.png"), canvas)
    cv2.imwrite(str(imgs / "b_blank.jpg"), np.full((100, 120, 3), 255, np.uint8))
    (imgs / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (imgs / "notes.txt").write_text("not an image, not picked up from a folder")
    ann = tmp_path / "ann"
    code, out, err = run_cli([str(imgs), str(tmp_path / "missing.png"), "--json", "--models-dir", str(models_dir),
                              "--annotate", str(ann)], capsys)
    assert code == 1
    lines = [json.loads(s) for s in out.strip().splitlines()]
    assert [Path(o["image"]).name for o in lines] == ["a_number.png", "b_blank.jpg"]
    a, b = lines
    assert set(a) == {"image", "text", "digits", "model", "ms", "adapted", "source"} and a["model"] == "cnn"
    assert a["ms"] > 0 and a["source"] == "canvas"
    assert len(a["digits"]) == 4 and len(a["text"]) == 4
    for d in a["digits"]:  # Reading.to_dict's digits: the same fields as the API (one home for the shape)
        assert set(d) == {"digit", "confidence", "box", "top3", "uncertain", "line"}
        assert len(d["box"]) == 4 and len(d["top3"]) == 3 and d["top3"][0][0] == d["digit"]
        assert d["line"] == 0 and d["uncertain"] == (d["confidence"] < DEFAULT_THRESHOLD)
    assert b["text"] == "" and b["digits"] == []
    errs = err.strip().splitlines()
    assert len(errs) == 2 and "c_broken.png" in errs[0] and "missing.png" in errs[1]
    assert all(e.startswith("error: ") for e in errs)
    assert sorted(p.name for p in ann.iterdir()) == ["a_number.png", "b_blank.png"]
    assert cv2.imread(str(ann / "a_number.png")).shape == canvas.shape + (3,)
    code, out, err = run_cli([str(imgs / "a_number.png"), "--models-dir", str(models_dir)], capsys)
    assert code == 0 and out.startswith(str(imgs / "a_number.png") + ": ") and err == ""


@needs_mnist
def test_cli_user_errors_are_messages_not_tracebacks(models_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    code, out, err = run_cli([str(empty), str(notes), str(tmp_path / "gone.png"), "--models-dir", str(models_dir)],
                             capsys)
    assert code == 1 and out == ""
    errs = err.strip().splitlines()
    assert errs == [f"error: {empty}: folder contains no PNG/JPEG/BMP images",
                    f"error: {notes}: not an image file (or a format Pillow cannot read)",
                    f"error: {tmp_path / 'gone.png'}: no such file or folder"]
    with pytest.raises(SystemExit) as exc:  # --annotate naming a file is a usage error (exit 2), found up front
        run_cli([str(notes), "--annotate", str(notes), "--models-dir", str(models_dir)], capsys)
    assert exc.value.code == 2 and "--annotate" in capsys.readouterr().err


def test_cli_missing_model_and_help(tmp_path, capsys):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.full((50, 50), 255, np.uint8))
    code, out, err = run_cli([str(img), "--model", "vgg16", "--models-dir", str(tmp_path)], capsys)
    assert code == 1 and "train it with: python train_all.py --models vgg16" in err
    p = subprocess.run([sys.executable, str(ROOT / "recognize.py"), "--help"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "--annotate" in p.stdout and "examples:" in p.stdout
