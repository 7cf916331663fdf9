"""Tests run with the same TensorFlow settings as the project's programs (digitcore.tf_env)."""

import digitcore  # noqa: F401
