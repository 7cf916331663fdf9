"""Off-screen copy of what the user draws, kept stroke by stroke beside the Tk canvas.

The recognizer reads this image, never a screen grab: grabbing depends on the window being
visible and unobscured, and on the display's scaling. Strokes are kept as point lists so that
Undo and a canvas resize can re-render the image exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from common import brush
from common.brush import BACKGROUND, INK, Point  # noqa: F401  (re-exported: the GUI's colours)


@dataclass
class Stroke:
    """One press-drag-release of the pointer, with the brush width it was drawn with."""

    width: int
    points: list[Point] = field(default_factory=list)


class Drawing:
    """Strokes plus their rendering into a greyscale PIL image ("L", white background)."""

    def __init__(self, width: int, height: int) -> None:
        self.strokes: list[Stroke] = []
        self._size = (max(1, int(width)), max(1, int(height)))
        self.image = Image.new("L", self._size, BACKGROUND)
        self._draw = ImageDraw.Draw(self.image)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def empty(self) -> bool:
        return not self.strokes

    def begin(self, x: float, y: float, width: int) -> Stroke:
        stroke = Stroke(max(1, int(width)), [(x, y)])
        self.strokes.append(stroke)
        self._dot(stroke.points[0], stroke.width)
        return stroke

    def extend(self, x: float, y: float) -> None:
        """Add a point to the current stroke and paint just the new segment (cheap while dragging)."""
        if not self.strokes:
            return
        stroke = self.strokes[-1]
        last = stroke.points[-1]
        if (x, y) == last:
            return
        stroke.points.append((x, y))
        self._segment(last, (x, y), stroke.width)

    def undo(self) -> bool:
        """Remove the last stroke; False when there was nothing to undo."""
        if not self.strokes:
            return False
        self.strokes.pop()
        self._render()
        return True

    def clear(self) -> None:
        self.strokes.clear()
        self._render()

    def resize(self, width: int, height: int) -> None:
        """Follow the canvas size; strokes keep their pixel positions (shrinking crops them)."""
        size = (max(1, int(width)), max(1, int(height)))
        if size != self._size:
            self._size = size
            self._render()

    def array(self):
        """A uint8 HxW numpy copy for the recognizer (a copy, so later strokes cannot change a request)."""
        import numpy as np  # not at import time: the window must show before numpy/TensorFlow load

        return np.array(self.image, dtype=np.uint8, copy=True)

    def _render(self) -> None:
        self.image = Image.new("L", self._size, BACKGROUND)
        self._draw = ImageDraw.Draw(self.image)
        for stroke in self.strokes:
            brush.stroke(self._draw, stroke.points, stroke.width)

    def _segment(self, a: Point, b: Point, width: int) -> None:
        brush.segment(self._draw, a, b, width)

    def _dot(self, p: Point, width: int) -> None:
        brush.dot(self._draw, p, width)
