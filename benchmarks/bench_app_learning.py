#!/usr/bin/env python3
"""How long the real app takes from a correction to saying it learned, and whether reads wait meanwhile (issue 37).

The app (`gui_digit_recognizer.py`, CNN) runs under a private Xvfb and is driven with real X events, as the GUI
tests drive it (tests/gui_driver.py). For each profile size N (corrections the profile already holds, seeded
beforehand through recognizer.profile.Profile from digits drawn the app's way, then adapted once, as a returning
writer's profile would be), one app is started and, --repeats times: a European 1 (gui_driver.EU1, which the
shipped CNN reads as 7) is drawn, read (Return), its box clicked and "1" typed. Timed from the key press:
  stored_s   the correction is in the profile ("correction stored")
  started_s  the learner started adapting ("adapting model=cnn": its debounce, recognizer/learner.DELAY_S, is over)
  learned_s  the status line says the outcome ("adaptation accepted=..."): the figure of the issue's target
and, from the learner's own log, the adaptation's seconds. Each repeat adds one correction (N+1, N+2, ...; a fresh
profile's first two are refused: "needs at least 3"). As soon as the adaptation starts, Return is pressed: that
read's time to its result and the app's own ms are compared with a read made once the learner is idle.

"busy" runs the same with --busy-procs CPU-burning processes beside it (the issue's "2 busy cores"). The machine's
1-minute load average is recorded before and after each app run: other work on a shared machine counts too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # gui_driver: the Xvfb + app-subprocess helper the GUI tests use

log = logging.getLogger("bench_app_learning")

TARGET_LEARNED_S = 3.0  # issue 37: correction -> "learned", <= 50 corrections, 2 busy cores
CONDITIONS = ("idle", "busy")
MODEL = "cnn"
MODEL_FILES = (f"{MODEL}.keras", f"{MODEL}.onnx", f"{MODEL}.adapt.npz", "calibration.json")
SEED_DIGITS = ("1eu", "1", "4", "7", "0")  # a writer's European 1 among ordinary digits (confirmations)
CANVAS = (900, 620)
BRUSH = 18  # gui/app.py DEFAULT_BRUSH
LEARNED = re.compile(r"adaptation accepted=(?P<accepted>\w+) model=\w+: (?P<text>.*)")
ADAPTED_IN = re.compile(r"adapted for \w+ in (?P<s>[\d.]+) s")
EPILOG = """examples:
  python benchmarks/bench_app_learning.py --out benchmarks/results/app_learning.json     (about 3 minutes)
  python benchmarks/bench_app_learning.py --sizes 8 --repeats 2 --conditions idle       (a quick look)

Needs Xvfb and xdotool (apt-get install -y xvfb xdotool) and models/cnn.{keras,onnx,adapt.npz}; no data set.
"""


# ------------------------------------------------------------------------------------------------ arguments
def sizes_arg(text: str) -> list[int]:
    """"0,8,50" -> [0, 8, 50]: the corrections each profile holds before the app starts."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are whole numbers separated by commas, got {text!r}") from None
    if not sizes or any(s < 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"give one or more sizes >= 0, got {text!r}")
    return sizes


