"""Small convolutional network for MNIST."""
from cnn.model import build_model

__all__ = ["build_model"]
