"""The real-handwriting benchmark end to end on handwriting and models the test makes: which digits it reads
(validation writers only, one writer per number), the figures of a model whose answer is known, the JSON,
the grid, the threshold choice and its errors."""

import json

import numpy as np
import pytest

from recognizer import DEFAULT_THRESHOLD
from test_handwriting import make_root
from benchmark_module import load_benchmark
from test_recognizer_models import tiny_model


def _bench():
    return load_benchmark("bench_handwriting")


def constant_model(digit: int):
    """A model that answers `digit` with ~99.9% confidence whatever it is shown."""
    import keras

    inp = keras.Input((28, 28, 1))
    out = keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(np.eye(10)[digit] * 9))(
        keras.layers.Flatten()(inp))
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_hand")
    root = make_root(d / "hw")
    models = d / "models"
    models.mkdir()
    constant_model(3).save(models / "cnn.keras")
    tiny_model(1).save(models / "ann.keras")
    return root, models, d


def test_pool_holds_only_validation_writers_of_pen_sets(setup):
    from study.handwriting import split_sides
    from study.handwriting_formats import FILES, LOADERS

    root, _, _ = setup
    bench = _bench()
    pool = bench.validation_pool(root)
    assert {name for name, _ in pool} == {"pendigits", "uji", "chars74k"}
    for name in ("pendigits", "uji", "chars74k"):
        samples = LOADERS[name](root / FILES[name])
        val = {s.writer for s, side in zip(samples, split_sides(name, samples)) if side == "val"}
        assert {s.writer for n, s in pool if n == name} == val
    numbers = list(bench.number_items(pool, 6, seed=2))
    assert all(3 <= len(label) <= 8 for _, label, _ in numbers)
    writers = {s.writer: s for _, s in pool}
    assert all(w in writers for _, _, w in numbers)
    again = list(bench.number_items(pool, 6, seed=2))
    assert [x[1] for x in again] == [x[1] for x in numbers]
    np.testing.assert_array_equal(again[0][0], numbers[0][0])  # seeded canvases


