"""A writer's profile: the corrections database, adaptation and its refusals, redo after a model update, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from common.names import PROFILE_DB
from recognizer import ModelStore, Recognizer, RecognizerError
from recognizer.adapt import AdaptSettings, Rehearsal, decide, fit, typical_margins, update_basis
from recognizer.profile_store import ProfileStore
from recognizer.head import load_base_head
from recognizer.profile import Profile, resolve_profile_dir

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def _digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28)).astype(np.float32) / 255.0


def _add(db: ProfileStore, label: int, seed: int, read: int | None = None, source: str = "cli"):
    return db.add(label=label, input=_digit(seed), model="cnn", source=source, read=read,
                  probabilities=np.full(10, 0.1), base_sha256="abc", crop_png=b"\x89PNG fake")


# ------------------------------------------------------------------------------------------ database
def test_a_correction_comes_back_bit_for_bit(tmp_path):
    db = ProfileStore(tmp_path / PROFILE_DB)
    cid = _add(db, 7, seed=1, read=1)
    [c] = db.corrections()
    assert c.id == cid and c.label == 7 and c.read == 1 and c.model == "cnn" and c.source == "cli"
    assert np.array_equal(c.input, _digit(1)) and c.crop_png == b"\x89PNG fake" and c.probabilities == [0.1] * 10
    x, y, newest = db.training_set()
    assert x.shape == (1, 28, 28, 1) and y.tolist() == [7] and newest == cid
    assert db.confusions() == [{"read": 1, "label": 7, "count": 1}]
    with sqlite3.connect(tmp_path / PROFILE_DB) as con:  # WAL: readers and one writer at once, across processes
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("label,source", [(10, "cli"), (-1, "cli"), ("7", "cli"), (3, "somewhere")])
def test_bad_corrections_are_refused_and_nothing_is_stored(tmp_path, label, source):
    db = ProfileStore(tmp_path / PROFILE_DB)
    with pytest.raises(RecognizerError):
        _add(db, label, seed=0, source=source)
    assert db.count() == 0


def _writer(folder: str, first: int, n: int) -> None:
    db = ProfileStore(Path(folder) / PROFILE_DB)
    for i in range(n):
        _add(db, (first + i) % 10, seed=first + i)
        db.count_reading(3, adapted=False)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), k * 1000, 40)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    db = ProfileStore(tmp_path / PROFILE_DB)
    assert db.count() == 80
    assert sum(r["readings"] for r in db.usage()) == 80 and sum(r["digits"] for r in db.usage()) == 240


def test_a_corrupt_database_is_moved_aside_never_replaced(tmp_path):
    path = tmp_path / PROFILE_DB
    path.write_bytes(b"this is not a database" * 100)
    db = ProfileStore(path)
    assert db.moved_aside is not None and db.moved_aside.read_bytes() == b"this is not a database" * 100
    assert db.moved_aside.name.startswith(f"{PROFILE_DB}.corrupt-") and db.count() == 0
    _add(db, 3, seed=3)  # the fresh one works
    assert db.count() == 1


def test_export_import_round_trip_and_no_duplicates(tmp_path):
    a = ProfileStore(tmp_path / "a" / PROFILE_DB)
    for i in range(5):
        _add(a, i, seed=i, read=(i + 1) % 10)
    assert a.export(tmp_path / "out.json") == (5, tmp_path / "out.json")
    b = ProfileStore(tmp_path / "b" / PROFILE_DB)
    assert b.import_file(tmp_path / "out.json") == (5, 0)
    assert b.import_file(tmp_path / "out.json") == (0, 5)  # importing twice adds nothing
    got, want = b.corrections(), a.corrections()
    assert [c.label for c in got] == [c.label for c in want]
    assert all(np.array_equal(g.input, w.input) and g.crop_png == w.crop_png for g, w in zip(got, want))


@pytest.mark.parametrize("content", ["not json", json.dumps({"format": "other"}), json.dumps(
    {"format": "digit-recognizer corrections", "corrections": [{"label": 3, "input": "AAAA", "model": "cnn",
                                                                "created": 1.0}]})])
def test_a_bad_import_file_is_refused_whole(tmp_path, content):
    db = ProfileStore(tmp_path / PROFILE_DB)
    _add(db, 1, seed=1)
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(RecognizerError, match="bad.json"):
        db.import_file(tmp_path / "bad.json")
    assert db.count() == 1


def test_export_into_a_folder_writes_a_new_file_there_never_over_one(tmp_path, monkeypatch):
    db = ProfileStore(tmp_path / "p" / PROFILE_DB)
    _add(db, 1, seed=1)
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "20260101-120000")
    (tmp_path / "out").mkdir()
    n, first = db.export(tmp_path / "out")
    _add(db, 2, seed=2)
    m, second = db.export(tmp_path / "out")
    assert (n, m) == (1, 2) and first.parent == second.parent == tmp_path / "out" and first != second
    assert [len(json.loads(f.read_text())["corrections"]) for f in (first, second)] == [1, 2]


def test_delete_removes_one_correction_and_its_count(tmp_path):
    db = ProfileStore(tmp_path / PROFILE_DB)
    keep, gone = _add(db, 1, seed=1, read=7), _add(db, 2, seed=2, read=3)
    assert sum(r["corrected"] for r in db.usage()) == 2
    assert db.delete(gone) and not db.delete(gone) and not db.delete(12345)
    assert [c.id for c in db.corrections()] == [keep] and sum(r["corrected"] for r in db.usage()) == 1
    assert not db.delete(10**23) and not db.delete(-1) and db.count() == 1  # no id that large: none to delete


# ------------------------------------------------------------------------------------------ adaptation
@pytest.fixture(scope="module")
def cnn_base():
    return load_base_head(MODELS / "cnn.adapt.npz")


def test_the_numpy_head_is_the_models_own(cnn_base):
    store = ModelStore(MODELS)
    batch = np.stack([_digit(i) for i in range(8)])[..., None]
    raw = ModelStore(MODELS, calibrated=False).predict("cnn", batch)
    assert np.abs(cnn_base.head.probabilities(store.features("cnn", batch)) - raw).max() < 1e-4


@pytest.mark.parametrize("shown,truth", [(1, 7), (0, 8)])
def test_a_deliberately_mislabelled_set_is_refused(cnn_base, shown, truth):
    """Every 1 called a 7 (or every 0 an 8): consistent, so held-out corrections agree, but it would break how
    everyone else's digits are read; it must be refused (rehearsing the shipped model's own digits next to
    each correction leaves it nothing it reads better; without that rehearsal the guards refuse it)."""
    x, y = cnn_base.stats.sample(30, np.random.default_rng(0))
    for settings in (AdaptSettings(), AdaptSettings(neighbours=0)):
        d = decide(cnn_base.head, cnn_base.stats, x[y == shown], np.full(30, truth), settings)
        assert not d.accepted and d.head is None, d.reason


def test_typical_margins_see_a_class_taken_away(cnn_base):
    """Every 1 taught as a 7, unguarded: the per-class measure of the second guard says the 1s lost most (their
    typical margin turns negative: read as 7), while the shipped head itself keeps all of every margin."""
    same = typical_margins(cnn_base.head, cnn_base.head, cnn_base.stats, AdaptSettings())
    assert same == pytest.approx(np.ones(10))
    x, y = cnn_base.stats.sample(30, np.random.default_rng(0))
    unguarded = AdaptSettings(guard_agreement=0.0, guard_target=0.0, typical_margin=-np.inf, neighbours=0)
    d = decide(cnn_base.head, cnn_base.stats, x[y == 1], np.full(30, 7), unguarded)
    kept = typical_margins(d.head, cnn_base.head, cnn_base.stats, AdaptSettings())
    assert d.accepted and kept.argmin() == 1 and kept[1] < 0 and np.median(kept) > 0.8


REAL_HANDWRITING = ROOT.parent / "shared/data/handwriting"


@pytest.fixture(scope="module")
def real_pen_digits():
    """Features and labels of the pen validation writers (real digits no model trained on), when present."""
    if not (REAL_HANDWRITING / "pendigits").exists():
        pytest.skip(f"real handwriting not found at {REAL_HANDWRITING}")
    from study.handwriting import load_handwriting

    val = load_handwriting(REAL_HANDWRITING, sets=["pendigits"]).val
    store = ModelStore(MODELS)
    return store.features("cnn", val.x), val.y.astype(np.int64)


@pytest.mark.parametrize("shown,taught", [(1, 7), (0, 8), (4, 9), (3, 5), (7, 1), (2, 3), (6, 5), (8, 3)])
def test_real_digits_of_a_class_taught_as_another_are_refused(cnn_base, real_pen_digits, shown, taught):
    """30 real pen digits of one class all labelled as another: left unguarded such a set costs everyone else
    1-9 points of accuracy (docs/RESULTS.md); between-class agreement alone let some through."""
    features, labels = real_pen_digits
    idx = np.random.default_rng(shown).choice(np.flatnonzero(labels == shown), 30, replace=False)
    d = decide(cnn_base.head, cnn_base.stats, features[idx], np.full(30, taught))
    assert not d.accepted and d.head is None, d.reason


def test_random_labels_are_refused(cnn_base):
    x, y = cnn_base.stats.sample(5, np.random.default_rng(1))
    d = decide(cnn_base.head, cnn_base.stats, x, np.random.default_rng(2).integers(0, 10, len(y)))
    assert not d.accepted


def _four_nine_writer(base):
    """A writer whose 4s lie between the model's 4s and 9s and are read as 9 (features 35% a 4, 65% a 9): 20
    of them corrected to 4 and 10 of their own 9s confirmed; their other such 4s and the model's own 9s."""
    x, y = base.stats.sample(200, np.random.default_rng(3))
    fours, nines = x[y == 4], x[y == 9]
    mixed = 0.35 * fours + 0.65 * nines
    styled = mixed[base.head.logits(mixed).argmax(1) == 9]
    assert len(styled) >= 60
    taught = np.concatenate([styled[:20], nines[100:110]])
    labels = np.concatenate([np.full(20, 4), np.full(10, 9)])
    return taught, labels, styled[20:60], nines[:100]


