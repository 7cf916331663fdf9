"""Saving the drawing and loading a photo for display.

The recognizer loads photos itself (it owns all preprocessing); here a photo is only opened
to be shown. Saving goes through `atomic_path` so a failed save never leaves half a PNG over an
older file, and the drawing itself stays in memory whatever happens.
"""

from __future__ import annotations

import logging
import os

from PIL import Image, ImageOps

from common.atomic import atomic_path

log = logging.getLogger("gui.files")

OPEN_TYPES = [("Images", "*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp"), ("All files", "*")]
SAVE_TYPES = [("PNG image", "*.png")]


def save_png(image: Image.Image, target: str | os.PathLike) -> None:
    """Write `image` as PNG to `target` atomically; raises OSError/ValueError with the reason."""
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    log.info("saved drawing to %s", target)


def load_for_display(path: str | os.PathLike) -> Image.Image:
    """The photo as the user sees it (EXIF rotation applied), in RGB for Tk."""
    with Image.open(path) as im:
        im.load()
        return ImageOps.exif_transpose(im).convert("RGB")
