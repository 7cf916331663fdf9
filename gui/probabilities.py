"""Panel with the ten class probabilities of the selected digit, as horizontal bars.

A click on a row says "this digit is that one" (a correction, see gui/learning.py); the writer's label, when
they gave one, is framed.
"""

from __future__ import annotations

import tkinter as tk
from typing import Callable, Sequence

BAR = "#4c6ef5"
TOP = "#1a7f37"
CHOSEN = "#1c4fd8"  # the writer's label (gui.overlay.CORRECTED_COLOUR)
ROW = 22
TOP_Y = 26  # first row's top


def row_at(y: float) -> int | None:
    """The digit whose row is at panel height `y`, if any."""
    d = int((y - TOP_Y) // ROW) if y >= TOP_Y else -1
    return d if 0 <= d <= 9 else None


class ProbabilityPanel(tk.Canvas):
    ROW = ROW

    def __init__(self, master: tk.Misc, width: int = 230, on_pick: Callable[[int], None] | None = None) -> None:
        super().__init__(master, width=width, height=self.ROW * 10 + 30, background="white",
                         highlightthickness=0)
        self._on_pick = on_pick
        self.showing = False
        self.bind("<ButtonRelease-1>", self._click)
        self.show(None, "")

    def _click(self, event) -> None:
        row = row_at(event.y)
        if self.showing and row is not None and self._on_pick is not None:
            self._on_pick(row)

    def show(self, probabilities: Sequence[float] | None, title: str, chosen: int | None = None) -> None:
        self.delete("all")
        self.showing = probabilities is not None
        self.configure(cursor="hand2" if self.showing and self._on_pick else "")
        self.create_text(4, 4, anchor="nw", text=title or "Probabilities", font=("Helvetica", 10, "bold"))
        if probabilities is None:
            self.create_text(4, 28, anchor="nw", text="(draw a digit)", fill="grey")
            return
        probs = [float(p) for p in probabilities]
        best = max(range(len(probs)), key=probs.__getitem__)
        full = int(self["width"]) - 84
        for d, p in enumerate(probs):
            y = TOP_Y + d * self.ROW
            if d == chosen:
                self.create_rectangle(1, y, int(self["width"]) - 2, y + self.ROW - 2, outline=CHOSEN, width=2,
                                      tags=("chosen",))
            self.create_text(14, y + 8, text=str(d), font=("Helvetica", 11, "bold" if d == best else "normal"))
            self.create_rectangle(28, y + 2, 28 + max(1, p * full), y + self.ROW - 4, outline="",
                                  fill=TOP if d == best else BAR)
            self.create_text(32 + full, y + 8, anchor="w", text=f"{p:.1%}", font=("Helvetica", 9))
