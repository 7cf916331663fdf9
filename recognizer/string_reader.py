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


def digit_spans(found: list[StringDigit], width: int) -> list[tuple[int, int]]:
    """Each decoded digit's column range in its strip: from halfway to the previous digit to halfway to the next
    (CTC marks a digit with a spike of a frame or two, narrower than the digit's ink)."""
    peaks = [(d.first * FRAME_PX, (d.last + 1) * FRAME_PX) for d in found]
    cuts = [0] + [(a[1] + b[0]) // 2 for a, b in zip(peaks, peaks[1:])] + [width]
    return [(cuts[i], cuts[i + 1]) for i in range(len(found))]