def test_figures_of_a_model_that_always_answers_3(setup, tmp_path, capsys):
    root, models, _ = setup
    bench = _bench()
    out, grid = tmp_path / "r.json", tmp_path / "grid.png"
    rc = bench.main(["--handwriting", str(root), "--models-dir", str(models), "--models", "cnn", "--n", "12",
                     "--numbers", "5", "--cvl-test", "--grid", str(grid), "--choose-threshold", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    pool = bench.validation_pool(root)
    labels = [y for _, y, _ in bench.single_items(pool, 12, seed=0)]
    numbers = [y for _, y, _ in bench.number_items(pool, 5, seed=0)]
    row = res["models"]["cnn"]
    assert res["segmentation_single_ok"] == 1.0 and res["segmentation_numbers_ok"] == 1.0
    assert row["single_accuracy"] == pytest.approx(labels.count(3) / 12)
    assert row["single_text_accuracy"] == row["single_accuracy"]     # confident: '?' hides nothing
    assert row["single_right_but_hidden_by_threshold"] == 0
    digits = "".join(numbers)
    assert row["numbers_digit_accuracy"] == pytest.approx(digits.count("3") / len(digits))
    assert row["numbers_exact_text"] == pytest.approx(sum(set(y) == {"3"} for y in numbers) / 5)
    wrong = [y for y in labels if y != 3]
    cm = np.array(row["confusion_matrix"])   # rows: true digit, columns: what was read
    assert cm.sum() == 12 + len(digits) and cm[:, 3].sum() == cm.sum()
    assert cm[3, 3] == labels.count(3) + digits.count("3")
    assert all(pair.endswith("->3") for pair, _ in row["worst_confusions"])
    assert row["worst_confusions"][0][1] == max(cm[t, 3] for t in range(10) if t != 3)
    # CVL test writers (2 in the fake set, 10 digits each) read through the scan path
    cvl = res["cvl_test"]
    assert cvl["digits"] == 20 and cvl["writers"] == 2
    assert cvl["one_segment"] == 1.0 and cvl["models"]["cnn"]["accuracy"] == pytest.approx(2 / 20)  # the two 3s
    # every answer is ~99.9% sure: no threshold up to 0.95 changes a text, so the sweep keeps the current one
    choice = row["threshold_choice"]
    assert choice["threshold"] == DEFAULT_THRESHOLD and choice["numbers_exact_text"] == row["numbers_exact_text"]
    import cv2

    img = cv2.imread(str(grid))
    assert img is not None and img.shape[0] == 96 * int(np.ceil(len(wrong) / 10)) and img.shape[1] == 960
    text = capsys.readouterr().out
    assert "real-handwriting benchmark: 12 single digits and 5 numbers" in text and "CVL test: 20 scans" in text
    # the per-class view: every digit not a 3 is wrong; against an earlier run (itself) the figures repeat
    per = row["per_class"]
    assert per["3"]["wrong"] == 0 and per["3"]["n"] == cm[3].sum()
    assert all(per[str(t)]["wrong"] == per[str(t)]["n"] == cm[t].sum() for t in range(10) if t != 3)
    assert bench.main(["--handwriting", str(root), "--models-dir", str(models), "--models", "cnn", "--n", "12",
                       "--numbers", "5", "--before", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"0: {per['0']['wrong']} / {per['0']['wrong']} of {per['0']['n']}" in text
    assert "slashed 0" in text and "8->0 0 (was 0)" in text


def test_threshold_hides_right_answers_and_the_sweep_finds_it():
    bench = _bench()
    t = bench.Tally()
    # two numbers, right by argmax; one has a digit at 0.45 confidence, which '?' at 0.5 hides
    t.numbers = [("12", [(0, 1, 0.9), (0, 2, 0.45)]), ("34", [(0, 3, 0.9), (0, 4, 0.8)])]
    t.single = [(5, [(0, 5, 0.45)], "uji"), (6, [(0, 0, 0.7)], "uji")]
    s = t.scores(0.5)
    assert s["numbers_exact_argmax"] == 1.0 and s["numbers_exact_text"] == 0.5
    assert s["numbers_right_but_hidden_by_threshold"] == 1 and s["single_right_but_hidden_by_threshold"] == 1
    assert s["single_accuracy"] == 0.5 and s["single_text_accuracy"] == 0.0
    choice = t.best_threshold(0.5)
    assert choice["threshold"] == 0.45 and choice["numbers_exact_text"] == 1.0  # highest that keeps both right
    assert choice["single_text_accuracy"] == 0.5


def test_default_model_is_marked_and_compared(setup, tmp_path, capsys):
    root, models, _ = setup
    out = tmp_path / "r.json"
    assert _bench().main(["--handwriting", str(root), "--models-dir", str(models), "--n", "4", "--numbers", "2",
                          "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["models"]) == {"ann", "cnn"}  # no vgg16, so no ensemble
    assert res["default_model"] == "cnn" and res["default"]["model"] == "cnn"  # no metrics.json: cnn first
    assert res["default"]["single_accuracy"] == res["models"]["cnn"]["single_accuracy"]
    assert "cvl_test" not in res
    assert f"{res['default_model']}*" in capsys.readouterr().out


def test_errors_are_clear(setup, tmp_path, capsys):
    root, models, _ = setup
    bench = _bench()
    assert bench.main(["--models-dir", str(tmp_path)]) == 1
    assert "python train_all.py" in capsys.readouterr().err
    assert bench.main(["--handwriting", str(tmp_path / "none"), "--models-dir", str(models)]) == 1
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert bench.main(["--handwriting", str(empty), "--models-dir", str(models)]) == 1
    assert "holds none of the pen sets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--threshold", "2"])
