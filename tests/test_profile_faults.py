"""Faults around a writer's profile (issue 37): nothing taught is ever lost, and every fault gets one clear message.

Injected for real, not mocked: two resets within one second, a database the user may not open (permission
denied), a read-only profile folder (a private read-only bind mount), a write lock another process holds past
the timeout, a writer killed with SIGKILL mid-write, a corrupt file. Tests that need a private mount or a user
namespace run a child process under `unshare` and skip, saying why, where the system refuses one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.names import PROFILE_DB
from recognizer import ModelStore, RecognizerError
from recognizer import profile_store as store_module
from recognizer.profile_store import ProfileStore
from test_profile import _image  # three strokes that read as 3 digits
from recognizer.profile import Profile

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
PY = sys.executable
needs_models = pytest.mark.skipif(not (MODELS / "cnn.onnx").is_file(), reason="committed models not present")


def _digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28)).astype(np.float32) / 255.0


def _seed(folder: Path, n: int) -> ProfileStore:
    db = ProfileStore(folder / PROFILE_DB)
    for i in range(n):
        db.add(label=i % 10, input=_digit(i), model="cnn", source="cli", read=(i + 1) % 10)
    return db


def _exports(folder: Path) -> list[int]:
    """How many corrections each reset export in `folder` holds, oldest name first."""
    return [len(json.loads(p.read_text())["corrections"])
            for p in sorted(folder.glob("corrections-before-reset-*.json"), key=lambda p: p.stat().st_mtime_ns)]


# ------------------------------------------------------------------------------------------- two resets in a second
@pytest.fixture
def one_second(monkeypatch):
    """Every timestamp in a file name falls in the same second (as two quick resets do)."""
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-120000")


def test_two_resets_within_a_second_keep_both_exports(tmp_path, one_second):
    profile = Profile(tmp_path / "p", ModelStore(MODELS))
    _seed(profile.folder, 20)
    first = profile.reset()
    profile.db.add(label=3, input=_digit(99), model="cnn", source="cli", read=5)
    second = profile.reset()
    assert first != second and first.is_file() and second.is_file()
    assert _exports(profile.folder) == [20, 1]


@needs_models
def test_two_resets_of_the_api_within_a_second_keep_both_exports(tmp_path, one_second):
    from fastapi.testclient import TestClient

    from test_web_api import drawing, png
    from web import create_app

    store = ModelStore(MODELS)
    profile = Profile(tmp_path / "p", store)
    _seed(profile.folder, 20)
    app = create_app(store=store, preload=False, profile=profile, learn=True, adapt_delay=30)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        first = c.delete("/api/profile").json()
        r = c.post("/api/corrections", files={"image": ("d.png", png(drawing("7")), "image/png")},
                   data={"text": "1", "model": "cnn"})
        assert r.status_code == 201, r.text
        second = c.delete("/api/profile").json()
    assert first["forgotten"] == 20 and second["forgotten"] == 1 and first["export"] != second["export"]
    assert [len(json.loads(Path(e["export"]).read_text())["corrections"]) for e in (first, second)] == [20, 1]
    assert _exports(profile.folder) == [20, 1]


def test_a_correction_made_during_a_reset_is_exported_or_kept(tmp_path):
    """The export and the deletion are one transaction: a correction lands before (exported) or after (kept)."""
    db = _seed(tmp_path, 5)
    kept = db.reset(export_to=tmp_path / "before.json")
    assert kept == tmp_path / "before.json" and _exports(tmp_path) == [] and db.count() == 0
    assert len(json.loads(kept.read_text())["corrections"]) == 5
    _seed(tmp_path, 1)
    again = db.reset(export_to=tmp_path / "before.json")  # the name is taken: another one, never a replacement
    assert again != kept and len(json.loads(kept.read_text())["corrections"]) == 5
    assert len(json.loads(again.read_text())["corrections"]) == 1


# ------------------------------------------------------------------------------------------- child processes
def _unshare_works(*flags: str) -> str | None:
    """None if `unshare FLAGS` can run a child here, else why not (the test that needs it is skipped)."""
    if shutil.which("unshare") is None:
        return "no unshare command on this system"
    probe = ["unshare", *flags, "true"]
    if "-m" in "".join(flags):
        probe = ["unshare", *flags, "sh", "-c", "mount --bind -o ro / /mnt 2>/dev/null || mount -t tmpfs t /mnt"]
    try:
        r = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare {' '.join(flags)} failed: {exc}"
    return None if r.returncode == 0 else f"unshare {' '.join(flags)} is refused here: {r.stderr.strip()}"


# In the child: run recognize.py's main in-process for each command (one Python start for all), and serve.py's
# profile opening and app; print what each did as JSON. A traceback anywhere is recorded as "crash".
CHILD = r"""
import contextlib, io, json, logging, sys, traceback
sys.path.insert(0, ".")
sys.path.insert(0, "tests")
folder, image = sys.argv[1], sys.argv[2]
out = {}

