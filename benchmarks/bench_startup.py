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

--baseline-tree DIR compares two readers instead of two backends, in one run (both on ONNX Runtime, the same
models and canvas): this tree's and the one checked out in DIR (e.g. the NumPy-only reader of commit 06257c3,
`git worktree add /tmp/old 06257c3`). Cold `recognize.py` to a reading for the CNN and the default model
(median of --runs, the two readers alternating), the warm 10-digit canvas with the CNN (best of --rounds fresh
processes per reader, alternating, each the best of --warm-runs readings) and, with --venv / --baseline-venv
(each a fresh venv with only that tree's requirements.txt), the environments' size (`du -sm`) and the cold runs
on their Pythons.
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
COLD_READINGS = (("cnn", "cnn"), ("default", None), ("ensemble", "ensemble"))  # (label, --model)
READER_TARGETS = {  # issue 29: the reading side on OpenCV, against the NumPy-only reader
    "env_mib": 400, "cold_s cnn": 0.35, "cold_s default": 0.6, "warm_ms cnn": "faster than the baseline",
}
EPILOG = """examples:
  python benchmarks/bench_startup.py                              everything, 5 runs each (a few minutes)
  python benchmarks/bench_startup.py --models cnn --backends onnx --runs 10 --no-gui
  python benchmarks/bench_startup.py --venv /tmp/rt --out out/bench_startup.json
  python benchmarks/bench_startup.py --baseline-tree /tmp/old --venv /tmp/rt --baseline-venv /tmp/rt-old

--venv: make one with  python3 -m venv /tmp/rt && /tmp/rt/bin/pip install -r requirements.txt
(--baseline-venv the same with the baseline tree's requirements.txt)
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


def first_reading(models_dir: Path, image: Path, model: str | None, tree: Path = ROOT,
                  python: str = sys.executable) -> tuple[float, float]:
    """(seconds from process start to the first reading on stdout, peak RSS in MB) of one recognize.py run
    (of the project in `tree`, on `python`)."""
    cmd = [python, str(tree / "recognize.py"), str(image), "--models-dir", str(models_dir)]
    if model:
        cmd += ["--model", model]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line.strip():
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {line.strip()!r}")
    return elapsed, usage.ru_maxrss / 1024.0  # Linux reports KiB


def warm_reading(models_dir: Path, image: Path, models: list[str], runs: int, tree: Path = ROOT,
                 python: str = sys.executable) -> dict[str, dict]:
    """Median/min Recognizer.read ms per model, in a fresh process (so Keras is imported only for Keras) of the
    project in `tree` on `python`."""
    code = (f"import json, statistics, sys; sys.path.insert(0, {str(tree)!r})\n"
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
    out = subprocess.run([python, "-c", code], cwd=tree, capture_output=True, text=True, timeout=900)
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


def env_mib(path: Path) -> int:
    """Disk use of a folder in MiB, as `du -sm` reports it."""
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def venv_python(venv: Path | None) -> str:
    return str(venv / "bin" / "python") if venv is not None else sys.executable


def compare_readers(args, models_dir: Path, image: Path, default: str | None, present: list[str]) -> dict:
    """This tree's reader against the one in --baseline-tree, alternating run by run so that both see the same
    machine load (see the module's docstring)."""
    readers = {"this": (ROOT, args.venv), "baseline": (args.baseline_tree.resolve(), args.baseline_venv)}
    res: dict = {"trees": {k: str(t) for k, (t, _) in readers.items()},
                 "pythons": {k: venv_python(v) for k, (_, v) in readers.items()},
                 "cold_s": {k: {} for k in readers}, "peak_rss_mb": {k: {} for k in readers}, "warm_ms": {},
                 "targets": READER_TARGETS}
    for label, model in COLD_READINGS:  # model None: recognize.py without --model, the store's default
        if model is not None and model not in present:
            continue
        times: dict[str, list[float]] = {k: [] for k in readers}
        rss: dict[str, list[float]] = {k: [] for k in readers}
        for _ in range(args.runs):
            for k, (tree, venv) in readers.items():
                t, mb = first_reading(models_dir, image, model, tree, venv_python(venv))
                times[k].append(t)
                rss[k].append(mb)
        for k in readers:
            res["cold_s"][k][label] = summary(times[k])
            res["peak_rss_mb"][k][label] = summary(rss[k])
            log.info("%s reader, %s: cold reading median %.3f s", k, label, statistics.median(times[k]))
    best: dict[str, list[float]] = {k: [] for k in readers}
    for _ in range(args.rounds):
        for k, (tree, venv) in readers.items():
            warm = warm_reading(models_dir, image, ["cnn"], args.warm_runs, tree, venv_python(venv))
            best[k].append(warm["cnn"]["min_ms"])
    res["warm_ms"] = {k: {"best": min(v), "rounds": v} for k, v in best.items()}
    for k, (_, venv) in readers.items():
        if venv is not None:
            res.setdefault("env_mib", {})[k] = env_mib(venv)
    return res


def print_readers(res: dict, default: str | None) -> None:
    print(f"\nreaders side by side ({res['cpu_count']} CPUs): this tree {res['readers']['trees']['this']} against "
          f"{res['readers']['trees']['baseline']}; default model: {default}")
    r = res["readers"]
    print(f"{'measure':<52}{'baseline':>14}{'this':>14}{'target':>26}")

    def row(label, base, this, target):
        print(f"{label:<52}{base:>14}{this:>14}{str(target):>26}")

    if "env_mib" in r:
        row("reading environment (requirements.txt, du -sm) [MiB]", r["env_mib"].get("baseline", "-"),
            r["env_mib"].get("this", "-"), f"<= {READER_TARGETS['env_mib']}")
    for m in r["cold_s"]["this"]:
        label = f"cold recognize.py -> reading, {m}{f' ({default})' if m == 'default' else ''} [s, median]"
        row(label, f"{r['cold_s']['baseline'][m]['median']:.3f}", f"{r['cold_s']['this'][m]['median']:.3f}",
            f"<= {READER_TARGETS[f'cold_s {m}']}" if f"cold_s {m}" in READER_TARGETS else "")
    for m in r["peak_rss_mb"]["this"]:
        row(f"peak memory of that process, {m} [MB, median]", f"{r['peak_rss_mb']['baseline'][m]['median']:.0f}",
            f"{r['peak_rss_mb']['this'][m]['median']:.0f}", "")
    row("warm 10-digit canvas, cnn [ms, best]", f"{r['warm_ms']['baseline']['best']:.1f}",
        f"{r['warm_ms']['this']['best']:.1f}", READER_TARGETS["warm_ms cnn"])


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
    p.add_argument("--baseline-tree", type=Path, default=None,
                   help="another checkout of the project: compare its reader with this one instead of the backends")
    p.add_argument("--baseline-venv", type=Path, default=None,
                   help="a venv with only the baseline tree's requirements.txt (size, and its Python for the runs)")
    p.add_argument("--rounds", type=int, default=5, help="warm processes per reader with --baseline-tree (default 5)")
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON (atomically)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warm_runs < 1 or args.rounds < 1:
        p.error("--runs, --warm-runs and --rounds must be at least 1")
    if args.baseline_tree is not None and not (args.baseline_tree / "recognize.py").is_file():
        p.error(f"--baseline-tree {args.baseline_tree}: no recognize.py there (a checkout of this project?)")
    for flag, venv in (("--venv", args.venv), ("--baseline-venv", args.baseline_venv)):
        if args.baseline_tree is not None and venv is not None and not (venv / "bin" / "python").exists():
            p.error(f"{flag} {venv}: no {venv / 'bin' / 'python'} (the readers run on the venvs' Pythons)")
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
        if args.baseline_tree is not None:
            results["readers"] = compare_readers(args, models_dir, image, default, models)
            print_readers(results, default)
            if args.out:
                write_json(args.out, results)
                log.info("wrote %s", args.out)
            return 0
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
