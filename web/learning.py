"""What the page says about learning: the learner's status and the profile's figures in plain words.

The learning itself (debounced, one adaptation at a time, off the event loop) is recognizer/learner.py, the same
learner the desktop app uses; the server asks it after each correction and reads its status here.
"""

from __future__ import annotations

from recognizer.adapt import MIN_CORRECTIONS
from recognizer.learner import LearnerStatus

LEARN_HINT = "start the server with --learn (python serve.py --learn) to correct digits and teach it your handwriting"


def short_reason(reason: str) -> tuple[str, str]:
    """(headline, detail) of an adaptation's reason, without nested brackets: the status line says the headline,
    the My handwriting panel both. "it would forget how others write a 4 (it reads ...; confirming ... helps)"
    -> ("it would forget how others write a 4", "It reads ...; confirming ... helps.")."""
    cut = min((i for i in (reason.find(" ("), reason.find("; ")) if i >= 0), default=len(reason))
    head = reason[:cut]
    rest = reason[cut:].strip(" ;").replace(" (", ": ").replace("(", "").replace(")", "")
    return head, (rest[:1].upper() + rest[1:].rstrip(".") + ".") if rest else ""


def status_line(status: LearnerStatus, stats: dict, profile, learn: bool) -> tuple[str, str]:
    """(one plain sentence for the page's status bar: what the profile does now, a detail for the panel)."""
    if status.busy:
        return "Learning from your corrections…", ""
    if status.last is not None and status.last.error:
        return f"Learning failed: {status.last.error}", ""
    ad = stats["adaptations"]
    refused = [a["last"]["reason"] for a in ad.values() if a["last"] and not a["last"]["accepted"]]
    in_use = [a["corrections"] for a in ad.values() if a["in_use"]]
    n = stats["corrections"]
    if in_use:
        if not refused:
            return f"Reading with your handwriting: learned from {max(in_use)} corrections.", ""
        head, detail = short_reason(refused[0])
        return (f"Reading with your handwriting (learned from {max(in_use)} corrections); the newest attempt "
                f"was not kept: {head}.", detail)
    if not n:
        return ("Learning is on: choose a digit, then type or pick the right one." if learn else
                f"Reading with your adaptation when there is one; {LEARN_HINT}.", "")
    for name in ad:
        why = profile.can_adapt(name)
        if why is not None:
            return f"Cannot learn with {name}.", why
    if n < MIN_CORRECTIONS:
        return f"Learning starts after {MIN_CORRECTIONS} corrections — {n} so far.", ""
    if refused:
        head, detail = short_reason(refused[0])
        return f"Still reading with the shipped model: {head}.", detail
    return f"{n} corrections stored; not learned from yet.", ""
