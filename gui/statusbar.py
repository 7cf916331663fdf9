"""Status bar: which models are loaded or missing (and how to train them), and the last timing."""

from __future__ import annotations

import tkinter as tk

from common.names import MODEL_NAMES

from .picker import CHOICES, TRAIN_HINT
from .session import ready_models

NAMES = {v: t for v, t in CHOICES}


def describe(status: dict[str, str], loaded: tuple[str, ...] = ()) -> str:
    """One line like "ANN loading... · CNN ready · VGG16 missing — train missing models: python train_all.py".

    "ready" only once the model can really answer (loaded); until then a present model is "loading...".
    """
    parts, missing = [], False
    ready = ready_models(loaded)
    for name in MODEL_NAMES:
        state = status.get(name, "unknown")
        if state == "ok":
            state = "ready" if name in ready else "loading..."
        elif state.startswith("error"):
            state = "failed to load"
        missing |= state == "missing"
        parts.append(f"{NAMES[name]} {state}")
    text = " · ".join(parts)
    return f"{text} — {TRAIN_HINT}" if missing else text


class StatusBar(tk.Frame):
    """Two lines: the models and the last timing; below, what the app learned of the writer's hand."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, relief="sunken", borderwidth=1)
        self.learning = tk.Label(self, text="", anchor="w", fg="#1c4fd8")
        self.learning.pack(side="bottom", fill="x")
        self.models = tk.Label(self, text="Loading models...", anchor="w")
        self.models.pack(side="left", fill="x", expand=True)
        self.timing = tk.Label(self, text="", anchor="e", width=28)
        self.timing.pack(side="right")

    def set_models(self, text: str) -> None:
        self.models.configure(text=text)

    def set_timing(self, text: str) -> None:
        self.timing.configure(text=text)

    def set_learning(self, text: str) -> None:
        self.learning.configure(text=text)
