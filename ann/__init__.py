"""Dense network (ANN) for MNIST."""
from ann.model import build_model

__all__ = ["build_model"]
