"""The feature statistics adaptation rehearses on: mixtures per class, written by the training side (k-means) and
read by the reading side (old one-Gaussian files too), and draws that come from every part of a class."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer import RecognizerError
from recognizer.head import FeatureStats, load_base_head


def _two_ways_per_class(n: int = 200, d: int = 6, seed: int = 0):
    """Features where every class is written two ways: parts centred at +-(class + 3) on feature 0, 3:1 in size."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c in range(10):
        big, small = (3 * n) // 4, n - (3 * n) // 4
        centre = np.zeros(d)
        centre[1] = c
        for sign, m in ((1, big), (-1, small)):
            centre[0] = sign * (c + 3)
            x.append(centre + 0.1 * rng.standard_normal((m, d)))
            y.append(np.full(m, c))
    return np.concatenate(x).astype(np.float32), np.concatenate(y)


def test_kmeans_statistics_find_each_way_of_writing_a_class():
    pytest.importorskip("sklearn")
    from study.adapt_export import feature_statistics

    x, y = _two_ways_per_class()
    arrays = feature_statistics(x, y, components=2)
    assert arrays["mean"].shape == (10, 2, 6) and arrays["weight"].shape == (10, 2)
    for c in range(10):
        order = np.argsort(arrays["mean"][c, :, 0])  # the negative part first
        assert arrays["mean"][c, order, 0] == pytest.approx([-(c + 3), c + 3], abs=0.05)
        assert arrays["weight"][c, order] == pytest.approx([0.25, 0.75])
        assert arrays["std"][c, :, 0] == pytest.approx([0.1, 0.1], abs=0.03)  # the spread within a part only


def test_draws_come_from_every_part_in_proportion_and_are_seeded():
    mean = np.zeros((10, 2, 4), np.float32)
    mean[:, 0, 0], mean[:, 1, 0] = 5.0, 20.0
    stats = FeatureStats(mean, np.full_like(mean, 0.5), np.tile([0.8, 0.2], (10, 1)))
    x, labels = stats.sample(500, np.random.default_rng(1))
    assert x.shape == (5000, 4) and np.bincount(labels).tolist() == [500] * 10
    share_far = float((x[:, 0] > 12).mean())
    assert share_far == pytest.approx(0.2, abs=0.03)  # no draw falls between the parts as one Gaussian's would
    assert ((x[:, 0] > 8) & (x[:, 0] < 17)).sum() == 0
    again, _ = stats.sample(500, np.random.default_rng(1))
    assert np.array_equal(x, again) and x.min() >= 0.0


def _write(path, mean, std, weight=None, **extra):
    head = {"w1": np.zeros((mean.shape[-1], 3), np.float32), "b1": np.zeros(3, np.float32),
            "w2": np.zeros((3, 10), np.float32), "b2": np.zeros(10, np.float32)}
    more = {} if weight is None else {"weight": weight}
    np.savez(path, **head, mean=mean, std=std, **more, keras_sha256=np.array("a" * 64), **extra)


def test_both_file_formats_load(tmp_path):
    _write(tmp_path / "one.adapt.npz", np.ones((10, 5), np.float32), np.ones((10, 5), np.float32))
    _write(tmp_path / "mix.adapt.npz", np.ones((10, 3, 5), np.float32), np.ones((10, 3, 5), np.float32),
           np.full((10, 3), 1 / 3))
    one, mix = (load_base_head(tmp_path / f"{n}.adapt.npz").stats for n in ("one", "mix"))
    assert (one.mean.shape, one.weight.shape) == ((10, 1, 5), (10, 1))
    assert (mix.mean.shape, mix.weight.shape) == ((10, 3, 5), (10, 3))
    assert one.sample(2, np.random.default_rng(0))[0].shape == (20, 5)


def test_a_mixture_without_its_weights_says_how_to_remake_it(tmp_path):
    _write(tmp_path / "cnn.adapt.npz", np.ones((10, 3, 5), np.float32), np.ones((10, 3, 5), np.float32))
    with pytest.raises(RecognizerError, match="export_adapt.py cnn"):
        load_base_head(tmp_path / "cnn.adapt.npz")
