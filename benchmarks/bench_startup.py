#!/usr/bin/env python3
"""Start-up benchmark: Keras (TensorFlow) vs ONNX Runtime, side by side, for each model and the ensemble.

What a user feels is start-up, not inference. For each backend and model this measures, over --runs fresh
processes (min and median):
  first_reading_s  process start -> first reading of a 10-digit canvas printed (`recognize.py`, a subprocess)
  peak_rss_mb      peak memory (max RSS) of that process
and, in one process per backend, the warm time of reading the same canvas (Recognizer.read ms: segmentation,
normalisation and inference; median of --warm-runs), and, under Xvfb, app launch -> window ready and
app launch -> default model ready (the app's own log lines). --venv DIR adds the size of an environment that
has only requirements.txt installed.

The Keras side is what the reader does without the .onnx twins: the same models folder, .keras files only
(a temporary folder of links), so the store falls back to Keras.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # gui_driver: the Xvfb + app-subprocess helper the GUI tests use

from common.atomic import write_json  # noqa: E402
from common.names import BASE_MODELS, METRICS_FILE, MODEL_NAMES, model_file, onnx_file, train_hint  # noqa: E402

log = logging.getLogger("bench_startup")
SHARED_MNIST = ROOT.parent / "shared/data/mnist/mnist.npz"
BACKENDS = ("keras", "onnx")
TARGETS = {  # issue 19: what a user on a small CPU should get
    "first_reading_s cnn": 1.0, "first_reading_s default": 1.5, "peak_rss_mb default": 300.0,
    "app_ready_s": 1.5, "warm_ms cnn": 5.0, "runtime_env_mb": 300.0,
}
EPILOG = """examples:
  python benchmarks/bench_startup.py                              everything, 5 runs each (a few minutes)
  python benchmarks/bench_startup.py --models cnn --backends onnx --runs 10 --no-gui
  python benchmarks/bench_startup.py --venv /tmp/rt --out out/bench_startup.json

