"""One record per digit of a reading (issue 40): correcting the same digit again replaces its correction.

The page names each reading it shows (a random key) and sends the digit's place with every correction; the store
keeps one correction per (reading, digit), so a 9 set to 2 by mistake and then back to 9 leaves the 9 alone, and
its misread count is taken back like a deleted correction's.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.names import PROFILE_DB
from recognizer import RecognizerError
from recognizer.profile_store import ProfileStore


def _digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28)).astype(np.float32) / 255.0


def _add(db: ProfileStore, label: int, read: int, reading: str | None, digit: int | None, seed: int = 1):
    return db.add(label=label, input=_digit(seed), model="cnn", source="web", read=read, base_sha256="abc",
                  reading=reading, digit=digit)


def _misreads(db: ProfileStore) -> int:
    return sum(r["corrected"] for r in db.usage())


def test_correcting_a_digit_again_replaces_its_correction(tmp_path):
    db = ProfileStore(tmp_path / PROFILE_DB)
    first = _add(db, label=2, read=9, reading="r1", digit=0)     # a 9 set to 2 by mistake ...
    assert _misreads(db) == 1 and db.confusions() == [{"read": 9, "label": 2, "count": 1}]
    again = _add(db, label=9, read=9, reading="r1", digit=0)     # ... and back: a confirmation of the 9
    assert again != first
    [c] = db.corrections()
    assert (c.id, c.label, c.read) == (again, 9, 9)
    assert _misreads(db) == 0 and db.confusions() == []
    x, y, newest = db.training_set()
    assert y.tolist() == [9] and newest == again


def test_other_digits_and_other_readings_keep_their_own_records(tmp_path):
    db = ProfileStore(tmp_path / PROFILE_DB)
    ids = [_add(db, 4, 4, "r1", 0), _add(db, 7, 7, "r1", 1), _add(db, 1, 1, "r1", 2),
           _add(db, 4, 4, "r2", 0, seed=2), _add(db, 5, 3, None, None, seed=3), _add(db, 5, 3, None, None, seed=4)]
    assert [c.id for c in db.corrections()] == ids and _misreads(db) == 2
    replaced = _add(db, 1, 7, "r1", 1)
    assert [c.label for c in db.corrections()] == [4, 1, 4, 5, 5, 1]
    assert [c.id for c in db.corrections()] == ids[:1] + ids[2:] + [replaced] and _misreads(db) == 3


def test_a_replacement_drops_the_adaptations_fitted_on_the_old_label(tmp_path):
    db = ProfileStore(tmp_path / PROFILE_DB)
    first = _add(db, 2, 9, "r1", 0)
    db.add_adaptation("cnn", "abc", {"corrections": 1, "reason": "kept"}, first, b"head", decides_reading=True)
    assert db.latest_adaptation("cnn", "abc") is not None
    _add(db, 9, 9, "r1", 0)
    assert db.latest_adaptation("cnn", "abc") is None


def test_a_deleted_or_forgotten_correction_frees_its_digit(tmp_path):
    db = ProfileStore(tmp_path / PROFILE_DB)
    gone = _add(db, 2, 9, "r1", 0)
    assert db.delete(gone) and db.count() == 0 and _misreads(db) == 0
    kept = _add(db, 9, 9, "r1", 0)
    assert [c.id for c in db.corrections()] == [kept]
    db.reset()
    new = _add(db, 3, 9, "r1", 0)
    assert [c.id for c in db.corrections()] == [new] and _misreads(db) == 1


@pytest.mark.parametrize("reading,digit", [("r1", None), (None, 0), ("r1", -1), ("", 0), ("r" * 65, 0)])
def test_a_half_or_bad_key_is_refused_and_nothing_is_stored(tmp_path, reading, digit):
    db = ProfileStore(tmp_path / PROFILE_DB)
    with pytest.raises(RecognizerError, match="reading"):
        _add(db, 2, 9, reading, digit)
    assert db.count() == 0 and db.usage() == []
