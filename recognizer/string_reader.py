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
    the frames where the most likely path that spells the string puts it.

    (T, M, 11): M joined readers (string_reader.model.join). Each proposes its own most likely string; the one
    they find likeliest together (the sum of their log-probabilities of it) is read, each reader aligns it on its
    own frames, and a digit's distribution is the mean of theirs. Frames are not averaged: readers trained from
    different seeds put their CTC spikes up to a frame apart, and averaged frames read worse than one reader."""
    if frames.ndim == 2:
        frames = frames[:, None, :]
    logp = np.log(np.maximum(frames.astype(np.float64), 1e-30))
    readers = range(frames.shape[1])
    proposals = sorted({tuple(best_string(logp[:, m])) for m in readers})
    labels = list(max(proposals, key=lambda c: sum(string_logp(logp[:, m], c) for m in readers))
                  if len(proposals) > 1 else proposals[0])
    alignments = [align(logp[:, m], labels) for m in readers]
    out: list[StringDigit] = []
    for i, k in enumerate(labels):
        spans = [a[i] for a in alignments]
        p = np.zeros(10)
        for m, (first, last) in zip(readers, spans):
            peak = first + int(np.argmax(frames[first:last + 1, m, k]))
            q = frames[peak, m, 1:].astype(np.float64)
            p += q / max(q.sum(), 1e-12)
        out.append(StringDigit(digit=k - 1, probabilities=(p / len(readers)).astype(np.float32),
                               first=min(f for f, _ in spans), last=max(last for _, last in spans)))
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


def _extended(labels) -> tuple[np.ndarray, np.ndarray]:
    """CTC's view of a label sequence: blanks around and between the labels, and where a step may skip a blank
    (between two different labels)."""
    ext = np.zeros(2 * len(labels) + 1, int)
    ext[1::2] = labels
    skip = np.zeros(len(ext), bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    return ext, skip


def _moves(score: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """(3, S) scores of reaching each extended position by staying, stepping one on, or skipping a blank."""
    moves = np.full((3, len(score)), -np.inf)
    moves[0] = score
    moves[1, 1:] = score[:-1]
    moves[2, 2:] = np.where(skip[2:], score[:-2], -np.inf)
    return moves


def string_logp(logp: np.ndarray, labels) -> float:
    """log P(labels | frames) under CTC: every path that spells them, summed (the forward algorithm)."""
    ext, skip = _extended(labels)
    score = np.full(len(ext), -np.inf)
    score[:2] = logp[0, ext[:2]]
    for t in range(1, len(logp)):
        moves = _moves(score, skip)
        top = moves.max(axis=0)
        safe = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):  # a position no path reaches yet stays at log 0
            score = safe + np.log(np.exp(moves - safe).sum(axis=0)) + logp[t, ext]
    return float(np.logaddexp(score[-1], score[-2]) if len(ext) > 1 else score[-1])


def align(logp: np.ndarray, labels: list[int]) -> list[tuple[int, int]]:
    """Each label's first and last frame on the most likely path that spells `labels` (Viterbi over the labels
    with blanks between them, as CTC reads them)."""
    if not labels:
        return []
    ext, skip = _extended(labels)
    n = len(ext)
    score = np.full(n, -np.inf)
    score[:2] = logp[0, ext[:2]]
    back = np.zeros((len(logp), n), int)
    for t in range(1, len(logp)):
        moves = _moves(score, skip)
        step = np.argmax(moves, axis=0)
        back[t] = step
        score = moves[step, np.arange(n)] + logp[t, ext]
    s = n - 1 if score[n - 1] >= score[n - 2] else n - 2
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
