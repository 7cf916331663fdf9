"""A writer's corrections, counts and adaptations in one SQLite database per profile.

Why SQLite: the app, recognize.py and serve.py may write to the same profile at once; SQLite in WAL mode gives
them transactions across processes, and a half-written correction never exists. Every operation opens its own
short connection (threads and processes alike; a connection per call costs ~0.1 ms).

What is kept (nothing else: a drawing is stored only when it was corrected):
  * corrections: per digit the prepared 28x28 input the model saw, its crop as PNG, the right label, what the
    reader read with its probabilities, model, base-model checksum, whether an adaptation read it, source, time;
  * usage: per day, digits read and digits corrected, with and without an adaptation (the error rate in use);
  * adaptations: every attempt per model and base checksum, accepted or refused and why, with the head if kept.

A database that SQLite cannot read is never replaced in place: it is moved aside with a timestamp (the path is
in `moved_aside`, and logged) and a fresh one is made.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from common.atomic import write_text

from .errors import RecognizerError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
EXPORT_FORMAT = "digit-recognizer corrections"
BUSY_TIMEOUT_MS = 10_000  # another process writing: wait this long before giving up
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


class CorrectionStore:
    """The profile database at `path` (made on first use)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.moved_aside: Path | None = None
        self._open_checked()

    # ------------------------------------------------------------------------ opening
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA synchronous=NORMAL")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open_checked(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecognizerError(f"cannot create the profile folder {self.path.parent}: {exc.strerror}") from None
        try:
            self._initialise()
        except sqlite3.DatabaseError as exc:  # not a database, malformed, wrong schema...
            self.moved_aside = self._move_aside(exc)
            try:
                self._initialise()
            except sqlite3.Error as again:
                raise RecognizerError(f"cannot make a profile database at {self.path}: {again}") from None
        except sqlite3.Error as exc:  # unwritable folder, locked for longer than the timeout...
            raise RecognizerError(f"cannot open the profile database {self.path}: {exc}") from None

    def _initialise(self) -> None:
        with self._connect() as con:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
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
        log.warning("the profile database %s could not be read (%s); it was moved to %s and a new one started",
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
        if not (isinstance(label, (int, np.integer)) and 0 <= int(label) <= 9):
            raise RecognizerError(f"a correction's label is a digit 0-9, got {label!r}")
        if source not in SOURCES:
            raise RecognizerError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
        keyed = reading is not None or digit is not None
        if keyed and not (isinstance(reading, str) and 0 < len(reading) <= MAX_READING_KEY and
                          isinstance(digit, (int, np.integer)) and int(digit) >= 0):
            raise RecognizerError(f"a correction of one digit of a reading needs the reading's key (1-"
                                  f"{MAX_READING_KEY} characters) and the digit's place (0 or more), got "
                                  f"{reading!r} and {digit!r}")
        blob = _encode_input(input)
        created = time.time() if created is None else float(created)
        probs = None if probabilities is None else json.dumps([round(float(p), 6) for p in probabilities])
        with self._transaction() as con:
            if keyed:
                old = con.execute("SELECT correction FROM reading_digits WHERE reading=? AND digit=?",
                                  (reading, int(digit))).fetchone()
                if old is not None:
                    self._remove(con, old[0])
            cur = con.execute(
                "INSERT OR IGNORE INTO corrections (created, label, read, probabilities, model, base_sha256, adapted,"
                " source, input, crop_png, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (created, int(label), None if read is None else int(read), probs, model, base_sha256, int(adapted),
                 source, blob, crop_png, _digest(created, int(label), blob)))
            if not cur.rowcount:
                return None
            if keyed:
                con.execute("INSERT OR REPLACE INTO reading_digits (reading, digit, correction) VALUES (?, ?, ?)",
                            (reading, int(digit), cur.lastrowid))
            if read is not None and int(read) != int(label) and source != "import":
                self._count(con, adapted, corrected=1)
            return int(cur.lastrowid)

    def _row(self, r) -> Correction:
        return Correction(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None, r[5], r[6], bool(r[7]), r[8],
                          _decode_input(r[9]), r[10])

    def corrections(self, limit: int | None = None) -> list[Correction]:
        """All corrections, oldest first (`limit`: the newest `limit`)."""
        sql = ("SELECT id, created, label, read, probabilities, model, base_sha256, adapted, source, input, crop_png"
               " FROM corrections ORDER BY id")
        with self._connect() as con:
            rows = [self._row(r) for r in con.execute(sql)]
        return rows[-limit:] if limit else rows

    def training_set(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(inputs (N, 28, 28, 1), labels (N,), id of the newest) of every correction: what adapting fits on."""
        with self._connect() as con:
            rows = con.execute("SELECT id, label, input FROM corrections ORDER BY id").fetchall()
        if not rows:
            return np.zeros((0, 28, 28, 1), np.float32), np.zeros(0, np.int64), 0
        x = np.stack([_decode_input(r[2]) for r in rows])[..., None]
        return x, np.array([r[1] for r in rows], np.int64), int(rows[-1][0])

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
            return [{"day": r[0], "adapted": bool(r[1]), "readings": r[2], "digits": r[3], "corrected": r[4]}
                    for r in rows]

    def confusions(self, top: int = 5) -> list[dict]:
        """The writer's most frequent misreadings: (read, right label, count), most frequent first."""
        with self._connect() as con:
            rows = con.execute("SELECT read, label, COUNT(*) AS n FROM corrections WHERE read IS NOT NULL AND "
                               "read != label GROUP BY read, label ORDER BY n DESC, read, label LIMIT ?", (top,))
            return [{"read": r[0], "label": r[1], "count": r[2]} for r in rows]

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

    def latest_adaptation(self, model: str, base_sha256: str, accepted_only: bool = False) -> dict | None:
        """The newest attempt (or accepted adaptation) for this model and base checksum, with its head bytes."""
        sql = ("SELECT id, created, corrections, last_correction, accepted, reason, report, head FROM adaptations "
               "WHERE model=? AND base_sha256=?" + (" AND accepted=1" if accepted_only else "") +
               " ORDER BY id DESC LIMIT 1")
        with self._connect() as con:
            r = con.execute(sql, (model, base_sha256)).fetchone()
        if r is None:
            return None
        return {"id": r[0], "created": r[1], "corrections": r[2], "last_correction": r[3], "accepted": bool(r[4]),
                "reason": r[5], "report": json.loads(r[6]), "head": r[7]}

    def adaptation_history(self) -> list[dict]:
        with self._connect() as con:
            rows = con.execute("SELECT created, model, corrections, accepted, report FROM adaptations ORDER BY id")
            return [{"created": dt.datetime.fromtimestamp(r[0]).isoformat(timespec="seconds"), "model": r[1],
                     "corrections": r[2], "accepted": bool(r[3]), **json.loads(r[4])} for r in rows]

    # ---------------------------------------------------------------- export / import
    def export(self, target: str | os.PathLike) -> int:
        """Write every correction to a JSON file (atomically); returns how many."""
        items = []
        for c in self.corrections():
            items.append({"created": c.created, "label": c.label, "read": c.read, "probabilities": c.probabilities,
                          "model": c.model, "base_sha256": c.base_sha256, "adapted": c.adapted, "source": c.source,
                          "input": base64.b64encode(_encode_input(c.input)).decode(),
                          "crop_png": base64.b64encode(c.crop_png).decode() if c.crop_png else None})
        write_text(target, json.dumps({"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "corrections": items}))
        return len(items)

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

    def reset(self) -> None:
        """Forget every correction, count and adaptation (the caller exports first unless told not to)."""
        with self._transaction() as con:
            for table in ("corrections", "reading_digits", "usage", "adaptations"):
                con.execute(f"DELETE FROM {table}")
