#!/usr/bin/env python3
"""Load and fault benchmark of the web server (serve.py), run against a server it starts on 127.0.0.1.

Load: N concurrent clients (default 1, 4 and 16; each a thread with its own keep-alive connection) post
real drawings - MNIST test digits redrawn as canvas numbers (study.drawn) when MNIST is found, otherwise
numbers drawn from stroke shapes - to POST /api/read for a bounded time each. Reported per level:
requests/s, latency p50/p90/p99/max, errors (anything but a 200 with a reading; must be 0), the share of
numbers read exactly, and the server's resident memory (VmRSS) before and after.

Faults: empty body, text as an image, a truncated PNG, a 20,000 x 20,000 PNG (a few hundred kB that would
decode to 400 megapixels), 50 MB bodies (raw and multipart), wrong field names, an unknown model, a bad
threshold, and all of them at once from 16 threads together with large valid uploads: every bad answer must
be the expected 4xx with a JSON message, every valid one a 200, and /healthz must still answer afterwards.

--long adds a soak run: 16 clients until 10,000 requests (--soak-requests) with the server's memory sampled
as it goes, to show that it does not grow. Everything stays on the loopback interface; every loop is bounded
by a request count or a deadline.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.atomic import write_json  # noqa: E402

log = logging.getLogger("bench_server")
HOST = "127.0.0.1"  # loopback only, by design
SHARED_MNIST = ROOT.parent / "shared/data/mnist/mnist.npz"
EPILOG = """examples:
  python benchmarks/bench_server.py                                  1, 4 and 16 clients, 20 s each, + faults
  python benchmarks/bench_server.py --seconds 5 --clients 1 16 --out out/server.json
  python benchmarks/bench_server.py --long                           + 10,000-request soak at 16 clients
  python benchmarks/bench_server.py --model cnn --data ../shared/data/mnist/mnist.npz
