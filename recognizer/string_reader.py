"""Reading a line strip with the string reader (string_reader/model.py, run on ONNX Runtime): CTC decoding into
digits that each keep a box, a confidence and a top-3, as the canvas readings do (the UI, --annotate, --json and
corrections need them).

The string is the most likely one summed over every path through the frames (CTC prefix beam search), not the
string of the single most likely path: a digit whose probability is spread over two frames, each of which a blank
wins, is read rather than lost. Its digits are then placed on the most likely path that spells it (Viterbi). A
digit's distribution is its most confident frame's, renormalised over the ten digits; its box spans its frames'
columns (4 strip pixels each) and the ink rows under them. Written here: the maintained CTC decoders need
TensorFlow or PyTorch at reading time, or ship no Windows wheels (DECISIONS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BLANK = 0
FRAME_PX = 4  # strip columns per output frame (the model pools the columns twice by 2)
BEAM_WIDTH = 8  # prefixes kept per frame (against the best path: registers validation +12 / -1 pages, RESULTS)
UNLIKELY = math.log(1e-5)  # a digit less likely than this in a frame extends no prefix there (speed only)


@dataclass(frozen=True)
class StringDigit:
    digit: int
    probabilities: np.ndarray  # (10,) over the digits, sums to 1
    first: int                 # first and last frame of the digit (inclusive)
    last: int


def decode(frames: np.ndarray) -> list[StringDigit]:
    """The most likely digit string of (T, 11) frame probabilities (index 0 blank, d + 1 digit d), each digit at
    the frames where the most likely path that spells the string puts it."""
    logp = np.log(np.maximum(frames.astype(np.float64), 1e-30))
    labels = best_string(logp)
    out: list[StringDigit] = []
    for k, (first, last) in zip(labels, align(logp, labels)):
        peak = first + int(np.argmax(frames[first:last + 1, k]))
        p = frames[peak, 1:].astype(np.float64)
        p = p / max(p.sum(), 1e-12)
        out.append(StringDigit(digit=k - 1, probabilities=p.astype(np.float32), first=first, last=last))
    return out


def best_string(logp: np.ndarray, width: int = BEAM_WIDTH) -> list[int]:
    """CTC prefix beam search over log frame probabilities: the label sequence (classes 1-10) of highest total
    probability among the `width` best prefixes kept at each frame."""
    # prefix -> [log p of the prefix with the frames so far ending in a blank, ... ending in its last label]
    beams: dict[tuple, list[float]] = {(): [0.0, -math.inf]}
    for row in logp.tolist():  # plain floats: scalar NumPy calls would be most of the time
        labels = [k for k in range(1, len(row)) if row[k] > UNLIKELY]
        grown: dict[tuple, list[float]] = {}
        for prefix, (p_blank, p_label) in beams.items():
            total = _add(p_blank, p_label)
            entry = grown.setdefault(prefix, [-math.inf, -math.inf])
            entry[0] = _add(entry[0], total + row[BLANK])
            if prefix:  # the last label held for one more frame
                entry[1] = _add(entry[1], p_label + row[prefix[-1]])
            for k in labels:
                longer = grown.setdefault(prefix + (k,), [-math.inf, -math.inf])
                # a repeated label needs a blank between the two (else it is the same one held)
                start = p_blank if prefix and prefix[-1] == k else total
                longer[1] = _add(longer[1], start + row[k])
        beams = dict(sorted(grown.items(), key=lambda kv: -_add(*kv[1]))[:width])
    return list(max(beams.items(), key=lambda kv: _add(*kv[1]))[0])


def _add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) of two plain floats."""
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def align(logp: np.ndarray, labels: list[int]) -> list[tuple[int, int]]:
    """Each label's first and last frame on the most likely path that spells `labels` (Viterbi over the labels
    with blanks between them, as CTC reads them)."""
    if not labels:
        return []
    ext = np.zeros(2 * len(labels) + 1, int)
    ext[1::2] = labels
    n = len(ext)
    skip = np.zeros(n, bool)  # a step over a blank: allowed between two different labels
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    score = np.full(n, -np.inf)
    score[:2] = logp[0, ext[:2]]
    back = np.zeros((len(logp), n), int)
    for t in range(1, len(logp)):
        moves = np.stack([score,
                          np.concatenate([[-np.inf], score[:-1]]),
                          np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)])
        step = np.argmax(moves, axis=0)
        back[t] = step
        score = moves[step, np.arange(n)] + logp[t, ext]
    s = n - 1 if n == 1 or score[n - 1] >= score[n - 2] else n - 2
    spans: dict[int, list[int]] = {}
    for t in range(len(logp) - 1, -1, -1):
        if s % 2:
            span = spans.setdefault(s // 2, [t, t])
            span[0] = t
        s -= back[t, s]
    return [tuple(spans[i]) for i in range(len(labels))]


def text_of(frames: np.ndarray) -> str:
    """The digit string a strip's frames decode to (training and benchmarks compare it with the label)."""
    return "".join(str(d.digit) for d in decode(frames))


def digit_spans(found: list[StringDigit], width: int) -> list[tuple[int, int]]:
    """Each decoded digit's column range in its strip: from halfway to the previous digit to halfway to the next
    (CTC marks a digit with a spike of a frame or two, narrower than the digit's ink)."""
    peaks = [(d.first * FRAME_PX, (d.last + 1) * FRAME_PX) for d in found]
    cuts = [0] + [(a[1] + b[0]) // 2 for a, b in zip(peaks, peaks[1:])] + [width]
    return [(cuts[i], cuts[i + 1]) for i in range(len(found))]