def test_a_real_style_is_learned_and_read(cnn_base):
    """After adapting, the writer's other such digits read as 4, while the model's own 9s stay 9s."""
    taught, labels, rest, nines = _four_nine_writer(cnn_base)
    d = decide(cnn_base.head, cnn_base.stats, taught, labels)
    assert d.accepted, d.reason
    assert d.held_out_errors_before == 20 and d.held_out_errors_after < 10
    assert (d.head.logits(rest).argmax(1) == 4).mean() > 0.7
    assert (d.head.logits(nines).argmax(1) == 9).mean() > 0.95


def test_held_out_fits_move_the_first_layer_only_along_ways_of_writing_and_their_corrections(cnn_base):
    """A held-out fit changes the first layer only in the span of the statistics' component means and the
    corrections it is fitted on (what makes it cheap) and reads the writer's style about as well as a fit over
    all 2,048 features; the head that will read keeps all of them (restricted, its change hid from the guards)."""
    taught, labels, rest, _ = _four_nine_writer(cnn_base)
    rehearsal = Rehearsal.draw(cnn_base.head, cnn_base.stats, 40, 0, 0.5)
    means = cnn_base.stats.mean.reshape(-1, cnn_base.stats.dim)
    basis = update_basis(means, taught)
    assert basis.shape == (2048, 80 + len(taught)) and np.allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-4)
    narrow = fit(cnn_base.head, rehearsal, taught, labels, subspace=True)
    wide = fit(cnn_base.head, rehearsal, taught, labels)

    def outside(head):
        change = head.w1 - cnn_base.head.w1
        return np.linalg.norm(change - basis @ (basis.T @ change)) / np.linalg.norm(change)

    assert outside(narrow) < 1e-4 and outside(wide) > 0.1
    read_as_4 = [(h.logits(rest).argmax(1) == 4).mean() for h in (narrow, wide)]
    assert read_as_4[0] > 0.7 and read_as_4[0] >= read_as_4[1] - 0.1, read_as_4
    d = decide(cnn_base.head, cnn_base.stats, taught, labels)
    assert d.accepted and outside(d.head) > 0.1
    assert update_basis(means, np.ones((1000, 2048), np.float32)) is None


