"""Promotion by evidence: does a candidate read the validation digits better than the shipped model, beyond noise?

Both models read the same digits, so the comparison is paired: only the digits where they disagree carry
information (McNemar). Under "no difference" each such digit is as likely to favour either model, so the number
the candidate wins is binomial(n, 1/2); the exact one-sided tail is the p-value (math.comb, no SciPy needed).

The rule (docs/DECISIONS.md): promote when the candidate is better on the whole validation data at ALPHA, and no
class is worse at CLASS_ALPHA. The per-class level is Bonferroni's ALPHA / 10: ten classes tested at 0.05 each
would block a candidate that is no worse in any class up to 40% of the time, and the rule "no class may lose a
digit" refused a better CNN whose classes 1, 4 and 8 moved by 2-3 digits of ~1,800 (issue 38).
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05  # the whole validation data: the candidate's gain must be this unlikely under "no difference"
N_CLASSES = 10
CLASS_ALPHA = ALPHA / N_CLASSES  # a class blocks only if its loss is this unlikely (Bonferroni over ten classes)


def one_sided_p(wins: int, losses: int) -> float:
    """P(at least `wins` of the `wins + losses` discordant digits favour one model | both equally good):
    the exact McNemar test, one-sided. 1.0 when there is no discordant digit."""
    if wins < 0 or losses < 0:
        raise ValueError(f"counts must be >= 0, got {wins} and {losses}")
    n = wins + losses
    if n == 0:
        return 1.0
    return min(1.0, sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n)


def _sig(p: float) -> float:
    """Four significant digits: enough for a p-value, and 1e-9 stays 1e-9 in JSON."""
    return float(f"{p:.4g}")


def discordant(candidate_right: np.ndarray, shipped_right: np.ndarray) -> tuple[int, int]:
    """(digits only the candidate reads right, digits only the shipped model reads right)."""
    c, s = np.asarray(candidate_right, bool), np.asarray(shipped_right, bool)
    return int(np.sum(c & ~s)), int(np.sum(~c & s))


def decide(candidate_pred, shipped_pred, labels) -> dict:
    """The promotion decision from both models' predicted labels on the same validation digits, as the JSON that
    metrics.json and the run's report keep: counts, p-values, the classes that block, and the verdict."""
    y = np.asarray(labels)
    if not len(np.asarray(candidate_pred)) == len(np.asarray(shipped_pred)) == len(y):
        raise ValueError("both models must read the same validation digits")
    decision = decide_right(np.asarray(candidate_pred) == y, np.asarray(shipped_pred) == y, y, range(N_CLASSES),
                            CLASS_ALPHA, what="digits", group="class")
    decision["classes"] = decision.pop("groups")
    decision["blocking_classes"] = decision.pop("blocking")
    decision["class_alpha"] = decision.pop("group_alpha")
    return decision


def decide_right(c_right, s_right, groups, names, group_alpha: float, what: str = "digits",
                 group: str = "class") -> dict:
    """The rule on which items (digits, numbers) each model reads right: better overall at ALPHA, and no group
    (a class; a source of numbers) worse at `group_alpha`."""
    c_right, s_right, groups = np.asarray(c_right, bool), np.asarray(s_right, bool), np.asarray(groups)
    better, worse = discordant(c_right, s_right)
    p_better = one_sided_p(better, worse)
    per_group, blocking = {}, []
    for k in names:
        on = groups == k
        b, w = discordant(c_right[on], s_right[on])
        p_worse = one_sided_p(w, b)
        per_group[str(k)] = {"n": int(on.sum()), "better": b, "worse": w, "p_worse": _sig(p_worse)}
        if p_worse < group_alpha:
            blocking.append(k)
    promote = p_better < ALPHA and not blocking
    parts = []
    if p_better >= ALPHA:
        parts.append(f"not better beyond noise: {better} {what} gained, {worse} lost (p = {p_better:.2g}, "
                     f"needs < {ALPHA})")
    parts += [f"{group} {k} significantly worse ({per_group[str(k)]['worse']} lost, {per_group[str(k)]['better']} "
              f"gained, p = {per_group[str(k)]['p_worse']:.2g} < {group_alpha:g})" for k in blocking]
    reason = "; ".join(parts) or f"better: {better} {what} gained, {worse} lost (p = {p_better:.2g} < {ALPHA})"
    n = len(c_right)
    return {"test": "McNemar exact, one-sided", "alpha": ALPHA, "group_alpha": group_alpha, "n": int(n),
            "candidate_accuracy": float(c_right.mean()) if n else float("nan"),
            "shipped_accuracy": float(s_right.mean()) if n else float("nan"),
            "better": better, "worse": worse, "p_better": _sig(p_better), "groups": per_group,
            "blocking": blocking, "promote": bool(promote), "reason": reason}
