"""Model picker: one radio button per model, greyed out with the reason when it cannot be used."""

from __future__ import annotations

import tkinter as tk
from typing import Callable

from common.names import BASE_MODELS, train_hint

from .tooltip import Tooltip

# (value, label); "all" reads with the three single models side by side.
CHOICES = (("ann", "ANN"), ("cnn", "CNN"), ("vgg16", "VGG16"), ("ensemble", "Ensemble"), ("all", "All three"))
TRAIN_HINT = "train missing models with: python train_all.py"


def reason_for(state: str | None) -> str:
    """Human text for a ModelStore.status() value ("ok", "missing", "error: ...")."""
    if state is None:
        return "loading..."
    if state == "ok":
        return "ready"
    if state == "missing":
        return "missing; " + train_hint()
    return state


class ModelPicker(tk.Frame):
    def __init__(self, master: tk.Misc, on_change: Callable[[str], None]) -> None:
        super().__init__(master)
        self.var = tk.StringVar(value="")
        self._on_change = on_change
        self.buttons: dict[str, tk.Radiobutton] = {}
        self._tips: dict[str, Tooltip] = {}
        tk.Label(self, text="Model:").pack(side="left")
        for value, text in CHOICES:
            b = tk.Radiobutton(self, text=text, value=value, variable=self.var, indicatoron=False,
                               padx=8, pady=2, command=lambda v=value: self._on_change(v))
            b.pack(side="left", padx=1)
            self.buttons[value] = b
            self._tips[value] = Tooltip(b, reason_for(None))

    def get(self) -> str:
        return self.var.get()

    def set(self, value: str) -> None:
        self.var.set(value)

    def usable(self, value: str) -> bool:
        return str(self.buttons[value]["state"]) != "disabled"

    def set_status(self, status: dict[str, str]) -> None:
        """Enable usable models, grey out the others; the tooltip says why."""
        singles = [status.get(v) for v in BASE_MODELS]
        for value, _text in CHOICES:
            if value == "all":
                ok = any(s == "ok" for s in singles)
                why = "reads with every available single model" if ok else f"no model available; {TRAIN_HINT}"
            else:
                state = status.get(value)
                ok = state == "ok"
                why = reason_for(state)
            self.buttons[value].configure(state="normal" if ok else "disabled")
            self._tips[value].text = why
