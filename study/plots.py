"""PNG figures for the comparison: learning curves, confusion matrices, errors, samples, model comparison.

Figures are built as `matplotlib.figure.Figure` objects with an explicit Agg canvas instead of through
pyplot: no display is ever needed, no global figure state leaks between calls (nothing to close), and
importing this module does not change the backend of a GUI that may share the process. Every PNG is
written through `common.atomic.atomic_path`, so an interrupted run never leaves half an image.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.metrics import ConfusionMatrixDisplay

from common.atomic import atomic_path

log = logging.getLogger(__name__)

DPI = 110
N_CLASSES = 10

# (title, field of a study.comparison.Row, style) per bar chart
COMPARISON_METRICS: list[tuple[str, str, str]] = [
    ("Test accuracy (%)", "test_accuracy", "accuracy"),
    ("Validation accuracy (%)", "val_accuracy", "accuracy"),
    ("Epochs", "epochs", "{:.1f}"),
    ("Training time (s)", "train_seconds", "{:.0f}"),
    ("Inference (ms / image)", "ms_per_image", "{:.3f}"),
]
# one colour per source of the numbers, so that no bar passes for what it is not
SOURCE_COLOURS = {"trained here": "C0", "fine-tuned here": "C1", "shipped": "0.6"}
SOURCE_SHORT = {"trained here": "this run", "fine-tuned here": "fine-tuned", "shipped": "shipped"}


# ------------------------------------------------------------------------------------------ helpers
def _new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure rendered by Agg."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> None:
    """Write the figure atomically as PNG and release its memory."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    fig.clear()
    log.info("wrote %s", path)


def _images_2d(x: np.ndarray) -> np.ndarray:
    """(N, 28, 28, 1) or (N, 28, 28) -> (N, 28, 28) for imshow."""
    x = np.asarray(x)
    return x[..., 0] if x.ndim == 4 else x


TILE, GAP, TITLE_PX = 28, 4, 12  # image grids: one imshow of a mosaic of 28x28 cells (an axes per image: 10x slower)


def _mosaic(images: np.ndarray, rows: int, cols: int, top: int = 0) -> np.ndarray:
    """(N, 28, 28) images laid out row by row on one canvas, GAP apart, `top` spare pixels above each row (for
    titles); the gaps are NaN, which imshow leaves blank."""
    cell_h, cell_w = TILE + GAP + top, TILE + GAP
    if images.shape[1:] != (TILE, TILE):
        raise ValueError(f"image grids take {TILE}x{TILE} images; got {images.shape[1:]}")
    canvas = np.full((rows * cell_h, cols * cell_w), np.nan, np.float32)
    for k, img in enumerate(images[:rows * cols]):
        r, c = divmod(k, cols)
        y, x = r * cell_h + top, c * cell_w
        canvas[y:y + TILE, x:x + TILE] = img
    return canvas


def _vmax(images: np.ndarray) -> float:
    """Scaled floats or raw uint8."""
    return 1.0 if len(images) == 0 or float(np.max(images)) <= 1.0 else 255.0


def _hide_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# ------------------------------------------------------------------------------------------ curves
def _epoch_axis(ax, n_epochs: int) -> None:
    """Whole-number epoch ticks; with one epoch Matplotlib would otherwise show 0.96 ... 1.04."""
    if n_epochs <= 0:
        return
    ax.set_xlim(0.5, n_epochs + 0.5)
    if n_epochs <= 20:
        ax.set_xticks(range(1, n_epochs + 1))
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)


def plot_curves(history: Mapping[str, Sequence[float]], model_name: str, path: str | os.PathLike) -> None:
    """Train/validation accuracy and loss per epoch; markers keep a 1-epoch run visible."""
    fig = _new_figure(11, 4.2)
    axes = fig.subplots(1, 2)
    for ax, metric, label in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        for key, name in ((metric, "train"), (f"val_{metric}", "validation")):
            values = list(history.get(key) or [])
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", markersize=4, label=name)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{model_name}: {label.lower()}")
        _epoch_axis(ax, max((len(history.get(k) or []) for k in (metric, f"val_{metric}")), default=0))
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no '{metric}' in history", ha="center", va="center", transform=ax.transAxes)
    _save(fig, path)


