"""An opened photo on the canvas: the image, where it sits (scale and offset), and its Tk copy.

Kept apart from the window so that the window only asks "is a photo open, where are its pixels on screen";
the recognizer loads the file itself from `path` (it owns all preprocessing).
"""

from __future__ import annotations

import logging
import tkinter as tk
from dataclasses import dataclass, field
from typing import Any

from . import overlay
from .files import load_for_display

log = logging.getLogger("gui.photo")
TAG = "photo"


@dataclass
class Photo:
    path: str
    image: Any  # PIL.Image in RGB, EXIF rotation applied
    placement: overlay.Placement = field(default_factory=overlay.Placement)
    _tk: Any = None  # the Tk image must stay referenced while it is shown

    @classmethod
    def open(cls, path: str) -> "Photo":
        """Raises OSError/ValueError with the reason when the file is not an image."""
        return cls(path, load_for_display(path))

    def place(self, canvas: tk.Canvas) -> None:
        """Scale the photo to the canvas, centred, below the strokes and boxes."""
        from PIL import ImageTk  # here, not at import: only needed once a photo is opened

        self.placement = overlay.fit(self.image.size, (canvas.winfo_width(), canvas.winfo_height()))
        size = (max(1, round(self.image.width * self.placement.scale)),
                max(1, round(self.image.height * self.placement.scale)))
        self._tk = ImageTk.PhotoImage(self.image.resize(size))
        canvas.delete(TAG)
        canvas.create_image(self.placement.dx, self.placement.dy, anchor="nw", image=self._tk, tags=(TAG,))
        canvas.tag_lower(TAG)

    @staticmethod
    def remove(canvas: tk.Canvas) -> None:
        canvas.delete(TAG)
