"""Text reports: one per model (sklearn report + Keras summary) and a Markdown comparison table.

All files are written atomically (`common.atomic.write_text`) so a report is never half-written.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping

from common.atomic import write_text

log = logging.getLogger(__name__)

MISSING = "–"


def keras_summary_text(model) -> str:
    """Capture `model.summary()` as plain text (no colour codes) instead of printing it."""
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_kwargs: lines.append(str(text)))
    return "\n".join(lines).rstrip() + "\n"


def _get(summary: Mapping, *keys: str):
    """First present key among aliases, so reports tolerate small naming differences."""
    for key in keys:
        if summary.get(key) is not None:
            return summary[key]
    return None


def _pct(value) -> str:
    return MISSING if value is None else f"{float(value) * 100:.2f}"


def _num(value, spec: str) -> str:
    if value is None:
        return MISSING
    return format(int(value) if spec in ("d", ",") else float(value), spec)


def _headline(summary: Mapping) -> list[str]:
    """Key numbers at the top of a model report."""
    rows = [
        ("Test accuracy (%)", _pct(_get(summary, "test_accuracy"))),
        ("Test loss", _num(_get(summary, "test_loss"), ".4f")),
        ("Validation accuracy (%)", _pct(_get(summary, "val_accuracy"))),
        ("Parameters", _num(_get(summary, "params", "parameters", "n_params"), ",")),
        ("Epochs", _num(_get(summary, "epochs"), "d")),
        ("Training time (s)", _num(_get(summary, "train_seconds", "training_seconds", "train_time_s"), ".1f")),
        ("Inference (ms / image)", _num(_get(summary, "ms_per_image"), ".3f")),
    ]
    return [f"{label:<26}{value}" for label, value in rows]


def write_model_report(
    path: str | os.PathLike,
    name: str,
    classification_report_text: str,
    keras_summary_text: str,
    summary: Mapping,
) -> None:
    """One human-readable file per model: headline numbers, per-digit report, architecture."""
    parts = [
        f"Model: {name}",
        "=" * (7 + len(name)),
        "",
        *_headline(summary),
        "",
        "Classification report (test set)",
        "--------------------------------",
        classification_report_text.rstrip(),
        "",
    ]
    confusion = summary.get("confusion")
    if confusion:
        parts += ["Confusion matrix (rows = true digit, columns = predicted digit)", "-" * 63]
        parts += [" ".join(f"{int(v):5d}" for v in row) for row in confusion]
        parts.append("")
    parts += ["Keras model summary", "-------------------", keras_summary_text.rstrip(), ""]
    write_text(path, "\n".join(parts))
    log.info("wrote %s", path)


def _reference_pct(value) -> str:
    """Published accuracies may be given as a fraction (0.992) or a percentage (99.2)."""
    if value is None:
        return MISSING
    value = float(value)
    return f"{value * 100:.2f}" if value <= 1.0 else f"{value:.2f}"


def comparison_markdown(results: Mapping[str, Mapping], reference: Mapping[str, float] | None = None) -> str:
    """The comparison table as Markdown text (one row per model, in the given order)."""
    header = ["Model", "Test accuracy %", "Test loss", "Val accuracy %", "Params", "Train s", "Epochs", "ms/image"]
    if reference is not None:
        header.append("Published accuracy %")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, s in results.items():
        row = [
            name,
            _pct(_get(s, "test_accuracy")),
            _num(_get(s, "test_loss"), ".4f"),
            _pct(_get(s, "val_accuracy")),
            _num(_get(s, "params", "parameters", "n_params"), ","),
            _num(_get(s, "train_seconds", "training_seconds", "train_time_s"), ".1f"),
            _num(_get(s, "epochs"), "d"),
            _num(_get(s, "ms_per_image"), ".3f"),
        ]
        if reference is not None:
            row.append(_reference_pct(reference.get(name)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_comparison_markdown(
    results: Mapping[str, Mapping], path: str | os.PathLike, reference: Mapping[str, float] | None = None
) -> str:
    """Write the Markdown comparison table; returns the text so callers can also log or embed it."""
    text = comparison_markdown(results, reference)
    write_text(path, text)
    log.info("wrote %s", path)
    return text
