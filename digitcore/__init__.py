"""Shared core of the three-model MNIST comparison: data, training, evaluation, plots.

Everything the ANN, CNN and VGG16 scripts have in common lives here, once.
"""

from digitcore import tf_env  # noqa: F401  (before anything imports TensorFlow)
