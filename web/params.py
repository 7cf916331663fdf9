"""The request's parameters, checked before anything is read: each parser answers the value or raises a 422
ApiError that says what to send (the handlers in web/routes.py call them; nothing here knows the app)."""

from __future__ import annotations

import json
import math

from recognizer import DEFAULT_THRESHOLD
from recognizer.paper_reader import SOURCES
from recognizer.profile_store import MAX_READING_KEY

from .errors import ApiError

READING_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
LIST_LIMIT = 100          # corrections GET /api/corrections answers by default (newest first)
MAX_READING_DIGITS = 1000


def parse_source(raw) -> str:
    if raw in (None, ""):
        return "auto"
    if raw not in SOURCES:
        raise ApiError(422, f"source {raw!r} is not one of {', '.join(SOURCES)}; auto reads drawings as a canvas "
                            "and scans or photos of paper line by line")
    return raw


def parse_threshold(raw) -> float:
    if raw is None or raw == "":
        return DEFAULT_THRESHOLD
    try:
        t = float(raw)
    except (TypeError, ValueError):
        raise ApiError(422, f"threshold {raw!r} is not a number; give one between 0 and 1, e.g. 0.5") from None
    if not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise ApiError(422, f"threshold {raw!r} is outside [0, 1]; e.g. 0.5 shows digits under 50% as '?'")
    return t


def is_on(raw) -> bool:
    return str(raw).strip().lower() in ("1", "true", "yes", "on")


def check_text(raw) -> str:
    """The `text` of a correction, checked before anything is read: 422 with what to send."""
    if raw is None or not str(raw).strip():
        raise ApiError(422, "no text: send the right text as 'text', one character per digit read (a digit "
                            "0-9, or '?' to skip one), e.g. -F text=7 or text=?4?; nothing stored")
    text = str(raw)
    if len(text) > 4 * MAX_READING_DIGITS:
        raise ApiError(422, f"text is {len(text)} characters long; a reading has at most "
                            f"{MAX_READING_DIGITS} digits; nothing stored")
    bad = [c for c in text if not c.isspace() and c not in "?_" and not (c.isascii() and c.isdigit())]
    if bad:
        raise ApiError(422, f"text {text!r} holds {bad[0]!r}: the right text may hold only digits 0-9 and '?' "
                            "for a digit to skip; nothing stored")
    return text


def check_key(raw) -> str | None:
    """The `reading` a correction names (None: none), checked before anything is read: 422 with what to send."""
    if raw is None or raw == "":
        return None
    key = str(raw)
    if len(key) > MAX_READING_KEY or not set(key) <= READING_KEY_CHARS:
        raise ApiError(422, f"reading {key[:80]!r} is not a reading's name: give 1 to {MAX_READING_KEY} letters, "
                            "digits, '-' or '_' (or leave it out); nothing stored")
    return key


def parse_correction_id(raw: str) -> int:
    try:
        cid = int(raw)
    except ValueError:
        cid = -1
    if cid < 1:
        raise ApiError(422, f"{raw!r} is not a correction's id; GET /api/corrections lists them")
    return cid


def parse_limit(raw) -> int:
    if raw is None or raw == "":
        return LIST_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 10_000:
        raise ApiError(422, f"limit={raw!r}: give a whole number from 1 to 10000")
    return limit


def parse_count(body: bytes) -> tuple[int, bool]:
    example = 'send JSON like {"digits": 3, "adapted": false}'
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(422, f"the body is not JSON; {example}") from None
    if not isinstance(data, dict) or "digits" not in data:
        raise ApiError(422, f"no 'digits' in the body; {example}")
    digits, adapted = data["digits"], data.get("adapted", False)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_READING_DIGITS:
        raise ApiError(422, f"'digits' must be a whole number from 1 to {MAX_READING_DIGITS}, got {digits!r}")
    if not isinstance(adapted, bool):
        raise ApiError(422, f"'adapted' must be true or false, got {adapted!r}")
    return digits, adapted


def parse_flag(name: str, raw, default: bool, meaning: str) -> bool:
    if raw is None or raw == "":
        return default
    v = str(raw).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ApiError(422, f"{name}={raw!r}: give true ({meaning}) or false")


def parse_keep(raw) -> bool:
    return parse_flag("keep", raw, True, "export the corrections first, the default")
