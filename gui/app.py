"""The main window: drawing canvas, model picker, live results, open/save, status bar.

Everything here runs on the Tk thread and stays cheap: drawing goes to the canvas and to the
off-screen `Drawing`; recognition is handed to `RecognitionWorker` and the answers come back
through a queue polled with `after`. Preprocessing belongs to `recognizer`: the window only
passes the off-screen image (uint8 array) or an opened file's path.

Each recognition shown is logged as one INFO line, which the tests read:
    recognized text=147 model=cnn ms=23
    recognized text=ann:147,cnn:147,vgg16:147 model=all ms=41   ("All three")
    recognized text= model=cnn ms=0                              (empty drawing)
Multi-line readings keep one log line: the line break is written as a literal "\\n".
Start-up is logged too (the tests and benchmarks/bench_startup.py wait for these lines):
    window ready ms=310                  the window is mapped and takes input
    model ensemble ready ms=1250         the model the picker shows can answer (ms since launch)
    waiting for model cnn to load        a drawing was sent before its model could answer; it is read after
Learning the writer's hand (gui/learning.py) logs too:
    profile /home/u/.local/share/digit-recognizer/profile      (or "profile none: <why>")
    correction digit=1 read=7 label=1 shown=1                   the writer typed or clicked the right digit
    correction stored id=12 / undo: correction of digit 1 (id=12)
    adapting model=cnn                                          the learner (recognizer/learner.py) started
    adaptation accepted=True model=cnn: CNN learned from 23 corrections of your handwriting
    profile stats: <line> | <line> ...  /  profile reset, corrections kept in <path>
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import logging
import queue
import time
import tkinter as tk
from tkinter import filedialog, messagebox
from typing import Any, Callable

from common.names import BASE_MODELS

from . import overlay
from .drawing import Drawing
from .files import OPEN_TYPES, SAVE_TYPES, save_png
from .learning import (Adapt, AdaptationDone, AdaptationStarted, Correct, CorrectionStored, CorrectionUndone,
                       Corrections, CountReading, Fix, Mark, ProfileFailed, ProfileOpened, ProfileReset, ProfileStats,
                       Remove, Reset, Stats, THUMB_PX, Undo, digit_key, listed_text)
from .motion import keep_all_motion_events
from .photo import Photo
from .picker import CHOICES, TRAIN_HINT, ModelPicker
from .probabilities import ProbabilityPanel
from .session import choose_model, ready_models
from .statusbar import NAMES, StatusBar, describe
from .worker import (ALL_MODELS, RecognitionDone, RecognitionFailed, RecognitionWorker, Request, StatusUpdate,
                     default_factory)

log = logging.getLogger("gui")

TITLE = "Digit Recognizer"
LIVE_DELAY_MS = 400  # after a stroke ends: long enough to start the next stroke of a "4" or "7"
POLL_MS = 40
DEFAULT_BRUSH = 18
STROKE = "stroke"  # an undo history entry; a correction's entry is its Fix
LEARNING = (ProfileOpened, CorrectionStored, CorrectionUndone, AdaptationStarted, AdaptationDone, ProfileStats,
            ProfileReset, ProfileFailed)


def log_text(text: str) -> str:
    """Keep the log line one line: multi-line readings get a literal "\\n"."""
    return text.replace("\n", "\\n")


class DigitApp:
    def __init__(self, root: tk.Tk, models_dir: str, model: str | None = None, brush: int = DEFAULT_BRUSH,
                 worker_factory: Callable | None = None, started: float | None = None,
                 profile: str | None = None) -> None:
        self.root = root
        self.started = started if started is not None else time.perf_counter()
        self.requested_model = model
        self.initial_brush = brush
        self.results: queue.Queue[Any] = queue.Queue()
        factory = worker_factory or functools.partial(default_factory, profile=profile)
        self.worker = RecognitionWorker(models_dir, self.results, factory=factory)
        self.learner = self.worker.learner
        self.profile_opened: ProfileOpened | None = None  # the worker's word on the writer's profile, once opened
        self.corrections = Corrections()  # the writer's labels for the digits on screen
        self._history: list[Any] = []  # one undo history: STROKE or a correction's Mark, newest last
        self._next_token = 0
        self._adapt_checked: set[str] = set()  # models whose adaptation was checked against a model update
        self._unfinished: tuple[int, bool] | None = None  # (digits, adapted) of the reading on screen, not counted
        self._handwriting: tk.Toplevel | None = None
        self._handwriting_text: tk.Label | None = None
        self._remove_buttons: dict[int, tk.Button] = {}  # correction id -> its Remove, newest first
        self._thumbs: dict[int, tk.PhotoImage] = {}  # correction id -> its crop (Tk shows only what is referenced)
        self.drawing = Drawing(1, 1)
        self.status: dict[str, str] = {}
        self.loaded: tuple[str, ...] = ()  # models that can answer now (the worker says when)
        self.default_model: str | None = None
        self._stroke_items: list[int] = []
        self._live_job: str | None = None
        self._next_id = 0
        self._wanted_id = 0  # only the answer to this request is shown
        self._readings: dict[str, Any] | None = None
        self._primary: str | None = None
        self._selected: int | None = None
        self._photo: Photo | None = None
        self._read_image: Any = None
        self._ready_logged = False
        self._default_ready_logged = False
        self._press_box: int | None = None  # result box under the last button press
        self._press_at = (0.0, 0.0)
        self._build()
        self._bind_keys()
        keep_all_motion_events(root)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        root.after(POLL_MS, self._poll)

    # --- layout ------------------------------------------------------------------------------------

    def _build(self) -> None:
        root = self.root
        root.title(TITLE)
        root.geometry("1100x720+0+0")
        root.minsize(640, 420)
        bar = tk.Frame(root)
        bar.pack(side="top", fill="x", padx=6, pady=4)
        self.picker = ModelPicker(bar, self._on_model_picked)
        self.picker.pack(side="left")
        tk.Button(bar, text="Recognize", command=self.recognize).pack(side="left", padx=(12, 2))
        tk.Button(bar, text="Undo", command=self.undo).pack(side="left", padx=2)
        tk.Button(bar, text="Clear", command=self.clear).pack(side="left", padx=2)
        tk.Button(bar, text="Open image...", command=self.open_image).pack(side="left", padx=(12, 2))
        tk.Button(bar, text="Save drawing...", command=self.save_drawing).pack(side="left", padx=2)
        tk.Button(bar, text="My handwriting...", command=self.show_handwriting).pack(side="left", padx=(12, 2))
        self.brush = tk.Scale(bar, from_=2, to=80, orient="horizontal", label="Brush", length=140)
        self.brush.set(self.initial_brush)
        self.brush.pack(side="right")

        self.statusbar = StatusBar(root)
        self.statusbar.pack(side="bottom", fill="x")

        side = tk.Frame(root, width=240)
        side.pack(side="right", fill="y", padx=6, pady=4)
        tk.Label(side, text="Number", font=("Helvetica", 10, "bold")).pack(anchor="w")
        self.number = tk.Label(side, text="", font=("Helvetica", 44, "bold"), anchor="w", justify="left",
                               wraplength=230)
        self.number.pack(anchor="w", fill="x")
        self.per_model = tk.Label(side, text="", font="TkFixedFont", anchor="w", justify="left", wraplength=230)
        self.per_model.pack(anchor="w", fill="x", pady=(0, 8))
        self.probs = ProbabilityPanel(side, on_pick=self.correct)
        self.probs.pack(anchor="w")
        tk.Label(side, text="Click a box to see its probabilities;\ntype 0-9 or click a row if it is wrong.\n"
                            "Return: recognize  Esc: clear\nCtrl+Z: undo  Ctrl+1..5: model\n"
                            "Ctrl+H: my handwriting", fg="grey", justify="left").pack(anchor="w", pady=8)

        self.canvas = tk.Canvas(root, background="white", highlightthickness=0, borderwidth=0, cursor="pencil")
        self.canvas.pack(side="left", fill="both", expand=True, padx=(6, 0), pady=4)
        self.canvas.bind("<Configure>", self._on_canvas_configure)
        self.canvas.bind("<Map>", self._on_map)
        self.canvas.bind("<ButtonPress-1>", self._on_press)
        self.canvas.bind("<B1-Motion>", self._on_drag)
        self.canvas.bind("<ButtonRelease-1>", self._on_release)

    def _bind_keys(self) -> None:
        r = self.root
        r.bind("<Return>", lambda e: self.recognize())
        r.bind("<KP_Enter>", lambda e: self.recognize())
        r.bind("<Escape>", lambda e: self.clear())
        r.bind("<Control-z>", lambda e: self.undo())
        r.bind("<Control-Z>", lambda e: self.undo())
        r.bind("<Control-o>", lambda e: self.open_image())
        r.bind("<Control-s>", lambda e: self.save_drawing())
        r.bind("<Control-q>", lambda e: self.quit())
        r.bind("<Control-h>", lambda e: self.show_handwriting())
        for d in range(10):  # the selected digit is this one (Ctrl+1..5 stay the model shortcuts)
            r.bind(f"<Key-{d}>", lambda e, d=d: self._typed(d, e))
            r.bind(f"<KP_{d}>", lambda e, d=d: self._typed(d, e))
        for i, (value, _text) in enumerate(CHOICES, start=1):
            r.bind(f"<Control-Key-{i}>", lambda e, v=value: self.select_model(v))

    # --- startup -----------------------------------------------------------------------------------

    def _on_map(self, _event=None) -> None:
        self._log_geometry()
        if self._ready_logged:
            return
        self._ready_logged = True
        self.root.focus_force()
        log.info("window ready ms=%.0f", (time.perf_counter() - self.started) * 1000)
        # Only now start the worker: importing the recognizer and loading models must not delay the first paint.
        self.root.after(10, lambda: self.worker.start(self.requested_model))

    def _on_canvas_configure(self, event) -> None:
        self.drawing.resize(event.width, event.height)
        self._log_geometry()
        if self._photo is not None:
            self._photo.place(self.canvas)
            self._draw_overlay()

    def _log_geometry(self) -> None:
        c = self.canvas
        log.debug("canvas geometry x=%d y=%d w=%d h=%d", c.winfo_rootx(), c.winfo_rooty(),
                  c.winfo_width(), c.winfo_height())
        self._log_panel()

    def _log_panel(self) -> None:
        log.debug("probabilities geometry x=%d y=%d", self.probs.winfo_rootx(), self.probs.winfo_rooty())

    # --- drawing -----------------------------------------------------------------------------------

    def _on_press(self, event) -> None:
        # A click on a result box selects it; a drag that starts there still draws (see _on_drag).
        self._press_box = self._box_at(event.x, event.y)
        if self._press_box is None:
            self._begin_stroke(event.x, event.y)
        else:
            self._press_at = (event.x, event.y)

    def _begin_stroke(self, x: float, y: float) -> None:
        if self._photo is not None:
            self._close_photo()
        self._cancel_live()
        self._supersede()
        width = int(self.brush.get())
        self.drawing.begin(x, y, width)
        self._history.append(STROKE)
        item = self.canvas.create_line(x, y, x, y, width=width, fill="black", capstyle=tk.ROUND,
                                       joinstyle=tk.ROUND, smooth=True, tags=("stroke",))
        self._stroke_items.append(item)

    def _on_drag(self, event) -> None:
        if self._press_box is not None:  # the press was on a box, but this is a stroke after all
            self._press_box = None
            self._begin_stroke(*self._press_at)
        if not self._stroke_items or not self.drawing.strokes:
            return
        self.drawing.extend(event.x, event.y)
        pts = self.drawing.strokes[-1].points
        flat = [v for p in (pts if len(pts) > 1 else pts * 2) for v in p]
        self.canvas.coords(self._stroke_items[-1], *flat)

    def _on_release(self, event) -> None:
        if self._press_box is not None:
            index, self._press_box = self._press_box, None
            log.debug("box %d selected", index)
            self._select(index)
            return
        if not self.drawing.strokes:
            return
        self._on_drag(event)
        log.debug("stroke end strokes=%d points=%d", len(self.drawing.strokes), len(self.drawing.strokes[-1].points))
        self._schedule_live()

    def _box_at(self, x: float, y: float) -> int | None:
        """Index of the result box under canvas point (x, y), if any."""
        if not self._readings:
            return None
        placement = self._photo.placement if self._photo else overlay.Placement()
        for i, digit in enumerate(self._readings[self._primary].digits):
            x0, y0, x1, y1 = placement.box(digit.box)
            if x0 <= x <= x1 and y0 <= y <= y1:
                return i
        return None

    def undo(self) -> None:
        """One history: the last correction if it was the last thing done, else the last stroke (or the image)."""
        if self._history and isinstance(self._history[-1], Fix):
            self._undo_correction(self._history.pop())
            return
        if self._photo is not None:
            self._close_photo()
            log.info("undo: closed image")
        elif self.drawing.undo():
            self.canvas.delete(self._stroke_items.pop())
            if self._history:
                self._history.pop()
            log.info("undo: %d strokes left", len(self.drawing.strokes))
        self._supersede()
        self._schedule_live()

    def clear(self) -> None:
        self._close_photo()
        self._finish_reading()
        self.drawing.clear()
        self.canvas.delete("stroke")
        self._stroke_items.clear()
        self._history.clear()
        self.corrections.clear()
        log.info("cleared")
        self.recognize()

    # --- recognition -------------------------------------------------------------------------------

    def _cancel_live(self) -> None:
        if self._live_job is not None:
            self.root.after_cancel(self._live_job)
            self._live_job = None

    def _schedule_live(self) -> None:
        self._cancel_live()
        self._live_job = self.root.after(LIVE_DELAY_MS, self._live)

    def _live(self) -> None:
        self._live_job = None
        self.recognize()

    def _supersede(self) -> None:
        """Any answer still on its way is for an older drawing: ignore it."""
        self._next_id += 1
        self._wanted_id = self._next_id

    def _model_choice(self) -> str | None:
        return self.picker.get() or self.requested_model or None

    def recognize(self) -> None:
        self._cancel_live()
        self._supersede()
        if self._photo is not None:
            image, source = self._photo.path, "image"
        elif self.drawing.empty:
            self._show_empty()
            return
        else:
            image, source = self.drawing.array(), "drawing"
        self.worker.submit(Request(self._wanted_id, image, self._model_choice(), source))
        self._say_if_waiting()

    def _say_if_waiting(self) -> None:
        """A drawing sent before its model can answer is kept by the worker and read once the model is loaded:
        say so, rather than look idle."""
        choice = self._model_choice() or self.default_model
        wanted = [n for n in BASE_MODELS if self.status.get(n) == "ok"] if choice == ALL_MODELS \
            else [choice]
        ready = ready_models(self.loaded)
        waiting = [n for n in wanted if n not in ready] if choice else ["models"]
        if waiting:
            log.info("waiting for model %s to load", ",".join(waiting))
            self.statusbar.set_timing(f"loading {', '.join(NAMES.get(n, n) for n in waiting)}... then reading")

    def _show_empty(self) -> None:
        self._readings, self._selected = None, None
        self._unfinished = None
        self.canvas.delete(overlay.TAG)
        self.number.configure(text="", fg="black")
        self.per_model.configure(text="")
        self.probs.show(None, "")
        log.info("recognized text= model=%s ms=0", self._model_choice() or self.default_model or "none")

    def _poll(self) -> None:
        try:
            while True:
                msg = self.results.get_nowait()
                if isinstance(msg, StatusUpdate):
                    self._on_status(msg)
                elif isinstance(msg, LEARNING):
                    self._on_learning(msg)
                elif isinstance(msg, (RecognitionDone, RecognitionFailed)):
                    if msg.request.id != self._wanted_id:
                        log.debug("dropping stale answer to request %d", msg.request.id)
                    elif isinstance(msg, RecognitionDone):
                        self._on_done(msg)
                    else:
                        self._on_failed(msg)
        except queue.Empty:
            pass
        self.root.after(POLL_MS, self._poll)

    def _on_status(self, msg: StatusUpdate) -> None:
        changed = msg.status != self.status
        self.status, self.default_model, self.loaded = dict(msg.status), msg.default, tuple(msg.loaded)
        self.picker.set_status(self.status)
        self.statusbar.set_models(describe(self.status, msg.loaded))
        if changed:
            log.info("models %s", " ".join(f"{k}={v}" for k, v in self.status.items()))
            missing = [k for k, v in self.status.items() if v == "missing"]
            if missing:
                log.warning("models missing: %s; %s", ", ".join(missing), TRAIN_HINT)
        if not any(self.picker.usable(v) for v, _t in CHOICES) and self._readings is None:
            self.per_model.configure(text=f"No trained model in {self.worker.models_dir}.\n{TRAIN_HINT}",
                                     fg=overlay.UNSURE_COLOUR)
        choice = choose_model(self.picker.get(), self.requested_model, msg.default, self.picker.usable, self.status)
        if choice.warning:
            log.warning("%s", choice.warning)
        if choice.model:
            self.picker.set(choice.model)
        self._check_adaptation()
        first = self.picker.get() or msg.default
        if first and first in ready_models(msg.loaded) and not self._default_ready_logged:
            self._default_ready_logged = True
            log.info("model %s ready ms=%.0f", first, (time.perf_counter() - self.started) * 1000)

    def _on_done(self, msg: RecognitionDone) -> None:
        readings, primary = msg.readings, msg.primary
        if msg.request.model == ALL_MODELS:
            text = ",".join(f"{k}:{log_text(r.text)}" for k, r in readings.items())
            name = ALL_MODELS
        else:
            text, name = log_text(readings[primary].text), primary
        log.info("recognized text=%s model=%s ms=%.0f", text, name, msg.ms)
        self._readings, self._primary = readings, primary
        self._read_image = msg.request.image
        digits = readings[primary].digits
        self._unfinished = (len(digits), bool(getattr(readings[primary], "adapted", False))) if digits else None
        self._selected = 0 if digits else None
        self._show_number()
        self._show_models()
        self.statusbar.set_timing(f"last: {msg.ms:.0f} ms ({name})")
        self._draw_overlay()
        self._show_probabilities()
        self.root.update_idletasks()  # paint now, so "results drawn" means they are on screen
        self._log_panel()
        log.debug("results drawn request=%d", msg.request.id)

    def _on_failed(self, msg: RecognitionFailed) -> None:
        log.warning("recognition failed model=%s: %s", msg.model or "default", msg.message)
        self._readings = None
        self.canvas.delete(overlay.TAG)
        self.number.configure(text="—", fg="black")
        self.per_model.configure(text=f"Not read:\n{msg.message}", fg=overlay.UNSURE_COLOUR)
        self.probs.show(None, "")
        self.statusbar.set_timing("recognition failed")

    def _select(self, index: int) -> None:
        self._selected = index
        self._draw_overlay()
        self._show_probabilities()

    def _show_number(self) -> None:
        digits = self._readings[self._primary].digits if self._readings else []
        fixed = self.corrections.labels(digits)
        unsure = any(d.uncertain for i, d in enumerate(digits) if i not in fixed)
        self.number.configure(text=self.corrections.text(digits) or "—",
                              fg=overlay.UNSURE_COLOUR if unsure else "black")

    def _show_models(self) -> None:
        """Each model's reading, with the writer's corrections in it (the Number and the rows agree)."""
        self.per_model.configure(text="\n".join(
            f"{NAMES.get(k, k):<8} {self.corrections.text(r.digits).replace(chr(10), ' / ') or '-'}"
            for k, r in self._readings.items()), fg="black")

    def _draw_overlay(self) -> None:
        if not self._readings:
            self.canvas.delete(overlay.TAG)
            return
        placement = self._photo.placement if self._photo else overlay.Placement()
        digits = self._readings[self._primary].digits
        boxes = overlay.draw(self.canvas, digits, placement, self._selected, self.corrections.labels(digits))
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            log.debug("overlay box=%d x0=%.0f y0=%.0f x1=%.0f y1=%.0f", i, x0, y0, x1, y1)

    def _show_probabilities(self) -> None:
        digits = self._readings[self._primary].digits if self._readings else []
        if self._selected is None or not digits:
            self.probs.show(None, "")
            return
        d = digits[self._selected]
        mark = self.corrections.get(d)
        title = f"Digit {self._selected + 1}/{len(digits)}: {d.label} ({float(d.confidence):.0%}, {self._primary})"
        if mark is not None:
            title += f" - yours: {mark.label}"
        self.probs.show(d.probabilities, title, chosen=mark.label if mark else None)
        if len(self._readings) > 1:  # "All three": what each model says about the selected digit
            lines = []
            for name, r in self._readings.items():
                sel = r.digits[self._selected] if self._selected < len(r.digits) else None
                extra = f"  #{self._selected + 1}: {sel.label} {float(sel.confidence):.0%}" if sel else ""
                text = self.corrections.text(r.digits).replace(chr(10), ' / ') or '-'
                lines.append(f"{NAMES.get(name, name):<8} {text}{extra}")
            self.per_model.configure(text="\n".join(lines), fg="black")

    # --- corrections and the writer's profile ---------------------------------------------------------

    def _typed(self, digit: int, event=None) -> None:
        if not self.correct(digit):
            log.debug("digit key %d: no digit selected", digit)

    def _kept(self) -> bool:
        return self.profile_opened is not None and self.profile_opened.folder is not None

    def _token(self) -> int:
        self._next_token += 1
        return self._next_token

    def correct(self, label: int) -> bool:
        """The selected digit is `label` (typed, or picked in the probability panel): show it at once, keep it in
        the profile (the same digit as read: a confirmation), adapt a moment later. False: nothing selected."""
        digits = self._readings[self._primary].digits if self._readings else []
        if self._selected is None or self._selected >= len(digits):
            return False
        reading, d = self._readings[self._primary], digits[self._selected]
        key = digit_key(d)
        prev = self.corrections.marks.get(key)
        if prev is not None and prev.label == label:
            return True
        job = None
        if self._kept() and getattr(d, "input", None) is not None:
            job = Correct(self._token(), int(label), reading, self._selected, self._read_image)
        mark = Mark(int(label), int(d.digit), job)
        self.corrections.set(key, mark)
        self._history.append(Fix(key, mark, prev))
        if prev is not None and prev.job is not None:
            self.learner.submit(Undo(prev.job.token))  # the writer changed their mind about this digit
        if job is not None:
            self.learner.submit(job)
            what = "confirmed" if label == d.digit else "correction kept"
            self.statusbar.set_learning(f"{what}; learning from it in a moment...")
        else:
            self.statusbar.set_learning(self._not_kept_reason())
        log.info("correction digit=%d read=%d label=%d shown=%s", self._selected + 1, d.digit, label,
                 log_text(self.corrections.text(digits)))
        self._show_corrections()
        return True

    def _undo_correction(self, fix: Fix) -> None:
        if fix.mark.job is not None:
            self.learner.submit(Undo(fix.mark.job.token))
        restored = None
        if fix.prev is not None:
            job = fix.prev.job
            if job is not None:
                job = dataclasses.replace(job, token=self._token())
                self.learner.submit(job)
            restored = Mark(fix.prev.label, fix.prev.read, job)
        self.corrections.set(fix.key, restored)
        digits = self._readings[self._primary].digits if self._readings else []
        log.info("undo: correction label=%d (read %s) shown=%s", fix.mark.label, fix.mark.read,
                 log_text(self.corrections.text(digits)))
        self._show_corrections()

    def _show_corrections(self) -> None:
        self._show_number()
        if self._readings:
            self._show_models()
        self._draw_overlay()
        self._show_probabilities()
        self.root.update_idletasks()

    def _not_kept_reason(self) -> str:
        if self.profile_opened is None:
            return "corrections are not kept yet: the profile is still opening"
        if self.profile_opened.error:
            return f"corrections are not kept: {self.profile_opened.error}"
        return "corrections are not kept: started with --profile none"

    def _finish_reading(self) -> None:
        """The drawing or image on screen is done with: count its reading in the profile (counts only)."""
        if self._unfinished is not None and self._kept():
            self.learner.submit(CountReading(*self._unfinished))
        self._unfinished = None

    def _adapt_model(self) -> str | None:
        return self._model_choice() or self.default_model

    def _check_adaptation(self, again: bool = False) -> None:
        """Once per model (`again`: when it is picked): redo its adaptation if corrections are unseen (e.g. the
        shipped model was updated); the Learner answers with what reads, for the status line."""
        model = self._adapt_model()
        if model and self._kept() and (again or model not in self._adapt_checked):
            self._adapt_checked.add(model)
            self.learner.submit(Adapt(model, only_if_stale=True))

    def _adapt_soon(self) -> None:
        """After a correction or its removal: the learner adapts once the writer pauses."""
        model = self._adapt_model()
        if model and self._kept():
            self.learner.submit(Adapt(model))

    def _reread(self) -> None:
        if self._readings is not None or self._photo is not None or not self.drawing.empty:
            self.recognize()

    def _on_learning(self, msg: Any) -> None:
        if isinstance(msg, ProfileOpened):
            self.profile_opened = msg
            if msg.folder:
                log.info("profile %s", msg.folder)
            else:
                log.info("profile none: %s", msg.error or "reading with the shipped models alone")
            if msg.moved_aside:
                log.warning("profile database unreadable; moved to %s", msg.moved_aside)
                self.statusbar.set_learning(f"Your profile database could not be read: it was moved to "
                                            f"{msg.moved_aside} and a new one started")
            elif msg.error:
                self.statusbar.set_learning(f"corrections are not kept: {msg.error}")
            self._check_adaptation()
        elif isinstance(msg, CorrectionStored):
            log.info("correction stored id=%s", msg.id)
            self._adapt_soon()
        elif isinstance(msg, CorrectionUndone):
            log.info("correction undone id=%s deleted=%s", msg.id, msg.deleted)
            self._unmark(msg.token)
            if msg.deleted:
                self.statusbar.set_learning("correction forgotten")
                # no re-read now: the adaptation in use reads on until the re-adaptation decides (one flip at most)
                self._adapt_soon()
            self._refresh_handwriting()
        elif isinstance(msg, AdaptationStarted):
            log.info("adapting model=%s", msg.model)
            self.statusbar.set_learning("learning your handwriting...")
        elif isinstance(msg, AdaptationDone):
            log.info("adaptation accepted=%s model=%s: %s", msg.accepted, msg.model, msg.text)
            if msg.text or msg.decisions:  # "": nothing to say; keep what the line says (e.g. a moved database)
                self.statusbar.set_learning(msg.text)
            if msg.changed:
                self._reread()
            self._refresh_handwriting()
        elif isinstance(msg, ProfileStats):
            log.info("profile stats: %s", " | ".join(msg.lines))
            if self._handwriting_text is not None and self._handwriting_text.winfo_exists():
                self._handwriting_text.configure(text="\n".join(msg.lines))
                self._forget_button.configure(state="normal" if msg.corrections else "disabled")
                self._show_listed(msg)
        elif isinstance(msg, ProfileReset):
            where = f"; your corrections were kept in {msg.export}" if msg.export else ""
            log.info("profile reset, corrections kept in %s", msg.export)
            self.statusbar.set_learning(f"forgot your handwriting{where}")
            self.corrections.clear()
            self._history = [h for h in self._history if h == STROKE]
            self._reread()
            self._refresh_handwriting(f"Forgot your handwriting{where}.")
        elif isinstance(msg, ProfileFailed):
            log.warning("profile %s failed: %s", msg.action, msg.message)
            self.statusbar.set_learning(f"{msg.action} failed: {msg.message}")

    # --- My handwriting ---------------------------------------------------------------------------------

    def show_handwriting(self) -> None:
        """A small window with what the profile holds and how reading went, and "Forget my handwriting"."""
        if self._handwriting is None or not self._handwriting.winfo_exists():
            top = tk.Toplevel(self.root)
            top.title("My handwriting")
            top.geometry("+40+60")
            self._handwriting = top
            buttons = tk.Frame(top)  # packed first, at the bottom: always visible, however long the text
            buttons.pack(side="bottom", fill="x", padx=10, pady=8)
            self._forget_button = tk.Button(buttons, text="Forget my handwriting...", command=self.forget_handwriting,
                                            state="disabled")
            self._forget_button.pack(side="left")
            self._handwriting_close = tk.Button(buttons, text="Close", command=top.destroy)
            self._handwriting_close.pack(side="right")
            self._handwriting_text = tk.Label(top, text="", justify="left", anchor="nw", wraplength=520)
            self._handwriting_text.pack(fill="x", padx=10, pady=(10, 4))
            self._handwriting_note = tk.Label(top, text="", justify="left", anchor="w", fg="#1c4fd8",
                                              wraplength=520)
            self._handwriting_note.pack(fill="x", padx=10)
            self._corrections_title = tk.Label(top, text="", anchor="w")
            self._corrections_title.pack(fill="x", padx=10, pady=(8, 0))
            box = tk.Frame(top)
            box.pack(fill="both", expand=True, padx=10)
            scroll = tk.Scrollbar(box)
            scroll.pack(side="right", fill="y")
            # a Text holds the rows (crop, words, Remove): it scrolls, however many there are
            self._corrections_list = tk.Text(box, height=8, width=48, wrap="none", cursor="arrow",
                                             font="TkDefaultFont", spacing1=2, spacing3=2,
                                             tabs=(THUMB_PX * 2, THUMB_PX * 8), yscrollcommand=scroll.set)
            self._corrections_list.pack(side="left", fill="both", expand=True)
            scroll.configure(command=self._corrections_list.yview)
            top.bind("<Escape>", lambda e: top.destroy())
        self._handwriting.deiconify()
        self._handwriting.lift()
        self._refresh_handwriting()

    def _refresh_handwriting(self, note: str | None = None) -> None:
        if self._handwriting is None or not self._handwriting.winfo_exists():
            return
        if note is not None:
            self._handwriting_note.configure(text=note)
        if self._kept():  # Forget is enabled by the figures, once they show there is something to forget
            self.learner.submit(Stats(self._adapt_model()))
        else:
            self._forget_button.configure(state="disabled")
            self._handwriting_text.configure(text=self._not_kept_reason())
            self._show_listed(ProfileStats(()))

    def _show_listed(self, stats: ProfileStats) -> None:
        """One row per correction listed: its crop, what was read and said, and Remove."""
        rows = self._corrections_list
        rows.configure(state="normal")
        rows.delete("1.0", "end")
        for button in self._remove_buttons.values():
            button.destroy()
        self._remove_buttons, self._thumbs = {}, {}
        n = stats.corrections
        self._corrections_title.configure(text="" if not n else f"Your corrections ({n}):" if n <= len(stats.recent)
                                          else f"Your corrections: the newest {len(stats.recent)} of {n}:")
        for c in stats.recent:
            if c.thumbnail:
                self._thumbs[c.id] = tk.PhotoImage(master=rows, data=base64.b64encode(c.thumbnail))
                rows.image_create("end", image=self._thumbs[c.id], align="center")
            rows.insert("end", f"\t{listed_text(c.label, c.read)}\t")
            button = tk.Button(rows, text="Remove", padx=4, pady=0, command=functools.partial(self.remove_correction,
                                                                                            c.id))
            rows.window_create("end", window=button, align="center")
            self._remove_buttons[c.id] = button
            rows.insert("end", "\n")
        rows.configure(state="disabled")

    def remove_correction(self, correction_id: int) -> None:
        """Take one stored correction back, like Ctrl+Z does for one just made: the app adapts again without it."""
        if not self._kept():
            return
        log.info("removing correction id=%d", correction_id)
        if (button := self._remove_buttons.get(correction_id)) is not None:
            button.configure(state="disabled")
        self.learner.submit(Remove(correction_id))

    def _unmark(self, token: int | None) -> None:
        """A correction on screen that was removed from the list: not shown as corrected any more."""
        if token is None:
            return
        owned = lambda mark: mark.job is not None and mark.job.token == token  # noqa: E731
        keys = [k for k, m in self.corrections.marks.items() if owned(m)]
        if not keys:
            return
        for key in keys:
            self.corrections.set(key, None)
        self._history = [h for h in self._history if not (isinstance(h, Fix) and owned(h.mark))]
        self._show_corrections()

    def forget_handwriting(self, confirm: bool = True) -> None:
        if not self._kept():
            return
        if confirm and not messagebox.askyesno(
                "Forget my handwriting",
                "Forget every correction and what was learned from them?\n\nA copy of your corrections is "
                f"kept first, in a file inside your profile folder:\n{self.profile_opened.folder}",
                parent=self._handwriting or self.root):
            return
        log.info("forgetting handwriting")
        self.learner.submit(Reset())

    # --- models ------------------------------------------------------------------------------------

    def _on_model_picked(self, value: str) -> None:
        log.info("model selected: %s", value)
        self.worker.preload(value)
        self._check_adaptation(again=True)
        self.recognize()

    def select_model(self, value: str) -> None:
        """Keyboard shortcut path (Ctrl+1..5); refuses a greyed-out model and says why."""
        if not self.picker.usable(value):
            log.warning("model %s not usable: %s", value, self.status.get(value, "loading"))
            self.statusbar.set_models(f"{NAMES.get(value, value)}: {self.status.get(value, 'loading...')}")
            return
        self.picker.set(value)
        self._on_model_picked(value)

    # --- files -------------------------------------------------------------------------------------

    def open_image(self) -> None:
        path = filedialog.askopenfilename(parent=self.root, title="Open image", filetypes=OPEN_TYPES)
        if path:
            self.show_image(path)

    def show_image(self, path: str) -> None:
        try:
            photo = Photo.open(path)
        except (OSError, ValueError) as exc:
            log.warning("cannot open %s: %s", path, exc)
            messagebox.showerror(TITLE, f"Cannot open {path}:\n{exc}", parent=self.root)
            return
        self._close_photo()
        self._finish_reading()
        self._photo = photo
        self.canvas.itemconfigure("stroke", state="hidden")
        photo.place(self.canvas)
        log.info("opened image %s (%dx%d)", path, *photo.image.size)
        self.recognize()

    def _close_photo(self) -> None:
        if self._photo is None:
            return
        self._finish_reading()
        self._photo = None
        Photo.remove(self.canvas)
        self.canvas.delete(overlay.TAG)
        self._readings = None
        self._history = [h for h in self._history if h == STROKE]  # the image's corrections stay stored
        self.corrections.clear()
        self.canvas.itemconfigure("stroke", state="normal")

    def save_drawing(self) -> None:
        path = filedialog.asksaveasfilename(parent=self.root, title="Save drawing", defaultextension=".png",
                                            filetypes=SAVE_TYPES)
        if path:
            self.save_to(path)

    def save_to(self, path: str) -> bool:
        try:
            save_png(self.drawing.image.copy(), path)
        except (OSError, ValueError) as exc:
            log.warning("saving %s failed: %s", path, exc)
            messagebox.showerror(TITLE, f"Could not save the drawing to {path}:\n{exc}\n\n"
                                        "The drawing is still here; try another place.", parent=self.root)
            return False
        self.statusbar.set_timing(f"saved {path}")
        return True

    def quit(self) -> None:
        log.info("quit")
        self._finish_reading()
        self.worker.stop(3.0)  # lets the profile write what is queued (an adaptation in progress is dropped)
        self.root.destroy()


def run(models_dir: str, model: str | None = None, brush: int = DEFAULT_BRUSH, started: float | None = None,
        profile: str | None = None) -> None:
    """Create the window and run the Tk main loop until it is closed."""
    root = tk.Tk()
    DigitApp(root, models_dir, model=model, brush=brush, started=started, profile=profile)
    root.mainloop()
