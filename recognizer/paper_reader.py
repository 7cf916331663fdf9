"""The paper side of the reader: a scan or photo of paper -> digits with boxes, confidences and top-3, read line by
line by the string reader (`models/string.onnx`) on the strips recognizer/paper.py makes.

Which side reads an image (`choose_source`): a canvas drawing is a clean two-level picture (one paper grey, one
ink grey, a few edge pixels between); a scan or photo of paper is not (light falls off, the paper has grain or a
printed pattern, a scan has a dark border), and scanners and cameras never give half the pixels one exact grey
level, which a drawing's background always has. Drawings keep the canvas path, so canvas readings cannot change.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from common.names import STRING_MODEL, onnx_file

from .errors import RecognizerError
from .paper import STRIP_HEIGHT, number_lines, prepare_paper
from .string_reader import FRAME_PX, StringDigit, decode, digit_spans

log = logging.getLogger(__name__)

SOURCES = ("auto", "canvas", "paper")
CANVAS_FLAT = 0.5  # share of the pixels at one exact grey level that marks a drawn (digital) background
NARROW_STRIP = 48  # a strip narrower than this that reads nothing is read again centred in paper this wide
LINE_SURENESS = 0.95  # a line read less surely than this share of the surest line's is not a number (sure_lines)
PAPER_CANVAS_WEIGHT = 0.0  # share of the canvas model in a paper digit: 0, 0.5, 1 read 78.2 / 73.0 / 37.5% of validation registers


def choose_source(gray: np.ndarray, photo: bool) -> str:
    """'canvas' for a drawing (a flat digital background: one grey level holds at least CANVAS_FLAT of the
    pixels) that binarisation does not treat as a photo; 'paper' for everything else (grain, light, texture)."""
    if photo:
        return "paper"
    hist = np.bincount(gray.reshape(-1), minlength=256)
    return "canvas" if hist.max() >= CANVAS_FLAT * gray.size else "paper"


@dataclass(frozen=True)
class PaperDigit:
    digit: StringDigit
    box: tuple          # (x, y, w, h) in input pixels
    line: int
    ink: np.ndarray     # uint8 mask (ink = 255) of the digit's box in the cleaned page: what a correction keeps


class StringModel:
    """The string reader's ONNX session, opened on first use with the store's thread settings."""

    def __init__(self, store):
        self.store = store
        self._session = None
        self._lock = threading.Lock()

    @property
    def path(self):
        return self.store.models_dir / onnx_file(STRING_MODEL)

    def available(self) -> bool:
        return self.path.is_file()

    def session(self):
        with self._lock:
            if self._session is None:
                if not self.path.is_file():
                    raise RecognizerError(f"the paper reader {self.path} is missing; train it with: "
                                          f"python train_all.py --models {STRING_MODEL}")
                try:
                    self._session = self.store._open_session(self.path)
                except Exception as exc:  # truncated or not ONNX
                    raise RecognizerError(f"the paper reader {self.path} could not be read "
                                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
            return self._session

    def frames(self, strips: list[np.ndarray]) -> list[np.ndarray]:
        """Frame probabilities of each strip: one batched call, strips padded to the widest (padding is paper)."""
        if not strips:
            return []
        width = max(s.shape[1] for s in strips)
        width += (-width) % FRAME_PX
        batch = np.zeros((len(strips), STRIP_HEIGHT, width, 1), np.float32)
        for i, s in enumerate(strips):
            batch[i, :, :s.shape[1], 0] = s
        session = self.session()
        out = session.run(None, {session.get_inputs()[0].name: batch})[0]
        return [out[i, :int(np.ceil(s.shape[1] / FRAME_PX))] for i, s in enumerate(strips)]


def read_paper(gray: np.ndarray, model: StringModel) -> list[PaperDigit]:
    """Every digit of every text line of a grey paper image, top line first, left to right."""
    page = prepare_paper(gray)
    strips = [line.strip for line in page.lines]
    found = narrow_second_look(strips, [decode(f) for f in model.frames(strips)], model)
    read = {id(line): digits for line, digits in zip(page.lines, found)}
    # a line of non-digits (printed text, a rule's remnant) reads nothing; of the rest, the number's lines
    lines = sure_lines(number_lines([line for line in page.lines if read[id(line)]]), read)
    digits: list[PaperDigit] = []
    for line_no, line in enumerate(lines):
        found = read[id(line)]
        for d, span in zip(found, digit_spans(found, line.strip.shape[1])):
            box, ink = digit_ink(d, span, line, page)
            digits.append(PaperDigit(d, box, line_no, ink))
    return digits


def narrow_second_look(strips: list[np.ndarray], found: list[list[StringDigit]],
                       model: StringModel) -> list[list[StringDigit]]:
    """Narrow strips (a lone "1." is stretched to the minimum width) that read nothing are read again centred in
    NARROW_STRIP columns of paper: with blank frames around it the reader finds the digit. Their frames are cut
    back to the strip's own columns, so spans and boxes stay in its coordinates."""
    again = [i for i, (s, digits) in enumerate(zip(strips, found)) if s.shape[1] < NARROW_STRIP and not digits]
    if not again:
        return found
    lefts = [(NARROW_STRIP - strips[i].shape[1]) // 2 // FRAME_PX * FRAME_PX for i in again]
    padded = [np.pad(strips[i], ((0, 0), (left, NARROW_STRIP - strips[i].shape[1] - left)))
              for i, left in zip(again, lefts)]
    found = list(found)
    for i, left, f in zip(again, lefts, model.frames(padded)):
        first = left // FRAME_PX
        found[i] = decode(f[first:first + int(np.ceil(strips[i].shape[1] / FRAME_PX))])
    return found


def sure_lines(lines: list, read: dict) -> list:
    """The lines read about as surely as the surest one: a line whose digits' median confidence is under
    LINE_SURENESS of it is a mark or a fragment read as digits (a neighbouring column's glyph, a note, print)."""
    sureness = {id(line): float(np.median([d.probabilities.max() for d in read[id(line)]])) for line in lines}
    best = max(sureness.values(), default=0.0)
    return [line for line in lines if sureness[id(line)] >= LINE_SURENESS * best]


def digit_ink(d: StringDigit, span: tuple[int, int], line, page) -> tuple[tuple, np.ndarray]:
    """A decoded digit's box in input pixels and its ink mask: the pieces of ink within its span that reach the
    columns where the reader saw it (a separator or tick beside it stays out), cut at the span's edges."""
    s, inv = page.scale, 1.0 / page.scale
    lx, ly, lw, lh = (int(round(v * s)) for v in line.box)
    xs = line.x_scale * s  # working pixels per strip column
    x0, x1 = lx + int(span[0] * xs), min(lx + lw, lx + int(np.ceil(span[1] * xs)))
    region = np.where(page.ink[ly:ly + lh, x0:max(x0 + 1, x1)] > 0, np.uint8(255), np.uint8(0))
    n, labels = cv2.connectedComponents(region, connectivity=8)
    if n > 1:
        p0 = max(0, int(d.first * FRAME_PX * xs) + lx - x0)
        p1 = max(p0 + 1, int(np.ceil((d.last + 1) * FRAME_PX * xs)) + lx - x0)
        under = np.unique(labels[:, p0:p1])
        keep = np.zeros(n, bool)
        keep[under] = True
        keep[0] = False
        if keep.any():
            region = np.where(keep[labels], np.uint8(255), np.uint8(0))
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    if not len(rows):
        box = (x0, ly, max(1, x1 - x0), max(1, lh))
        return tuple(int(round(v * inv)) for v in box), region
    region = region[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    box = (x0 + cols[0], ly + rows[0], region.shape[1], region.shape[0])
    bx, by = int(np.floor(box[0] * inv)), int(np.floor(box[1] * inv))
    return (bx, by, max(1, int(np.ceil(box[2] * inv))), max(1, int(np.ceil(box[3] * inv)))), region
