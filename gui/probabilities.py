"""Panel with the ten class probabilities of the selected digit, as horizontal bars."""

from __future__ import annotations

import tkinter as tk
from typing import Sequence

BAR = "#4c6ef5"
TOP = "#1a7f37"


class ProbabilityPanel(tk.Canvas):
    ROW = 22

    def __init__(self, master: tk.Misc, width: int = 230) -> None:
        super().__init__(master, width=width, height=self.ROW * 10 + 30, background="white",
                         highlightthickness=0)
        self.show(None, "")

    def show(self, probabilities: Sequence[float] | None, title: str) -> None:
        self.delete("all")
        self.create_text(4, 4, anchor="nw", text=title or "Probabilities", font=("Helvetica", 10, "bold"))
        if probabilities is None:
            self.create_text(4, 28, anchor="nw", text="(draw a digit)", fill="grey")
            return
        probs = [float(p) for p in probabilities]
        best = max(range(len(probs)), key=probs.__getitem__)
        full = int(self["width"]) - 84
        for d, p in enumerate(probs):
            y = 26 + d * self.ROW
            self.create_text(14, y + 8, text=str(d), font=("Helvetica", 11, "bold" if d == best else "normal"))
            self.create_rectangle(28, y + 2, 28 + max(1, p * full), y + self.ROW - 4, outline="",
                                  fill=TOP if d == best else BAR)
            self.create_text(32 + full, y + 8, anchor="w", text=f"{p:.1%}", font=("Helvetica", 9))
