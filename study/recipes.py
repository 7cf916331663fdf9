"""How each model is trained, as plain data: presets are defaults the command line overrides.

`seed` reproduces the reference study (Adam 1e-4, 5 epochs, batch 32, no augmentation, all three models).
`best` holds each model's own recipe, chosen on validation data only (figures in docs/RESULTS.md, what was
tried and dropped in docs/DECISIONS.md). Nothing here imports TensorFlow: reading a recipe is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from common.names import BASE_MODELS


@dataclass(frozen=True)
class Augment:
    """Random distortions matched to drawn input: hand-drawn digits are tilted, off-centre, differently sized
    and drawn with other stroke widths than MNIST's pens."""

    rotation_deg: float = 10.0
    shift_px: float = 2.0
    zoom: float = 0.10
    thickness: float = 0.5  # max blend towards a dilated (+) or eroded (-) copy of the digit
    redraw: float = 0.5  # share of MNIST images replaced by what the recognizer's normalisation makes of them


@dataclass(frozen=True)
class Recipe:
    epochs: float = 5  # the most it trains; a time budget (study.budget) plans fewer *steps* where time is short
    max_seconds: float | None = None  # a time budget also keeps this model's training under this
    batch_size: int = 32
    learning_rate: float = 1e-4  # the peak, for a one-cycle schedule
    weight_decay: float = 0.0  # > 0 switches Adam to AdamW
    schedule: str = "constant"  # constant | onecycle (linear warm-up, cosine decay to wherever training ends)
    warmup_fraction: float = 0.1  # of the planned steps
    label_smoothing: float = 0.0
    distill: float = 0.0  # the teacher's share of the training targets (study/distill.py); 0 = the labels alone
    augment: Augment | None = None
    model_kwargs: dict = field(default_factory=dict)  # passed to the model's build_model()

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("augment", "model_kwargs")}
        d["augment"] = None if self.augment is None else vars(self.augment).copy()
        d["model_kwargs"] = dict(self.model_kwargs)
        return d


_SEED = Recipe()
PRESETS: dict[str, dict[str, Recipe]] = {
    "seed": dict.fromkeys(BASE_MODELS, _SEED),
    "best": {
        # the ANN is cheap: its whole recipe fits any budget, so the time goes to VGG16
        "ann": Recipe(
            epochs=24, batch_size=128, learning_rate=2e-3, weight_decay=1e-4, schedule="onecycle",
            label_smoothing=0.05, augment=Augment(rotation_deg=8, shift_px=2, zoom=0.08, thickness=0.4),
            model_kwargs={"hidden_units": (1024, 512), "dropout": 0.25, "batch_norm": True},
        ),
        # the CNN must train within 5 minutes (with its evaluation) on any of these machines
        "cnn": Recipe(
            epochs=24, max_seconds=285, batch_size=128, learning_rate=3e-3, weight_decay=5e-4,
            schedule="onecycle", label_smoothing=0.05, augment=Augment(),
            model_kwargs={"filters": (32, 64, 128), "dropout": 0.3},
        ),
        # VGG16 takes whatever the budget leaves, in steps: a slow CPU gets a fraction of an epoch, not an overrun
        "vgg16": Recipe(
            epochs=8, batch_size=128, learning_rate=2e-3, weight_decay=5e-4, schedule="onecycle",
            label_smoothing=0.05, augment=Augment(), model_kwargs={"batch_norm": True, "head_units": 256},
        ),
    },
}
PRESET_NAMES = tuple(PRESETS)


def recipe_for(preset: str, model_name: str, **overrides) -> Recipe:
    """The preset's recipe for one model, with the non-None command-line overrides applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    if model_name not in PRESETS[preset]:
        raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(BASE_MODELS)}.")
    return replace(PRESETS[preset][model_name], **{k: v for k, v in overrides.items() if v is not None})
