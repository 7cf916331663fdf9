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


def _pct(value) -> str:
    return MISSING if value is None else f"{float(value) * 100:.2f}"


def _num(value, spec: str) -> str:
    if value is None:
        return MISSING
    return format(int(value) if spec in ("d", ",") else float(value), spec)


def _headline(summary: Mapping) -> list[str]:
    """Key numbers at the top of a model report."""
    rows = [
        ("Test accuracy (%)", _pct(summary.get("test_accuracy"))),
        ("Test loss", _num(summary.get("test_loss"), ".4f")),
        ("Validation accuracy (%)", _pct(summary.get("val_accuracy"))),
        ("Parameters", _num(summary.get("params"), ",")),
        ("Epochs", _num(summary.get("epochs"), "d")),
        ("Training time (s)", _num(summary.get("train_seconds"), ".1f")),
        ("Inference (ms / image)", _num(summary.get("ms_per_image"), ".3f")),
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
            _pct(s.get("test_accuracy")),
            _num(s.get("test_loss"), ".4f"),
            _pct(s.get("val_accuracy")),
            _num(s.get("params"), ","),
            _num(s.get("train_seconds"), ".1f"),
            _num(s.get("epochs"), "d"),
            _num(s.get("ms_per_image"), ".3f"),
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
