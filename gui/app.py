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
"""

from __future__ import annotations

import logging
import queue
import time
import tkinter as tk
from tkinter import filedialog, messagebox
from typing import Any, Callable

from . import overlay
from .drawing import Drawing
from .files import OPEN_TYPES, SAVE_TYPES, save_png
from .motion import keep_all_motion_events
from .photo import Photo
from .picker import CHOICES, TRAIN_HINT, ModelPicker
from .probabilities import ProbabilityPanel
from .session import choose_model, ready_models
from .statusbar import NAMES, StatusBar, describe
from .worker import ALL_MODELS, RecognitionDone, RecognitionFailed, RecognitionWorker, Request, StatusUpdate

log = logging.getLogger("gui")

TITLE = "Digit Recognizer"
LIVE_DELAY_MS = 400  # after a stroke ends: long enough to start the next stroke of a "4" or "7"
POLL_MS = 40
DEFAULT_BRUSH = 18


def log_text(text: str) -> str:
    """Keep the log line one line: multi-line readings get a literal "\\n"."""
    return text.replace("\n", "\\n")


class DigitApp:
    def __init__(self, root: tk.Tk, models_dir: str, model: str | None = None, brush: int = DEFAULT_BRUSH,
                 worker_factory: Callable | None = None, started: float | None = None) -> None:
        self.root = root
        self.started = started if started is not None else time.perf_counter()
        self.requested_model = model
        self.initial_brush = brush
        self.results: queue.Queue[Any] = queue.Queue()
        kwargs = {"factory": worker_factory} if worker_factory else {}
        self.worker = RecognitionWorker(models_dir, self.results, **kwargs)
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
        self.per_model = tk.Label(side, text="", font=("Courier", 12), anchor="w", justify="left", wraplength=230)
        self.per_model.pack(anchor="w", fill="x", pady=(0, 8))
        self.probs = ProbabilityPanel(side)
        self.probs.pack(anchor="w")
        tk.Label(side, text="Click a box to see its probabilities.\nReturn: recognize  Esc: clear\n"
                            "Ctrl+Z: undo  Ctrl+1..5: model", fg="grey", justify="left").pack(anchor="w", pady=8)

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
        if self._photo is not None:
            self._close_photo()
            log.info("undo: closed image")
        elif self.drawing.undo():
            self.canvas.delete(self._stroke_items.pop())
            log.info("undo: %d strokes left", len(self.drawing.strokes))
        self._supersede()
        self._schedule_live()

    def clear(self) -> None:
        self._close_photo()
        self.drawing.clear()
        self.canvas.delete("stroke")
        self._stroke_items.clear()
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
        wanted = [n for n in ("ann", "cnn", "vgg16") if self.status.get(n) == "ok"] if choice == ALL_MODELS \
            else [choice]
        ready = ready_models(self.loaded)
        waiting = [n for n in wanted if n not in ready] if choice else ["models"]
        if waiting:
            log.info("waiting for model %s to load", ",".join(waiting))
            self.statusbar.set_timing(f"loading {', '.join(NAMES.get(n, n) for n in waiting)}... then reading")

    def _show_empty(self) -> None:
        self._readings, self._selected = None, None
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
        digits = readings[primary].digits
        self._selected = 0 if digits else None
        self.number.configure(text=readings[primary].text or "—",
                              fg=overlay.UNSURE_COLOUR if any(d.uncertain for d in digits) else "black")
        self.per_model.configure(text="\n".join(f"{NAMES.get(k, k):<8} {r.text.replace(chr(10), ' / ') or '—'}"
                                                 for k, r in readings.items()), fg="black")
        self.statusbar.set_timing(f"last: {msg.ms:.0f} ms ({name})")
        self._draw_overlay()
        self._show_probabilities()
        self.root.update_idletasks()  # paint now, so "results drawn" means they are on screen
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

    def _draw_overlay(self) -> None:
        if not self._readings:
            self.canvas.delete(overlay.TAG)
            return
        placement = self._photo.placement if self._photo else overlay.Placement()
        overlay.draw(self.canvas, self._readings[self._primary].digits, placement, self._selected)

    def _show_probabilities(self) -> None:
        digits = self._readings[self._primary].digits if self._readings else []
        if self._selected is None or not digits:
            self.probs.show(None, "")
            return
        d = digits[self._selected]
        title = f"Digit {self._selected + 1}/{len(digits)}: {d.label} ({float(d.confidence):.0%}, {self._primary})"
        self.probs.show(d.probabilities, title)
        if len(self._readings) > 1:  # "All three": what each model says about the selected digit
            lines = []
            for name, r in self._readings.items():
                sel = r.digits[self._selected] if self._selected < len(r.digits) else None
                extra = f"  #{self._selected + 1}: {sel.label} {float(sel.confidence):.0%}" if sel else ""
                lines.append(f"{NAMES.get(name, name):<6} {r.text.replace(chr(10), ' / ') or '—'}{extra}")
            self.per_model.configure(text="\n".join(lines), fg="black")

    # --- models ------------------------------------------------------------------------------------

    def _on_model_picked(self, value: str) -> None:
        log.info("model selected: %s", value)
        self.worker.preload(value)
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
        self._photo = photo
        self.canvas.itemconfigure("stroke", state="hidden")
        photo.place(self.canvas)
        log.info("opened image %s (%dx%d)", path, *photo.image.size)
        self.recognize()

    def _close_photo(self) -> None:
        if self._photo is None:
            return
        self._photo = None
        Photo.remove(self.canvas)
        self.canvas.delete(overlay.TAG)
        self._readings = None
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
        self.worker.stop()
        self.root.destroy()


def run(models_dir: str, model: str | None = None, brush: int = DEFAULT_BRUSH, started: float | None = None) -> None:
    """Create the window and run the Tk main loop until it is closed."""
    root = tk.Tk()
    DigitApp(root, models_dir, model=model, brush=brush, started=started)
    root.mainloop()
