"""The drawn-digit benchmark script end to end on data and a model the test makes (figures are not checked,
the plumbing is: which digits are drawn, the JSON it writes, its errors)."""

import json

import numpy as np
import pytest

from mnist_fakes import fake_arrays, write_npz
from benchmark_module import load_benchmark
from test_recognizer_models import tiny_model


def _bench_drawn():
    return load_benchmark("bench_drawn")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    arrays = fake_arrays(n_test=50)
    arrays["x_train"][:] = 0          # every training digit a thick vertical bar, like a "1"
    arrays["x_train"][:, 4:24, 12:16] = 255
    arrays["x_test"][:] = 0           # blank test digits: nothing to read there
    models = d / "models"
    models.mkdir()
    tiny_model(0).save(models / "cnn.keras")
    return write_npz(d / "mnist.npz", arrays), models, d


@pytest.mark.parametrize("split", ["test", "val"])
def test_bench_drawn_draws_the_digits_of_the_chosen_split(setup, split, capsys):
    npz, models, d = setup
    out = d / f"drawn_{split}.json"
    rc = _bench_drawn().main(["--split", split, "--data", str(npz), "--models-dir", str(models), "--n", "6",
                              "--numbers", "2", "--timing-runs", "2", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["split"] == split and res["n_single"] == 6 and set(res["models"]) == {"cnn"}
    row = res["models"]["cnn"]
    assert f"mnist_{split}_accuracy" in row and 0.0 <= row["drawn_single_accuracy"] <= 1.0
    if split == "test":   # blank test digits: no digit is found on any canvas
        assert res["segmentation_single_ok"] == 0.0 and "(validation split)" not in res["data"]
        assert row["numbers_digit_accuracy"] == 0.0  # no number had its digits counted right
    else:                 # the validation digits (12,000 of the training images) are bars: one digit each
        assert res["segmentation_single_ok"] == 1.0 and res["data"].endswith("(validation split)")
        assert 0.0 <= row["mnist_val_redrawn_accuracy"] <= 1.0 and 0.0 <= row["numbers_digit_accuracy"] <= 1.0
    assert f"MNIST {split} digits" in capsys.readouterr().out


def test_bench_drawn_without_models_says_how_to_train(tmp_path, capsys):
    assert _bench_drawn().main(["--models-dir", str(tmp_path)]) == 1
    assert "python train_all.py" in capsys.readouterr().err


def test_bench_drawn_scores_plain_redrawn_and_number_digits_alike(setup, tmp_path):
    """A model that always answers 3 is right on exactly the 3s, however the digits were drawn: its plain,
    redrawn and per-digit figures are each the share of 3s among the digits they score."""
    import keras
    import numpy as np

    npz, _, _ = setup
    inp = keras.Input((28, 28, 1))
    out = keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(np.eye(10)[3] * 9))(keras.layers.Flatten()(inp))
    models = tmp_path / "models"
    models.mkdir()
    keras.Model(inp, out).save(models / "cnn.keras")
    bench = _bench_drawn()
    rc = bench.main(["--split", "val", "--data", str(npz), "--models-dir", str(models), "--n", "6", "--numbers", "4",
                     "--timing-runs", "1", "--out", str(tmp_path / "r.json")])
    assert rc == 0
    row = json.loads((tmp_path / "r.json").read_text())["models"]["cnn"]
    x, y, _ = bench.load_digits(npz, "val")
    share = float(np.mean(y == 3))
    assert 0.0 < share < 1.0
    assert row["mnist_val_accuracy"] == pytest.approx(share) and row["mnist_val_redrawn_accuracy"] == pytest.approx(share)
    digits = "".join(label for _, label in bench.drawn_numbers(x, y, 4, seed=0))
    assert row["numbers_digit_accuracy"] == pytest.approx(digits.count("3") / len(digits))


# ------------------------------------------------------------------------------------------ bench_adapt
def test_bench_adapt_overrides_the_settings_it_is_told_and_refuses_the_rest(capsys):
    bench = load_benchmark("bench_adapt")
    args = bench.parse_args(["--set", "rank=16", "guard_target=0.97", "subspace=false"])
    assert (args.settings.rank, args.settings.guard_target) == (16, 0.97) and isinstance(args.settings.rank, int)
    assert args.settings.subspace is False and bench.DEFAULT_SETTINGS.subspace is True
    assert args.settings.typical_margin == bench.DEFAULT_SETTINGS.typical_margin  # the rest as shipped
    for bad, said in ((["rank=x"], "not a number"), (["nope=1"], "NAME one of steps"), (["rank"], "NAME=VALUE"),
                      (["subspace=maybe"], "not true or false")):
        with pytest.raises(SystemExit):
            bench.parse_args(["--set", *bad])
        assert said in capsys.readouterr().err


def test_bench_adapt_calibration_error_pools_writers_and_separates_accepted_ones():
    bench = load_benchmark("bench_adapt")
    y = np.array([0, 1, 2, 3])
    sure = np.eye(10, dtype=np.float32)[y]
    wrong_and_sure = np.eye(10, dtype=np.float32)[[0, 1, 2, 4]]
    out = bench.calibration_error([sure[:2], sure[2:]], [sure[:2], wrong_and_sure[2:]], [y[:2], y[2:]],
                                  [{"accepted": False}, {"accepted": True}])
    assert out["shipped"] == 0.0 and out["in_use"] == pytest.approx(0.25)
    assert out["accepted_only"] == pytest.approx(0.5) and out["accepted_only_shipped"] == 0.0


def test_bench_adapt_totals_sum_over_picks_and_name_writers_made_worse():
    bench = load_benchmark("bench_adapt")
    row = dict(digits=50, accepted=True, seconds=0.5, generic_before=0.99)
    rows = [dict(row, writer="cvl:1", seed=0, before=4, after=1, generic_after=0.989),
            dict(row, writer="cvl:1", seed=100, before=2, after=2, generic_after=0.99),
            dict(row, writer="pendigits:2", seed=0, before=1, after=4, generic_after=0.985)]
    s = bench.summarise(rows, ["pendigits", "cvl"])
    assert (s["errors_before"], s["errors_after"], s["fewer"]) == (7, 7, 0.0)
    assert s["writers_worse"] == ["pendigits:2"] and s["picks"] == 3 and s["writers"] == 2
    assert s["generic_drop_max_points"] == pytest.approx(0.5) and s["cvl"]["fewer"] == pytest.approx(0.5)
    assert s["generic_drop_worst"] == {"writer": "pendigits:2", "seed": 0, "points": pytest.approx(0.5)}
    assert s["worse_picks"] == [rows[2]]  # the one pick the text may name, kept with the summary


def test_bench_adapt_session_names_the_writers_made_worse_with_their_counts():
    bench = load_benchmark("bench_adapt")
    rows = [{"writer": "cvl:1", "second_half": 50, "errors_base": 0, "errors_adapted": 2, "corrections": 5},
            {"writer": "cvl:2", "second_half": 200, "errors_base": 3, "errors_adapted": 6, "corrections": 8},
            {"writer": "cvl:3", "second_half": 50, "errors_base": 4, "errors_adapted": 1, "corrections": 4}]
    s = bench.session_summary(rows)
    assert (s["errors_base"], s["errors_adapted"], s["digits"], s["fewer"]) == (7, 9, 300, -0.2857)  # 4 places
    assert s["writers_worse"] == ["cvl:1"] and s["worse_writers"] == [rows[0]]  # 3 more in 200 is under 2%


def test_bench_adapt_out_keeps_the_summaries_and_detail_the_rows(tmp_path):
    bench = load_benchmark("bench_adapt")
    rows = [{"writer": "cvl:1", "before": 1, "after": 0}]
    results = {"model": "cnn", "per_k": {3: {"summary": {"errors_before": 1}, "writers": rows}},
               "session": {"summary": {"errors_base": 4}, "writers": rows}, "session_off": None,
               "mistyped": {"summary": {"picks": 1}, "picks": rows},
               "mislabelled": {"summary": {"sets": 1}, "sets": [{"shown": 1, "taught": 7}]}, "seconds_300": 1.2}
    out, detail = tmp_path / "out.json", tmp_path / "runs" / "detail.json"
    bench.finish(bench.parse_args(["--out", str(out), "--detail", str(detail)]), results)
    assert json.loads(out.read_text()) == {
        "model": "cnn", "per_k": {"3": {"summary": {"errors_before": 1}}}, "session": {"summary": {"errors_base": 4}},
        "session_off": None, "mistyped": {"summary": {"picks": 1}}, "mislabelled": {"summary": {"sets": 1}},
        "seconds_300": 1.2}
    assert json.loads(detail.read_text())["per_k"]["3"]["writers"] == rows
    assert results["per_k"][3]["writers"] == rows  # the results themselves are left whole
    bench.finish(bench.parse_args([]), results)  # neither asked for: nothing written, no error


@pytest.mark.parametrize("name", ["adapt", "adapt_test", "adapt_test_set_aside"])
def test_committed_adapt_results_are_summaries_that_name_the_writers_the_text_quotes(name):
    from benchmark_module import BENCHMARKS

    text = (BENCHMARKS / "results" / f"{name}.json").read_text()
    results = json.loads(text)
    assert len(text.splitlines()) < 300  # thousands of lines with every writer's row (--detail)
    assert all(set(part) == {"summary"} for part in results["per_k"].values())
    assert set(results["session"]) == set(results["mislabelled"]) == {"summary"}
    if name == "adapt_test":  # docs/RESULTS.md names these
        assert results["per_k"]["5"]["summary"]["generic_drop_worst"] == {"writer": "cvl:0324", "seed": 100,
                                                                          "points": 0.513}
        assert [(r["writer"], r["before"], r["after"], r["digits"]) for r in
                results["per_k"]["5"]["summary"]["worse_picks"]] == [("cvl:0403", 0, 2, 58)]
        assert results["session"]["summary"]["worse_writers"][0] == {
            "writer": "cvl:0560", "second_half": 50, "errors_base": 0, "errors_adapted": 2, "corrections": 5}