--venv: make one with  python3 -m venv /tmp/rt && /tmp/rt/bin/pip install -r requirements.txt
"""


def ten_digit_canvas(path: Path, seed: int = 7) -> Path:
    """A GUI-sized 640x480 canvas with 10 drawn digits (MNIST test digits redrawn when the data is there,
    else printed digits), saved as PNG for the subprocesses."""
    import cv2

    if SHARED_MNIST.is_file() or os.environ.get("MNIST_PATH"):
        from study.drawn import number_canvas

        x = np.load(os.environ.get("MNIST_PATH") or SHARED_MNIST)["x_test"]
        rng = np.random.default_rng(seed)
        canvas, _ = number_canvas([x[i] for i in rng.choice(len(x), 10, replace=False)], rng, fit="shrink")
    else:
        canvas = np.full((480, 640), 255, np.uint8)
        for i in range(10):
            cv2.putText(canvas, str(i), (12 + 62 * i, 280), cv2.FONT_HERSHEY_SIMPLEX, 2.4, 0, 9)
    cv2.imwrite(str(path), canvas)
    return path


def keras_only_dir(models_dir: Path, target: Path) -> Path:
    """The models folder without its .onnx twins (links), which makes the reader fall back to Keras."""
    target.mkdir(parents=True, exist_ok=True)
    for name in [*map(model_file, BASE_MODELS), METRICS_FILE]:
        if (models_dir / name).is_file():
            (target / name).symlink_to((models_dir / name).resolve())
    return target


def first_reading(models_dir: Path, image: Path, model: str | None) -> tuple[float, float]:
    """(seconds from process start to the first reading on stdout, peak RSS in MB) of one recognize.py run."""
    cmd = [sys.executable, str(ROOT / "recognize.py"), str(image), "--models-dir", str(models_dir)]
    if model:
        cmd += ["--model", model]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line.strip():
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {line.strip()!r}")
    return elapsed, usage.ru_maxrss / 1024.0  # Linux reports KiB


def warm_reading(models_dir: Path, image: Path, models: list[str], runs: int) -> dict[str, dict]:
    """Median/min Recognizer.read ms per model, in a fresh process (so Keras is imported only for Keras)."""
    code = (f"import json, statistics, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from recognizer import ModelStore, Recognizer\n"
            "from recognizer.images import load_gray\n"
            f"store = ModelStore({str(models_dir)!r}); rec = Recognizer(store); img = load_gray({str(image)!r})\n"
            "out = {}\n"
            f"for m in {models!r}:\n"
            "    for _ in range(3): r = rec.read(img, model=m)\n"
            f"    ms = [rec.read(img, model=m).ms for _ in range({runs})]\n"
            "    out[m] = {'min_ms': min(ms), 'median_ms': statistics.median(ms), 'text': r.text,\n"
            "              'backend': store.loaded().get(m, 'mixed' if m == 'ensemble' else '?')}\n"
            "print(json.dumps(out))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"warm reading failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def app_start(models_dir: Path, runs: int) -> dict | None:
    """Seconds from launching the app to 'window ready' and to 'model <default> ready' (its log), under Xvfb."""
    import gui_driver

    if gui_driver.missing_tools():
        log.warning("no app timing: needs %s (apt-get install -y xvfb xdotool)", ", ".join(gui_driver.missing_tools()))
        return None
    window, ready, model = [], [], None
    with gui_driver.Xvfb() as xvfb:
        for _ in range(runs):
            t0 = time.perf_counter()
            app = gui_driver.GuiApp(xvfb, models_dir, log_level="INFO")
            try:
                app.wait_for(r"window ready ms=", 60)
                window.append(time.perf_counter() - t0)
                _, m = app.wait_for(re.compile(r"model (\S+) ready ms=\d+"), 300)
                ready.append(time.perf_counter() - t0)
                model = m[1]
            finally:
                app.close()
    return {"default_model": model, "window_s": summary(window), "ready_s": summary(ready)}


def summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "runs": len(values)}


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total / 1e6


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_startup.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default=str(ROOT / "models"), help="folder with the .keras and .onnx files")
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES),
                   help="models to time (default: all four)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="default: both")
    p.add_argument("--runs", type=int, default=5, help="fresh processes per measure (default 5)")
    p.add_argument("--warm-runs", type=int, default=30, help="warm readings per model (default 30)")
    p.add_argument("--no-gui", action="store_true", help="skip the app start-up timing (needs Xvfb)")
    p.add_argument("--venv", type=Path, default=None, help="a venv with only requirements.txt: report its size")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON (atomically)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warm_runs < 1:
        p.error("--runs and --warm-runs must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    models_dir = Path(args.models_dir)
    present = [n for n in BASE_MODELS if (models_dir / model_file(n)).is_file()]
    if not present:
        log.error("no trained model in %s/; %s", models_dir, train_hint())
        return 1
    if "onnx" in args.backends and not all((models_dir / onnx_file(n)).is_file() for n in present):
        log.error("some .onnx twins are missing in %s/; make them with: python scripts/export_onnx.py", models_dir)
        return 1
    from recognizer import ModelStore

    default = ModelStore(models_dir).default_name()
    models = [m for m in args.models if m in present or (m == "ensemble" and len(present) == len(BASE_MODELS))]
    results: dict = {"cpu_count": os.cpu_count(), "runs": args.runs, "default_model": default,
                     "python": sys.version.split()[0], "backends": {}}
    with tempfile.TemporaryDirectory(prefix="bench_startup.") as tmp:
        tmp = Path(tmp)
        image = ten_digit_canvas(tmp / "ten_digits.png")
        dirs = {"onnx": models_dir, "keras": keras_only_dir(models_dir, tmp / "keras_only")}
        for backend in args.backends:
            res = results["backends"][backend] = {"first_reading": {}, "warm": {}}
            for m in models:
                times, rss = zip(*(first_reading(dirs[backend], image, m) for _ in range(args.runs)))
                res["first_reading"][m] = {"s": summary(list(times)), "peak_rss_mb": summary(list(rss))}
                log.info("%s %s: first reading %.2f s (median %.2f), peak %.0f MB", backend, m, min(times),
                         statistics.median(times), statistics.median(rss))
            res["warm"] = warm_reading(dirs[backend], image, models, args.warm_runs)
            if not args.no_gui:
                res["app"] = app_start(dirs[backend], args.runs)
    if args.venv is not None:
        results["runtime_env_mb"] = dir_size_mb(args.venv)
    print_table(results, default)
    if args.out:
        write_json(args.out, results)
        log.info("wrote %s", args.out)
    return 0


def print_table(results: dict, default: str | None) -> None:
    backends = list(results["backends"])
    print(f"\nstart-up benchmark ({results['cpu_count']} CPUs, {results['runs']} runs each: min / median; "
          f"default model: {default})")
    print(f"{'measure':<44}" + "".join(f"{b:>22}" for b in backends))

    def row(label, cell):
        print(f"{label:<44}" + "".join(f"{cell(results['backends'][b]):>22}" for b in backends))

    models = list(next(iter(results["backends"].values()))["first_reading"])
    for m in models:
        tag = " (default)" if m == default else ""
        row(f"start -> first reading, {m}{tag} [s]",
            lambda r, m=m: "{min:.2f} / {median:.2f}".format(**r["first_reading"][m]["s"]))
        row(f"peak memory, {m}{tag} [MB]",
            lambda r, m=m: "{min:.0f} / {median:.0f}".format(**r["first_reading"][m]["peak_rss_mb"]))
    for m in models:
        row(f"warm 10-digit canvas, {m} [ms]", lambda r, m=m: "{min_ms:.1f} / {median_ms:.1f}".format(**r["warm"][m]))
    if all(r.get("app") for r in results["backends"].values()):
        row("app launch -> window ready [s]", lambda r: "{min:.2f} / {median:.2f}".format(**r["app"]["window_s"]))
        row("app launch -> default model ready [s]",
            lambda r: "{min:.2f} / {median:.2f}".format(**r["app"]["ready_s"]))
    if "runtime_env_mb" in results:
        print(f"{'runtime environment (requirements.txt) [MB]':<44}{results['runtime_env_mb']:>22.0f}")


if __name__ == "__main__":
    sys.exit(main())
