"""What the comparison shows: this run's models beside the shipped ones, each number with its source.

A row is one model's figures from one source: trained here from scratch, fine-tuned here from the shipped
weights, or the shipped model's recorded figures (with the machine and date that made them). A model that was
not trained here, or that ended near chance, gets a row that says so and carries no figures: a 10% VGG16 is
not a result about VGG16 (issue 39). The table (reports.comparison_markdown), the bar plot
(plots.plot_comparison) and the printed summary are all made from these rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.names import BASE_MODELS

# Below this share of validation digits read right a model has not learned the task: every model trained for an
# epoch or more reads >= 97% (docs/RESULTS.md), a budget-starved VGG16 read 9.9-10.7%, chance is 10%.
LEARNED_ACCURACY = 0.5
CHANCE = 0.1

HERE, FINE_TUNED, SHIPPED, NO_RESULT = "trained here", "fine-tuned here", "shipped", "no result"


@dataclass(frozen=True)
class Row:
    model: str  # ann / cnn / vgg16 / ensemble
    kind: str  # HERE, FINE_TUNED, SHIPPED or NO_RESULT
    source: str  # what the reader is told: where the numbers come from
    test_accuracy: float | None = None
    val_accuracy: float | None = None
    val_note: str = ""  # where the validation figure was measured, when not on this run's data by its own model
    epochs: float | None = None
    train_seconds: float | None = None
    params: int | None = None
    ms_per_image: float | None = None
    machine: str = ""
    date: str = ""


def learned(entry: dict) -> bool:
    """Whether a trained model's validation figure shows it learned the task (not near chance)."""
    return float(entry.get("val_accuracy") or 0.0) >= LEARNED_ACCURACY


def recorded_date(entry: dict) -> str:
    """The date a shipped entry was made: its own `date`, else the one in its run's name, else said missing."""
    if entry.get("date"):
        return str(entry["date"])
    found = re.search(r"(20\d\d)(\d\d)(\d\d)", str(entry.get("run") or ""))
    if found:
        return "-".join(found.groups())
    return f"not recorded (run {entry['run']})" if entry.get("run") else "not recorded"


def _figures(entry: dict) -> dict:
    return {"test_accuracy": entry.get("test_accuracy"), "val_accuracy": entry.get("val_accuracy"),
            "epochs": entry.get("epochs"), "train_seconds": entry.get("train_seconds"), "params": entry.get("params"),
            "ms_per_image": entry.get("ms_per_image")}


def run_row(name: str, entry: dict) -> Row:
    """This run's row for a model it trained: its figures, or why they are not a result."""
    epochs = float(entry.get("epochs") or 0.0)
    if not learned(entry):
        return Row(name, NO_RESULT, f"did not learn here: {entry.get('val_accuracy', 0.0):.1%} of the validation "
                   f"digits after {epochs:.1f} epochs (chance {CHANCE:.0%}); not a result",
                   epochs=epochs, machine=entry.get("cpu", ""), date=entry.get("date", ""))
    start = entry.get("trained_from")
    kind = FINE_TUNED if start else HERE
    source = HERE if not start else f"{FINE_TUNED} from {start}"
    if entry.get("why_fine_tuned"):
        source += f" ({entry['why_fine_tuned']})"
    return Row(name, kind, source, **_figures(entry), machine=entry.get("cpu", ""), date=entry.get("date", ""))


def shipped_row(name: str, entry: dict, val_checksum: str | None, remeasured: float | None = None,
                replaced: bool = False) -> Row:
    """The shipped model's recorded figures; its validation figure re-measured on this run's data where the run
    measured it, else marked when it was measured on other validation data. `replaced`: this run promoted a model
    in its place (it is now in models/previous/)."""
    figures = _figures(entry)
    note = ""
    if remeasured is not None:
        figures["val_accuracy"], note = remeasured, "measured by this run"
    elif val_checksum and entry.get("val_checksum") != val_checksum:
        note = "on other validation data"
    source = "shipped before this run (now in models/previous/)" if replaced else "shipped (models/)"
    return Row(name, SHIPPED, source, **figures, val_note=note, machine=entry.get("cpu", ""),
               date=recorded_date(entry))


def rows(names, run_entries: dict, skipped: dict, shipped: dict, val_checksum: str | None,
         remeasured: dict | None = None, run_ensemble: dict | None = None, machine: str = "", date: str = "",
         promoted=()) -> list:
    """Every row of the comparison, model by model in the tables' order (this run first, then the shipped one),
    then the ensembles. `skipped`: model -> why this run did not train it; `shipped`: the shipped metrics.json
    as it was before this run; `remeasured`: model -> the shipped model's validation accuracy on this run's data;
    `promoted`: the models this run put in place of the shipped ones."""
    remeasured = remeasured or {}
    shipped_models = shipped.get("models", {})
    out = []
    for name in sorted(set(names) | set(run_entries) | set(skipped), key=BASE_MODELS.index):
        if name in run_entries:
            out.append(run_row(name, run_entries[name]))
        elif name in skipped:
            out.append(Row(name, NO_RESULT, f"not trained here: {skipped[name]}", machine=machine, date=date))
        if name in shipped_models:
            out.append(shipped_row(name, shipped_models[name], val_checksum, remeasured.get(name), name in promoted))
    if run_ensemble and run_ensemble.get("test_accuracy") is not None:
        out.append(Row("ensemble", HERE, f"this run: mean of {', '.join(run_ensemble['members'])}",
                       test_accuracy=run_ensemble.get("test_accuracy"), val_accuracy=run_ensemble.get("val_accuracy"),
                       machine=machine, date=date))
    ensemble = shipped.get("ensemble") or {}
    if ensemble.get("test_accuracy") is not None:
        same = val_checksum and ensemble.get("val_checksum") == val_checksum
        before = " before this run" if promoted else ""
        out.append(Row("ensemble", SHIPPED, f"shipped{before}: mean of {', '.join(ensemble.get('members', []))}",
                       test_accuracy=ensemble["test_accuracy"], val_accuracy=ensemble.get("val_accuracy"),
                       val_note="" if same or not val_checksum else "on other validation data"))
    return out


def shipped_rows(shipped: dict) -> list:
    """The shipped folder's own comparison (plots/comparison.md beside models/): its models' recorded rows."""
    return rows([n for n in shipped.get("models", {}) if n in BASE_MODELS], {}, {}, shipped, None)
