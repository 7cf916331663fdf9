"""The start-up benchmark end to end on a tiny model the test exports (the plumbing, not the figures:
both backends really used, the JSON it writes, its refusal without the .onnx twins)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, str(ROOT / "benchmarks" / "bench_startup.py")]


def test_bench_startup_measures_both_backends(tmp_path):
    from study.export import export_onnx
    from test_onnx_models import tiny_model

    models = tmp_path / "models"
    models.mkdir()
    tiny_model(0).save(models / "cnn.keras")
    out = subprocess.run([*BENCH, "--models-dir", str(models), "--runs", "1", "--warm-runs", "2", "--no-gui"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "python scripts/export_onnx.py" in out.stderr  # no twin yet: says how
    export_onnx(models / "cnn.keras")
    target = tmp_path / "bench.json"
    out = subprocess.run([*BENCH, "--models-dir", str(models), "--runs", "1", "--warm-runs", "2", "--no-gui",
                          "--venv", str(models), "--out", str(target)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(target.read_text())
    assert res["default_model"] == "cnn" and set(res["backends"]) == {"keras", "onnx"}
    for backend, r in res["backends"].items():
        first = r["first_reading"]["cnn"]
        assert list(r["first_reading"]) == ["cnn"] and first["s"]["runs"] == 1
        assert 0 < first["s"]["min"] <= first["s"]["median"] and first["peak_rss_mb"]["min"] > 20
        assert r["warm"]["cnn"]["backend"] == backend and r["warm"]["cnn"]["min_ms"] > 0
    # TensorFlow alone takes hundreds of MB: the ONNX Runtime process must be far lighter
    onnx_mb = res["backends"]["onnx"]["first_reading"]["cnn"]["peak_rss_mb"]["min"]
    keras_mb = res["backends"]["keras"]["first_reading"]["cnn"]["peak_rss_mb"]["min"]
    assert onnx_mb < keras_mb / 2, (onnx_mb, keras_mb)
    assert 0.01 < res["runtime_env_mb"] < 5  # the folder passed as --venv: two tiny model files
    assert "start -> first reading, cnn (default) [s]" in out.stdout


def test_bench_startup_compares_two_readers_side_by_side(tmp_path):
    from study.export import export_onnx
    from test_onnx_models import tiny_model

    models = tmp_path / "models"
    models.mkdir()
    tiny_model(0).save(models / "cnn.keras")
    export_onnx(models / "cnn.keras")
    target = tmp_path / "bench.json"
    out = subprocess.run([*BENCH, "--models-dir", str(models), "--runs", "1", "--warm-runs", "2", "--rounds", "2",
                          "--baseline-tree", str(ROOT), "--baseline-venv", str(models), "--out", str(target)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "bin/python" in out.stderr  # a --baseline-venv without a Python: says which
    out = subprocess.run([*BENCH, "--models-dir", str(models), "--runs", "1", "--warm-runs", "2", "--rounds", "2",
                          "--baseline-tree", str(ROOT), "--out", str(target)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(target.read_text())["readers"]
    assert set(r["cold_s"]) == {"this", "baseline"} and list(r["cold_s"]["this"]) == ["cnn", "default"]
    assert all(0 < c["cnn"]["min"] <= c["cnn"]["median"] for c in r["cold_s"].values())  # no ensemble: one model
    assert all(m["cnn"]["min"] > 20 for m in r["peak_rss_mb"].values())
    assert all(len(w["rounds"]) == 2 and w["best"] == min(w["rounds"]) > 0 for w in r["warm_ms"].values())
    assert "warm 10-digit canvas, cnn [ms, best]" in out.stdout and "env_mib" not in r