# ------------------------------------------------------------------------------------------ confusion
def plot_confusion(confusion: Sequence[Sequence[int]], model_name: str, path: str | os.PathLike) -> None:
    """Confusion matrix of counts (rows = true digit) with accuracy in the title."""
    matrix = np.asarray(confusion, dtype=np.int64)
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else float("nan")
    fig = _new_figure(7.5, 6.5)
    ax = fig.subplots()
    display = ConfusionMatrixDisplay(matrix, display_labels=list(range(len(matrix))))
    display.plot(ax=ax, cmap="Blues", values_format="d", colorbar=True)
    ax.set_xlabel("Predicted digit")
    ax.set_ylabel("True digit")
    ax.set_title(f"{model_name}: confusion matrix (N={total:,}, accuracy {accuracy:.2%})")
    _save(fig, path)


# ------------------------------------------------------------------------------------------ errors
def _confidence_vector(confidence: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Accept per-image confidence (N,) or full probabilities (N, 10)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.ndim == 2:
        return confidence[np.arange(len(y_pred)), y_pred]
    return confidence


def _percent_floor(p: float) -> str:
    """Round down, so a 99.6 % wrong answer is not shown as a certain 100 %."""
    return f"{math.floor(float(p) * 100)}%"


def plot_misclassified(
    x: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    model_name: str,
    path: str | os.PathLike,
    max_images: int = 36,
) -> None:
    """Grid of wrong predictions, most confident first (those are the instructive ones)."""
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    conf = _confidence_vector(confidence, y_pred)
    wrong = np.flatnonzero(y_true != y_pred)
    if len(wrong) == 0:
        fig = _new_figure(5, 2.5)
        ax = fig.subplots()
        _hide_axes(ax)
        ax.text(0.5, 0.5, f"{model_name}: no misclassified images\n(all {len(y_true):,} correct)",
                ha="center", va="center", fontsize=13, transform=ax.transAxes)
        _save(fig, path)
        return
    shown = wrong[np.argsort(-conf[wrong], kind="stable")][:max_images]
    cols = math.ceil(math.sqrt(len(shown)))
    rows = math.ceil(len(shown) / cols)
    fig = _new_figure(1.55 * cols + 0.3, 1.75 * rows + 0.6)
    ax = fig.subplots()
    _hide_axes(ax)
    images = _images_2d(x)[shown]
    ax.imshow(_mosaic(images, rows, cols, top=TITLE_PX), cmap="gray", vmin=0.0, vmax=_vmax(images))
    for k, i in enumerate(shown):
        r, c = divmod(k, cols)
        ax.text((c + 0.5) * (TILE + GAP), r * (TILE + GAP + TITLE_PX) + TITLE_PX - 2,
                f"pred {y_pred[i]} / true {y_true[i]} / {_percent_floor(conf[i])}", fontsize=8,
                color="firebrick", ha="center", va="bottom")
    fig.suptitle(f"{model_name}: {len(shown)} of {len(wrong):,} misclassified test images (most confident first)")
    _save(fig, path)


# ------------------------------------------------------------------------------------------ samples
def plot_samples(x: np.ndarray, y: np.ndarray, path: str | os.PathLike, per_class: int = 10) -> None:
    """The first `per_class` images of each digit, one row per digit, to show what the data looks like."""
    images, labels = _images_2d(x), np.asarray(y).astype(int)
    picks = [np.flatnonzero(labels == digit)[:per_class] for digit in range(N_CLASSES)]
    tiles = np.zeros((N_CLASSES * per_class,) + images.shape[1:], np.float32)
    for digit, idx in enumerate(picks):
        tiles[digit * per_class:digit * per_class + len(idx)] = images[idx]
    fig = _new_figure(0.9 * per_class + 0.6, 0.95 * N_CLASSES + 0.5)
    ax = fig.subplots()
    _hide_axes(ax)
    ax.imshow(_mosaic(tiles, N_CLASSES, per_class), cmap="gray", vmin=0.0, vmax=_vmax(images))
    ax.set_yticks([(d + 0.5) * (TILE + GAP) for d in range(N_CLASSES)], [str(d) for d in range(N_CLASSES)],
                  fontsize=12)
    ax.tick_params(length=0)
    fig.suptitle("Examples of each digit")
    _save(fig, path)


# ------------------------------------------------------------------------------------------ comparison
def _format(value: float, style: str) -> str:
    if style == "accuracy":
        return f"{value:.2f}%"
    return style.format(value)


def _zoom_accuracy(ax, values: list[float]) -> None:
    """Accuracies of good models differ by tenths of a percent: zoom so the bars differ visibly."""
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.25, 0.3)
    ax.set_ylim(max(0.0, lo - 2 * pad), hi + pad)  # headroom above 100 % for the value labels
    ax.set_yticks([t for t in ax.get_yticks() if t <= 100.0 + 1e-9])
    ax.set_ylim(max(0.0, lo - 2 * pad), hi + pad)


