"""The shared data module: sources, validation of bad files, and the fixed stratified split."""

import numpy as np
import pytest

from study import data
from study.data import DataError
from mnist_fakes import REAL_MNIST, fake_arrays, write_idx, write_npz


@pytest.fixture(scope="module")
def arrays():
    return fake_arrays()


@pytest.fixture(scope="module")
def npz(tmp_path_factory, arrays):
    return write_npz(tmp_path_factory.mktemp("mnist") / "mnist.npz", arrays)


@pytest.fixture(scope="module")
def loaded(npz):
    """The whole file loaded once for the module (about a second for 60,000 images); read-only in the tests."""
    return data.load(npz)


def test_split_sizes_scaling_and_test_untouched(loaded, arrays):
    d = loaded
    assert (len(d.train), len(d.val), len(d.test)) == (48_000, 12_000, 1_000)
    assert d.train.x.shape == (48_000, 28, 28, 1) and d.train.x.dtype == np.float32
    assert 0.0 <= d.train.x.min() and d.train.x.max() == 1.0
    np.testing.assert_array_equal(d.test.y, arrays["y_test"])  # test split is the file's test set, in order
    np.testing.assert_allclose(d.test.x[..., 0], arrays["x_test"] / 255.0, atol=1e-7)


def test_split_is_stratified_disjoint_and_deterministic(npz, arrays, loaded):
    train_idx, val_idx = data.split_indices(arrays["y_train"])
    assert len(np.intersect1d(train_idx, val_idx)) == 0 and len(train_idx) + len(val_idx) == 60_000
    counts_all = np.bincount(arrays["y_train"], minlength=10)
    counts_val = np.bincount(arrays["y_train"][val_idx], minlength=10)
    # each class keeps its share: val holds 20% of every class, to within one image
    assert np.all(np.abs(counts_val - counts_all * 0.2) <= 1)
    again = data.split_indices(arrays["y_train"])
    np.testing.assert_array_equal(train_idx, again[0])
    assert data.load(npz).checksum == loaded.checksum  # two loads, one split


def test_limit_takes_the_first_images_of_each_split(npz, loaded):
    full, small = loaded, data.load(npz, limit=100)
    assert (len(small.train), len(small.val), len(small.test)) == (100, 100, 100)
    np.testing.assert_array_equal(small.train.y, full.train.y[:100])
    np.testing.assert_array_equal(small.val.x, full.val.x[:100])
    assert small.checksum == full.checksum  # same split, only fewer images used


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_equals_npz(tmp_path, arrays, npz, gz):
    folder = write_idx(tmp_path / "idx", arrays, gz=gz)
    from_idx, from_npz = data.read_arrays(folder), data.read_arrays(npz)
    for key in from_npz:
        np.testing.assert_array_equal(from_idx[key], from_npz[key])


def test_environment_variable_is_used(monkeypatch, npz):
    monkeypatch.setenv("MNIST_PATH", str(npz))
    assert data.load(limit=10).source == str(npz)


def test_no_source_at_all_says_how_to_provide_it(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # empty cache

    def offline():
        raise OSError("network unreachable")

    import keras

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="(?s)download failed.*--data PATH.*MNIST_PATH"):
        data.load()


def test_keras_cache_is_used(monkeypatch, tmp_path, arrays):
    monkeypatch.delenv("MNIST_PATH", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    write_npz(tmp_path / "datasets" / "mnist.npz", arrays)
    assert data.load(limit=5).source.endswith("datasets/mnist.npz")


def _bad(arrays, **changes):
    out = dict(arrays)
    out.update(changes)
    return out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {k: v for k, v in a.items() if k != "y_test"}, "lacks the key"),
        (lambda a: _bad(a, x_train=a["x_train"].reshape(60_000, 784)), r"shape \(N, 28, 28\)"),
        (lambda a: _bad(a, x_test=a["x_test"].astype(np.float32)), "must be uint8"),
        (lambda a: _bad(a, y_train=np.full(60_000, 12, np.uint8)), "outside 0-9"),
        (lambda a: _bad(a, y_test=a["y_test"][:10]), "to match x_test"),
        (lambda a: _bad(a, x_train=a["x_train"][:1000], y_train=a["y_train"][:1000]), "needs 60,000"),
    ],
)
def test_malformed_npz_is_rejected_with_the_problem_named(tmp_path, arrays, change, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **change(arrays))
    with pytest.raises(DataError, match=message):
        data.read_arrays(path)


def test_missing_path_not_an_npz_and_truncated_idx(tmp_path, arrays):
    with pytest.raises(DataError, match="does not exist"):
        data.read_arrays(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("this is not a zip file")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.read_arrays(junk)
    folder = write_idx(tmp_path / "idx", arrays, gz=False)
    images = folder / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        data.read_arrays(folder)
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="has no train-labels-idx1-ubyte"):
        data.read_arrays(folder)


@pytest.mark.skipif(not REAL_MNIST.exists(), reason=f"real MNIST not found at {REAL_MNIST}")
def test_real_mnist_split_is_balanced():
    d = data.load(REAL_MNIST)
    assert (len(d.train), len(d.val), len(d.test)) == (48_000, 12_000, 10_000)
    val_share = np.bincount(d.val.y, minlength=10) / (np.bincount(d.val.y, minlength=10) + np.bincount(d.train.y, minlength=10))
    np.testing.assert_allclose(val_share, 0.2, atol=2e-4)
    assert abs(float(d.test.x.mean()) - 33.79 / 255) < 1e-3


def _hand(n_train: int, n_val: int):
    from study.handwriting import HandSplit, HandwritingData

    def side(n, label):
        return HandSplit(x=np.full((n, 28, 28, 1), 0.5, np.float32), y=np.full(n, label, np.uint8),
                         writer=np.array(["cvl:1"] * n), set=np.array(["cvl"] * n))

    return HandwritingData(train=side(n_train, 7), val=side(n_val, 3), test=side(2, 1), path="hw", checksum="c")


def test_handwriting_joins_train_and_val_and_repeat_sets_the_mix(npz):
    mnist = data.load(npz, limit=100)
    once = data.with_handwriting(mnist, _hand(10, 4))
    thrice = data.with_handwriting(mnist, _hand(10, 4), repeat=3)
    assert len(once.train) == 110 and len(thrice.train) == 130    # MNIST rows first, then the writers K times
    assert (thrice.train.y[100:] == 7).all() and thrice.redraw_rows == 100
    assert len(once.val) == len(thrice.val) == len(mnist.val) + 4  # validation is never repeated
    assert thrice.handwriting["train_repeat"] == 3 and once.handwriting["train_repeat"] == 1
    with pytest.raises(ValueError, match="repeat"):
        data.with_handwriting(mnist, _hand(10, 4), repeat=0)
