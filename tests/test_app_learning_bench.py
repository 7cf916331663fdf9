"""benchmarks/bench_app_learning.py without the app: its arguments and how it sums up the repeats (the app under
Xvfb is the benchmark's own run, minutes long; the GUI tests drive the same path)."""

import pytest

from benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_app_learning")


def test_defaults_are_the_issues_measure(bench):
    args = bench.parse_args([])
    assert args.sizes == [0, 8, 50] and args.repeats == 3 and args.conditions == ["idle", "busy"]
    assert args.busy_procs == 2 and args.out is None


def test_sizes_and_conditions_are_parsed(bench):
    args = bench.parse_args(["--sizes", "8, 50", "--conditions", "busy", "--repeats", "2", "--out", "r.json"])
    assert args.sizes == [8, 50] and args.conditions == ["busy"] and args.repeats == 2 and args.out == "r.json"


@pytest.mark.parametrize("argv, words", [
    (["--sizes", "8,x"], "whole numbers"), (["--sizes", "-1"], ">= 0"), (["--conditions", "warm"], "idle and busy"),
    (["--repeats", "0"], ">= 1"), (["--busy-procs", "two"], ">= 1")])
def test_bad_arguments_are_explained(bench, capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(argv)
    assert exc.value.code == 2 and words in capsys.readouterr().err


def test_help_says_what_it_measures_and_how_to_run_it(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert "correction to saying it learned" in out and "bench_app_learning.py --out" in out


def _rep(learned, adaptation, accepted, during_ms, overlapped, idle_ms):
    return {"learned_s": learned, "stored_s": 0.01, "started_s": 1.05, "adaptation_s": adaptation,
            "accepted": accepted, "read_during": {"latency_ms": during_ms, "app_ms": during_ms - 30,
                                                  "overlapped": overlapped},
            "read_idle": {"latency_ms": idle_ms, "app_ms": idle_ms - 40}}


def test_summary_takes_medians_and_counts_only_reads_made_while_learning(bench):
    runs = [{"condition": "busy", "size": 8, "load_before": 5.0, "load_after": 6.5, "repeats": [
        _rep(4.0, 2.9, True, 100.0, True, 50.0),
        _rep(6.0, 4.9, True, 300.0, True, 60.0),
        _rep(1.1, 0.02, False, 900.0, False, 70.0)]}]  # over before the read: not a read while learning
    s = bench.summarize(runs)
    row = s["conditions"]["busy"]["8"]
    assert row["learned_s"] == 4.0 and row["learned_s_max"] == 6.0 and row["adaptation_s"] == 2.9
    assert row["accepted"] == 2 and row["repeats"] == 3 and row["learned_s_accepted"] == 5.0
    assert row["reads_while_learning"] == 2 and row["read_while_learning_ms"] == 200.0
    assert row["read_while_learning_app_ms"] == 170.0
    assert row["read_idle_ms"] == 60.0 and row["load_1min"] == [5.0, 6.5]
    assert s["target_met"] is False  # the learned ones took 5 s (median): the 3 s target is missed
    table = bench.table(s)
    assert "| busy | 8 | 4.00 s / 6.00 s | 5.00 s | 1.05 s | 2.90 s | 2 of 3 | 200 ms (170) x2 | 60 ms (20) | 5.0/6.5 |" in table


def test_target_met_only_when_every_size_up_to_50_learns_within_3_s(bench):
    def run(size, learned):
        return {"condition": "idle", "size": size, "repeats": [_rep(learned, 1.0, True, 50.0, True, 50.0)]}

    assert bench.summarize([run(8, 2.5), run(50, 3.0)])["target_met"] is True
    assert bench.summarize([run(8, 2.5), run(50, 3.2)])["target_met"] is False
    assert bench.summarize([run(8, 2.5), run(200, 9.0)])["target_met"] is True  # past the target's 50
    refused = {"condition": "idle", "size": 0, "repeats": [_rep(1.1, 0.02, False, 50.0, False, 50.0)]}
    assert bench.summarize([refused])["target_met"] is False  # nothing learned: nothing shows the target met
    assert bench.summarize([refused, run(8, 2.5)])["target_met"] is True