def cli(name, argv):
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            rc = __import__("recognize").main(argv + ["--profile", folder])
        except BaseException:
            rc = "crash"
            e.write(traceback.format_exc())
    out[name] = {"rc": rc, "out": o.getvalue(), "err": e.getvalue()}

cli("read", [image, "--model", "cnn"])
cli("stats", ["--profile-stats", "--json", "--model", "cnn"])
cli("list", ["--corrections", "list"])
cli("delete", ["--corrections", "delete", "1"])
cli("correct", ["--correct", image, "1?7", "--model", "cnn"])
cli("reset", ["--profile-reset"])
try:
    import serve
    from fastapi.testclient import TestClient
    from recognizer import ModelStore, RecognizerError
    from test_web_api import drawing, png
    from web import create_app
    store = ModelStore("models")
    log = logging.getLogger("serve")
    profile = serve.open_profile(folder, store, False, log)
    app = create_app(store=store, preload=False, profile=profile, learn=False)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        info = c.get("/api/profile?model=cnn").json()
        read = c.post("/api/read?model=cnn", content=png(drawing("7")))
        out["serve"] = {"corrections": info.get("corrections"), "status": info.get("status"),
                        "read": read.status_code}
    try:
        serve.open_profile(folder, store, True, log)
        out["serve_learn"] = "opened"
    except RecognizerError as exc:
        out["serve_learn"] = str(exc)
except BaseException:
    out["serve"] = "crash: " + traceback.format_exc()
print("RESULT " + json.dumps(out))
"""


def _run_child(prefix: list[str], folder: Path, image: Path) -> dict:
    r = subprocess.run([*prefix, PY, "-c", CHILD, str(folder), str(image)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert r.returncode == 0 and line, f"child failed (rc {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(line[-1][len("RESULT "):])


def _no_tracebacks(result: dict) -> None:
    for name, r in result.items():
        text = json.dumps(r)
        assert "crash" not in text and "Traceback" not in text, f"{name}: {text[:3000]}"


def _ids(folder: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(folder / PROFILE_DB)) as con:
        return [r[0] for r in con.execute("SELECT id FROM corrections ORDER BY id")]


@needs_models
def test_a_read_only_profile_folder_reads_and_refuses_writes_with_one_message(tmp_path):
    why = _unshare_works("-rm")
    if why:
        pytest.skip(f"a private read-only mount is needed: {why}")
    folder = tmp_path / "profile"
    _seed(folder, 3)
    image = _image(tmp_path / "three.png")
    # the mount is private to the child: the folder and the database are readable, nothing can be written
    result = _run_child(["unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"',
                         "sh"], folder, image)
    _no_tracebacks(result)
    assert result["read"]["rc"] == 0 and ": " in result["read"]["out"], result["read"]
    assert result["stats"]["rc"] == 0 and json.loads(result["stats"]["out"])["corrections"] == 3
    assert result["list"]["rc"] == 0 and len(result["list"]["out"].strip().splitlines()) == 3
    for name in ("delete", "correct", "reset"):
        r = result[name]
        assert r["rc"] == 1 and r["err"].count("error:") == 1 and "read-only" in r["err"], (name, r)
    assert result["serve"]["corrections"] == 3 and result["serve"]["read"] == 200, result["serve"]
    assert "read-only" in result["serve_learn"]
    assert sorted(p.name for p in folder.iterdir()) == [PROFILE_DB] and _ids(folder) == [1, 2, 3]


@needs_models
def test_a_profile_the_user_may_not_open_is_never_moved_aside(tmp_path):
    """Permission denied is not corruption: the database stays where it is, untouched, and the user is told."""
    prefix = []
    if os.geteuid() == 0:  # root passes chmod; in a user namespace of its own it does not
        why = _unshare_works("-U")
        if why:
            pytest.skip(f"running as root, a user namespace is needed to be denied a file: {why}")
        prefix = ["unshare", "-U"]
    folder = tmp_path / "profile"
    _seed(folder, 3)
    image = _image(tmp_path / "three.png")
    db = folder / PROFILE_DB
    db.chmod(0)
    try:
        result = _run_child(prefix, folder, image)
    finally:
        db.chmod(0o644)
    _no_tracebacks(result)
    assert result["read"]["rc"] == 0 and "permission denied" in result["read"]["err"], result["read"]
    assert "shipped models" in result["read"]["err"] and result["read"]["err"].count("warning:") == 1
    for name in ("stats", "list", "delete", "correct", "reset"):
        r = result[name]
        assert r["rc"] == 1 and r["err"].count("error:") == 1 and "permission denied" in r["err"], (name, r)
    assert result["serve"]["corrections"] is None and result["serve"]["read"] == 200, result["serve"]
    assert "permission denied" in result["serve_learn"]
    assert not list(folder.glob("*.corrupt-*")) and _ids(folder) == [1, 2, 3]


# ------------------------------------------------------------------------------------------- a lock held too long
HOLDER = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
"""


