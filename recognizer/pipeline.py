"""Recognizer: image -> Reading. One segmentation, one batched inference call per model."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from common.names import DEFAULT_MODELS_DIR, MODEL_NAMES, STRING_MODEL, train_hint

from .errors import RecognizerError
from .images import load_gray, to_ink
from .models import ModelStore
from .normalize import normalize_batch, normalize_digit
from .paper_reader import PAPER_CANVAS_WEIGHT, SOURCES, StringModel, choose_source, read_paper
from .prepare import Prepared, prepare
from .threshold import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)


@dataclass
class DigitReading:
    digit: int
    confidence: float
    top3: list                 # [(digit, probability), ...] best first
    box: tuple                 # (x, y, w, h) in input-image pixels
    probabilities: np.ndarray  # (10,)
    uncertain: bool
    label: str                 # "7", or "?" when uncertain
    line: int
    input: np.ndarray | None = field(default=None, repr=False)  # (28, 28) what the model saw (a correction keeps it)

    def to_dict(self) -> dict:
        return {"digit": self.digit, "confidence": round(self.confidence, 6), "box": list(self.box),
                "top3": [[d, round(p, 6)] for d, p in self.top3], "uncertain": self.uncertain,
                "line": self.line}


@dataclass
class Reading:
    digits: list = field(default_factory=list)
    model: str = ""
    ms: float = 0.0
    adapted: bool = False  # read with the writer's adapted heads (recognizer/profile.py)
    source: str = "canvas"  # "canvas" (one contour, one digit) or "paper" (lines read whole by the string reader)

    @property
    def text(self) -> str:
        """Labels in reading order; lines joined with newlines; uncertain digits as '?'."""
        lines: dict[int, list[str]] = {}
        for d in self.digits:
            lines.setdefault(d.line, []).append(d.label)
        return "\n".join("".join(lines[k]) for k in sorted(lines))

    def to_dict(self) -> dict:
        return {"text": self.text, "digits": [d.to_dict() for d in self.digits], "model": self.model,
                "ms": round(self.ms, 2), "adapted": self.adapted, "source": self.source}


class Recognizer:
    """Reads the digits of a canvas drawing or photo with the models of a ModelStore."""

    def __init__(self, store: ModelStore | None = None, threshold: float = DEFAULT_THRESHOLD, profile=None,
                 source: str = "auto"):
        if not 0.0 <= float(threshold) <= 1.0:
            raise RecognizerError(f"threshold must be in [0, 1], got {threshold}")
        if source not in SOURCES:
            raise RecognizerError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
        self.store = store if store is not None else ModelStore(DEFAULT_MODELS_DIR)
        self.threshold = float(threshold)
        self.profile = profile  # a recognizer.profile.Profile: read with the writer's adapted heads, or None
        self.source = source    # auto: paper for pictures with uneven light or texture, when the paper reader exists
        self.string_model = StringModel(self.store)
        self.paper_canvas_weight = PAPER_CANVAS_WEIGHT  # share of the canvas model in a paper digit's probabilities

    _warm = False

    @classmethod
    def warm_up(cls) -> None:
        """Run the normaliser once (its cached pens, OpenCV's and NumPy's first calls): a fast first reading."""
        if not cls._warm:
            img = np.zeros((40, 40), np.uint8)
            img[5:35, 18:22] = 255
            normalize_digit(img)
            cls._warm = True

    def prepare(self, image) -> Prepared:
        """Load, binarise, segment and normalise: boxes in input pixels and the (N, 28, 28, 1) batch."""
        return prepare(image)

    def resolve_model(self, model: str | None) -> str:
        """The model name to use: `model`, or the store's default; RecognizerError if none/unknown."""
        if model is None:
            model = self.store.default_name()
            if model is None:
                raise RecognizerError(f"no trained model in {self.store.models_dir}/; {train_hint()}")
        if model not in MODEL_NAMES:
            raise RecognizerError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
        return model

    def _reading(self, prep: Prepared, name: str) -> Reading:
        t0 = time.perf_counter()
        adapted = False
        if not len(prep.batch):
            probs = np.zeros((0, 10), np.float32)
        elif self.profile is not None:
            probs, adapted = self.profile.predict(name, prep.batch)
        else:
            probs = self.store.predict(name, prep.batch)
        digits = []
        for p, box, line, x in zip(probs, prep.boxes, prep.lines, prep.batch):
            order = np.argsort(p)[::-1][:3]
            d, conf = int(order[0]), float(p[order[0]])
            uncertain = conf < self.threshold
            digits.append(DigitReading(digit=d, confidence=conf, top3=[(int(k), float(p[k])) for k in order],
                                       box=box, probabilities=np.asarray(p, np.float32), uncertain=uncertain,
                                       label="?" if uncertain else str(d), line=int(line), input=x[..., 0]))
        reading = Reading(digits=digits, model=name, ms=prep.ms + (time.perf_counter() - t0) * 1000.0,
                          adapted=adapted)
        log.debug("%s read %r in %.1f ms", name, reading.text, reading.ms)
        return reading

    def read(self, image, model: str | None = None) -> Reading:
        """Read all digits of `image` (array or path) with one batched inference call: a canvas drawing with
        `model`, a scan or photo of paper with the string reader (see recognizer/paper_reader.py)."""
        name = self.resolve_model(model)
        self.store.load(name)  # model loading is not part of the reading time
        self.warm_up()
        if self.source == "canvas":
            return self._reading(self.prepare(image), name)
        t0 = time.perf_counter()
        gray = load_gray(image)
        if self.source == "paper":
            return self._paper_reading(gray, t0, name)
        ink = to_ink(gray)
        if self.string_model.available() and choose_source(gray, ink.photo) == "paper":
            return self._paper_reading(gray, t0, name)
        prep = prepare(gray, ink)
        prep.ms = (time.perf_counter() - t0) * 1000.0
        return self._reading(prep, name)

    def _paper_reading(self, gray: np.ndarray, t0: float, name: str) -> Reading:
        """Lines read whole by the string reader; each digit's crop also read by the canvas model `name` (with the
        writer's adaptation, if any) and the two distributions mixed by `paper_canvas_weight`."""
        found = read_paper(gray, self.string_model)
        inputs = normalize_batch([f.ink for f in found]) if found else np.zeros((0, 28, 28, 1), np.float32)
        probs = np.stack([f.digit.probabilities for f in found]) if found else np.zeros((0, 10), np.float32)
        adapted = False
        w = self.paper_canvas_weight
        if len(found) and w > 0:
            if self.profile is not None:
                canvas, adapted = self.profile.predict(name, inputs)
            else:
                canvas = self.store.predict(name, inputs)
            probs = (1.0 - w) * probs + w * np.asarray(canvas, np.float32)
        digits = []
        for f, x, p in zip(found, inputs, probs):
            order = np.argsort(p)[::-1][:3]
            d, conf = int(order[0]), float(p[order[0]])
            uncertain = conf < self.threshold
            digits.append(DigitReading(digit=d, confidence=conf, top3=[(int(k), float(p[k])) for k in order],
                                       box=f.box, probabilities=p, uncertain=uncertain,
                                       label="?" if uncertain else str(d), line=f.line, input=x[..., 0]))
        reading = Reading(digits=digits, model=STRING_MODEL, ms=(time.perf_counter() - t0) * 1000.0,
                          adapted=adapted, source="paper")
        log.debug("paper read %r in %.1f ms", reading.text, reading.ms)
        return reading

    def read_models(self, image, models) -> dict:
        """One segmentation, one batched inference per model -> {model name: Reading}."""
        names = [self.resolve_model(m) for m in models]
        for n in names:
            self.store.load(n)
        self.warm_up()
        prep = self.prepare(image)
        return {n: self._reading(prep, n) for n in names}
