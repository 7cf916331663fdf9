"""Small convolutional network for MNIST."""
import study  # noqa: F401  (TensorFlow settings, before Keras loads)
from cnn.model import build_model

__all__ = ["build_model"]
