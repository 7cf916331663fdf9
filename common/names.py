"""One home for the names every part agrees on: the models, their files, and how to make a missing one."""

from __future__ import annotations

BASE_MODELS = ("ann", "cnn", "vgg16")  # the three trained models, in the order every table shows them
ENSEMBLE = "ensemble"  # the mean of the base models' probabilities
MODEL_NAMES = BASE_MODELS + (ENSEMBLE,)  # everything a reader can ask for
STRING_MODEL = "string"  # the paper reader: a whole line of digits at once (string_reader/model.py), not a canvas model
DEFAULT_MODELS_DIR = "models"
METRICS_FILE = "metrics.json"  # beside the models: what each one scored, and on which data
CALIBRATION_FILE = "calibration.json"  # beside the models: each one's temperature (recognizer/calibration.py)


def model_file(name: str) -> str:
    """The Keras file a base model is saved in (the source of truth for training and evaluation)."""
    return f"{name}.keras"


def unknown_model(names) -> str | None:
    """The message for the first of `names` that is not a base model (what to choose instead), or None."""
    bad = [n for n in names if n not in BASE_MODELS]
    return f"unknown model {bad[0]!r}; choose from {', '.join(BASE_MODELS)}" if bad else None


def requested_models(names, models_dir) -> list[str]:
    """The base models a script was asked for, else every one with a Keras file in `models_dir`."""
    from pathlib import Path

    return list(names) or [n for n in BASE_MODELS if (Path(models_dir) / model_file(n)).is_file()]


def train_hint(name: str | None = None) -> str:
    """What to run to make a missing model (or all of them)."""
    if name is None or name == ENSEMBLE:
        return "train them with: python train_all.py"
    return f"train it with: python train_all.py --models {name}"


def onnx_file(name: str) -> str:
    """The ONNX twin of a base model's Keras file: what the reading side runs (with ONNX Runtime)."""
    return f"{name}.onnx"


# the metadata key in an .onnx file that holds the sha256 of the .keras file it was exported from
ONNX_KERAS_SHA256 = "keras_sha256"


def export_hint(name: str | None = None) -> str:
    """What to run to (re)make the ONNX twin of a model (or of all of them) from its .keras file."""
    if name is None or name == ENSEMBLE:
        return "re-export them with: python scripts/export_onnx.py"
    return f"re-export it with: python scripts/export_onnx.py {name}"


def adapt_file(name: str) -> str:
    """What adapting a base model to one writer needs, beside its Keras file: the weights of its classifier head
    and per-class statistics of the features that head reads (study/adapt_export.py writes it)."""
    return f"{name}.adapt.npz"


# the name of the ONNX output that carries the features the classifier head reads (the adaptation refits the
# head on them); the first output stays the (N, 10) probabilities
FEATURES_OUTPUT = "features"

# A writer's profile: where their corrections and adaptations live
APP_NAME = "digit-recognizer"  # the folder name under the platform's user data directory (platformdirs)
PROFILE_ENV = "DIGITS_PROFILE"  # a profile folder, or "none" to read with the shipped models alone
NO_PROFILE = "none"
PROFILE_DB = "profile.sqlite"  # inside a profile folder: corrections, counts, adaptations