"""

# strokes of a few digits in a unit box (x right, y down), for drawings when MNIST is not at hand
SHAPES = {"1": [[(0.5, 0), (0.45, 1)]], "4": [[(0.2, 0), (0.05, 0.62), (0.95, 0.62)], [(0.72, 0.05), (0.72, 1)]],
          "7": [[(0, 0), (1, 0), (0.4, 1)]],
          "0": [[(0.5 + 0.45 * np.sin(2 * np.pi * i / 32), 0.5 - 0.5 * np.cos(2 * np.pi * i / 32)) for i in range(33)]]}


# ------------------------------------------------------------------------------------------- inputs
def png_bytes(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def drawings(n: int, data: str | None, seed: int = 0) -> tuple[list[tuple[bytes, str]], str]:
    """[(PNG bytes, the number drawn)] and where they came from: MNIST test digits redrawn as canvas numbers
    of 3-6 digits when MNIST is found (like bench_drawn.py), else numbers drawn from stroke shapes."""
    path = data or os.environ.get("MNIST_PATH") or (str(SHARED_MNIST) if SHARED_MNIST.is_file() else None)
    if path:
        try:
            from study.data import locate
            from study.drawn import drawn_numbers

            arrays, source = locate(path)
            out = [(png_bytes(c), lab) for c, lab in drawn_numbers(arrays["x_test"], arrays["y_test"], n, seed=seed)]
            return out, f"MNIST test digits redrawn as numbers ({source})"
        except Exception as exc:  # noqa: BLE001 - fall back to stroke drawings, and say so
            log.warning("cannot draw from MNIST (%s); using stroke drawings", exc)
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        number = "".join(rng.choice(list(SHAPES), int(rng.integers(3, 7))))
        h = int(rng.integers(160, 300))
        img = np.full((480, max(640, 60 + int(len(number) * h * 0.8))), 255, np.uint8)
        bw = int(rng.integers(8, 20))
        top = rng.uniform(30, 480 - 40 - h)  # one line: a little vertical jitter per digit
        for k, d in enumerate(number):
            x0, y0 = 40 + k * h * 0.8, top + rng.uniform(-8, 8)
            for stroke in SHAPES[d]:
                pts = np.array([(x0 + x * h * 0.55, y0 + y * h) for x, y in stroke], np.int32)
                cv2.polylines(img, [pts], False, 20, bw, cv2.LINE_AA)
        out.append((png_bytes(img), number))
    return out, "numbers drawn from stroke shapes of 0, 1, 4, 7 (no MNIST found)"


def png_bomb(w: int = 20_000, h: int = 20_000) -> bytes:
    """A valid 1-bit PNG of w x h pixels: a few hundred kB on the wire, w*h pixels when decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    row = b"\x00" + b"\xff" * ((w + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def bad_inputs(good: bytes) -> list[tuple[str, dict, int]]:
    """(name, httpx.post keyword arguments, expected status) for every kind of bad request."""
    fifty_mb = b"\x89PNG\r\n\x1a\n" + os.urandom(1 << 20) * 50
    return [
        ("empty body", {"content": b""}, 400),
        ("empty image field", {"files": {"image": ("e.png", b"", "image/png")}}, 400),
        ("text as image", {"content": b"these are not the pixels you are looking for\n" * 20}, 400),
        ("text file as image field", {"files": {"image": ("notes.txt", b"1 4 7\n", "text/plain")}}, 400),
        ("truncated PNG", {"files": {"image": ("t.png", good[: len(good) // 2], "image/png")}}, 400),
        ("PNG header only", {"content": good[:40]}, 400),
        ("20000x20000 PNG", {"files": {"image": ("bomb.png", png_bomb(), "image/png")}}, 413),
        ("50 MB raw body", {"content": fifty_mb}, 413),
        ("50 MB multipart", {"files": {"image": ("big.png", fifty_mb, "image/png")}}, 413),
        ("wrong field name", {"files": {"file": ("d.png", good, "image/png")}}, 422),
        ("no file, only fields", {"data": {"model": "cnn"}, "files": {"other": ("x", b"1")}}, 422),
        ("unknown model", {"files": {"image": ("d.png", good, "image/png")}, "data": {"model": "resnet50"}}, 422),
        ("path as model", {"content": good, "params": {"model": "../../etc/passwd"}}, 422),
        ("threshold out of range", {"content": good, "params": {"threshold": "7"}}, 422),
    ]


# ------------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """serve.py as a subprocess on 127.0.0.1; its stderr is kept (last lines) for error reports."""

    def __init__(self, models_dir: str, port: int, workers: int | None = None, log_level: str = "INFO"):
        self.url = f"http://{HOST}:{port}"
        cmd = [sys.executable, str(ROOT / "serve.py"), "--host", HOST, "--port", str(port),
               "--models-dir", str(models_dir), "--log-level", log_level]
        if workers:
            cmd += ["--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.tail: deque = deque(maxlen=200)
        self.access_lines = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.tail.append(line.rstrip())
            if "web.access:" in line:
                self.access_lines += 1

    def wait_ready(self, timeout: float = 300.0) -> float:
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("serve.py exited:\n" + "\n".join(list(self.tail)[-30:]))
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"serve.py did not answer /healthz within {timeout:.0f} s")

    def rss_mb(self) -> float:
        """Resident memory of the server process (Linux /proc), MiB."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------------------------- load
def load_level(url: str, items, clients: int, seconds: float, model: str | None,
               max_requests: int | None = None, on_progress=None) -> dict:
    """`clients` threads post drawings until `seconds` pass (or `max_requests` are done, in total)."""
    import httpx

    params = {"model": model} if model else {}
    lat: list[float] = []
    errors: list[str] = []
    exact = [0, 0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    count = [0]

    def client(k: int) -> None:
        with httpx.Client(timeout=60) as c:
            i = k
            while time.monotonic() < deadline:
                with lock:
                    if max_requests is not None and count[0] >= max_requests:
                        return
                    count[0] += 1
                    n = count[0]
                data, label = items[i % len(items)]
                i += clients
                t0, r = time.perf_counter(), None
                try:
                    r = c.post(url + "/api/read", files={"image": ("drawing.png", data, "image/png")}, params=params)
                    ms = (time.perf_counter() - t0) * 1000.0
                    body = r.json()
                    ok = r.status_code == 200 and isinstance(body.get("text"), str)
                except Exception as exc:  # noqa: BLE001 - every failure counts as an error
                    ms, ok, body = (time.perf_counter() - t0) * 1000.0, False, {"error": repr(exc)}
                with lock:
                    lat.append(ms)
                    if ok:
                        exact[0] += body["text"] == label
                        exact[1] += 1
                    else:
                        errors.append(f"{getattr(r, 'status_code', '-')}: {str(body)[:200]}")
                if on_progress:
                    on_progress(n)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    wall = time.monotonic() - t0
    q = np.percentile(lat, [50, 90, 99]) if lat else [float("nan")] * 3
    return {"clients": clients, "requests": len(lat), "seconds": round(wall, 2),
            "requests_per_s": round(len(lat) / wall, 1) if wall else 0.0,
            "p50_ms": round(float(q[0]), 1), "p90_ms": round(float(q[1]), 1), "p99_ms": round(float(q[2]), 1),
            "max_ms": round(max(lat), 1) if lat else None, "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
            "errors": len(errors), "error_examples": errors[:5],
            "read_exactly": round(exact[0] / exact[1], 4) if exact[1] else None}


# ------------------------------------------------------------------------------------------- faults
def check_answer(r, expected: int) -> str | None:
    """None if `r` is the expected status with a JSON error message, else what is wrong."""
    try:
        body = r.json()
    except ValueError:
        return f"status {r.status_code}, not JSON: {r.text[:120]!r}"
    if r.status_code != expected:
        return f"status {r.status_code}, expected {expected}: {str(body)[:200]}"
    if expected >= 400 and not (isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]):
        return f"status {r.status_code} without an 'error' message: {str(body)[:200]}"
    return None


def fault_run(url: str, good: bytes, big_good: bytes) -> dict:
    """Every bad input once, then all of them at once from 16 threads with large valid uploads among them."""
    import httpx

    cases = bad_inputs(good)
    out = {"cases": [], "concurrent": {}}
    with httpx.Client(timeout=120) as c:
        for name, kw, expected in cases:
            t0 = time.perf_counter()
            try:
                r = c.post(url + "/api/read", **kw)
                problem = check_answer(r, expected)
                status, message = r.status_code, (r.json().get("error") if problem is None else None)
            except Exception as exc:  # noqa: BLE001 - a dropped connection is a failure too
                problem, status, message = f"{type(exc).__name__}: {exc}", None, None
            out["cases"].append({"case": name, "expected": expected, "status": status,
                                 "ms": round((time.perf_counter() - t0) * 1000.0, 1),
                                 "ok": problem is None, "problem": problem, "message": message})
    jobs = [(n, kw, e) for n, kw, e in cases] * 2
    jobs += [("large valid upload", {"files": {"image": ("big.png", big_good, "image/png")}}, 200)] * 8
    jobs += [("drawing", {"files": {"image": ("d.png", good, "image/png")}}, 200)] * 8
    problems, lock = [], threading.Lock()

    def worker(k: int) -> None:
        with httpx.Client(timeout=180) as c:
            for name, kw, expected in jobs[k::16]:
                try:
                    p = check_answer(c.post(url + "/api/read", **kw), expected)
                except Exception as exc:  # noqa: BLE001
                    p = f"{type(exc).__name__}: {exc}"
                if p:
                    with lock:
                        problems.append(f"{name}: {p}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    out["concurrent"] = {"requests": len(jobs), "threads": 16, "seconds": round(time.monotonic() - t0, 1),
                         "large_upload_bytes": len(big_good), "problems": problems}
    r = httpx.get(url + "/healthz", timeout=10)
    out["healthz_after"] = r.status_code
    out["all_ok"] = all(c["ok"] for c in out["cases"]) and not problems and r.status_code == 200
    return out


def large_valid_png(target_bytes: int = 8_000_000) -> bytes:
    """A valid PNG of about `target_bytes` (a noisy photo-sized image), under the 10 MB limit."""
    rng = np.random.default_rng(5)
    side = int((target_bytes / 3) ** 0.5)
    img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    img[side // 3: side // 3 + 40, side // 4: 3 * side // 4] = 0  # some ink
    return png_bytes(img)


# ------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_server.py", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default=str(ROOT / "models"), help="models the server loads (default models/)")
    p.add_argument("--model", default=None, help="model the clients ask for (default: the server's default)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="concurrency levels (default 1 4 16)")
    p.add_argument("--seconds", type=float, default=20.0, help="time per concurrency level (default 20)")
    p.add_argument("--drawings", type=int, default=60, help="distinct drawings the clients cycle through")
    p.add_argument("--data", default=None, help="MNIST (npz or IDX folder) for the drawings; default: found "
                                                "like bench_drawn.py, else stroke drawings")
    p.add_argument("--long", action="store_true", help="also a soak run: 16 clients until --soak-requests")
    p.add_argument("--soak-requests", type=int, default=10_000, help="requests of the soak run (default 10000)")
    p.add_argument("--soak-timeout", type=float, default=1200.0, help="the soak run stops after this many s")
    p.add_argument("--no-faults", action="store_true", help="skip the bad-input run")
    p.add_argument("--workers", type=int, default=None, help="the server's --workers")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--out", default=None, help="write the results as JSON here (atomically)")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 3600 or any(not 1 <= c <= 256 for c in args.clients):
        p.error("--seconds must be in (0, 3600] and --clients between 1 and 256")
    if not 1 <= args.soak_requests <= 1_000_000:
        p.error("--soak-requests must be between 1 and 1,000,000")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    items, source = drawings(args.drawings, args.data)
    log.info("%d drawings: %s", len(items), source)
    server = Server(args.models_dir, args.port or free_port(), args.workers)
    result: dict = {"drawings": source, "host": HOST, "cpus": os.cpu_count()}
    try:
        result["startup_s"] = round(server.wait_ready(), 1)
        import httpx

        info = httpx.get(server.url + "/api/models", timeout=10).json()
        result["model"] = args.model or info["default"]
        result["models"] = {m["name"]: m["status"] for m in info["models"]}
        log.info("server up in %.1f s; model %s", result["startup_s"], result["model"])
        load_level(server.url, items, 2, 3.0, args.model)  # warm up (first requests, thread pool)
        result["rss_start_mb"] = round(server.rss_mb(), 1)
        levels = []
        for n in args.clients:
            before = server.rss_mb()
            lv = load_level(server.url, items, n, args.seconds, args.model)
            lv["rss_before_mb"], lv["rss_after_mb"] = round(before, 1), round(server.rss_mb(), 1)
            levels.append(lv)
            log.info("%2d clients: %6.1f req/s  p50 %6.1f ms  p99 %6.1f ms  errors %d  exact %s  RSS %.0f -> %.0f MiB",
                     n, lv["requests_per_s"], lv["p50_ms"], lv["p99_ms"], lv["errors"], lv["read_exactly"],
                     lv["rss_before_mb"], lv["rss_after_mb"])
        result["levels"] = levels
        if not args.no_faults:
            before = server.rss_mb()
            faults = fault_run(server.url, items[0][0], large_valid_png())
            faults["rss_before_mb"], faults["rss_after_mb"] = round(before, 1), round(server.rss_mb(), 1)
            result["faults"] = faults
            for c in faults["cases"]:
                log.info("%-26s -> %s %s", c["case"], c["status"], "ok" if c["ok"] else "FAILED: " + c["problem"])
            log.info("concurrent bad + large uploads: %d requests, problems %d; /healthz after: %d",
                     faults["concurrent"]["requests"], len(faults["concurrent"]["problems"]), faults["healthz_after"])
        if args.long:
            samples = []

            def progress(n):
                if n % 1000 == 0:
                    samples.append((n, round(server.rss_mb(), 1)))

            start = server.rss_mb()
            soak = load_level(server.url, items, 16, args.soak_timeout, args.model, args.soak_requests, progress)
            soak["rss_before_mb"], soak["rss_after_mb"] = round(start, 1), round(server.rss_mb(), 1)
            soak["rss_every_1000"] = samples
            result["soak"] = soak
            log.info("soak: %d requests at 16 clients, %.1f req/s, errors %d, RSS %.0f -> %.0f MiB (%s)",
                     soak["requests"], soak["requests_per_s"], soak["errors"], soak["rss_before_mb"],
                     soak["rss_after_mb"], ", ".join(f"{n}: {m:.0f}" for n, m in samples))
        result["access_log_lines"] = server.access_lines
    finally:
        server.stop()
    ok = (all(lv["errors"] == 0 for lv in result.get("levels", []))
          and result.get("faults", {}).get("all_ok", True) and result.get("soak", {}).get("errors", 0) == 0)
    result["passed"] = ok
    if args.out:
        write_json(args.out, result)
        log.info("results -> %s", args.out)
    print(json.dumps({k: result[k] for k in ("model", "levels") if k in result}, indent=1)[:4000])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
