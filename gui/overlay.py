"""Result boxes drawn over the drawing or photo: one box per digit with its label and confidence.

The geometry (image pixels -> canvas pixels) is kept apart from Tk so it can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

SURE_COLOUR = "#1a7f37"  # green: the model is confident
UNSURE_COLOUR = "#d9480f"  # orange: below the recognizer's threshold, shown as "?"
CORRECTED_COLOUR = "#1c4fd8"  # blue: the writer said which digit it is
CORRECTED_MARK = "\u270e"  # a pencil after the writer's label: "1 ✎"
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


def corrected_label(label: int, read: int | None) -> str:
    """"1 ✎ (read 7)" for a correction, "7 ✎" for a confirmation: the writer's label, marked as theirs."""
    return f"{label} {CORRECTED_MARK}" + (f" (read {read})" if read is not None and read != label else "")


def draw(canvas: Any, digits: Sequence[Any], placement: Placement, selected: int | None,
         corrected: dict[int, int] | None = None) -> list[tuple[float, float, float, float]]:
    """Replace the overlay on `canvas`; the selected box is drawn solid and thicker; a digit the writer corrected
    (`corrected`: {index: label}) shows their label in blue. Returns the boxes drawn (canvas pixels)."""
    canvas.delete(TAG)
    corrected = corrected or {}
    drawn = []
    for i, digit in enumerate(digits):
        x0, y0, x1, y1 = placement.box(digit.box)
        drawn.append((x0, y0, x1, y1))
        tags = (TAG, f"{TAG}-{i}")
        col = CORRECTED_COLOUR if i in corrected else colour(digit)
        text = corrected_label(corrected[i], digit.digit) if i in corrected else label(digit)
        canvas.create_rectangle(x0 - 3, y0 - 3, x1 + 3, y1 + 3, outline=col,
                                width=4 if i == selected else 2, dash=() if i == selected else (6, 3), tags=tags)
        ty = y0 - 6 if y0 > 26 else y1 + 22
        canvas.create_text(x0, ty, anchor="sw", text=text, fill=col, font=("Helvetica", 14, "bold"), tags=tags)
    return drawn
