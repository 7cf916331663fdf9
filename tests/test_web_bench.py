"""benchmarks/bench_server.py, run briefly against small models: load levels without errors, every fault a 4xx."""

import json

from common import atomic
from benchmark_module import load_benchmark
from test_recognizer_models import tiny_model


def load_bench():
    return load_benchmark("bench_server")


def test_bench_server_short_run(tmp_path, capsys):
    """With the .onnx twins, as models/ ships them: the server then starts in ~1 s, not the 7 s TensorFlow takes to
    load (the twins take 1.3 s to export here); a second per level still gives ~40 requests at one client."""
    from study.export import export_onnx

    bench = load_bench()
    models = tmp_path / "models"
    for i, name in enumerate(("ann", "cnn", "vgg16")):
        atomic.save_model(tiny_model(i), models / f"{name}.keras")
        export_onnx(models / f"{name}.keras")
    out = tmp_path / "server.json"
    code = bench.main(["--models-dir", str(models), "--model", "cnn", "--seconds", "1", "--clients", "1", "4",
                       "--drawings", "4", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 0 and result["passed"], json.dumps(result, indent=1)[:3000]
    assert result["model"] == "cnn" and result["host"] == "127.0.0.1"
    assert [lv["clients"] for lv in result["levels"]] == [1, 4]
    for lv in result["levels"]:
        assert lv["errors"] == 0 and lv["requests"] >= 2 and lv["requests_per_s"] > 0
        assert 0 < lv["p50_ms"] <= lv["p99_ms"] <= lv["max_ms"] and lv["rss_after_mb"] > 50
    faults = result["faults"]
    statuses = {c["case"]: c["status"] for c in faults["cases"]}
    assert statuses["empty body"] == 400 and statuses["truncated PNG"] == 400 and statuses["text as image"] == 400
    assert statuses["20000x20000 PNG"] == 413 and statuses["50 MB raw body"] == 413 == statuses["50 MB multipart"]
    assert statuses["wrong field name"] == 422 and statuses["unknown model"] == 422
    assert all(c["ok"] and c["message"] for c in faults["cases"])
    assert faults["concurrent"]["problems"] == [] and faults["healthz_after"] == 200
    assert result["access_log_lines"] >= sum(lv["requests"] for lv in result["levels"])


def test_bench_inputs():
    bench = load_bench()
    from PIL import Image
    import io

    bomb = bench.png_bomb(3000, 2000)
    with Image.open(io.BytesIO(bomb)) as im:
        assert im.size == (3000, 2000) and im.mode == "1"
        im.load()  # a valid PNG, not just a header
    items, source = bench.drawings(3, "/nonexistent/mnist.npz")
    assert len(items) == 3 and "stroke" in source
    for data, label in items:
        assert data.startswith(b"\x89PNG") and 3 <= len(label) <= 6 and set(label) <= set("0147")
    assert 7_000_000 < len(bench.large_valid_png()) < 10 * 2**20
