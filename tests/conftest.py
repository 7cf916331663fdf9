"""Tests run with the same TensorFlow settings as the project's programs (common.tf_env)."""

from common import tf_env  # noqa: F401
