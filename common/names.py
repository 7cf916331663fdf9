"""One home for the names every part agrees on: the models, their files, and how to make a missing one."""

from __future__ import annotations

BASE_MODELS = ("ann", "cnn", "vgg16")  # the three trained models, in the order every table shows them
ENSEMBLE = "ensemble"  # the mean of the base models' probabilities
MODEL_NAMES = BASE_MODELS + (ENSEMBLE,)  # everything a reader can ask for
DEFAULT_MODELS_DIR = "models"
METRICS_FILE = "metrics.json"  # beside the models: what each one scored, and on which data


def model_file(name: str) -> str:
    """The Keras file a base model is saved in (the source of truth for training and evaluation)."""
    return f"{name}.keras"


def train_hint(name: str | None = None) -> str:
    """What to run to make a missing model (or all of them)."""
    if name is None or name == ENSEMBLE:
        return "train them with: python train_all.py"
    return f"train it with: python train_all.py --models {name}"
