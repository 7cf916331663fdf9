"""Hover text for widgets, used to say why a model is greyed out."""

from __future__ import annotations

import tkinter as tk


class Tooltip:
    """Shows `text` in a small borderless window while the pointer is over `widget`."""

    def __init__(self, widget: tk.Widget, text: str = "") -> None:
        self.widget, self.text, self._tip = widget, text, None
        widget.bind("<Enter>", self._show, add="+")
        widget.bind("<Leave>", self._hide, add="+")

    def _show(self, _event=None) -> None:
        if not self.text or self._tip is not None:
            return
        tip = tk.Toplevel(self.widget)
        tip.wm_overrideredirect(True)
        w = self.widget
        tip.wm_geometry(f"+{w.winfo_rootx() + 10}+{w.winfo_rooty() + w.winfo_height() + 4}")
        tk.Label(tip, text=self.text, justify="left", background="#ffffe0", relief="solid",
                 borderwidth=1, wraplength=420, padx=4, pady=2).pack()
        self._tip = tip

    def _hide(self, _event=None) -> None:
        if self._tip is not None:
            self._tip.destroy()
            self._tip = None