def test_a_write_lock_held_past_the_timeout_gets_a_message_and_loses_nothing(tmp_path, monkeypatch, capsys):
    import recognize

    _seed(tmp_path, 2)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.3)
    holder = subprocess.Popen([PY, "-c", HOLDER, str(tmp_path / PROFILE_DB)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        db = ProfileStore(tmp_path / PROFILE_DB)  # opening only reads
        t0 = time.perf_counter()
        with pytest.raises(RecognizerError, match="busy: another program .* for more than 0.3 s"):
            db.add(label=4, input=_digit(7), model="cnn", source="cli", read=4)
        assert time.perf_counter() - t0 < 5
        assert db.count() == 2  # reading goes on while another program writes
        assert recognize.main(["--corrections", "delete", "1", "--profile", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "busy" in err and "Traceback" not in err
        assert recognize.main(["--profile-stats", "--profile", str(tmp_path)]) == 0
        assert "corrections stored: 2" in capsys.readouterr().out
    finally:
        holder.communicate("", timeout=30)
    assert db.add(label=4, input=_digit(7), model="cnn", source="cli", read=4) == 3 and _ids(tmp_path) == [1, 2, 3]


@needs_models
def test_the_api_says_the_profile_is_busy(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from web import create_app

    store = ModelStore(MODELS)
    profile = Profile(tmp_path, store)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.3)
    holder = subprocess.Popen([PY, "-c", HOLDER, str(tmp_path / PROFILE_DB)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        app = create_app(store=store, preload=False, profile=profile, learn=True, adapt_delay=30)
        with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as c:
            r = c.post("/api/profile/readings", json={"digits": 3, "adapted": False})
            assert r.status_code == 503 and "busy" in r.json()["error"], r.text
            assert c.get("/api/profile").status_code == 200  # reading the figures goes on
    finally:
        holder.communicate("", timeout=30)


# ------------------------------------------------------------------------------------------- SIGKILL mid-write
WRITER = r"""
import sys
import numpy as np
sys.path.insert(0, ".")
from recognizer.profile_store import ProfileStore
db = ProfileStore(sys.argv[1])
for i in range(100000):
    x = np.random.default_rng(i).random((28, 28), np.float32)
    cid = db.add(label=i % 10, input=x, model="cnn", source="cli", read=(i + 3) % 10, crop_png=bytes(4000))
    db.count_reading(1, adapted=False)
    print(cid, flush=True)
"""


def test_a_writer_killed_mid_write_loses_nothing_it_committed(tmp_path):
    path = tmp_path / PROFILE_DB
    child = subprocess.Popen([PY, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    committed = []
    try:
        while len(committed) < 40:
            line = child.stdout.readline()
            assert line, "the writer ended early"
            committed.append(int(line))
    finally:
        os.kill(child.pid, signal.SIGKILL)  # while it is writing the next one
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    db = ProfileStore(path)
    assert db.moved_aside is None
    ids = _ids(tmp_path)
    assert set(committed) <= set(ids) and len(ids) <= len(committed) + 1  # at most the one in flight on top
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [c.label for c in db.corrections()][:40] == [i % 10 for i in range(40)]


# ------------------------------------------------------------------------------------------- a corrupt file
@needs_models
def test_a_corrupt_database_is_moved_aside_and_said_once(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / PROFILE_DB).write_bytes(b"this is not a database" * 100)
    r = subprocess.run([PY, "recognize.py", "--profile-stats", "--profile", str(folder)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("moved to") == 1 and "Traceback" not in r.stderr, r.stderr
    [aside] = folder.glob(f"{PROFILE_DB}.corrupt-*")
    assert aside.read_bytes() == b"this is not a database" * 100 and str(aside) in r.stderr


def test_serve_says_a_corrupt_database_was_moved_once(tmp_path, caplog):
    import logging

    import serve

    (tmp_path / PROFILE_DB).write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.INFO):
        profile = serve.open_profile(str(tmp_path), ModelStore(MODELS), False, logging.getLogger("serve"))
    assert profile is not None and profile.moved_aside is not None
    said = [r for r in caplog.records if "moved" in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(said) == 1, [r.getMessage() for r in said]
