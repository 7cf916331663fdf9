"""Drive the real GUI under Xvfb with real X input events (xdotool), for tests and the screenshot.

The app is a subprocess; its stderr log is the test's window into it: `recognized text=...`
lines say what it read, DEBUG `canvas geometry` lines say where to draw. Every wait is on a log
line with a timeout, never a bare sleep.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "gui_digit_recognizer.py"
TITLE = "Digit Recognizer"
RECOGNIZED = re.compile(r"recognized text=(?P<text>\S*) model=(?P<model>\S+) ms=(?P<ms>\d+)")
GEOMETRY = re.compile(r"canvas geometry x=(-?\d+) y=(-?\d+) w=(\d+) h=(\d+)")
PANEL = re.compile(r"probabilities geometry x=(-?\d+) y=(-?\d+)")
BOX = re.compile(r"overlay box=(\d+) x0=(-?\d+) y0=(-?\d+) x1=(-?\d+) y1=(-?\d+)")

log = logging.getLogger("gui_driver")

# Digit shapes as strokes of (x, y) in a unit box (x right, y down), drawn like people (and MNIST) do.
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "1": [[(0.55, 0.0), (0.5, 1.0)]],
    "4": [[(0.2, 0.0), (0.08, 0.62), (0.95, 0.62)], [(0.72, 0.05), (0.72, 1.0)]],
    "7": [[(0.05, 0.02), (0.95, 0.02), (0.4, 1.0)]],
    "0": [[(0.5 + 0.45 * math.sin(2 * math.pi * i / 32), 0.5 - 0.5 * math.cos(2 * math.pi * i / 32))
           for i in range(33)]],
}
# A writer's own style: a European 1 with a long flag, which the shipped CNN reads as 7 (a correction's test case).
EU1 = [[(0.0, 0.15), (0.7, 0.0), (0.6, 1.0)]]
STROKES["1eu"] = EU1


def missing_tools() -> list[str]:
    return [t for t in ("Xvfb", "xdotool") if shutil.which(t) is None]


class Xvfb:
    """A private virtual X server; `display` is ":N".

    Xvfb picks a free display number itself (-displayfd) and writes it once it accepts
    connections, so parallel test runs cannot race for the same number.
    """

    def __init__(self, size: str = "1280x1024x24") -> None:
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.display = ""

    def __enter__(self) -> "Xvfb":
        import select

        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", self.size, "-nolisten", "tcp"],
                                         pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.close(w)
            w = -1
            data = b""
            deadline = time.monotonic() + 20
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    raise RuntimeError("Xvfb did not report a display within 20 s")
                chunk = os.read(r, 16)
                if not chunk:
                    raise RuntimeError(f"Xvfb exited (code {self.proc.wait()}) before reporting a display")
                data += chunk
            self.display = f":{int(data)}"
            return self
        except BaseException:
            self.__exit__()
            raise
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}


class GuiApp:
    """The app as a subprocess, with its stderr collected line by line."""

    def __init__(self, xvfb: Xvfb, models_dir: str | os.PathLike, *args: str, log_level: str = "DEBUG") -> None:
        self.xvfb = xvfb
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.started = time.monotonic()
        env = xvfb.env()
        env["PYTHONUNBUFFERED"] = "1"
        if "--profile" not in args:  # never the tester's own profile
            args = (*args, "--profile", "none")
        self.proc = subprocess.Popen(
            [sys.executable, str(ENTRY), "--models-dir", str(models_dir), "--log-level", log_level, *args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.window: str | None = None

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        """Index of the next log line: wait_for(..., since=mark) only looks at what comes after."""
        with self._cond:
            return len(self.lines)

    def wait_for(self, pattern: str | re.Pattern, timeout: float = 30.0, since: int = 0) -> tuple[int, re.Match]:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return i + 1, m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and i >= len(self.lines)):
                    break
                self._cond.wait(min(left, 0.2))
        raise AssertionError(f"no log line matching {rx.pattern!r} within {timeout:.0f}s "
                             f"(exit code {self.proc.poll()}); log tail:\n" + "\n".join(self.lines[-25:]))

    def xdotool(self, *args: str, timeout: float = 20.0) -> str:
        out = subprocess.run(["xdotool", *args], env=self.xvfb.env(), capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def wait_window(self, timeout: float = 20.0) -> str:
        """Window id once it is mapped (xdotool --sync waits on X, not on a sleep)."""
        out = self.xdotool("search", "--sync", "--onlyvisible", "--name", f"^{TITLE}$", timeout=timeout)
        self.window = out.splitlines()[0]
        return self.window

    def canvas(self, timeout: float = 10.0) -> tuple[int, int, int, int]:
        """Latest canvas position and size on screen, from the app's DEBUG log."""
        self.wait_for(GEOMETRY, timeout)
        with self._cond:
            for line in reversed(self.lines):
                m = GEOMETRY.search(line)
                if m:
                    return tuple(int(v) for v in m.groups())  # type: ignore[return-value]
        raise AssertionError("no canvas geometry logged")

    def key(self, *keys: str) -> None:
        self.xdotool("key", "--clearmodifiers", *keys)

    def _latest(self, rx: re.Pattern, timeout: float, since: int = 0, first: str | None = None) -> tuple[int, ...]:
        self.wait_for(rx, timeout, since)
        with self._cond:
            for line in reversed(self.lines[since:]):
                m = rx.search(line)
                if m and (first is None or m.group(1) == first):
                    return tuple(int(v) for v in m.groups())
        raise AssertionError(f"no {rx.pattern!r} logged")

    def click(self, x: float, y: float) -> None:
        self.xdotool("mousemove", str(round(x)), str(round(y)), "click", "1")

    def click_box(self, index: int = 0, timeout: float = 10.0) -> None:
        """Click the middle of result box `index` as last drawn (from the DEBUG overlay log): selects it."""
        _i, x0, y0, x1, y1 = self._latest(BOX, timeout, first=str(index))
        cx, cy, _w, _h = self.canvas()
        since = self.mark()
        self.click(cx + (x0 + x1) / 2, cy + (y0 + y1) / 2)
        self.wait_for(rf"box {index} selected", timeout, since)

    def click_probability(self, digit: int, timeout: float = 10.0) -> None:
        """Click the row of `digit` in the probability panel (a correction of the selected digit)."""
        from gui.probabilities import ROW, TOP_Y

        px, py = self._latest(PANEL, timeout)
        self.click(px + 100, py + TOP_Y + digit * ROW + ROW / 2)

    def stroke(self, points: list[tuple[float, float]], step: float = 8.0, pace_s: float = 0.006) -> None:
        """Press, drag through `points` (screen pixels, interpolated every `step` px), release.

        Moves are paced like a hand (`pace_s` apart): Tk merges motion events that arrive in one
        burst, which would cut the corners off a "4" or "7".
        """
        args = ["mousemove", str(round(points[0][0])), str(round(points[0][1])), "mousedown", "1"]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
            for k in range(1, n + 1):
                args += ["sleep", str(pace_s),
                         "mousemove", str(round(x0 + (x1 - x0) * k / n)), str(round(y0 + (y1 - y0) * k / n))]
        args += ["mouseup", "1"]
        since = self.mark()
        self.xdotool(*args)
        self.wait_for(r"stroke end strokes=", 20, since)  # the app has seen the whole stroke

    def draw_digit(self, digit: str, x: float, y: float, height: float) -> None:
        """Draw `digit` with its top-left at canvas pixel (x, y), `height` pixels tall."""
        cx, cy, _w, _h = self.canvas()
        width = height * 0.6
        for stroke in STROKES[digit]:
            self.stroke([(cx + x + px * width, cy + y + py * height) for px, py in stroke])

    def draw_number(self, digits: str, x: float = 60, y: float = 80, height: float = 180) -> None:
        for i, d in enumerate(digits):
            self.draw_digit(d, x + i * height * 0.85, y, height)

    def clear(self, timeout: float = 20.0) -> re.Match:
        """Press Escape; return the (empty) recognition logged once the clear was handled.

        Waiting for "cleared" first matters: a live recognition of the old drawing may still be
        logged between the key press and its handling; after "cleared" such answers are dropped.
        """
        since = self.mark()
        self.key("Escape")
        i, _ = self.wait_for(r"gui: cleared", timeout, since)
        return self.wait_for(RECOGNIZED, timeout, i)[1]

    def recognize(self, timeout: float = 60.0) -> re.Match:
        """Press Return and return the first recognition logged after it was handled."""
        since = self.mark()
        self.key("Return")
        return self.wait_for(RECOGNIZED, timeout, since)[1]

    def screenshot(self, target: str | os.PathLike, since: int = 0) -> None:
        """PNG of the window (or the whole screen), once the last recognition is painted."""
        from PIL import ImageGrab

        self.wait_for(r"results drawn", 30, since)

        from common.atomic import atomic_path

        image = ImageGrab.grab(xdisplay=self.xvfb.display)
        if self.window:
            geo = self.xdotool("getwindowgeometry", "--shell", self.window)
            g = dict(line.split("=", 1) for line in geo.splitlines() if "=" in line)
            x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
            image = image.crop((x, y, x + w, y + h))
        with atomic_path(target) as tmp:
            image.save(tmp, format="PNG")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def make_screenshot(models_dir: str | os.PathLike, target: str | os.PathLike, number: str = "147",
                    model: str = "cnn") -> str:
    """Start the app under Xvfb, draw `number`, recognize, save a PNG of the window; returns the log line."""
    with Xvfb() as xvfb:
        app = GuiApp(xvfb, models_dir, "--model", model)
        try:
            app.wait_window()
            app.wait_for(rf"model {model} loaded", 180)
            app.draw_number(number)
            since = app.mark()
            line = app.recognize(180).group(0)
            app.screenshot(target, since)
            return line
        finally:
            app.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Screenshot of the GUI reading a drawn number, made under Xvfb.")
    p.add_argument("--models-dir", default=str(REPO / "models"))
    p.add_argument("--model", default="cnn")
    p.add_argument("--number", default="147", help=f"digits to draw, from {''.join(sorted(STROKES))}")
    p.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if missing_tools():
        log.error("needs %s: apt-get install -y xvfb xdotool", ", ".join(missing_tools()))
        return 2
    line = make_screenshot(args.models_dir, args.out, args.number, args.model)
    log.info("%s -> %s", line, args.out)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
