"""Canvas drawing / photo -> digits: image loading, segmentation, MNIST-style normalisation, models.

Public API (see docs/CONTRACTS.md)::

    from recognizer import Recognizer, Reading, DigitReading, ModelStore, MODEL_NAMES, RecognizerError

Models run from their `.onnx` twins with ONNX Runtime; TensorFlow is imported only when a twin is missing or
out of date and the store falls back to the `.keras` file (models.py), so importing this package is fast.
"""
from common import tf_env  # noqa: F401  (TensorFlow settings, before Keras loads)

from .errors import RecognizerError
from .models import MODEL_NAMES, ModelStore
from .pipeline import DigitReading, Reading, Recognizer
from .threshold import DEFAULT_THRESHOLD

__all__ = ["DEFAULT_THRESHOLD", "Recognizer", "Reading", "DigitReading", "ModelStore", "MODEL_NAMES", "RecognizerError"]
