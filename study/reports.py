"""Text reports: one per model (sklearn report + Keras summary) and a Markdown comparison table.

All files are written atomically (`common.atomic.write_text`) so a report is never half-written.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

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
        ("Epochs", _num(summary.get("epochs"), ".1f")),
        ("Training time (s)", _num(summary.get("train_seconds"), ".1f")),
        ("Inference (ms / image)", _num(summary.get("ms_per_image"), ".3f")),
        ("Distillation (teacher)", f"{summary['distill']:.0%} of the targets" if summary.get("distill") else "off"),
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


COMPARISON_HEADER = ["Model", "Numbers from", "Test accuracy %", "Val accuracy %", "Epochs", "Train s", "ms/image",
                     "Params", "Machine", "Date"]


def comparison_markdown(rows: Sequence, reference: Mapping[str, float] | None = None,
                        promotions: Mapping[str, Mapping] | None = None) -> str:
    """The comparison table (study.comparison rows: this run beside the shipped models, each row saying where its
    numbers come from), the reference study's published accuracies, and this run's promotion decisions."""
    lines = ["| " + " | ".join(COMPARISON_HEADER) + " |",
             "|" + "|".join(["---", "---"] + ["---:"] * 6 + ["---", "---"]) + "|"]
    notes = []
    for r in rows:
        val = _pct(r.val_accuracy)
        if r.val_note and r.val_accuracy is not None:
            if r.val_note not in notes:
                notes.append(r.val_note)
            val += "*" * (notes.index(r.val_note) + 1)
        cells = [r.model, r.source, _pct(r.test_accuracy), val, _num(r.epochs, ".1f"), _num(r.train_seconds, ".0f"),
                 _num(r.ms_per_image, ".3f"), _num(r.params, ","), r.machine or MISSING, r.date or MISSING]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{'*' * (i + 1)} validation accuracy {note}." for i, note in enumerate(notes)]
    if reference:
        lines.append("Published test accuracy of the reference study: "
                     + ", ".join(f"{n} {_reference_pct(v)}%" for n, v in reference.items()) + ".")
    if promotions:
        lines += ["", "Promotion (McNemar's exact test on the validation digits the two models read differently):", "",
                  "| Model | Gained | Lost | p (better) | Classes significantly worse | Decision |",
                  "|---|---:|---:|---:|---|---|"]
        for name, d in promotions.items():
            if "better" not in d:
                lines.append(f"| {name} | {MISSING} | {MISSING} | {MISSING} | {MISSING} | {d.get('reason', '')} |")
                continue
            worse = ", ".join(str(k) for k in d["blocking_classes"]) or "none"
            verdict = "promoted" if d.get("promoted") else "kept the shipped model"
            lines.append(f"| {name} | {d['better']} | {d['worse']} | {d['p_better']:.2g} | {worse} | "
                         f"{verdict}: {d['reason']} |")
    return "\n".join(lines) + "\n"


def write_comparison_markdown(path: str | os.PathLike, rows: Sequence, reference: Mapping[str, float] | None = None,
                              promotions: Mapping[str, Mapping] | None = None) -> str:
    """Write the Markdown comparison; returns the text so callers can also print it."""
    text = comparison_markdown(rows, reference, promotions)
    write_text(path, text)
    log.info("wrote %s", path)
    return text
