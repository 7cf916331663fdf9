#!/usr/bin/env python3
"""Learning a writer's hand: how many of their misreadings go away, and what it costs everyone else.

Simulated users are the validation writers of the shared sets (people no model trained on): pendigits' pen
writers drawn on the canvas through the app's own path, and CVL's validation writers through the scan path
(both as study/handwriting.py prepares them, i.e. through Recognizer.prepare). Per writer:

  * k = 1, 3, 5 corrected digits per class (seeded picks, several seeds: one pick is noisy), adapted through recognizer.adapt.decide exactly as a
    profile does; errors on the writer's *other* digits before and after (after = the shipped head when the
    adaptation was refused), and generic validation accuracy (MNIST validation + the other validation
    writers) with this writer's adaptation;
  * a session: the writer's digits in order, every misread corrected as it happens and adapted after each
    correction as the app does; errors over the second half against the shipped model;
  * deliberately wrong teaching (30 real digits of a class all labelled as another): refused, or what it costs;
  * one mistyped correction (one of the writer's 7s marked 1 among k = 3 right ones per class): the writer's
    other digits against the shipped model, and whether the typical digits of every class (MNIST validation
    digits the shipped model reads at 99% or more, calibrated) keep their reading;
  * calibration: the expected calibration error of the adapted heads (with the shipped temperature, as a profile
    reads) on the writers' other digits, pooled, against the shipped model's on the same digits.

Readings use the model's ONNX features and the NumPy head, the computation `recognize.py --profile` runs; a
check at the start reads one writer through a real Profile and Recognizer and must give the same answers.
Results go to --out as JSON: each section's summary, what the README and docs/RESULTS.md tables come from (kept
in git). The per-writer and per-pick rows behind them go to --detail only (not kept in git: rerun to have them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recognizer import ModelStore  # noqa: E402
from recognizer.adapt import DEFAULT_SETTINGS, AdaptSettings, decide, set_aside  # noqa: E402
from recognizer.calibration import apply_temperature  # noqa: E402
from recognizer.head import load_base_head  # noqa: E402

log = logging.getLogger("bench_adapt")
SHARED = ROOT.parent / "shared"
EPILOG = """example (the README's figures; --detail adds every writer's and pick's row, under the ignored runs/):
  python benchmarks/bench_adapt.py --data ../shared/data/mnist/mnist.npz --handwriting ../shared/data/handwriting \\
      --out benchmarks/results/adapt.json --detail runs/bench/adapt_detail.json
"""
ROWS = ("writers", "picks", "sets")  # a section's per-writer / per-pick rows: in --detail, not in --out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn", help="base model to adapt (default cnn, the app's default)")
    p.add_argument("--models-dir", default=str(ROOT / "models"))
    p.add_argument("--data", default=str(SHARED / "data/mnist/mnist.npz"), help="MNIST (for its validation split)")
    p.add_argument("--handwriting", default=str(SHARED / "data/handwriting"))
    p.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5], help="corrected digits per class")
    p.add_argument("--sets", nargs="+", default=["pendigits", "cvl"], help="whose validation writers are users")
    p.add_argument("--no-session", action="store_true", help="skip the in-order session simulation")
    p.add_argument("--only", nargs="+", choices=["per_k", "mistyped"], default=None,
                   help="run only these sections (with --no-session; the quick check of one change)")
    p.add_argument("--split", choices=["val", "test"], default="val",
                   help="whose writers: the validation writers (settings are chosen on them) or, once, after the "
                        "choice, the test writers and MNIST test (a check that the choice was not tuned to them)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 100, 200],
                   help="seeds of the picks: each writer corrects a different k per class under each; the totals "
                        "sum over them (one pick per writer swings the k = 5 figure by 15 points)")
    p.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                   help="override recognizer.adapt.AdaptSettings for this run (the tuning runs of docs/RESULTS.md), "
                        "e.g. --set rank=16 guard_target=0.97")
    p.add_argument("--out", metavar="PATH", help="write the summaries as JSON here (the file kept in git)")
    p.add_argument("--detail", metavar="PATH", help="also write the whole results, every writer's and pick's row "
                   "included, as JSON here (default: not written; e.g. under the ignored runs/)")
    args = p.parse_args(argv)
    try:
        args.settings = settings_from(args.set)
    except ValueError as exc:
        p.error(str(exc))
    return args


def settings_from(pairs: list[str]) -> AdaptSettings:
    """The default AdaptSettings with NAME=VALUE overrides; ValueError naming what to pass instead."""
    types = {f.name: f.type for f in dataclasses.fields(AdaptSettings)}
    changes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in types:
            raise ValueError(f"--set {pair}: expected NAME=VALUE, NAME one of {', '.join(types)}")
        if types[name] == "bool":
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {pair}: {value!r} is not true or false")
            changes[name] = value.lower() in ("true", "1")
            continue
        try:
            changes[name] = (int if types[name] == "int" else float)(value)
        except ValueError:
            raise ValueError(f"--set {pair}: {value!r} is not a number ({types[name]})") from None
    return dataclasses.replace(DEFAULT_SETTINGS, **changes)


def load(args):
    from study import data as mnist
    from study.handwriting import load_handwriting

    hand = load_handwriting(args.handwriting, sets=args.sets if "cvl" in args.sets else None)
    digits = mnist.load(args.data)
    return getattr(hand, args.split), getattr(digits, args.split)


def writers_of(hand_val, sets, min_per_class: int) -> list[str]:
    out = []
    for w in sorted(set(hand_val.writer.tolist())):
        if not w or w.split(":")[0] not in sets:
            continue
        counts = np.bincount(hand_val.y[hand_val.writer == w], minlength=10)
        if counts.min() >= min_per_class:
            out.append(w)
    return out


def pick(labels: np.ndarray, k: int, rng) -> np.ndarray:
    """k indices per class (the digits this writer corrects)."""
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c in range(10)])


def same_as_profile(store, model, x, y, base) -> bool:
    """Read one writer through a real Profile + Recognizer and through the bench's own path: same answers?"""
    from recognizer.profile import Profile

    with tempfile.TemporaryDirectory() as tmp:
        profile = Profile(tmp, store)
        for xi, yi in zip(x[:30], y[:30]):
            profile.add_correction(label=int(yi), input=xi[..., 0], model=model, source="bench", read=None)
        decision = profile.adapt(model)[model]
        probs, _ = profile.predict(model, x[30:])
        feats = store.features(model, x)
        mine = decide(base.head, base.stats, feats[:30], y[:30])
        head = mine.head if mine.accepted else base.head
        return decision.accepted == mine.accepted and bool((probs.argmax(1) == head.logits(feats[30:]).argmax(1)).all())


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    store = ModelStore(args.models_dir)
    base = load_base_head(store.adapt_path(args.model))
    temperature = store.calibration.temperature(args.model)
    hand_val, mnist_val = load(args)
    t0 = time.perf_counter()
    f_hand = np.concatenate([store.features(args.model, hand_val.x[i:i + 1024]) for i in range(0, len(hand_val.y), 1024)])
    f_mnist = np.concatenate([store.features(args.model, mnist_val.x[i:i + 1024])
                              for i in range(0, len(mnist_val.y), 1024)])
    log.info("features of %d + %d %s digits in %.1f s", len(f_hand), len(f_mnist), args.split, time.perf_counter() - t0)
    y_hand, y_mnist = hand_val.y.astype(np.int64), mnist_val.y.astype(np.int64)

    base_right = (base.head.logits(f_mnist).argmax(1) == y_mnist), (base.head.logits(f_hand).argmax(1) == y_hand)

    def generic_accuracy(head, exclude):
        """MNIST + the other writers' digits read right with `head` (the shipped head's answers computed once)."""
        keep = ~exclude
        if head is base.head:
            right_mnist, right_hand = base_right
        else:
            right_mnist = head.logits(f_mnist).argmax(1) == y_mnist
            right_hand = head.logits(f_hand).argmax(1) == y_hand
        return float((right_mnist.sum() + right_hand[keep].sum()) / (len(y_mnist) + keep.sum()))

    results = {"model": args.model, "split": args.split, "settings": dataclasses.asdict(args.settings), "per_k": {}, "session": None}
    first = writers_of(hand_val, args.sets, 6)[0]
    on = hand_val.writer == first
    results["same_as_profile"] = same_as_profile(store, args.model, hand_val.x[on], y_hand[on], base)
    log.info("bench path == Profile + Recognizer on writer %s: %s", first, results["same_as_profile"])
    base_generic = generic_accuracy(base.head, np.zeros(len(y_hand), bool))
    results["generic_before"] = base_generic
    sections = set(args.only or ["per_k", "mistyped"])
    for k in args.ks if "per_k" in sections else []:
        rows, shipped_p, adapted_p, truth = [], [], [], []
        for seed in args.seeds:
            for w in writers_of(hand_val, args.sets, k + 1):
                on = hand_val.writer == w
                idx = np.flatnonzero(on)
                rng = np.random.default_rng(seed + k)
                chosen = pick(y_hand[idx], k, rng)
                rest = np.setdiff1d(np.arange(len(idx)), chosen)
                fx, fy = f_hand[idx], y_hand[idx]
                d = decide(base.head, base.stats, fx[chosen], fy[chosen], args.settings, temperature)
                head = d.head if d.accepted else base.head
                shipped_p.append(apply_temperature(base.head.probabilities(fx[rest]), temperature))
                adapted_p.append(apply_temperature(head.probabilities(fx[rest]), temperature))
                truth.append(fy[rest])
                before = int((base.head.logits(fx[rest]).argmax(1) != fy[rest]).sum())
                after = int((head.logits(fx[rest]).argmax(1) != fy[rest]).sum())
                generic_base = generic_accuracy(base.head, on)
                generic = generic_accuracy(head, on) if d.accepted else generic_base
                rows.append({"writer": w, "seed": seed, "digits": len(rest), "before": before, "after": after,
                             "accepted": d.accepted, "reason": d.reason, "seconds": round(d.seconds, 3),
                             "guard_agreement": round(d.guard_agreement, 4),
                             "generic_before": generic_base, "generic_after": generic})
        summary = summarise(rows, args.sets)
        summary["ece"] = calibration_error(shipped_p, adapted_p, truth, rows)
        summary["per_seed"] = {seed: summarise([r for r in rows if r["seed"] == seed], args.sets, brief=True)
                               for seed in args.seeds}
        results["per_k"][k] = {"summary": summary, "writers": rows}
        log.info("k=%d: %s", k, json.dumps(summary))
    if "mistyped" in sections:
        results["mistyped"] = mistyped(args, hand_val, f_hand, y_hand, f_mnist, y_mnist, base, temperature)
    if args.only:
        return finish(args, results)
    if not args.no_session:
        results["session"] = session(args, hand_val, f_hand, y_hand, base)
    results["mislabelled"] = mislabelled(args, f_hand, y_hand, base, generic_accuracy)
    # time for 300 corrections (the ceiling), the slowest realistic case
    rng = np.random.default_rng(1)
    idx = rng.choice(len(y_hand), 300, replace=False)
    t = time.perf_counter()
    d = decide(base.head, base.stats, f_hand[idx], y_hand[idx], args.settings)
    results["seconds_300"] = round(time.perf_counter() - t, 3)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log.info("300 corrections: %.2f s (%s); peak memory %.0f MB", results["seconds_300"], d.reason,
             results["peak_rss_mb"])
    return finish(args, results)


def finish(args, results: dict) -> int:
    from common.atomic import write_json

    if args.out:
        write_json(args.out, summary_only(results))
    if args.detail:
        write_json(args.detail, results)
    return 0


def summary_only(results: dict) -> dict:
    """The results without the sections' per-writer and per-pick rows: the figures the README and RESULTS quote,
    small enough to keep in git (30 lines where the rows take thousands); the rows go to --detail."""
    def without_rows(section: dict) -> dict:
        return {key: value for key, value in section.items() if key not in ROWS}

    out = dict(results)
    for name, section in results.items():
        if name == "per_k":
            out[name] = {k: without_rows(part) for k, part in section.items()}
        elif isinstance(section, dict) and "summary" in section:
            out[name] = without_rows(section)
    return out


def made_worse(row: dict) -> bool:
    """A writer (or one pick of theirs) counts as made worse by more than one error and 2% of their other digits."""
    return row["after"] - row["before"] > max(1, row["digits"] / 50)


def summarise(rows: list[dict], sets: list[str], brief: bool = False) -> dict:
    """Totals over (writer, pick) rows: errors before / after, writers made worse, generic accuracy change."""
    tot_b, tot_a = sum(r["before"] for r in rows), sum(r["after"] for r in rows)
    worse = sorted({r["writer"] for r in rows if made_worse(r)})
    drops = [r["generic_before"] - r["generic_after"] for r in rows]
    out = {"errors_before": tot_b, "errors_after": tot_a, "fewer": round(1 - tot_a / tot_b, 4) if tot_b else None,
           "writers_worse": worse, "generic_drop_max_points": round(100 * float(np.max(drops)), 3)}
    if brief:
        return out
    out.update({"writers": len({r["writer"] for r in rows}), "picks": len(rows),
                "digits": sum(r["digits"] for r in rows), "accepted": sum(r["accepted"] for r in rows),
                "generic_drop_mean_points": round(100 * float(np.mean(drops)), 3),
                "seconds_median": float(np.median([r["seconds"] for r in rows])),
                "seconds_max": float(np.max([r["seconds"] for r in rows])),
                # the rows the text names one by one, kept with the summary (the rest are --detail)
                "generic_drop_worst": worst_generic_drop(rows), "worse_picks": [r for r in rows if made_worse(r)]})
    for s in sets:
        part = [r for r in rows if r["writer"].startswith(s + ":")]
        b, a = sum(r["before"] for r in part), sum(r["after"] for r in part)
        out[s] = {"writers": len({r["writer"] for r in part}), "errors_before": b, "errors_after": a,
                  "fewer": round(1 - a / b, 4) if b else None}
    return out


def worst_generic_drop(rows: list[dict]) -> dict:
    """The pick whose adaptation cost everyone else the most (generic accuracy, in points)."""
    worst = max(rows, key=lambda r: r["generic_before"] - r["generic_after"])
    return {"writer": worst["writer"], "seed": worst["seed"],
            "points": round(100 * (worst["generic_before"] - worst["generic_after"]), 3)}


def calibration_error(shipped_p, adapted_p, truth, rows) -> dict:
    """Pooled ECE (15 bins, study/calibration.py) on the writers' other digits: the shipped model and the heads in
    use after adapting (the shipped head where refused), both with the shipped temperature; and the accepted
    adaptations' digits alone."""
    from study.calibration import ece

    y = np.concatenate(truth)
    accepted = np.concatenate([np.full(len(t), r["accepted"]) for t, r in zip(truth, rows)])
    shipped, adapted = np.concatenate(shipped_p), np.concatenate(adapted_p)
    out = {"shipped": round(ece(shipped, y), 4), "in_use": round(ece(adapted, y), 4)}
    if accepted.any():
        out["accepted_only"] = round(ece(adapted[accepted], y[accepted]), 4)
        out["accepted_only_shipped"] = round(ece(shipped[accepted], y[accepted]), 4)
    return out


MISTYPED = (7, 1)  # the case: one 7 marked 1


def mistyped(args, hand_val, f_hand, y_hand, f_mnist, y_mnist, base, temperature) -> dict:
    """One mistyped correction among k = 3 right ones per class: the writer's own 7s are the ones a 7 marked 1
    would turn; typical digits are MNIST validation digits the shipped model reads right at 99% or more
    (calibrated, as the app shows it)."""
    shown, typed = MISTYPED
    p_mnist = apply_temperature(base.head.probabilities(f_mnist), temperature)  # as the app shows them
    typical = (p_mnist.argmax(1) == y_mnist) & (p_mnist.max(1) >= 0.99)
    f_typ, y_typ = f_mnist[typical], y_mnist[typical]
    rows = []
    for seed in args.seeds:
        for w in writers_of(hand_val, args.sets, 4):
            idx = np.flatnonzero(hand_val.writer == w)
            fx, fy = f_hand[idx], y_hand[idx]
            rng = np.random.default_rng(seed + 3)
            chosen = pick(fy, 3, rng)
            wrong = int(rng.choice(np.setdiff1d(np.flatnonzero(fy == shown), chosen)))
            x = np.concatenate([fx[chosen], fx[wrong:wrong + 1]])
            y = np.append(fy[chosen], typed)
            d = decide(base.head, base.stats, x, y, args.settings, temperature)
            head = d.head if d.accepted else base.head
            rest = np.setdiff1d(np.arange(len(idx)), np.append(chosen, wrong))
            reads = head.logits(fx[rest]).argmax(1)
            base_reads = base.head.logits(fx[rest]).argmax(1)
            typ = head.logits(f_typ).argmax(1) == y_typ
            own = fy[rest] == shown
            rows.append({"writer": w, "seed": seed, "digits": len(rest), "accepted": d.accepted,
                         "set_aside": len(d.ignored), "reason": d.reason,
                         "before": int((base_reads != fy[rest]).sum()), "after": int((reads != fy[rest]).sum()),
                         "own_sevens": int(own.sum()), "own_sevens_as_typed": int((reads[own] == typed).sum()),
                         "own_sevens_as_typed_before": int((base_reads[own] == typed).sum()),
                         "typical_kept_min": round(float(min(typ[y_typ == c].mean() for c in range(10))), 4),
                         "typical_kept_worst_class": int(np.argmin([typ[y_typ == c].mean() for c in range(10)]))})
    b, a = sum(r["before"] for r in rows), sum(r["after"] for r in rows)
    worst = min(rows, key=lambda r: r["typical_kept_min"])
    summary = {"picks": len(rows), "writers": len({r["writer"] for r in rows}), "accepted": sum(r["accepted"] for r in rows),
               "mistyped_set_aside": sum(r["set_aside"] > 0 for r in rows),
               "errors_before": b, "errors_after": a, "fewer": round(1 - a / b, 4) if b else None,
               "writers_worse": sorted({r["writer"] for r in rows if made_worse(r)}),
               "worse_picks": [r for r in rows if made_worse(r)],
               "own_sevens_read_as_typed": f"{sum(r['own_sevens_as_typed_before'] for r in rows)} -> "
                                           f"{sum(r['own_sevens_as_typed'] for r in rows)} of {sum(r['own_sevens'] for r in rows)}",
               "typical_digits": int(typical.sum()),
               "typical_kept_worst": worst["typical_kept_min"], "typical_kept_worst_class": worst["typical_kept_worst_class"]}
    log.info("one mistyped correction: %s", json.dumps(summary))
    return {"summary": summary, "picks": rows}


MISLABELLED = ((1, 7), (0, 8), (4, 9), (3, 5), (7, 1), (2, 3), (6, 5), (8, 3))


def mislabelled(args, f_hand, y_hand, base, generic_accuracy) -> dict:
    """Deliberately wrong teaching: 30 real digits of one class (any writers), all labelled as another. Every
    such adaptation should be refused; for any that is not, what it costs everyone else."""
    rows, nobody = [], np.zeros(len(y_hand), bool)
    base_generic = generic_accuracy(base.head, nobody)
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        for shown, taught in MISLABELLED:
            idx = rng.choice(np.flatnonzero(y_hand == shown), 30, replace=False)
            d = decide(base.head, base.stats, f_hand[idx], np.full(30, taught), args.settings)
            drop = 100 * (base_generic - generic_accuracy(d.head, nobody)) if d.accepted else 0.0
            rows.append({"shown": shown, "taught": taught, "seed": seed, "accepted": d.accepted, "reason": d.reason,
                         "generic_drop_points": round(drop, 3)})
    summary = {"sets": len(rows), "accepted": sum(r["accepted"] for r in rows),
               "generic_drop_max_points": max(r["generic_drop_points"] for r in rows)}
    log.info("mislabelled sets: %s", json.dumps(summary))
    return {"summary": summary, "sets": rows}


def session(args, hand_val, f_hand, y_hand, base) -> dict:
    """Every misread corrected as it happens, adapting after each correction (as the app does; a refused attempt
    keeps the adaptation in use unless it is set aside, as in Profile.adapt)."""
    rows = []
    for w in writers_of(hand_val, args.sets, 2):
        idx = np.flatnonzero(hand_val.writer == w)
        fx, fy = f_hand[idx], y_hand[idx]
        head, taught_x, taught_y, fitted = base.head, [], [], 0
        half = len(idx) // 2
        base_reads = base.head.logits(fx).argmax(1)  # the shipped head does not change: one batched call
        errs_adapted = errs_base = 0
        for i in range(len(idx)):
            read = int(head.logits(fx[i:i + 1]).argmax())
            if i >= half:
                errs_adapted += read != fy[i]
                errs_base += base_reads[i] != fy[i]
            if read != fy[i]:
                taught_x.append(fx[i])
                taught_y.append(fy[i])
                d = decide(base.head, base.stats, np.stack(taught_x), np.array(taught_y), args.settings)
                if d.accepted:
                    head, fitted = d.head, len(taught_y)
                elif head is not base.head and set_aside(head, base.head, np.stack(taught_x[fitted:]),
                                                         np.array(taught_y[fitted:])):
                    head = base.head  # as Profile.adapt does: the shipped head reads again
        rows.append({"writer": w, "second_half": int(len(idx) - half), "errors_base": int(errs_base),
                     "errors_adapted": int(errs_adapted), "corrections": len(taught_y)})
    summary = session_summary(rows)
    log.info("session: %s", json.dumps(summary))
    return {"summary": summary, "writers": rows}


def session_summary(rows: list[dict]) -> dict:
    """Errors over the second halves, shipped against adapted, and the writers made worse (their rows too)."""
    b, a = sum(r["errors_base"] for r in rows), sum(r["errors_adapted"] for r in rows)
    worse = [r for r in rows if made_worse({"before": r["errors_base"], "after": r["errors_adapted"],
                                            "digits": r["second_half"]})]
    return {"digits": sum(r["second_half"] for r in rows), "writers": len(rows), "errors_base": b,
            "errors_adapted": a, "fewer": round(1 - a / b, 4) if b else None,
            "writers_worse": [r["writer"] for r in worse], "worse_writers": worse}


if __name__ == "__main__":
    sys.exit(main())
