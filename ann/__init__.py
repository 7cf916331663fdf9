"""Dense network (ANN) for MNIST."""
import study  # noqa: F401  (TensorFlow settings, before Keras loads)
from ann.model import build_model

__all__ = ["build_model"]
