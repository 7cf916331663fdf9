"""Tests run with the same TensorFlow settings as the project's programs (common.tf_env)."""

from common import tf_env  # noqa: F401


import pytest  # noqa: E402

from mnist_fakes import fake_arrays, write_npz  # noqa: E402


@pytest.fixture(scope="module")
def fake_npz(tmp_path_factory):
    """A small MNIST-layout file of easy fake digits (400 per split), for training runs in tests."""
    return write_npz(tmp_path_factory.mktemp("fake") / "mnist.npz", fake_arrays(n_test=400))