def test_each_fit_step_reads_every_correction_and_one_block_of_the_rehearsal():
    """The rehearsal is split into blocks read one per step in turn (a larger draw at a smaller one's cost per
    step): each block holds every correction and its share of the rehearsal rows, weighted like a whole draw;
    together the blocks hold each rehearsal row once; one block is every row as drawn."""
    from recognizer.adapt import _blocks

    n, m = 5, 21
    x = np.arange((n + m) * 3, dtype=np.float32).reshape(n + m, 3)
    fixed, targets = x[:, :2] * 2, np.eye(10, dtype=np.float32)[np.arange(n + m) % 10]
    blocks = _blocks(x, fixed, targets, n, AdaptSettings(replay_blocks=3, replay_weight=0.5),
                     np.random.default_rng(0))
    assert [len(b[0]) for b in blocks] == [n + 7] * 3
    for bx, bf, bt, w in blocks:
        assert (bx[:n] == x[:n]).all() and (bf == bx[:, :2] * 2).all()
        assert (bt.argmax(1) == bx[:, 0].astype(int) // 3 % 10).all()  # each row keeps its own target
        assert w[:n].sum() == pytest.approx(1.0) and w[n:].sum() == pytest.approx(0.5)
    rehearsed = np.concatenate([b[0][n:] for b in blocks])
    assert sorted(rehearsed[:, 0].tolist()) == x[n:, 0].tolist()  # every rehearsal row once
    assert sorted(blocks[0][0][n:, 0].tolist()) != x[n:n + 7, 0].tolist()  # a seeded partition, not slices
    (whole, *_), = _blocks(x, fixed, targets, n, AdaptSettings(replay_blocks=1), np.random.default_rng(0))
    assert (whole == x).all()


def test_a_style_taught_without_its_neighbour_is_refused_with_the_digit_named(cnn_base):
    """The same 4s corrected with none of the writer's 9s confirmed: the fit takes a typical 9's margin away
    (more than a tenth: no real writer of bench_adapt.py came near it), so it is refused, naming the 9."""
    taught, labels, _, _ = _four_nine_writer(cnn_base)
    alone = AdaptSettings(neighbours=0)  # no rehearsal of the 9s next to the corrections: the typical-margin guard
    d = decide(cnn_base.head, cnn_base.stats, taught[labels == 4], labels[labels == 4], alone)
    assert not d.accepted and "a typical 9" in d.reason and "confirm" in d.reason


def test_a_change_past_the_guards_target_is_scaled_back_just_enough(cnn_base):
    """The same writer with a target between the full change's agreement and 100%: the change is kept in part,
    the part that meets the target, and the reason line says how much."""
    taught, labels, _, _ = _four_nine_writer(cnn_base)
    full = decide(cnn_base.head, cnn_base.stats, taught, labels, AdaptSettings(guard_target=0.0))
    assert full.accepted and full.guard_agreement < 0.995
    target = (full.guard_agreement + 1) / 2
    part = decide(cnn_base.head, cnn_base.stats, taught, labels, AdaptSettings(guard_target=target))
    kept = int(part.reason.split("% of the change kept")[0].rsplit(" ", 1)[1])
    assert part.accepted and 25 <= kept < 100 and part.guard_agreement >= target
    assert not np.allclose(part.head.w2, cnn_base.head.w2) and not np.allclose(part.head.w2, full.head.w2)


def _styled_writer_with_a_typo(base):
    """Three of the 4-9 writer's styled 4s corrected, three of their 9s confirmed, and one ordinary 7 mistyped as
    1; and 7s like the mistyped one (mostly it, partly other 7s)."""
    x, y = base.stats.sample(200, np.random.default_rng(3))
    fours, nines, sevens = x[y == 4], x[y == 9], x[y == 7]
    mixed = 0.35 * fours + 0.65 * nines
    styled = mixed[base.head.logits(mixed).argmax(1) == 9]
    taught = np.concatenate([styled[:3], nines[100:103], sevens[:1]])
    labels = np.concatenate([np.full(3, 4), np.full(3, 9), [1]])
    return taught, labels, 0.8 * sevens[:1] + 0.2 * sevens[1:101]


def test_a_lone_mistyped_label_is_set_aside_and_does_not_flip_its_class(cnn_base):
    """One 7 marked 1 among right corrections: fitted like the others, every 7 like it read 1 (the issue's
    "every textbook 7 turns into a 1"); set aside, they stay 7s and the right corrections are still learned."""
    taught, labels, like = _styled_writer_with_a_typo(cnn_base)
    assert (cnn_base.head.logits(like).argmax(1) == 7).all()
    d = decide(cnn_base.head, cnn_base.stats, taught, labels)
    assert d.accepted and d.ignored == (6,) and "a 7 marked 1" in d.reason, d.reason
    assert (d.head.logits(like).argmax(1) == 7).all()
    assert (d.head.logits(taught[:3]).argmax(1) == 4).sum() >= 2
    # the same set with the rule off (contradiction 0) is what the app did: the 7s read as 1
    old = decide(cnn_base.head, cnn_base.stats, taught, labels, AdaptSettings(contradiction=0.0))
    assert old.accepted and (old.head.logits(like).argmax(1) == 1).mean() > 0.9


def test_a_convention_taught_twice_is_not_set_aside(cnn_base):
    """Two corrections alike (the same reading, the same label) support each other: a writer's own way of
    writing a digit is learned, never taken for a typo."""
    taught, labels, _ = _styled_writer_with_a_typo(cnn_base)
    taught = np.concatenate([taught, taught[-1:] * 0.98])
    labels = np.append(labels, 1)
    d = decide(cnn_base.head, cnn_base.stats, taught, labels)
    assert d.ignored == ()


def test_the_adapted_head_sounds_only_as_sure_as_its_held_out_record():
    """The fit learns corrections as certainties; where a fit misread a correction it did not see, and surely,
    the adapted head's logits are scaled down (shipped temperature applied after); a clean record keeps them."""
    from recognizer.adapt import sharpness

    labels = np.array([0, 1, 2, 3, 4])
    clean = np.eye(10, dtype=np.float32)[labels] * 12
    assert sharpness(clean, labels, temperature=0.6, floor=0.25) == 1.0
    wrong = clean.copy()
    wrong[4] = np.eye(10, dtype=np.float32)[9] * 12  # a 4 read as 9, surely
    s = sharpness(wrong, labels, temperature=0.6, floor=0.25)
    assert 0.25 <= s < 0.6
    p = np.exp(wrong * s / 0.6)
    assert (p / p.sum(1, keepdims=True)).max() < 0.999  # no more "100%"


def test_european_ones_do_not_make_a_rising_seven_read_one_for_sure(tmp_path):
    """The issue's case, drawn like the app draws: three corrections of the writer's European 1 (read 7) are
    learned, yet ordinary 7s whose bar rises a little still read 7, and none reads "1" at 90% or more (the app
    said "1 100%"; before the rehearsal next to corrections, bars rising 10-20% of the height read 1 at 88-99%)."""
    from test_gui_learning import render, seed_eu1

    store = ModelStore(MODELS)
    profile = Profile(tmp_path / "me", store)
    seed_eu1(profile, store, 3)
    assert profile.adapt("cnn")["cnn"].accepted
    adapted, shipped = Recognizer(store, profile=profile), Recognizer(store)
    eu1 = render([[(0.02, 0.12), (0.7, 0.0), (0.6, 1.0)]], 300, 150, 190)
    assert shipped.read(eu1, "cnn").text == "7" and adapted.read(eu1, "cnn").text == "1"
    for rise in (0.05, 0.1, 0.15, 0.2):
        seven = render([[(0.05, 0.02 + rise), (0.95, 0.02), (0.4, 1.0)]], 300, 150, 200)
        assert shipped.read(seven, "cnn").text == "7"
        d = adapted.read(seven, "cnn").digits[0]
        assert d.digit == 7 or (rise >= 0.15 and d.confidence < 0.9), (rise, d.digit, d.confidence)


def test_too_few_corrections_are_not_judged(cnn_base):
    x, _ = cnn_base.stats.sample(1, np.random.default_rng(0))
    d = decide(cnn_base.head, cnn_base.stats, x[:2], np.array([1, 2]))
    assert not d.accepted and "at least" in d.reason


def test_adapting_runs_numpy_on_one_blas_thread(cnn_base, monkeypatch):
    """On busy cores BLAS threads fight other work (issue 37: 13.4 s against 8.7 s); the fit runs on one."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import recognizer.adapt as adapt_module

    seen, real = [], adapt_module._decide

    def spy(*args):
        seen.extend(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
        return real(*args)

    monkeypatch.setattr(adapt_module, "_decide", spy)
    x, _ = cnn_base.stats.sample(1, np.random.default_rng(0))
    decide(cnn_base.head, cnn_base.stats, x[:2], np.array([1, 2]))
    assert seen and set(seen) == {1}


# ------------------------------------------------------------------------------------------ profiles
# the profile tests below are about isolation and redo, not the guards: drawn 9s taught as 4s (with no 9
# confirmed) take a typical 9's margin and move the shipped boundaries past the target, which would refuse or
# scale back the change (both tested on features above)
UNGUARDED = AdaptSettings(guard_agreement=0.0, guard_target=0.0, typical_margin=-np.inf)


def _cnn_only(folder: Path) -> Path:
    """A models folder with only the CNN's ONNX twin and adapt file (its checksum comes from the twin)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("cnn.onnx", "cnn.adapt.npz"):
        shutil.copyfile(MODELS / f, folder / f)
    return folder


def _teach_nines_as_fours(profile: Profile, n: int = 20) -> np.ndarray:
    """Inputs the CNN reads as 9, taught as 4: found among seeded noise blobs drawn as 9-ish shapes."""
    store = profile.store
    found = []
    rng = np.random.default_rng(0)
    while len(found) < n + 10:
        x = np.zeros((64, 28, 28), np.float32)
        for img in x:  # a loop on top and a stem: a 9 with variations
            cy, cx, r = rng.integers(8, 12), rng.integers(11, 17), rng.integers(3, 6)
            yy, xx = np.ogrid[:28, :28]
            ring = np.abs(np.hypot(yy - cy, xx - cx) - r) < 1.5
            img[ring] = 1.0
            img[cy:24, cx + r - 2:cx + r] = 1.0
        read = store.predict("cnn", x[..., None]).argmax(1)
        found.extend(x[read == 9])
    found = np.stack(found)
    for img in found[:n]:
        profile.add_correction(label=4, input=img, model="cnn", source="cli", read=9)
    return found[n:]


def test_profiles_are_isolated_and_adaptation_is_used_when_reading(tmp_path):
    store = ModelStore(_cnn_only(tmp_path / "models"))
    mine, theirs = Profile(tmp_path / "me", store), Profile(tmp_path / "you", store)
    rest = _teach_nines_as_fours(mine)
    [d] = mine.adapt("cnn", UNGUARDED).values()
    assert d.accepted, d.reason
    probs, adapted = mine.predict("cnn", rest[..., None])
    assert adapted and (probs.argmax(1) == 4).mean() > 0.7
    other, used = theirs.predict("cnn", rest[..., None])
    assert not used and (other.argmax(1) == 9).all() and theirs.db.count() == 0
    assert Profile(tmp_path / "me", store).adapted("cnn") is not None  # kept in the database
    reading = Recognizer(store, profile=mine)._reading(
        type("P", (), {"batch": rest[:3, ..., None], "boxes": [(0, 0, 1, 1)] * 3, "lines": [0] * 3, "ms": 0.0})(),
        "cnn")
    assert reading.adapted and reading.to_dict()["adapted"] is True


def test_an_adaptation_that_misreads_the_newest_corrections_is_set_aside(tmp_path):
    """The writer goes on correcting what the adaptation in use reads: 9s it reads as 4 (the shipped model read
    them right). A new attempt that is refused must not leave the old one reading: the shipped head reads
    again, the reason says so, and a fresh Profile on the same folder agrees."""
    store = ModelStore(_cnn_only(tmp_path / "models"))
    profile = Profile(tmp_path / "me", store)
    rest = _teach_nines_as_fours(profile)
    assert profile.adapt("cnn", UNGUARDED)["cnn"].accepted
    in_use = profile.adapted("cnn").head
    feats = store.features("cnn", rest[..., None])
    misread = rest[in_use.logits(feats).argmax(1) == 4][:4]
    assert len(misread) == 4
    for img in misread:  # each one a misreading of the adaptation in use, a 9 to the shipped model
        profile.add_correction(label=9, input=img, model="cnn", source="app", read=4)
    refusing = AdaptSettings(guard_agreement=1.01)  # whatever the new fit, it is refused
    d = profile.adapt("cnn", refusing)["cnn"]
    assert not d.accepted and "set aside (it misread 4 of your 4 newest corrections, the shipped model 0)" in d.reason
    probs, adapted = profile.predict("cnn", misread[..., None])
    assert not adapted and (probs.argmax(1) == 9).all()
    assert Profile(tmp_path / "me", store).adapted("cnn") is None  # kept in the database
    assert profile.stats("cnn")["adaptations"]["cnn"]["last"]["reason"] == d.reason


def test_deleting_a_correction_flips_a_reading_at_most_once(tmp_path):
    """Undo in the app deletes a correction and re-adapts: until that attempt decides, the adaptation in use
    reads on (it used to give way to the shipped model at once, then came back: two flips); a refused attempt
    then sets it aside, an accepted one replaces it."""
    store = ModelStore(_cnn_only(tmp_path / "models"))
    profile = Profile(tmp_path / "me", store)
    rest = _teach_nines_as_fours(profile)
    assert profile.adapt("cnn", UNGUARDED)["cnn"].accepted
    before, _ = profile.predict("cnn", rest[..., None])
    assert profile.delete(profile.db.newest_id())
    meanwhile, adapted = profile.predict("cnn", rest[..., None])
    assert adapted and np.array_equal(meanwhile.argmax(1), before.argmax(1))
    d = profile.adapt("cnn", AdaptSettings(guard_agreement=1.01))["cnn"]  # refused: the old one must go
    assert not d.accepted and d.set_aside and "deleted correction is set aside" in d.reason
    assert not profile.predict("cnn", rest[..., None])[1]
    assert profile.adapt("cnn", UNGUARDED)["cnn"].accepted and profile.predict("cnn", rest[..., None])[1]


def test_a_refused_attempt_keeps_an_adaptation_that_reads_the_newest_corrections_right(tmp_path):
    store = ModelStore(_cnn_only(tmp_path / "models"))
    profile = Profile(tmp_path / "me", store)
    rest = _teach_nines_as_fours(profile)
    assert profile.adapt("cnn", UNGUARDED)["cnn"].accepted
    for img in rest[:3]:  # confirmations of what it reads: 4s
        profile.add_correction(label=4, input=img, model="cnn", source="app", read=4)
    d = profile.adapt("cnn", AdaptSettings(guard_agreement=1.01))["cnn"]
    assert not d.accepted and "set aside" not in d.reason and profile.adapted("cnn") is not None


def test_a_model_update_redoes_the_adaptation_from_the_stored_corrections(tmp_path):
    onnx = pytest.importorskip("onnx")
    models = _cnn_only(tmp_path / "models")
    store = ModelStore(models)
    profile = Profile(tmp_path / "me", store)
    rest = _teach_nines_as_fours(profile)
    assert profile.adapt("cnn", UNGUARDED)["cnn"].accepted and not profile.stale("cnn")
    # "a new shipped CNN": same weights, another .keras checksum in its twin and adapt file
    proto = onnx.load(str(models / "cnn.onnx"))
    for entry in proto.metadata_props:
        if entry.key == "keras_sha256":
            entry.value = "0" * 64
    onnx.save(proto, str(models / "cnn.onnx"))
    with np.load(models / "cnn.adapt.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(models / "cnn.adapt.npz", **{**arrays, "keras_sha256": np.array("0" * 64)})
    updated = Profile(tmp_path / "me", ModelStore(models))
    assert updated.adapted("cnn") is None and updated.stale("cnn")  # the old head belongs to the old model
    redone = {"cnn": updated.adapt("cnn", UNGUARDED)["cnn"]} if updated.stale("cnn") else {}
    assert redone["cnn"].accepted and updated.adapted("cnn").base_sha256 == "0" * 64
    probs, used = updated.predict("cnn", rest[..., None])
    assert used and (probs.argmax(1) == 4).mean() > 0.7


def test_the_set_aside_rule_holds_past_the_cap(tmp_path, monkeypatch):
    """Past MAX_CORRECTIONS the fitted set stops growing; corrections made while an adaptation read are found by
    their ids, so a misreading adaptation is still set aside (a 2,000-correction profile, made small here)."""
    import recognizer.profile as profile_module

    store = ModelStore(_cnn_only(tmp_path / "models"))
    profile = Profile(tmp_path / "me", store)
    rest = _teach_nines_as_fours(profile, n=20)
    monkeypatch.setattr(profile_module, "MAX_CORRECTIONS", 20)  # the cap is reached
    assert profile.adapt("cnn", UNGUARDED)["cnn"].accepted and profile.adapted("cnn").corrections == 20
    in_use = profile.adapted("cnn").head
    misread = rest[in_use.logits(store.features("cnn", rest[..., None])).argmax(1) == 4][:4]
    for img in misread:
        profile.add_correction(label=9, input=img, model="cnn", source="app", read=4)
    d = profile.adapt("cnn", AdaptSettings(guard_agreement=1.01))["cnn"]
    assert d.corrections == 20 and "set aside (it misread 4 of your 4 newest corrections" in d.reason, d.reason
    assert profile.adapted("cnn") is None


def test_reset_keeps_an_export_unless_told_not_to(tmp_path):
    store = ModelStore(_cnn_only(tmp_path / "models"))
    profile = Profile(tmp_path / "me", store)
    _teach_nines_as_fours(profile, n=5)
    kept = profile.reset()
    assert kept is not None and len(json.loads(kept.read_text())["corrections"]) == 5
    assert profile.db.count() == 0 and profile.adapted("cnn") is None
    _teach_nines_as_fours(profile, n=3)
    assert profile.reset(keep_export=False) is None and profile.db.count() == 0


def test_profile_folders_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_PROFILE", str(tmp_path / "env"))
    assert resolve_profile_dir(None) == tmp_path / "env"
    assert resolve_profile_dir("none") is None and resolve_profile_dir("NONE") is None
    assert resolve_profile_dir(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv("DIGITS_PROFILE")
    assert "digit-recognizer" in str(resolve_profile_dir(None))
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecognizerError, match="is a file"):
        resolve_profile_dir(str(tmp_path / "file"))


# ------------------------------------------------------------------------------------------ the CLI
def _image(path: Path) -> Path:
    from PIL import Image

    img = np.full((120, 320), 255, np.uint8)
    img[20:100, 50:60] = 0
    img[20:100, 150:160] = 0
    img[20:30, 230:290] = 0
    img[20:100, 280:290] = 0
    Image.fromarray(img).save(path)
    return path


def test_cli_corrects_lists_exports_imports_and_resets(tmp_path, capsys):
    import recognize

    img, prof = _image(tmp_path / "a.png"), ["--profile", str(tmp_path / "p")]
    assert recognize.main(["--correct", str(img), "1?7", *prof]) == 0
    assert "stored 2 digit(s)" in capsys.readouterr().out
    assert recognize.main(["--correct", str(img), "117", str(img), "17", *prof]) == 1
    out, err = capsys.readouterr()
    assert "stored 3 digit(s)" in out and "reads as 3 digit(s)" in err and "nothing stored" in err
    assert recognize.main(["--corrections", "list", *prof]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5
    assert recognize.main(["--profile-stats", "--json", *prof]) == 0
    assert json.loads(capsys.readouterr().out)["corrections"] == 5
    assert recognize.main(["--corrections", "export", str(tmp_path / "e.json"), *prof]) == 0
    assert recognize.main(["--profile-reset", "--discard", *prof]) == 0
    assert recognize.main(["--corrections", "import", str(tmp_path / "e.json"), *prof]) == 0
    assert "imported 5" in capsys.readouterr().out
    assert recognize.main(["--corrections", "list", *prof]) == 0
    first = capsys.readouterr().out.split()[0]
    assert recognize.main(["--corrections", "delete", first, *prof]) == 0
    assert recognize.main(["--corrections", "delete", first, *prof]) == 1
    assert f"no correction {first}" in capsys.readouterr().err
    assert recognize.main([str(img), *prof]) == 0
    assert "117" in capsys.readouterr().out


def test_the_read_after_an_import_or_a_delete_does_not_adapt_again(tmp_path, capsys, monkeypatch):
    """--corrections import and delete adapt at once, saying so: the next plain reading uses what they stored
    (it had re-adapted, 19-23 s on busy cores, before printing anything)."""
    import recognize

    img, prof = _image(tmp_path / "a.png"), ["--profile", str(tmp_path / "p")]
    for _ in range(2):
        assert recognize.main(["--correct", str(img), "117", *prof]) == 0
    assert recognize.main(["--corrections", "export", str(tmp_path / "e.json"), *prof]) == 0
    assert recognize.main(["--profile-reset", "--discard", *prof]) == 0
    capsys.readouterr()
    adapted = []
    adapt = Profile.adapt
    monkeypatch.setattr(Profile, "adapt", lambda self, model, *a, **k: adapted.append(model) or adapt(self, model,
                                                                                                      *a, **k))

    assert recognize.main(["--corrections", "import", str(tmp_path / "e.json"), *prof]) == 0
    out, err = capsys.readouterr()
    assert adapted == ["cnn"] and "imported 6" in out and "learning your handwriting with cnn from 6" in err
    assert recognize.main([str(img), *prof]) == 0
    assert adapted == ["cnn"] and "your hand" in capsys.readouterr().out  # read with what the import stored

    assert recognize.main(["--corrections", "list", *prof]) == 0
    first = capsys.readouterr().out.split()[0]
    assert recognize.main(["--corrections", "delete", first, *prof]) == 0
    assert adapted == ["cnn", "cnn"] and "from 5 corrections" in capsys.readouterr().err
    assert recognize.main([str(img), *prof]) == 0
    assert adapted == ["cnn", "cnn"]


def test_a_corrected_digit_keeps_the_crop_of_its_box_in_the_image_read(tmp_path):
    """The app's way (gui/learning.Correct): one digit of a drawing corrected, '?' for the others; the profile cuts
    its crop from the array that was read."""
    import io

    from PIL import Image

    image = np.asarray(Image.open(_image(tmp_path / "a.png")))
    store = ModelStore(MODELS)
    profile = Profile(tmp_path / "p", store)
    reading = Recognizer(store).read(image, model="cnn")
    [cid] = profile.correct_reading(reading, "?7?", source="app", image=image, counted=True)
    [c] = profile.db.corrections()
    x, y, w, h = reading.digits[1].box
    with Image.open(io.BytesIO(c.crop_png)) as crop:
        assert (c.id, c.label, c.read) == (cid, 7, reading.digits[1].digit)
        assert crop.size == (w, h) and np.array_equal(np.asarray(crop.convert("L")), image[y:y + h, x:x + w])
    assert profile.stats()["before_adaptation"]["readings"] == 0  # counted=True: the app counts it when finished


def test_cli_counts_the_reading_it_corrects(tmp_path, capsys):
    """Corrections made with --correct count their reading: the figures never say "0 digits in 0 readings, 1
    corrected", nor more corrected than read."""
    import recognize

    img, prof = _image(tmp_path / "a.png"), ["--profile", str(tmp_path / "p")]
    wrong = 0
    for _ in range(4):
        assert recognize.main(["--correct", str(img), "777", "--model", "cnn", *prof]) == 0
        read = capsys.readouterr().out.split("read '")[1][:3]  # "117" until an adaptation reads it right
        wrong += sum(a != b for a, b in zip(read, "777"))
    assert recognize.main([str(img), "--model", "cnn", *prof]) == 0  # a plain reading counts as before
    capsys.readouterr()
    stats = Profile(tmp_path / "p", ModelStore(MODELS)).stats("cnn")
    parts = [stats["before_adaptation"], stats["with_adaptation"]]
    assert wrong >= 2  # the first reading is "117": 2 of its 3 digits corrected
    assert stats["corrections"] == 12 and [sum(p[k] for p in parts) for k in ("readings", "digits", "corrected")] \
        == [5, 15, wrong]
    assert all(p["corrected"] <= p["digits"] for p in parts), parts  # never "0 digits ..., 1 corrected", 428.6%


def test_a_line_is_never_stored_as_a_digit(tmp_path, capsys):
    """A blank 20000x1 image with one long line reads as one "digit"; it is refused as a correction, clearly."""
    import recognize
    from PIL import Image

    img = np.full((1, 20000), 255, np.uint8)
    img[0, 5000:6000] = 0  # read as one "digit" 1000 pixels wide, 1 tall
    Image.fromarray(img).save(tmp_path / "line.png")
    assert recognize.main(["--correct", str(tmp_path / "line.png"), "1", "--profile", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "not a digit" in err and "nothing stored" in err and err.count("error:") == 1
    profile = Profile(tmp_path / "p", ModelStore(MODELS))  # the app's way: a crop 1000 pixels wide, 1 tall
    with pytest.raises(RecognizerError, match="1000x1-pixel line, not a digit"):
        profile.add_correction(label=1, input=_digit(1), model="cnn", source="app", read=2,
                               crop=np.zeros((1, 1000), np.uint8))
    assert profile.add_correction(label=1, input=_digit(1), model="cnn", source="app", read=2,
                                  crop=np.zeros((80, 12), np.uint8)) == 1  # a thin 1 is a digit
    profile.delete(1)
    assert ProfileStore(tmp_path / "p" / PROFILE_DB).count() == 0


@pytest.mark.parametrize("argv,message", [
    (["--correct", "a.png"], "pairs"),
    (["--adapt", "x.png"], "no image paths"),
    (["--adapt", "--profile-stats"], "one of"),
    (["--corrections", "drop"], "choose list"),
    (["--corrections", "delete", "abc"], "number"),
    (["--corrections", "delete", "99999999999999999999999"], "number"),
    (["--corrections", "delete", "0"], "number"),
    (["--corrections", "delete", "\u00b2"], "number"),  # a superscript 2: isdigit() but not a number
    (["--corrections", "export"], "takes 1 argument"),
    (["--adapt", "--profile", "none"], "needs a profile"),
    (["--discard"], "goes with --profile-reset"),
    ([], "give image files"),
])
def test_cli_usage_errors_say_what_to_do(argv, message, capsys):
    import recognize

    with pytest.raises(SystemExit) as exc:
        recognize.parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_cli_bad_files_store_nothing(tmp_path, capsys):
    import recognize

    prof = ["--profile", str(tmp_path / "p")]
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert recognize.main(["--correct", str(tmp_path / "junk.png"), "1", str(tmp_path / "missing.png"), "2",
                           *prof]) == 1
    err = capsys.readouterr().err
    assert "junk.png" in err and "missing.png" in err
    assert recognize.main(["--corrections", "import", str(tmp_path / "junk.png"), *prof]) == 1
    assert ProfileStore(tmp_path / "p" / PROFILE_DB).count() == 0
