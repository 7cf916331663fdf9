"""Which model the window reads with: the fallback policy, apart from the widgets so it can be tested alone.

The user's choice wins while it can answer. A model that cannot be used (missing, broken, failed to load)
gives way to the store's default, and the log says why; nothing switches while nothing better is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from common.names import BASE_MODELS, ENSEMBLE


@dataclass(frozen=True)
class Choice:
    model: str | None  # what the picker should show; None: leave it as it is
    warning: str | None = None  # why the wanted model was not taken, for the log


def choose_model(current: str | None, requested: str | None, default: str | None,
                 usable: Callable[[str], bool], status: dict[str, str]) -> Choice:
    """The picker's model after a status update.

    current: what the picker shows ("" or None before anything was chosen); requested: --model on the command
    line; default: the store's default (most accurate present model); usable: whether the picker can take a
    value; status: ModelStore.status()-like reasons.
    """
    if not current:
        wanted = requested
        warning = None
        if wanted and not usable(wanted):
            warning = f"model {wanted} not usable ({status.get(wanted, 'n/a')}); using {default or 'none'}"
            wanted = None
        return Choice(wanted or default, warning)
    if not usable(current) and default and default != current:
        return Choice(default, f"model {current} failed ({status.get(current)}); switching to {default}")
    return Choice(None)


def ready_models(loaded: tuple[str, ...] | list[str]) -> set[str]:
    """Models that can answer now: the loaded ones, and the ensemble once its three members are loaded."""
    ready = set(loaded)
    if all(n in ready for n in BASE_MODELS):
        ready.add(ENSEMBLE)
    if ENSEMBLE in ready:
        ready.update(BASE_MODELS)
    return ready
