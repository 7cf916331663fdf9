"""The profile's database: a writer's corrections, reading counts and adaptations, one SQLite file per profile.

Why SQLite: the app, recognize.py and serve.py may write to the same profile at once; SQLite in WAL mode gives
them transactions across processes, and a half-written correction never exists. Every operation opens its own
short connection (threads and processes alike; a connection per call costs ~0.1 ms).

What is kept (nothing else: a drawing is stored only when it was corrected):
  * corrections: per digit the prepared 28x28 input the model saw, its crop as PNG, the right label, what the
    reader read with its probabilities, model, base-model checksum, whether an adaptation read it, source, time;
  * usage: per day, digits read and digits corrected, with and without an adaptation (the error rate in use);
  * adaptations: every attempt per model and base checksum, accepted or refused and why, with the head if kept.

A database that is not one (damaged, or another file) is never replaced in place: it is moved aside with a
timestamp (the path is in `moved_aside`; the caller tells the user) and a fresh one is made. A healthy database
that cannot be opened for writing (a read-only folder or file) is opened read-only instead: reading with it
works, and every write says why it cannot be made (`read_only`). One that cannot be opened at all (permission
denied) is left alone and RecognizerError says why. Every SQLite error a user can cause (another program
holding the write lock past BUSY_TIMEOUT_S, a read-only or damaged file) becomes a RecognizerError with a
message; nothing reaches the user as a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from common.atomic import write_text, write_text_new

from .errors import RecognizerError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
EXPORT_FORMAT = "digit-recognizer corrections"
BUSY_TIMEOUT_S = 10.0  # another process writing: wait this long before giving up (tests make it short)
MAX_ID = 2**63 - 1  # SQLite's largest row id: a bigger number names no correction
MAX_READING_KEY = 64      # characters of the key a client gives one reading (see `add`)
SOURCES = ("app", "web", "cli", "import", "bench")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    read INTEGER CHECK (read BETWEEN 0 AND 9),
    probabilities TEXT,
    model TEXT NOT NULL,
    base_sha256 TEXT,
    adapted INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    input BLOB NOT NULL,
    crop_png BLOB,
    digest TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS reading_digits (
    reading TEXT NOT NULL, digit INTEGER NOT NULL, correction INTEGER NOT NULL,
    PRIMARY KEY (reading, digit)
);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, adapted INTEGER NOT NULL, readings INTEGER NOT NULL DEFAULT 0,
    digits INTEGER NOT NULL DEFAULT 0, corrected INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, adapted)
);
CREATE TABLE IF NOT EXISTS adaptations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    base_sha256 TEXT NOT NULL,
    corrections INTEGER NOT NULL,
    last_correction INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT NOT NULL,
    report TEXT NOT NULL,
    head BLOB
);
"""


@dataclass(frozen=True)
class Correction:
    id: int
    created: float
    label: int
    read: int | None
    probabilities: list | None
    model: str
    base_sha256: str | None
    adapted: bool
    source: str
    input: np.ndarray  # (28, 28) float32 in [0, 1]
    crop_png: bytes | None

    def summary(self) -> dict:
        when = dt.datetime.fromtimestamp(self.created).isoformat(timespec="seconds")
        return {"id": self.id, "created": when, "label": self.label, "read": self.read, "model": self.model,
                "adapted": self.adapted, "source": self.source}


@dataclass(frozen=True)
class AdaptationRecord:
    """One stored adaptation attempt of a base model."""

    id: int
    created: float
    corrections: int       # how many corrections it was fitted on
    last_correction: int   # the id of the newest of them
    accepted: bool         # it decides what reads (an accepted head, or with none: the shipped head again)
    reason: str
    report: dict           # adapt.Decision.summary()
    head: bytes | None     # the adapted head (Head.to_bytes), None when refused or set aside


def _encode_input(x: np.ndarray) -> bytes:
    """The normaliser's output is k/255 exactly: stored as 784 bytes, read back bit for bit."""
    x = np.asarray(x, np.float32).reshape(28, 28)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).tobytes()


