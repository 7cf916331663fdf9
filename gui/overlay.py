"""Result boxes drawn over the drawing or photo: one box per digit with its label and confidence.

The geometry (image pixels -> canvas pixels) is kept apart from Tk so it can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

SURE_COLOUR = "#1a7f37"  # green: the model is confident
UNSURE_COLOUR = "#d9480f"  # orange: below the recognizer's threshold, shown as "?"
TAG = "overlay"


@dataclass(frozen=True)
class Placement:
    """How an image sits on the canvas: canvas = offset + scale * image pixel."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def box(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        x, y, w, h = box
        return (self.dx + x * self.scale, self.dy + y * self.scale,
                self.dx + (x + w) * self.scale, self.dy + (y + h) * self.scale)


def fit(image_size: tuple[int, int], canvas_size: tuple[int, int], margin: int = 8) -> Placement:
    """Scale an image to fit the canvas (up or down) and centre it."""
    iw, ih = image_size
    cw, ch = max(1, canvas_size[0] - 2 * margin), max(1, canvas_size[1] - 2 * margin)
    scale = min(cw / iw, ch / ih)
    return Placement(scale, (canvas_size[0] - iw * scale) / 2, (canvas_size[1] - ih * scale) / 2)


def label(digit: Any) -> str:
    """"7 98%" or "? 41%": the digit (or "?" when uncertain) and the confidence."""
    return f"{digit.label} {float(digit.confidence):.0%}"


def colour(digit: Any) -> str:
    return UNSURE_COLOUR if digit.uncertain else SURE_COLOUR


def draw(canvas: Any, digits: Sequence[Any], placement: Placement, selected: int | None) -> None:
    """Replace the overlay on `canvas`; the selected box is drawn solid and thicker."""
    canvas.delete(TAG)
    for i, digit in enumerate(digits):
        x0, y0, x1, y1 = placement.box(digit.box)
        tags = (TAG, f"{TAG}-{i}")
        col = colour(digit)
        canvas.create_rectangle(x0 - 3, y0 - 3, x1 + 3, y1 + 3, outline=col,
                                width=4 if i == selected else 2, dash=() if i == selected else (6, 3), tags=tags)
        ty = y0 - 6 if y0 > 26 else y1 + 22
        canvas.create_text(x0, ty, anchor="sw", text=label(digit), fill=col, font=("Helvetica", 14, "bold"),
                           tags=tags)
