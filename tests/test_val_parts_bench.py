"""benchmarks/bench_val_parts.py: the validation split into MNIST / pen writers / CVL writers, on made-up answers."""

import json

import numpy as np

from benchmark_module import load_benchmark


def test_summary_splits_the_validation_by_source_and_counts_the_convention_confusions(tmp_path):
    bench = load_benchmark("bench_val_parts")
    y = np.array([0, 0, 1, 8, 9, 9, 0, 1])
    source = np.array(["mnist", "mnist", "pen", "pen", "cvl", "cvl", "cvl", "cvl"])
    pred = np.array([0, 8, 1, 0, 7, 9, 8, 7])  # mnist 1/2, pen 1/2 (8->0), cvl 1/4 (9->7, 0->8, 1->7)
    (tmp_path / "metrics.json").write_text(json.dumps({"models": {"cnn": {
        "steps": 10, "epochs": 0.5, "test_accuracy": 0.99, "val_checksum": "abc",
        "promotion": {"better": 3, "worse": 1, "p_better": 0.31, "promote": False, "blocking_classes": []}}}}))
    s = bench.summary(tmp_path, "cnn", y, pred, source, "abc")
    assert (s["validation"], s["mnist"], s["pen"], s["cvl"]) == (3 / 8, 0.5, 0.5, 0.25)
    assert (s["cvl 0->8"], s["cvl 1->7"], s["cvl 9->7"], s["cvl 9->4"], s["all 8->0"]) == (1, 1, 1, 0, 1)
    assert s["wrong_per_digit"] == [2, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    line = bench.row(s)
    assert "| 10 / 0.50 | 37.50% | 50.00% | 50.00% | 25.00% | 1 | 1 | 1 / 0 | 1 | 99.00% | +3 / -1, p = 0.31 |" in line