def plot_comparison(rows: Sequence, path: str | os.PathLike, title: str = "Model comparison") -> None:
    """Bars of the headline numbers (study.comparison rows), coloured by where each number comes from (trained
    here, fine-tuned here, shipped); rows without a result are named under the plot, never drawn as a bar."""
    shown = [r for r in rows if r.kind in SOURCE_COLOURS]
    absent = [r for r in rows if r.kind not in SOURCE_COLOURS]
    notes = list(dict.fromkeys(r.val_note for r in shown if r.val_note))
    machines = [f"{r.model} shipped: {r.machine or 'machine not recorded'}, {r.date}" for r in shown
                if r.kind == "shipped" and r.model != "ensemble"]
    fig = _new_figure(3.8 * len(COMPARISON_METRICS), 4.8 + 0.25 * (len(absent) + len(notes) + len(machines)))
    axes = fig.subplots(1, len(COMPARISON_METRICS))
    labels = [f"{r.model}\n{SOURCE_SHORT[r.kind]}" for r in shown]
    for ax, (panel, key, style) in zip(axes, COMPARISON_METRICS):
        present = [(lab, getattr(r, key), r) for lab, r in zip(labels, shown) if getattr(r, key) is not None]
        ax.set_title(panel)
        if not present:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            continue
        names = [lab for lab, _, _ in present]
        values = [float(v) * (100.0 if style == "accuracy" else 1.0) for _, v, _ in present]
        bars = ax.bar(range(len(names)), values, color=[SOURCE_COLOURS[r.kind] for _, _, r in present],
                      hatch=None)
        ax.set_xticks(range(len(names)), names, fontsize=7)
        marks = ["*" * (notes.index(r.val_note) + 1) if r.val_note and key == "val_accuracy" else ""
                 for _, _, r in present]
        ax.bar_label(bars, labels=[_format(v, style) + m for v, m in zip(values, marks)], padding=2, fontsize=7,
                     rotation=90 if style == "accuracy" else 0)
        if style == "accuracy":
            _zoom_accuracy(ax, values)
        else:
            ax.set_ylim(0, max(values) * 1.25 or 1.0)
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=c, label=k) for k, c in SOURCE_COLOURS.items() if any(r.kind == k for r in shown)]
    if handles:
        fig.legend(handles=handles, loc="outside upper right", fontsize=8, ncols=len(handles))
    footer = [f"{r.model}: {r.source}" for r in absent] + machines
    footer += [f"{'*' * (i + 1)} validation accuracy {note}" for i, note in enumerate(notes)]
    if footer:
        fig.supxlabel("\n".join(footer), fontsize=8, ha="left", x=0.01)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
