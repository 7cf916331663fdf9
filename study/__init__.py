"""The study: MNIST (and real handwriting) data, training recipes and budget, evaluation, plots, reports.

It stands on `common` and `recognizer` (training images are prepared the recognizer's way); nothing on the
reading side imports it.
"""

from common import tf_env  # noqa: F401  (before anything imports TensorFlow)