def conditions_arg(text: str) -> list[str]:
    conds = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in conds if c not in CONDITIONS]
    if not conds or bad:
        raise argparse.ArgumentTypeError(f"conditions are {' and '.join(CONDITIONS)}, comma-separated; got {text!r}")
    return conds


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number >= 1, got {text!r}")
    return n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", metavar="DIR", default=str(ROOT / "models"),
                   help="where cnn.keras, cnn.onnx and cnn.adapt.npz are (default: models/)")
    p.add_argument("--sizes", metavar="N,N,...", type=sizes_arg, default=[0, 8, 50],
                   help="corrections the profile holds before the app starts, comma-separated (default: 0,8,50)")
    p.add_argument("--repeats", metavar="N", type=positive_int, default=3,
                   help="corrections timed per app run (each adds one to the profile; default: 3)")
    p.add_argument("--conditions", metavar="idle,busy", type=conditions_arg, default=list(CONDITIONS),
                   help="idle (nothing added) and/or busy (CPU burners beside the app); default: idle,busy")
    p.add_argument("--busy-procs", metavar="N", type=positive_int, default=2,
                   help="CPU-burning processes for the busy condition (default: 2, the issue's two busy cores)")
    p.add_argument("--timeout", metavar="S", type=float, default=120.0,
                   help="seconds to wait for any one step (a model load, an adaptation) before giving up")
    p.add_argument("--out", metavar="FILE", help="write the results here as JSON (default: only the table is printed)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ summary
def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarize(runs: list[dict]) -> dict:
    """Per condition and size: the medians of the repeats, what the learner decided, and how reads fared
    while it adapted against once it was idle. A read counts as "while learning" only if its result came
    before the adaptation's outcome (`overlapped`). The target is judged on the corrections that were learned
    (a refusal such as "needs at least 3 corrections" takes no fitting) up to 50 in the profile."""
    out: dict[str, dict] = {}
    for run in runs:
        reps = run["repeats"]
        during = [r["read_during"] for r in reps if r.get("read_during") and r["read_during"]["overlapped"]]
        idle = [r["read_idle"] for r in reps if r.get("read_idle")]
        row = {
            "profile_corrections": run["size"],
            "learned_s": _median([r["learned_s"] for r in reps]),
            "learned_s_max": round(max(r["learned_s"] for r in reps), 3) if reps else None,
            "learned_s_accepted": _median([r["learned_s"] for r in reps if r["accepted"]]),
            "stored_s": _median([r["stored_s"] for r in reps if r.get("stored_s") is not None]),
            "started_s": _median([r["started_s"] for r in reps if r.get("started_s") is not None]),
            "adaptation_s": _median([r["adaptation_s"] for r in reps if r.get("adaptation_s") is not None]),
            "accepted": sum(bool(r["accepted"]) for r in reps),
            "repeats": len(reps),
            "read_while_learning_ms": _median([r["latency_ms"] for r in during]),
            "read_while_learning_app_ms": _median([r["app_ms"] for r in during]),
            "reads_while_learning": len(during),
            "read_idle_ms": _median([r["latency_ms"] for r in idle]),
            "read_idle_app_ms": _median([r["app_ms"] for r in idle]),
            "load_1min": [run.get("load_before"), run.get("load_after")],
        }
        out.setdefault(run["condition"], {})[str(run["size"])] = row
    learned = [row["learned_s_accepted"] for cond in out.values() for row in cond.values()
               if row["learned_s_accepted"] is not None and row["profile_corrections"] <= 50]
    return {"conditions": out, "target_learned_s": TARGET_LEARNED_S,
            "target_met": bool(learned) and max(learned) <= TARGET_LEARNED_S}


def table(summary: dict) -> str:
    """The summary as a Markdown table (what docs/RESULTS.md shows)."""
    head = ("| cores | profile holds | correction -> outcome (median / max) | -> learned (accepted, median) "
            "| debounce ends | adaptation | accepted | read while learning (app ms) | read when idle (app ms) "
            "| load (1 min) |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def s(v):
        return "-" if v is None else f"{v:.2f} s"

    def ms(v, app):
        return "-" if v is None else f"{v:.0f} ms ({app:.0f})"

    for cond, rows in summary["conditions"].items():
        for size, r in rows.items():
            load = "/".join("-" if v is None else f"{v:.1f}" for v in r["load_1min"])
            lines.append(f"| {cond} | {size} | {s(r['learned_s'])} / {s(r['learned_s_max'])} "
                         f"| {s(r['learned_s_accepted'])} | {s(r['started_s'])} "
                         f"| {s(r['adaptation_s'])} | {r['accepted']} of {r['repeats']} "
                         f"| {ms(r['read_while_learning_ms'], r['read_while_learning_app_ms'])} "
                         f"x{r['reads_while_learning']} | {ms(r['read_idle_ms'], r['read_idle_app_ms'])} | {load} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the profile
def render(strokes, x: float, y: float, height: float):
    """`strokes` (unit box) drawn as the app draws them (gui.drawing.Drawing), as the uint8 image it reads."""
    from gui.drawing import Drawing

    d = Drawing(*CANVAS)
    for stroke in strokes:
        pts = [(x + px * height * 0.6, y + py * height) for px, py in stroke]
        d.begin(*pts[0], BRUSH)
        for pt in pts[1:]:
            d.extend(*pt)
    return d.array()


def seed_profile(folder: Path, models_dir: Path, n: int, seed: int = 0) -> dict:
    """A profile of `n` corrections of digits drawn the app's way (gui_driver's shapes, jittered, varied in size
    and place), stored as the app stores them (Profile.correct_reading, with their crops), then adapted once:
    a returning writer's profile, which the app does not need to re-adapt at start."""
    import numpy as np

    from gui_driver import STROKES
    from recognizer import ModelStore, Recognizer
    from recognizer.profile import Profile

    store = ModelStore(models_dir)
    profile = Profile(folder, store)
    rec = Recognizer(store)
    rng = np.random.default_rng(seed)
    stored = tries = 0
    while stored < n:
        tries += 1
        if tries > 4 * n + 10:
            raise RuntimeError(f"could not draw {n} one-digit readings (stored {stored})")
        shape = SEED_DIGITS[stored % len(SEED_DIGITS)]
        strokes = [[(px + rng.uniform(-0.04, 0.04), py + rng.uniform(-0.03, 0.03)) for px, py in s]
                   for s in STROKES[shape]]
        height = rng.uniform(120, 220)
        image = render(strokes, rng.uniform(30, CANVAS[0] - 0.6 * height - 30), rng.uniform(30, CANVAS[1] - height - 30),
                       height)
        reading = rec.read(image, MODEL)
        if len(reading.digits) != 1:
            continue
        profile.correct_reading(reading, shape[0], source="app", image=image)
        stored += 1
    t0 = time.perf_counter()
    decisions = profile.adapt(MODEL) if n else {}
    d = decisions.get(MODEL)
    log.info("seeded %s with %d corrections; adapted in %.1f s: %s", folder, n, time.perf_counter() - t0,
             d.reason if d else "-")
    return {"corrections": profile.db.count(), "adapted": bool(d and d.accepted),
            "reason": d.reason if d else None}


def app_models_dir(models_dir: Path, target: Path) -> Path:
    """The CNN's files (and the calibration) as links: the app loads nothing else in the background."""
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (models_dir / name).is_file():
            (target / name).symlink_to((models_dir / name).resolve())
        elif name != "calibration.json":
            raise FileNotFoundError(f"{models_dir / name} is missing (the app adapts the CNN with it)")
    return target


# ------------------------------------------------------------------------------------------------ the app
def timed_app_class():
    """gui_driver.GuiApp that also keeps when each log line arrived (monotonic), for the timings."""
    from gui_driver import GuiApp

    class TimedApp(GuiApp):
        def __init__(self, *args, **kwargs):
            self.times: list[float] = []
            super().__init__(*args, **kwargs)

        def _read(self) -> None:
            for line in self.proc.stderr:
                with self._cond:
                    self.times.append(time.monotonic())
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
            with self._cond:
                self._cond.notify_all()

        def timed(self, pattern, timeout: float, since: int = 0):
            """(next index, match, when the line arrived)."""
            i, m = self.wait_for(pattern, timeout, since)
            with self._cond:
                return i, m, self.times[i - 1]

    return TimedApp


@contextlib.contextmanager
def cpu_burners(n: int):
    """`n` processes that spin a core each, ended (by their own pids) when the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _read(app, timeout: float) -> dict:
    """Press Return; the time to the reading's log line and the app's own ms for it."""
    from gui_driver import RECOGNIZED

    since = app.mark()
    t0 = time.monotonic()
    app.key("Return")
    i, m, t = app.timed(RECOGNIZED, timeout, since)
    return {"latency_ms": round((t - t0) * 1000, 1), "app_ms": int(m["ms"]), "text": m["text"], "index": i}


def one_correction(app, r: int, timeout: float) -> dict:
    """Draw a European 1, read it, correct it to 1; time the learning and a read made while it runs."""
    from gui_driver import RECOGNIZED

    if r:
        app.clear(timeout)
    app.draw_digit("1eu", 60 + 70 * r, 80 + 30 * (r % 3), 180 - 10 * (r % 4))
    first = _read(app, timeout)
    app.wait_for(r"results drawn", timeout, first["index"])  # its boxes are on screen: click_box finds this one
    app.click_box(0, timeout)
    since = app.mark()
    t0 = time.monotonic()
    app.key("1")
    rec = {"read_as": first["text"]}
    _, _, t = app.timed(r"correction stored id=", timeout, since)
    rec["stored_s"] = round(t - t0, 3)
    _, _, t = app.timed(r"adapting model=", timeout, since)
    rec["started_s"] = round(t - t0, 3)
    during = _read(app, timeout)  # while it adapts (if it still does: overlapped says)
    done_i, m, t = app.timed(LEARNED, timeout, since)
    rec.update(learned_s=round(t - t0, 3), accepted=m["accepted"] == "True", text=m["text"])
    with app._cond:
        found = [ADAPTED_IN.search(line) for line in app.lines[since:done_i]]
    secs = [float(x["s"]) for x in found if x]
    rec["adaptation_s"] = secs[-1] if secs else None
    during["overlapped"] = during.pop("index") < done_i
    rec["read_during"] = during
    # the app reads the drawing again when what reads changed: a new adaptation, or the one in use set aside
    # ("... is set aside"; not a mistyped correction left out of a refused attempt, "set aside 1 correction")
    if rec["accepted"] or "is set aside" in rec["text"]:
        app.wait_for(RECOGNIZED, timeout, done_i)
    idle = _read(app, timeout)
    idle.pop("index")
    rec["read_idle"] = idle
    log.info("correction %d: learned in %.2f s (started %.2f s, adaptation %s s), accepted=%s; read while "
             "learning %s ms (overlapped=%s), idle %s ms", r + 1, rec["learned_s"], rec["started_s"],
             rec["adaptation_s"], rec["accepted"], during["latency_ms"], during["overlapped"], idle["latency_ms"])
    return rec


def run_app(models_dir: Path, profile_dir: Path, repeats: int, timeout: float) -> list[dict]:
    """Start the app on `profile_dir`, wait until it is ready and has checked its adaptation, time `repeats`
    corrections."""
    from gui_driver import Xvfb

    with Xvfb() as xvfb:
        app = timed_app_class()(xvfb, models_dir, "--model", MODEL, "--profile", str(profile_dir))
        try:
            app.wait_window(timeout)
            app.wait_for(rf"model {MODEL} loaded", timeout)
            app.wait_for(LEARNED, timeout)  # the start-up check of the adaptation in use (nothing to adapt)
            return [one_correction(app, r, timeout) for r in range(repeats)]
        finally:
            app.close()


def load_1min() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def measure(args: argparse.Namespace, work: Path) -> list[dict]:
    models = app_models_dir(Path(args.models_dir), work / "models")
    templates = {}
    for n in args.sizes:
        templates[n] = work / f"profile-{n}"
        templates[n].mkdir()
        templates[n] = (templates[n], seed_profile(templates[n], models, n))
    runs = []
    for cond in args.conditions:
        for n in args.sizes:
            folder = work / f"run-{cond}-{n}"
            shutil.copytree(templates[n][0], folder)
            burn = cpu_burners(args.busy_procs) if cond == "busy" else contextlib.nullcontext()
            with burn:
                before = load_1min()
                log.info("%s, profile of %d: starting the app (load %.2f)", cond, n, before or 0.0)
                repeats = run_app(models, folder, args.repeats, args.timeout)
                after = load_1min()
            runs.append({"condition": cond, "size": n, "seeded": templates[n][1], "load_before": before,
                         "load_after": after, "repeats": repeats})
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from gui_driver import missing_tools

    if missing_tools():
        print(f"needs {', '.join(missing_tools())}: apt-get install -y xvfb xdotool", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-app-learning-") as work:
            runs = measure(args, Path(work))
    except (FileNotFoundError, RuntimeError, AssertionError) as exc:
        print(f"bench_app_learning: {exc}", file=sys.stderr)
        return 1
    summary = summarize(runs)
    result = {"model": MODEL, "sizes": args.sizes, "repeats": args.repeats, "busy_procs": args.busy_procs,
              "cpus": os.cpu_count(), "seconds": round(time.monotonic() - started, 1),
              "command": "python benchmarks/bench_app_learning.py " + " ".join(sys.argv[1:] if argv is None else argv),
              **summary, "runs": runs}
    print(table(summary))
    print(f"target: correction -> learned <= {TARGET_LEARNED_S:g} s with <= 50 corrections: "
          f"{'met' if summary['target_met'] else 'missed'}")
    if args.out:
        from common.atomic import write_json

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)
        print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
