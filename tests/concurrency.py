"""Run the same work from several threads at once and collect what they return and raise (shared by tests)."""

from __future__ import annotations

import threading
from typing import Callable


def run_in_threads(work: Callable[[], object], threads: int, repeats: int, timeout: float = 60.0):
    """Each of `threads` threads calls `work()` `repeats` times; returns (results, exceptions)."""
    results, errors = [], []

    def worker():
        try:
            for _ in range(repeats):
                results.append(work())
        except Exception as exc:  # noqa: BLE001  reported to the caller
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout)
    return results, errors
