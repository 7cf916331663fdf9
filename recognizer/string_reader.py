"""Reading a line strip with the string reader (string_reader/model.py, run on ONNX Runtime): CTC decoding into
digits that each keep a box, a confidence and a top-3, as the canvas readings do (the UI, --annotate, --json and
corrections need them).

Greedy (best-path) decoding: per frame the most likely of blank and the ten digits; a run of the same digit is one
digit, a blank separates repeats. A digit's distribution is its most confident frame's, renormalised over the ten
digits; its box spans its frames' columns (4 strip pixels each) and the ink rows under them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLANK = 0
FRAME_PX = 4  # strip columns per output frame (the model pools the columns twice by 2)


@dataclass(frozen=True)
class StringDigit:
    digit: int
    probabilities: np.ndarray  # (10,) over the digits, sums to 1
    first: int                 # first and last frame of the digit (inclusive)
    last: int


def decode(frames: np.ndarray) -> list[StringDigit]:
    """Greedy CTC decoding of (T, 11) frame probabilities (index 0 blank, d + 1 digit d)."""
    best = frames.argmax(axis=1)
    out: list[StringDigit] = []
    start, prev = None, BLANK
    for t in range(len(best) + 1):
        k = int(best[t]) if t < len(best) else BLANK
        if start is not None and k != prev:
            span = frames[start:t, prev]
            peak = start + int(np.argmax(span))
            p = frames[peak, 1:].astype(np.float64)
            p = p / max(p.sum(), 1e-12)
            out.append(StringDigit(digit=prev - 1, probabilities=p.astype(np.float32), first=start, last=t - 1))
            start = None
        if k != BLANK and k != prev:
            start = t
        prev = k
    return out


def text_of(frames: np.ndarray) -> str:
    """The digit string a strip's frames decode to (training and benchmarks compare it with the label)."""
    return "".join(str(d.digit) for d in decode(frames))


def digit_box(d: StringDigit, line_box: tuple, x_scale: float, ink: np.ndarray | None = None,
              ink_scale: float = 1.0) -> tuple:
    """(x, y, w, h) in input pixels of a decoded digit: its frames' columns, the ink rows under them."""
    lx, ly, lw, lh = line_box
    x0 = lx + d.first * FRAME_PX * x_scale
    x1 = lx + (d.last + 1) * FRAME_PX * x_scale
    x0, x1 = int(max(lx, np.floor(x0))), int(min(lx + lw, np.ceil(x1)))
    y0, y1 = ly, ly + lh
    if ink is not None:
        s = ink_scale
        cols = ink[int(ly * s):int((ly + lh) * s) + 1, int(x0 * s):int(x1 * s) + 1]
        rows = np.nonzero(cols.max(axis=1) > 0)[0] if cols.size else []
        if len(rows):
            y0 = int(ly + rows[0] / s)
            y1 = int(np.ceil(ly + (rows[-1] + 1) / s))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))
