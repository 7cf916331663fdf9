"""VGG16 adapted to one grayscale channel and 28x28 MNIST digits."""
import study  # noqa: F401  (TensorFlow settings, before Keras loads)
from vgg16.model import BLOCKS, build_model, fold_rgb_kernel

__all__ = ["BLOCKS", "build_model", "fold_rgb_kernel"]