def _decode_input(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, np.uint8).reshape(28, 28).astype(np.float32) / np.float32(255.0)


def png_bytes(crop: np.ndarray | None) -> bytes | None:
    """A digit's crop (uint8 grey or RGB) as PNG bytes, None for none."""
    if crop is None or np.asarray(crop).size == 0:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(crop, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _digest(created: float, label: int, blob: bytes) -> str:
    return hashlib.sha256(f"{created:.6f}|{label}|".encode() + blob).hexdigest()[:32]


class ProfileStore:
    """The profile database at `path` (made on first use)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.moved_aside: Path | None = None
        self.read_only: str | None = None  # why the profile cannot be written (None: it can)
        self._read_only_uri: str | None = None
        self._open_checked()

    # ------------------------------------------------------------------------ opening
    def _raw_connect(self) -> sqlite3.Connection:
        timeout = float(BUSY_TIMEOUT_S)
        if self._read_only_uri is not None:
            con = sqlite3.connect(self._read_only_uri, uri=True, timeout=timeout, isolation_level=None)
            con.row_factory = sqlite3.Row
            return con
        con = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short connection; every SQLite error in its block becomes a RecognizerError that says what to do."""
        try:
            con = self._raw_connect()
            try:
                yield con
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise RecognizerError(self._explain(exc)) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.check_writable()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def check_writable(self) -> None:
        """RecognizerError, saying why and what to do, when the profile cannot be written."""
        if self.read_only:
            raise RecognizerError(self._read_only_message())

    def _read_only_message(self) -> str:
        return (f"the profile {self.path.parent} is read-only ({self.read_only}): reading with it works, but "
                "corrections, resets and adaptations cannot be stored; make it writable, or use another --profile")

    def _explain(self, exc: sqlite3.Error) -> str:
        """The user's message for an SQLite error (by its result code, not its wording)."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc):
            return (f"the profile database {self.path} is busy: another program (the app, recognize.py or serve.py) "
                    f"has been writing to it for more than {float(BUSY_TIMEOUT_S):g} s; try again when it is done")
        if code == sqlite3.SQLITE_READONLY or self.read_only:
            self.read_only = self.read_only or self._why_not_writable() or "the database file is read-only"
            return self._read_only_message()
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_IOERR):
            return f"cannot open the profile database {self.path}: {self._why_unopenable() or exc}"
        if not isinstance(exc, sqlite3.OperationalError) and isinstance(exc, sqlite3.DatabaseError):
            return (f"the profile database {self.path} is damaged ({exc}); it will be moved aside and a new one "
                    "started the next time the profile is opened")
        return f"the profile database {self.path} failed: {exc}"

    def _why_unopenable(self) -> str | None:
        """Why the operating system refuses the database file (e.g. "permission denied"), None if it does not."""
        try:
            with open(self.path, "rb"):
                pass
        except FileNotFoundError:
            return self._why_not_writable()
        except OSError as exc:
            return (exc.strerror or str(exc)).lower()
        return self._why_not_writable()

    def _why_not_writable(self) -> str | None:
        """Why the database cannot be written here (a read-only folder or file), None when it can."""
        folder = self.path.parent
        if not os.access(folder, os.W_OK):
            return f"its folder {folder} is read-only" if os.access(folder, os.R_OK) else "permission denied"
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return "the database file is read-only"
        return None

    def _open_checked(self) -> None:
        if not self.path.parent.is_dir():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RecognizerError(f"cannot create the profile folder {self.path.parent}: "
                                      f"{(exc.strerror or str(exc)).lower()}") from None
        try:
            self._initialise()
        except sqlite3.OperationalError as exc:  # a healthy file may sit here: never moved aside
            if "locked" in str(exc) or getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
                raise RecognizerError(self._explain(exc)) from None
            self._open_read_only(exc)
        except sqlite3.DatabaseError as exc:  # not a database, malformed, failed its check: moved aside
            try:
                self.moved_aside = self._move_aside(exc)
            except OSError as move:
                raise RecognizerError(f"the profile database {self.path} is damaged ({exc}) and cannot be moved "
                                      f"aside ({(move.strerror or str(move)).lower()}); move it yourself") from None
            try:
                self._initialise()
            except sqlite3.Error as again:
                raise RecognizerError(f"cannot make a profile database at {self.path}: {self._explain(again)}") \
                    from None
        else:
            why = self._why_not_writable()
            if why:
                self.read_only = why

    def _open_read_only(self, exc: sqlite3.OperationalError) -> None:
        """Open an existing, healthy profile that cannot be written, read-only; RecognizerError when it cannot be
        opened at all (it is then left exactly as it was)."""
        why = self._why_unopenable()
        if self.path.is_file() and why != "permission denied":
            quoted = urllib.parse.quote(str(self.path.resolve()))
            # mode=ro needs the WAL index beside it (made by a writer); immutable reads the file as it is, which
            # is right for a folder nobody can write
            for uri in (f"file:{quoted}?mode=ro", f"file:{quoted}?immutable=1"):
                self._read_only_uri = uri
                try:
                    with contextlib.closing(self._raw_connect()) as con:
                        if con.execute("PRAGMA quick_check").fetchone()[0] == "ok" and con.execute(
                                "SELECT value FROM meta WHERE key='schema'").fetchone() is not None:
                            self.read_only = why or "it cannot be written"
                            log.info("profile database %s opened read-only: %s", self.path, self.read_only)
                            return
                except sqlite3.Error:
                    continue
            self._read_only_uri = None
        raise RecognizerError(f"cannot open the profile database {self.path}: {why or exc}") from None

    def _initialise(self) -> None:
        with contextlib.closing(self._raw_connect()) as con:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            tables = {r["name"] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"meta", "corrections", "usage", "adaptations"} <= tables:  # new: made once, by one writer
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise RecognizerError(f"{self.path} was written by a newer version of this program "
                                      f"(schema {row[0]}); update the program to use this profile")

    def _move_aside(self, exc: Exception) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{target}{suffix}"))
        # info, not warning: the caller tells the user (once), with `moved_aside`
        log.info("the profile database %s could not be read (%s); it was moved to %s and a new one started",
                 self.path, exc, target)
        return target

    # -------------------------------------------------------------------- corrections
    def add(self, *, label: int, input: np.ndarray, model: str, source: str, read: int | None = None,
            probabilities=None, base_sha256: str | None = None, adapted: bool = False,
            crop_png: bytes | None = None, created: float | None = None, reading: str | None = None,
            digit: int | None = None) -> int | None:
        """Store one correction; its id (None when this very correction is already stored, e.g. imported twice).
        With `reading` (a key the client gives one reading) and `digit` (the digit's place in it) it replaces the
        correction stored for that digit of that reading, as `delete` would: one record per digit of a reading,
        so a digit set wrong and then right again teaches only the right label."""
        return self.add_all([dict(label=label, input=input, model=model, source=source, read=read,
                                  probabilities=probabilities, base_sha256=base_sha256, adapted=adapted,
                                  crop_png=crop_png, created=created, key=reading, place=digit)])[0]

    def add_all(self, rows: list[dict], reading: tuple[int, bool] | None = None) -> list[int | None]:
        """Store corrections (each a dict of `add`'s arguments, `key` and `place` for its `reading` and `digit`)
        in one transaction; their ids (None: already stored). `reading` = (digits, adapted): also count the
        reading they correct, so that the error rate counts it (the app and the page count their readings
        themselves, when a drawing is cleared)."""
        checked = [self._checked(**row) for row in rows]
        with self._transaction() as con:
            ids = [self._insert(con, row) for row in checked]
            if reading is not None:
                self._count(con, bool(reading[1]), readings=1, digits=int(reading[0]))
        return ids

    @staticmethod
    def _checked(*, label: int, input: np.ndarray, model: str, source: str, read: int | None = None,
                 probabilities=None, base_sha256: str | None = None, adapted: bool = False,
                 crop_png: bytes | None = None, created: float | None = None, key: str | None = None,
                 place: int | None = None) -> dict:
        if not (isinstance(label, (int, np.integer)) and 0 <= int(label) <= 9):
            raise RecognizerError(f"a correction's label is a digit 0-9, got {label!r}")
        if source not in SOURCES:
            raise RecognizerError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
        keyed = key is not None or place is not None
        if keyed and not (isinstance(key, str) and 0 < len(key) <= MAX_READING_KEY and
                          isinstance(place, (int, np.integer)) and int(place) >= 0):
            raise RecognizerError(f"a correction of one digit of a reading needs the reading's key (1-"
                                  f"{MAX_READING_KEY} characters) and the digit's place (0 or more), got "
                                  f"{key!r} and {place!r}")
        blob = _encode_input(input)
        created = time.time() if created is None else float(created)
        probs = None if probabilities is None else json.dumps([round(float(p), 6) for p in probabilities])
        return dict(created=created, label=int(label), read=None if read is None else int(read), probs=probs,
                    model=model, base_sha256=base_sha256, adapted=bool(adapted), source=source, blob=blob,
                    crop_png=crop_png, digest=_digest(created, int(label), blob),
                    key=key, place=None if place is None else int(place))

    def _insert(self, con: sqlite3.Connection, r: dict) -> int | None:
        if r["key"] is not None:  # this digit of this reading corrected again: the new record replaces the old
            old = con.execute("SELECT correction FROM reading_digits WHERE reading=? AND digit=?",
                              (r["key"], r["place"])).fetchone()
            if old is not None:
                self._remove(con, old[0])
        cur = con.execute(
            "INSERT OR IGNORE INTO corrections (created, label, read, probabilities, model, base_sha256, adapted,"
            " source, input, crop_png, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r["created"], r["label"], r["read"], r["probs"], r["model"], r["base_sha256"], int(r["adapted"]),
             r["source"], r["blob"], r["crop_png"], r["digest"]))
        if not cur.rowcount:
            return None
        if r["key"] is not None:
            con.execute("INSERT OR REPLACE INTO reading_digits (reading, digit, correction) VALUES (?, ?, ?)",
                        (r["key"], r["place"], cur.lastrowid))
        if r["read"] is not None and r["read"] != r["label"] and r["source"] != "import":
            self._count(con, r["adapted"], corrected=1)
        return int(cur.lastrowid)

    def _row(self, r) -> Correction:
        return Correction(r["id"], r["created"], r["label"], r["read"],
                          json.loads(r["probabilities"]) if r["probabilities"] else None, r["model"], r["base_sha256"],
                          bool(r["adapted"]), r["source"], _decode_input(r["input"]), r["crop_png"])

    def corrections(self, limit: int | None = None) -> list[Correction]:
        """All corrections, oldest first (`limit`: the newest `limit`)."""
        sql = ("SELECT id, created, label, read, probabilities, model, base_sha256, adapted, source, input, crop_png"
               " FROM corrections ORDER BY id")
        with self._connect() as con:
            rows = [self._row(r) for r in con.execute(sql)]
        return rows[-limit:] if limit else rows

    def training_set(self, newest: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inputs (N, 28, 28, 1), labels (N,), ids (N,)) of the newest `newest` corrections (all when None),
        oldest first: what adapting fits on. The ids tell which came after an adaptation (they only grow)."""
        sql = "SELECT id, label, input FROM corrections ORDER BY id DESC" + (" LIMIT ?" if newest else "")
        with self._connect() as con:
            rows = con.execute(sql, (int(newest),) if newest else ()).fetchall()[::-1]
        if not rows:
            return np.zeros((0, 28, 28, 1), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        x = np.stack([_decode_input(r["input"]) for r in rows])[..., None]
        return x, np.array([r["label"] for r in rows], np.int64), np.array([r["id"] for r in rows], np.int64)

    def newest_id(self) -> int:
        """The id of the newest correction (0 when there is none)."""
        with self._connect() as con:
            return int(con.execute("SELECT COALESCE(MAX(id), 0) FROM corrections").fetchone()[0])

    def crop(self, correction_id: int) -> bytes | None:
        """One correction's crop as PNG bytes (None when it has none, or there is no such correction)."""
        with self._connect() as con:
            row = con.execute("SELECT crop_png FROM corrections WHERE id=?", (int(correction_id),)).fetchone()
        return row[0] if row else None

    def count(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM corrections").fetchone()[0])

    def delete(self, correction_id: int) -> bool:
        """Remove one correction (and the adaptations fitted on it, which are redone); False if there is none."""
        if not 0 < int(correction_id) <= MAX_ID:
            return False
        with self._transaction() as con:
            return self._remove(con, int(correction_id))

    @staticmethod
    def _remove(con, correction_id: int) -> bool:
        row = con.execute("SELECT created, label, read, adapted, source FROM corrections WHERE id=?",
                          (correction_id,)).fetchone()
        if row is None:
            return False
        con.execute("DELETE FROM corrections WHERE id=?", (correction_id,))
        con.execute("DELETE FROM reading_digits WHERE correction=?", (correction_id,))
        con.execute("DELETE FROM adaptations")
        created, label, read, adapted, source = row
        if read is not None and read != label and source != "import":  # an undone correction is not counted
            con.execute("UPDATE usage SET corrected=corrected-1 WHERE day=? AND adapted=? AND corrected>0",
                        (dt.date.fromtimestamp(created).isoformat(), adapted))
        return True

    # ------------------------------------------------------------------------- usage
    @staticmethod
    def _count(con, adapted: bool, readings: int = 0, digits: int = 0, corrected: int = 0) -> None:
        day = dt.date.today().isoformat()
        con.execute("INSERT INTO usage (day, adapted, readings, digits, corrected) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (day, adapted) DO UPDATE SET readings=readings+excluded.readings, "
                    "digits=digits+excluded.digits, corrected=corrected+excluded.corrected",
                    (day, int(adapted), readings, digits, corrected))

    def count_reading(self, digits: int, adapted: bool) -> None:
        """One reading shown to the user, with `digits` digits (counts only: the drawing is not stored)."""
        with self._transaction() as con:
            self._count(con, adapted, readings=1, digits=int(digits))

    def usage(self) -> list[dict]:
        with self._connect() as con:
            rows = con.execute("SELECT day, adapted, readings, digits, corrected FROM usage ORDER BY day, adapted")
            return [{**dict(r), "adapted": bool(r["adapted"])} for r in rows]

    def confusions(self, top: int = 5) -> list[dict]:
        """The writer's most frequent misreadings: (read, right label, count), most frequent first."""
        with self._connect() as con:
            rows = con.execute("SELECT read, label, COUNT(*) AS n FROM corrections WHERE read IS NOT NULL AND "
                               "read != label GROUP BY read, label ORDER BY n DESC, read, label LIMIT ?", (top,))
            return [{"read": r["read"], "label": r["label"], "count": r["n"]} for r in rows]

    # -------------------------------------------------------------------- adaptations
    def add_adaptation(self, model: str, base_sha256: str, decision_summary: dict, last_correction: int,
                       head_bytes: bytes | None, decides_reading: bool) -> int:
        """One adaptation attempt. Its `accepted` column is `decides_reading`: whether it decides what reads from
        now on (an accepted head; or, with no head, the shipped head again: an adaptation set aside)."""
        with self._transaction() as con:
            cur = con.execute(
                "INSERT INTO adaptations (created, model, base_sha256, corrections, last_correction, accepted, "
                "reason, report, head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), model, base_sha256, int(decision_summary["corrections"]), int(last_correction),
                 int(decides_reading), decision_summary["reason"], json.dumps(decision_summary),
                 head_bytes))
            return int(cur.lastrowid)

    def latest_adaptation(self, model: str, base_sha256: str, accepted_only: bool = False) -> AdaptationRecord | None:
        """The newest attempt (or accepted adaptation) for this model and base checksum, with its head bytes."""
        sql = ("SELECT id, created, corrections, last_correction, accepted, reason, report, head FROM adaptations "
               "WHERE model=? AND base_sha256=?" + (" AND accepted=1" if accepted_only else "") +
               " ORDER BY id DESC LIMIT 1")
        with self._connect() as con:
            r = con.execute(sql, (model, base_sha256)).fetchone()
        if r is None:
            return None
        return AdaptationRecord(r["id"], r["created"], r["corrections"], r["last_correction"], bool(r["accepted"]),
                                r["reason"], json.loads(r["report"]), r["head"])

    # ---------------------------------------------------------------- export / import
    def _export_text(self, con: sqlite3.Connection) -> tuple[int, str]:
        sql = ("SELECT id, created, label, read, probabilities, model, base_sha256, adapted, source, input, crop_png"
               " FROM corrections ORDER BY id")
        items = []
        for c in (self._row(r) for r in con.execute(sql)):
            items.append({"created": c.created, "label": c.label, "read": c.read, "probabilities": c.probabilities,
                          "model": c.model, "base_sha256": c.base_sha256, "adapted": c.adapted, "source": c.source,
                          "input": base64.b64encode(_encode_input(c.input)).decode(),
                          "crop_png": base64.b64encode(c.crop_png).decode() if c.crop_png else None})
        return len(items), json.dumps({"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "corrections": items})

    def export(self, target: str | os.PathLike) -> tuple[int, Path]:
        """Write every correction to a JSON file (atomically); (how many, the file). A folder as `target` gets a
        new file inside it (corrections-<time>.json), never replacing one."""
        target = Path(target)
        with self._connect() as con:
            n, text = self._export_text(con)
        try:
            if target.is_dir():
                return n, write_text_new(target / f"corrections-{time.strftime('%Y%m%d-%H%M%S')}.json", text)
            write_text(target, text)
        except OSError as exc:
            raise RecognizerError(f"cannot write {target}: {(exc.strerror or str(exc)).lower()}") from None
        return n, target

    def import_file(self, source: str | os.PathLike) -> tuple[int, int]:
        """Add the corrections of an exported file; (added, already there). Checks everything before adding."""
        source = Path(source)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RecognizerError(f"cannot read {source}: {exc.strerror or exc}") from None
        except ValueError:
            raise RecognizerError(f"{source} is not an exported corrections file (not JSON)") from None
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT or \
                not isinstance(data.get("corrections"), list):
            raise RecognizerError(f"{source} is not an exported corrections file (made by recognize.py "
                                  "--corrections export)")
        rows = []
        for i, item in enumerate(data["corrections"]):
            try:
                blob = base64.b64decode(item["input"], validate=True)
                if len(blob) != 28 * 28:
                    raise ValueError("input is not 28x28")
                crop = base64.b64decode(item["crop_png"], validate=True) if item.get("crop_png") else None
                label = int(item["label"])
                if not 0 <= label <= 9:
                    raise ValueError(f"label {label}")
                rows.append(dict(label=label, input=_decode_input(blob), model=str(item["model"]),
                                 read=None if item.get("read") is None else int(item["read"]),
                                 probabilities=item.get("probabilities"), base_sha256=item.get("base_sha256"),
                                 adapted=bool(item.get("adapted")), crop_png=crop, created=float(item["created"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise RecognizerError(f"{source}: correction {i + 1} is malformed ({exc}); nothing imported") from None
        added = sum(self.add(source="import", **row) is not None for row in rows)
        return added, len(rows) - added

    def reset(self, export_to: str | os.PathLike | None = None) -> Path | None:
        """Forget every correction, count and adaptation. With `export_to`, first keep the corrections there
        (another name when that one is taken: an export never replaces a file); the file written, None when
        there was nothing to keep. One transaction: a correction made meanwhile is exported, or stays."""
        kept = None
        with self._transaction() as con:
            if export_to is not None:
                n, text = self._export_text(con)
                if n:
                    try:
                        kept = write_text_new(export_to, text)
                    except OSError as exc:
                        raise RecognizerError(f"cannot keep the corrections in {export_to} "
                                              f"({(exc.strerror or str(exc)).lower()}); nothing was forgotten") from None
            for table in ("corrections", "reading_digits", "usage", "adaptations"):
                con.execute(f"DELETE FROM {table}")
        return kept
