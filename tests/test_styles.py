"""The style generator (study/styles.py) on small synthetic pen digits: seeded and repeatable, the label
unchanged, each edit attached where its convention puts it, and the edited digit still one digit inside the
canvas once rendered and prepared like every pen digit. No shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

from study import handwriting_render as render
from study import styles


def poly(*pts, n: int = 8) -> np.ndarray:
    """A stroke through these points, n points per piece (a pen samples densely)."""
    out = [np.linspace(a, b, n, endpoint=False) for a, b in zip(pts[:-1], pts[1:])]
    return np.concatenate(out + [np.asarray(pts[-1:], float)])


def zero():
    t = np.linspace(0, 2 * np.pi, 40)
    return [np.stack([100 + 40 * np.cos(t), 100 + 70 * np.sin(t)], 1)]  # centre (100, 100), 80 x 140


def one():
    return [poly((100, 30), (104, 170))]


def seven():
    return [poly((40, 30), (140, 30), (80, 170))]


def nine():
    t = np.linspace(-0.5 * np.pi, 1.5 * np.pi, 30)  # a loop from its top, then the stem from its right side
    loop = np.stack([100 + 40 * np.cos(t), 70 + 40 * np.sin(t)], 1)
    return [np.concatenate([loop, poly((140, 70), (125, 120), (110, 190))])]


def two():
    t = np.linspace(np.pi, 2.2 * np.pi, 15)
    arc = np.stack([100 + 40 * np.cos(t), 70 + 40 * np.sin(t)], 1)
    return [np.concatenate([arc, poly(tuple(arc[-1]), (55, 170), (150, 170))])]


DIGITS = {0: zero, 1: one, 2: two, 7: seven, 9: nine}
CASES = [(label, name) for label, table in styles.CONVENTIONS.items() for name in table]


def added(before, after):
    """The points the edit added (the original strokes stay in place)."""
    old = {tuple(np.round(p, 6)) for s in before for p in s}
    return np.array([p for s in after for p in s if tuple(np.round(p, 6)) not in old])


@pytest.mark.parametrize(("label", "name"), CASES)
def test_seeded_repeatable_label_kept_and_one_digit_inside_the_canvas(label, name):
    strokes = DIGITS[label]()
    a = styles.edit(strokes, label, np.random.default_rng(7), name)
    b = styles.edit(strokes, label, np.random.default_rng(7), name)
    c = styles.edit(strokes, label, np.random.default_rng(8), name)
    assert a is not None and a[1] == name
    assert len(a[0]) == len(b[0]) and all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], c[0])) or len(a[0]) != len(c[0])
    assert all(np.array_equal(x, y) for x, y in zip(strokes, DIGITS[label]()))  # the input is not touched
    canvas = np.asarray(render.pen_canvas(a[0], np.random.default_rng(1)))
    ink = np.argwhere(canvas < 128)
    assert len(ink) and ink.min(0).min() > 0 and (ink.max(0) < np.array(canvas.shape) - 1).all()
    x, n = render.prepare(canvas)
    assert n == 1 and x is not None  # still one digit: the edit is attached, not a separate mark


def test_random_choice_keeps_the_label_and_unknown_labels_are_left_alone():
    rng = np.random.default_rng(0)
    names = {styles.edit(seven(), 7, rng)[1] for _ in range(20)}
    assert names == set(styles.CONVENTIONS[7])
    assert styles.edit(zero(), 8, rng) is None and styles.edit(zero(), 3, rng) is None


def test_the_slash_passes_through_the_loop_centre_at_50_to_80_degrees():
    for seed in range(20):
        out, _ = styles.edit(zero(), 0, np.random.default_rng(seed), "slashed")
        slash = out[-1]
        a, b = slash[0], slash[-1]
        d = (b - a) / np.linalg.norm(b - a)
        angle = np.degrees(np.arctan2(abs(d[1]), abs(d[0])))
        assert 50 <= angle <= 80 and d[0] * d[1] < 0  # rising to the right ("/"), y down
        c = np.array([100.0, 100.0])
        dist = abs(np.cross(d, c - a))  # distance of the loop's centre from the slash's line
        assert dist < 0.1 * 140
        assert np.linalg.norm(b - a) >= 0.8 * 140  # reaches across the loop


def test_the_seven_bar_crosses_the_stem_near_its_middle():
    for seed in range(20):
        out, _ = styles.edit(seven(), 7, np.random.default_rng(seed), "crossed")
        bar = out[-1]
        y = bar[:, 1].mean()
        assert 30 + 0.4 * 140 <= y <= 30 + 0.67 * 140  # near the middle of the height
        stem_x = 140 + (80 - 140) * (y - 30) / 140  # the stem's x at that height
        assert bar[:, 0].min() < stem_x < bar[:, 0].max()
        assert np.ptp(bar[:, 0]) > 3 * np.ptp(bar[:, 1])  # a bar, flat
    crossed = seven() + [poly((80, 100), (130, 100))]
    assert styles.edit(crossed, 7, np.random.default_rng(0), "crossed") is None  # crossed already


def test_the_one_flag_hangs_from_the_top_to_the_left():
    for seed in range(20):
        out, _ = styles.edit(one(), 1, np.random.default_rng(seed), "european")
        new = added(one(), out)
        flag = new[new[:, 1] < 30 + 0.75 * 140]  # the flag (a foot lies at the bottom)
        assert len(flag)
        assert flag[:, 0].max() <= 100 and flag[:, 1].min() >= 30 - 1e-6  # left of the top, not above it
        assert out[0][0][0] < 100 - 0.2 * 140 * np.cos(np.deg2rad(50))  # the pen starts out at the flag's end
        assert np.allclose(out[0][len(flag)], (100, 30))  # and joins the stem at its top
        foot = new[new[:, 1] > 30 + 0.9 * 140]
        if len(foot):
            assert foot[:, 0].min() < 104 < foot[:, 0].max()  # under the stem


def test_the_nine_stem_becomes_straight_and_the_two_gets_a_loop_at_its_foot():
    out, _ = styles.edit(nine(), 9, np.random.default_rng(0), "straight stem")
    stem = out[-1][len(out[-1]) - 10:]  # from where the stem leaves the loop to its foot
    a, b = stem[0], stem[-1]
    assert a[0] > 100 and a[1] < 70 + 40 + 1e-6  # leaves the loop on its right, in the loop's height
    d = (b - a) / np.linalg.norm(b - a)
    assert max(abs(np.cross(d, p - a)) for p in stem) < 1.0 and b[1] == pytest.approx(190)
    out, _ = styles.edit(two(), 2, np.random.default_rng(0), "foot loop")
    loop = added(two(), out)
    assert len(loop) >= 10
    assert loop[:, 1].min() > 100 and loop[:, 0].max() < 100  # at the foot, on the left


# ------------------------------------------------------------------------------------------ training images
def test_edited_copies_come_from_training_writers_only_and_are_cached(tmp_path):
    """A fake pendigits file (tests/test_handwriting.py's writer): edited copies of a share of the training
    writers' digits of the labels with conventions, never of a validation writer; the same on a second call
    (from the cache)."""
    from test_handwriting import write_pendigits

    from study import handwriting as hw
    from study.handwriting_formats import FILES, load_pendigits

    root = tmp_path / "hand"
    write_pendigits(root / FILES["pendigits"])
    cache = tmp_path / "cache"
    made = styles.styled_training_set(root, 1.0, cache)
    samples = load_pendigits(root / FILES["pendigits"])
    sides = hw.split_sides("pendigits", samples)
    train_writers = {s.writer for s, side in zip(samples, sides) if side == "train"}
    assert len(made["y"]) > 0 and set(made["writer"]) <= train_writers
    assert set(made["y"].tolist()) <= set(styles.CONVENTIONS)
    assert made["x"].shape == (len(made["y"]), 28, 28) and made["x"].max() > 0
    assert sum(made["counts"].values()) == len(made["y"])
    assert list(cache.glob("styles-pendigits-*.npz"))
    again = styles.styled_training_set(root, 1.0, cache)
    np.testing.assert_array_equal(made["x"], again["x"])
    half = styles.styled_training_set(root, 0.5, cache)
    assert 0 < len(half["y"]) < len(made["y"])


def test_with_styles_adds_to_train_and_leaves_validation_alone(tmp_path):
    from test_handwriting import write_pendigits

    from study import handwriting as hw
    from study.handwriting_formats import FILES

    root = tmp_path / "hand"
    write_pendigits(root / FILES["pendigits"])
    hand = hw.load_handwriting(root, cache=tmp_path / "cache")
    same, record = styles.with_styles(hand, root, 0.0, tmp_path / "cache")
    assert same is hand and record is None
    more, record = styles.with_styles(hand, root, 1.0, tmp_path / "cache")
    assert len(more.train) == len(hand.train) + record["images"] and record["images"] > 0
    assert (more.train.set[len(hand.train):] == "styles").all()
    assert more.val is hand.val and more.test is hand.test
    np.testing.assert_array_equal(more.train.x[:len(hand.train)], hand.train.x)
