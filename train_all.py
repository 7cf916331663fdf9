#!/usr/bin/env python3
"""Train, evaluate and compare the ANN, the small CNN and the grayscale VGG16.

A linear story: data -> for each model: build -> fit (train split, validation watched, within the time
budget) -> evaluate once on the test sets -> save into this run's folder -> promote into `models/` only if it
beats the shipped model on validation -> comparison of all. Defaults live in study.recipes.PRESETS; the
command line overrides them.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

from common import tf_env  # noqa: F401  TensorFlow settings (oneDNN, quiet start-up) before anything loads it
from common.names import BASE_MODELS
from common.names import DEFAULT_MODELS_DIR, METRICS_FILE, STRING_MODEL, model_file, train_hint
from study.precision import PRECISIONS
from study.recipes import PRESET_NAMES

BUDGET_MINUTES = 30.0  # the 'best' preset's whole run, on 2 CPU cores
WARM_START_LR_SCALE = 0.25  # fine-tuning a trained model: a gentler peak than training from scratch
PAPER_ENV = "PAPER_PATH"  # where --paper defaults from
REFERENCE = {"ann": 0.954, "cnn": 0.9878, "vgg16": 0.9907}  # published test accuracies of the reference study
ADAPT_STATS_PER_CLASS = 1000  # training digits per class behind adapt.npz in a run (VGG16: ~20 s of the budget)
log = logging.getLogger("train_all")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train_all.py",
        description="Train and compare a dense network (ANN), a small CNN and a grayscale VGG16 on MNIST "
        "(48,000 train / 12,000 validation / 10,000 test), plus real handwriting for the 'best' preset. Each "
        "run writes its models, metrics and plots into its own folder (runs/<preset>-<time>/) and promotes a "
        "model into models/ only if it beats the shipped one on validation; the one it replaces is kept in "
        "models/previous/.",
        epilog="examples:\n"
        "  python train_all.py --data ~/mnist.npz                # best recipes, all three models, 30 minutes\n"
        "  python train_all.py --preset seed                     # the reference study's recipe (MNIST only)\n"
        "  python train_all.py --models cnn --epochs 2 --limit 2000   # quick try\n"
        "  python train_all.py --restore cnn                     # put back the CNN the last promotion replaced\n"
        "MNIST is read from --data, $MNIST_PATH, the Keras cache, or downloaded by Keras. Real handwriting\n"
        "('best' only) from --handwriting or $HANDWRITING_PATH.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", nargs="+", choices=BASE_MODELS + (STRING_MODEL,), default=list(BASE_MODELS),
                   metavar="MODEL", help="which models to train: ann cnn vgg16 (default: all three), and/or "
                   f"'{STRING_MODEL}': the paper reader, on --paper and --handwriting (not in the 30 minutes)")
    p.add_argument("--paper", metavar="DIR", default=os.environ.get(PAPER_ENV),
                   help=f"folder with the real register scans (registers-rowid.tar) for '{STRING_MODEL}' "
                   f"(default: ${PAPER_ENV})")
    p.add_argument("--mnist-numbers", action="store_true",
                   help=f"'{STRING_MODEL}' also trains on MNIST's training digits composed into numbers on made "
                        "paper (more hands; no significant gain measured yet, docs/RESULTS.md 'Paper')")
    p.add_argument("--join", nargs="+", metavar="READER",
                   help=f"with --models {STRING_MODEL}: train nothing; ship the mean of these trained paper readers "
                        "(string.keras files, or folders holding one) as one reader, if the paired test says it "
                        "reads validation better than the shipped one (docs/RESULTS.md 'Paper', fifth round)")
    p.add_argument("--preset", choices=PRESET_NAMES, default="best",
                   help="'seed' = reference study (Adam 1e-4, 5 epochs, batch 32, no augmentation, MNIST only); "
                   "'best' = each model's tuned recipe, MNIST plus real handwriting (default)")
    p.add_argument("--epochs", type=float, help="override the preset's number of epochs (no default budget then; "
                   "an explicit --budget-minutes still applies)")
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    p.add_argument("--learning-rate", type=float, help="override the preset's (peak) learning rate")
    p.add_argument("--budget-minutes", type=float, metavar="MIN",
                   help="fit the whole run, evaluation and saving included, into MIN minutes: timed steps plan "
                   "each model's training steps here and each model re-plans them from its real pace; refused "
                   "up front if not even a tenth of an epoch per model fits (default: 30 for 'best', none for "
                   "'seed' or with --epochs; 0: no budget)")
    p.add_argument("--seed", type=int, default=0, help="training seed (the data split is fixed regardless; default 0)")
    p.add_argument("--data", metavar="PATH", help="MNIST .npz (Keras layout) or folder of IDX files "
                   "(default: $MNIST_PATH, then the Keras cache, then download)")
    p.add_argument("--handwriting", metavar="DIR", help="folder of the real handwriting sets ('best' only; default: "
                   "$HANDWRITING_PATH); without it 'best' trains on MNIST alone and says so")
    p.add_argument("--no-handwriting", action="store_true", help="train on MNIST alone even where handwriting is found")
    p.add_argument("--handwriting-repeat", type=int, default=1, metavar="K",
                   help="show the handwriting training writers' digits K times per epoch: the MNIST / real "
                   "handwriting mix (default 1)")
    p.add_argument("--styles", type=float, default=None, metavar="RATE",
                   help="add an edited copy (a generated writing convention: slashed 0, European 1, crossed 7, ..., "
                   "study/styles.py) of this share of the handwriting training writers' pen digits of those labels "
                   "(default study.styles.DEFAULT_RATE; validation writers are never edited)")
    p.add_argument("--distill", type=float, default=None, metavar="ALPHA",
                   help="train towards ALPHA x the shipped calibrated ensemble's probabilities (ann+cnn+vgg16 of "
                   "--warm-start, else --models-dir) + (1-ALPHA) x the labels, study/distill.py; the teacher's rows "
                   "are cached under ~/.cache/digit-recognizer/distill (default study.distill.DEFAULT_ALPHA: off)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N images of each split (quick runs)")
    p.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR),
                   help="the shipped models that the app reads, and where better models are promoted (default: models)")
    p.add_argument("--plots-dir", type=Path, default=Path("plots"),
                   help="the shipped plots, updated for each promoted model (default: plots)")
    p.add_argument("--run-dir", type=Path, help="this run's own models, metrics and plots "
                   "(default: runs/<preset>-<date>-<time>)")
    p.add_argument("--replace", action="store_true",
                   help="promote this run's models even where the shipped ones are better on validation")
    p.add_argument("--restore", nargs="*", choices=BASE_MODELS, metavar="MODEL",
                   help="put back the models that the last promotion replaced (from models/previous/; default: "
                   "all there) and exit; the current ones go to previous/, so it can be undone")
    p.add_argument("--warm-start", type=Path, metavar="DIR",
                   help="start each model from the weights of DIR/<model>.keras (same architecture) and fine-tune "
                   f"it at {WARM_START_LR_SCALE}x the recipe's learning rate")
    p.add_argument("--vgg-weights", metavar="PATH",
                   help="start VGG16 from ImageNet weights: 'imagenet' (download) or a Keras VGG16 notop weights file")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="training compute precision; 'auto' = bfloat16 on CPUs with native bf16 (AVX512_BF16/AMX), "
                   "else float32 (default: auto for 'best', float32 for 'seed', as the reference study trained). "
                   "Weights and saved models are float32 either way")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress output")
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "limit", "handwriting_repeat"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            p.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.styles is not None and not 0.0 <= args.styles <= 1.0:
        p.error(f"--styles must be between 0 and 1, got {args.styles}")
    if args.distill is not None and not 0.0 <= args.distill <= 1.0:
        p.error(f"--distill must be between 0 and 1, got {args.distill}")
    if args.distill is None:
        from study.distill import DEFAULT_ALPHA

        args.distill = DEFAULT_ALPHA
    if args.budget_minutes is not None and args.budget_minutes < 0:
        p.error(f"--budget-minutes must be >= 0 (0 = no budget), got {args.budget_minutes}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        p.error(f"--learning-rate must be positive, got {args.learning_rate}")
    if args.warm_start is not None and not args.warm_start.is_dir():
        p.error(f"--warm-start {args.warm_start} is not a folder of trained models")
    args.models = list(dict.fromkeys(args.models))  # keep order, drop repeats
    if args.join and args.models != [STRING_MODEL]:
        p.error(f"--join joins paper readers: use it with --models {STRING_MODEL} alone")
    if args.precision is None:
        args.precision = "float32" if args.preset == "seed" else "auto"
    if args.budget_minutes is None:
        args.budget_minutes = 0.0 if args.preset == "seed" or args.epochs is not None else BUDGET_MINUTES
    if args.run_dir is None:
        args.run_dir = Path("runs") / f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    return args


def build(name: str, model_kwargs: dict, vgg_weights: str | None):
    if name == "ann":
        from ann import build_model
    elif name == "cnn":
        from cnn import build_model
    else:
        from vgg16 import build_model

        if vgg_weights:
            model_kwargs = {**model_kwargs, "weights": vgg_weights, "batch_norm": False}
    return build_model(**model_kwargs)


def builder(name: str, recipe, args):
    """A function that builds this model afresh (training copy, float32 twin, timing copy)."""
    return lambda: build(name, dict(recipe.model_kwargs), args.vgg_weights if name == "vgg16" else None)


def versions() -> dict:
    import keras
    import numpy
    import sklearn
    import tensorflow

    from study import machine

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "cpu_count": os.cpu_count(),
            "cpu": machine.cpu_description()}


def load_data(args):
    """MNIST, plus real handwriting for 'best' where it is found (said once, either way)."""
    from study.data import load, with_handwriting

    data = load(args.data, args.limit)
    if args.preset == "seed" or args.no_handwriting:
        return data
    from study.handwriting import ENV_VAR, code_version, load_handwriting

    hand = load_handwriting(args.handwriting)
    if hand is None:
        log.warning("no real handwriting given: training on MNIST alone (pass --handwriting DIR or set %s)",
                    ENV_VAR)
        return data
    from dataclasses import replace

    from study.styles import DEFAULT_RATE, with_styles

    hand, styles = with_styles(hand, Path(hand.path), DEFAULT_RATE if args.styles is None else args.styles)
    data = with_handwriting(data, hand, args.limit, args.handwriting_repeat)
    # the preparation code's version beside the validation checksum: a later run can tell whether other code or
    # another machine made other validation digits (other_validation_data). Recorded here, not in
    # study/handwriting.py, whose code is part of the cache key: a change there rebuilds everyone's cache.
    described = {**data.handwriting, "prepared_by": code_version(), **({"styles": styles} if styles else {})}
    return replace(data, handwriting=described)


def teach(args, data):
    """The data with the distillation teacher's row for every training image (--distill; study/distill.py): the
    calibrated ensemble of --warm-start, else of --models-dir, as the run starts."""
    from study.distill import with_teacher

    return with_teacher(data, args.warm_start or args.models_dir)


def take_weights(model, folder: Path, name: str) -> str | None:
    """Start `model` from folder/<name>.keras (same architecture); the reason it could not, or None."""
    import keras

    path = folder / model_file(name)
    try:
        source = keras.saving.load_model(path, compile=False)
        model.set_weights(source.get_weights())
    except (OSError, ValueError) as exc:
        return f"cannot take {name}'s weights from {path}: {exc}"
    log.info("%s starts from the weights of %s", name, path)
    return None


def folder_label(folder: Path) -> str:
    return folder.as_posix().rstrip("/") + "/"


def export_twin(keras_path: Path) -> None:
    """The ONNX twin the reading side runs; a failure is logged (the .keras stays the source of truth)."""
    try:
        from study.export import export_onnx
    except ImportError as exc:
        log.warning("no ONNX export (%s); the app falls back to Keras for %s", exc, keras_path.name)
        return
    try:
        export_onnx(keras_path)
    except Exception as exc:  # noqa: BLE001  export trouble must not cost the trained model
        log.warning("ONNX export of %s failed (%s); re-export with: python scripts/export_onnx.py", keras_path, exc)


def export_adaptation(model, keras_path: Path, data) -> None:
    """What the reading side needs to learn a writer's hand (the head's weights, per-class feature statistics of
    this run's training images); a failure is logged: the model itself is fine without it."""
    try:
        from study.adapt_export import write_adapt_file

        write_adapt_file(model, keras_path, data.train.x, data.train.y, per_class=ADAPT_STATS_PER_CLASS)
    except Exception as exc:  # noqa: BLE001  must not cost the trained model
        log.warning("no adaptation file for %s (%s); make it with: python scripts/export_adapt.py", keras_path, exc)


def train_one(name, recipe, args, data, steps=None, seconds=None, val_seconds=0.0, fine_tune=""):
    """Build, train, evaluate and save one model into this run's folder; returns (metrics entry, test
    probabilities per test set). It starts from --warm-start's weights, or (`fine_tune`: why) from the shipped
    model's; from scratch where those cannot be read (said once)."""
    from common import atomic
    from study import machine, plots, reports
    from study.evaluation import evaluate_model, predict_probabilities
    from study.fit import fit
    from study.precision import fast_build, portable_twin, resolve_precision
    from common.checksum import file_sha256

    precision = resolve_precision(args.precision)
    rebuild = builder(name, recipe, args)
    with fast_build(precision):
        model = rebuild()
    start = args.warm_start or (args.models_dir if fine_tune else None)
    if args.warm_start and (problem := take_weights(model, args.warm_start, name)):
        raise SystemExit(f"--warm-start: {problem}")
    if not args.warm_start and fine_tune and (problem := take_weights(model, args.models_dir, name)):
        log.warning("%s trains from scratch, not fine-tuned: %s", name, problem)
        start, fine_tune = None, ""
    log.info("== %s: %s parameters, %s, recipe %s", name, f"{model.count_params():,}", precision, recipe.to_dict())
    trained = fit(model, data, recipe, seed=args.seed, verbose=0 if args.quiet else None, steps=steps,
                  seconds=seconds, val_seconds=val_seconds, lr_scale=WARM_START_LR_SCALE if start else 1.0)
    model = portable_twin(model, rebuild)  # what is evaluated and saved runs at full precision anywhere
    ev = evaluate_model(model, data.test.x, data.test.y)  # the one and only look at the test split
    probabilities = {"mnist": ev.probabilities, "val": predict_probabilities(model, data.val.x)}
    tests = {"mnist": ev.test_accuracy}
    for part, split in data.test_parts.items():  # real writers held out for the end, looked at once too
        probabilities[part] = predict_probabilities(model, split.x)
        tests[part] = float((probabilities[part].argmax(1) == split.y).mean())
    keras_path = args.run_dir / "models" / model_file(name)
    atomic.save_model(model, keras_path)
    export_twin(keras_path)
    export_adaptation(model, keras_path, data)
    history = trained.history
    best_epoch = int(max(range(len(history["val_accuracy"])), key=history["val_accuracy"].__getitem__))
    entry = {
        "test_accuracy": ev.test_accuracy, "test_loss": ev.test_loss, "test_sets": tests,
        "val_accuracy": float((probabilities["val"].argmax(1) == data.val.y).mean()), "val_checksum": data.val_checksum,
        "val_parts": val_parts_accuracy(probabilities["val"], data),
        "train_seconds": round(trained.seconds, 2), "steps": trained.steps, "epochs": round(trained.epochs, 3),
        "best_epoch": best_epoch + 1, "params": int(model.count_params()), "ms_per_image": ev.ms_per_image,
        "per_class": ev.per_class, "confusion": ev.confusion, "history": history, "recipe": recipe.to_dict(),
        "precision": precision, "distill": recipe.distill, "warm_start": str(start) if start else None,
        "trained_from": folder_label(start) if start else None, "why_fine_tuned": fine_tune or None,
        "cpu": machine.cpu_description(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "data": data.describe(), "run": str(args.run_dir), "keras_sha256": file_sha256(keras_path),
    }
    plots_dir = args.run_dir / "plots"
    plots.plot_curves(history, name, plots_dir / f"{name}_curves.png")
    plots.plot_confusion(ev.confusion, name, plots_dir / f"{name}_confusion.png")
    wrong = ev.predictions != data.test.y
    plots.plot_misclassified(data.test.x[wrong], data.test.y[wrong], ev.predictions[wrong], ev.confidence[wrong],
                             name, plots_dir / f"{name}_misclassified.png")
    reports.write_model_report(plots_dir / f"{name}_report.txt", name, ev.report, reports.keras_summary_text(model),
                               entry)
    return entry, probabilities


def shipped_val_probabilities(name: str, models_dir: Path, data):
    """(validation accuracy, validation probabilities) of the shipped model on this run's validation data; (None,
    None) where there is no usable shipped model. Always read anew: the paired test needs its every answer."""
    import keras

    from study.evaluation import predict_probabilities

    path = models_dir / model_file(name)
    if not path.is_file():
        return None, None
    try:
        model = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError) as exc:
        log.warning("the shipped %s cannot be read (%s): it will be replaced", name, exc)
        return None, None
    probabilities = predict_probabilities(model, data.val.x)
    return float((probabilities.argmax(1) == data.val.y).mean()), probabilities


def other_validation_data(entry: dict, data) -> str:
    """Why a shipped entry's validation figure was measured on other digits than this run's ('' if it was not).
    The handwriting part is prepared by code whose version the data record (`prepared_by`): the same code and
    seed must give the same digits on every machine, so a difference then is a defect worth reporting."""
    if entry.get("val_checksum") in (None, data.val_checksum):
        return ""
    theirs = ((entry.get("data") or {}).get("handwriting") or {}).get("prepared_by")
    ours = (data.handwriting or {}).get("prepared_by")
    if theirs is None or ours is None:
        return f"checksum {entry['val_checksum']}, this run's {data.val_checksum}; its preparation code not recorded"
    if theirs != ours:
        return f"prepared by other code: {theirs}, this run's {ours}"
    return (f"checksum {entry['val_checksum']}, this run's {data.val_checksum} with the same preparation code "
            f"{ours}: the digits differ between machines, please report it")


def promotion_decision(name: str, entry: dict, val_probabilities, shipped_val, data) -> dict:
    """Whether this run's model should replace the shipped one: McNemar's exact test on the validation digits the
    two read differently (study.paired_test); a model that did not learn never should."""
    from study.comparison import learned
    from study.paired_test import decide

    if not learned(entry):
        return {"promote": False, "reason": f"did not learn ({entry['val_accuracy']:.1%} of the validation digits)"}
    if shipped_val is None:
        return {"promote": True, "reason": "no usable shipped model"}
    return decide(val_probabilities.argmax(1), shipped_val.argmax(1), data.val.y)


def decide_and_promote(name: str, entry: dict, val_probabilities, args, data, measured: dict) -> bool:
    """Promote this run's model into models/ if the paired test says it is better (or --replace); say which way.
    The shipped model's validation probabilities go into `measured` (the comparison, the shipped ensemble); the
    decision, its counts and p-values into the entry (and so into metrics.json)."""
    import shutil

    from common.atomic import atomic_path
    from study.promote import promote, read_metrics

    old, old_val = shipped_val_probabilities(name, args.models_dir, data)
    if old_val is not None:
        measured[name] = old_val
        why = other_validation_data(read_metrics(args.models_dir).get("models", {}).get(name, {}), data)
        if why:
            log.info("the shipped %s was measured on other validation data (%s); this run measured it anew: %.4f",
                     name, why, old)
    decision = promotion_decision(name, entry, val_probabilities, old_val, data)
    promote_it = decision["promote"] or args.replace
    entry["promotion"] = decision | {"promoted": promote_it, "replace": bool(args.replace and not decision["promote"])}
    if not promote_it:
        if old is None:
            log.warning("did not promote %s: %s; it is in %s", name, decision["reason"], args.run_dir / "models")
        else:
            log.warning("kept the shipped %s (validation %.4f, this run's %.4f): %s; this run's model is in %s "
                        "(--replace would take it)", name, old, entry["val_accuracy"], decision["reason"],
                        args.run_dir / "models")
        return False
    promote(name, args.run_dir / "models", args.models_dir, entry)
    for f in (args.run_dir / "plots").glob(f"{name}_*"):
        with atomic_path(args.plots_dir / f.name) as tmp:
            shutil.copyfile(f, tmp)
    log.info("promoted %s into %s (%s%s); the one it replaced is in %s", name, args.models_dir, decision["reason"],
             "" if decision["promote"] else "; --replace", args.models_dir / "previous")
    return True


def calibrate_models(folder: Path, val_probabilities: dict, data) -> None:
    """Fit the models' temperatures on this run's validation data (the fit scripts/calibrate.py runs) and store
    them beside the models (calibration.json), so that a trained or promoted model reads calibrated."""
    from study import calibration

    if val_probabilities:
        calibration.write(folder, calibration.calibrate(val_probabilities, data.val.y, folder, data.val_checksum))


def val_parts_accuracy(probabilities, data) -> dict:
    """Accuracy on each part of the validation data (MNIST, handwriting) from probabilities over all of it
    (data.val is the parts joined in order): no second pass of the model over them."""
    out, start = {}, 0
    for part, split in data.val_parts.items():
        n = len(split.y)
        out[part] = float((probabilities[start:start + n].argmax(1) == split.y).mean()) if n else float("nan")
        start += n
    return out


def refresh_kept(entries: dict, kept_val: dict, data, run_dir: Path) -> list[str]:
    """Give the shipped models that this run measured and kept their figures on this run's validation data.

    When the validation data change (a new writer split, new sets), the kept models' old figures no longer
    compare with the promoted ones', and the default model would be chosen by test accuracy instead
    (ModelStore.choice_scores). Returns the names refreshed."""
    done = []
    for name, probabilities in kept_val.items():
        if name in entries and entries[name].get("val_checksum") != data.val_checksum:
            entries[name] |= {"val_accuracy": float((probabilities.argmax(1) == data.val.y).mean()),
                              "val_checksum": data.val_checksum,
                              "val_parts": val_parts_accuracy(probabilities, data),
                              "val_measured_in": str(run_dir)}
            done.append(name)
    return done


def ensemble_summary(probabilities: dict, data) -> dict:
    """Accuracy of the mean of the members' probabilities on every test set."""
    import numpy as np

    from study.evaluation import cross_entropy

    members = [n for n in BASE_MODELS if n in probabilities]
    out = {"members": members, "test_sets": {}}
    if all("val" in probabilities[n] for n in members):  # the figure a default model is chosen by
        mean = np.mean([probabilities[n]["val"] for n in members], axis=0)
        out |= {"val_accuracy": float(np.mean(mean.argmax(1) == data.val.y)), "val_checksum": data.val_checksum}
    truths = {"mnist": data.test.y, **{k: s.y for k, s in data.test_parts.items()}}
    for part, y in truths.items():
        if not all(part in probabilities[n] for n in members):
            continue
        mean = np.mean([probabilities[n][part] for n in members], axis=0)
        out["test_sets"][part] = float(np.mean(mean.argmax(1) == y))
        if part == "mnist":
            out["test_accuracy"] = out["test_sets"][part]
            out["test_loss"] = cross_entropy(mean, np.asarray(y, dtype=np.int64))
    return out


def shipped_probabilities(names, models_dir: Path, data, val_known: dict) -> dict:
    """MNIST test and validation probabilities of shipped models that this run did not replace, for the shipped
    ensemble (validation ones reused where the promotion check made them); unreadable files are left out."""
    import keras

    from study.evaluation import predict_probabilities

    out = {}
    for name in names:
        try:
            model = keras.saving.load_model(models_dir / model_file(name), compile=False)
        except (OSError, ValueError) as exc:
            log.warning("the shipped ensemble leaves out %s: %s", name, exc)
            continue
        val = val_known.get(name)
        out[name] = {"mnist": predict_probabilities(model, data.test.x),
                     "val": val if val is not None else predict_probabilities(model, data.val.x)}
    return out


def write_comparison(rows: list, plots_dir: Path, title: str, promotions: dict | None = None) -> str:
    """comparison.png and comparison.md from the comparison's rows; returns the Markdown text."""
    from study import plots, reports

    plots.plot_comparison(rows, plots_dir / "comparison.png", title)
    return reports.write_comparison_markdown(plots_dir / "comparison.md", rows, REFERENCE, promotions)


def restore_models(args) -> int:
    from study.promote import PREVIOUS, recover, restore

    recover(args.models_dir)
    names = args.restore or [n for n in BASE_MODELS if (args.models_dir / PREVIOUS / model_file(n)).is_file()]
    if not names:
        log.error("nothing to restore: %s holds no earlier model", args.models_dir / PREVIOUS)
        return 1
    for name in names:
        try:
            restore(name, args.models_dir)
        except FileNotFoundError as exc:
            log.error("%s", exc)
            return 1
        log.info("restored %s; the one it replaced is now in %s (run --restore %s again to undo)", name,
                 args.models_dir / PREVIOUS, name)
    return 0


def plan_models(args, recipes: dict, data, started: float):
    """(the budget or None, {model: why it is not trained}); BudgetError where not even one model fits."""
    from study.budget import RunBudget
    from study.precision import resolve_precision

    if not args.budget_minutes:
        return None, {}
    budget = RunBudget(args.budget_minutes, started, len(data.train))
    # after training: the test sets, its validation figure and the shipped model's, and (if the shipped
    # model stays) its MNIST test pass for the shipped ensemble
    n_eval = 2 * len(data.test) + sum(len(s) for s in data.test_parts.values()) + 2 * len(data.val)
    budget.measure(recipes, {n: builder(n, r, args) for n, r in recipes.items()}, data,
                   resolve_precision(args.precision), args.seed, n_eval)
    return budget, dict(budget.skipped)


def fine_tune_reason(name: str, steps: int | None, budget, args) -> str:
    """Why this model is fine-tuned from the shipped weights instead of trained from scratch ('' when it is not):
    its share of the budget is under the epochs a model needs to learn (study.budget.MIN_LEARNING_EPOCHS)."""
    from study.budget import MIN_LEARNING_EPOCHS, too_short

    if budget is None or args.warm_start or not (args.models_dir / model_file(name)).is_file():
        return ""
    cost = budget.costs[name]
    if not too_short(steps, cost):
        return ""
    return (f"{steps / cost.steps_per_epoch:.1f} epochs fit in its share of the budget, under the "
            f"{MIN_LEARNING_EPOCHS:g} a model needs to learn from scratch")


def train_models(args, recipes, data, budget, metrics, started) -> tuple[dict, list, dict]:
    """Train, evaluate and judge each model in turn; returns (validation probabilities by model, promoted
    models, the shipped models' validation probabilities as this run measured them)."""
    from common import atomic
    from study.comparison import learned

    results, skipped, probabilities, promoted, measured = metrics["models"], metrics["skipped"], {}, [], {}
    todo = [n for n in args.models if n not in skipped]
    for i, name in enumerate(todo):
        t0 = time.perf_counter()
        steps = seconds = None
        val_seconds = 0.0
        if budget:
            allotted = budget.allot(name, {n: recipes[n] for n in todo[i:] if n not in budget.skipped})
            if allotted is None:
                skipped[name] = budget.skipped[name]
                continue
            steps, seconds = allotted
            val_seconds = budget.costs[name].val_pass
        why = fine_tune_reason(name, steps, budget, args)
        if why:
            log.warning("%s: %s: it is fine-tuned from the shipped weights in %s instead", name, why, args.models_dir)
        results[name], probs = train_one(name, recipes[name], args, data, steps, seconds, val_seconds, why)
        if not learned(results[name]):
            log.warning("%s did not learn: %.1f%% of the validation digits after %.2f epochs (chance 10%%); it is "
                        "no result and left out of the ensemble%s", name, 100 * results[name]["val_accuracy"],
                        results[name]["epochs"], "" if args.replace else ", and not promoted")
        else:
            probabilities[name] = probs
        if len(probabilities) > 1:
            metrics["ensemble"] = ensemble_summary(probabilities, data)
        if decide_and_promote(name, results[name], probs["val"], args, data, measured):
            promoted.append(name)
        metrics["run_seconds"] = round(time.perf_counter() - started, 1)
        atomic.write_json(args.run_dir / "models" / METRICS_FILE, metrics)
        if budget:
            budget.spent(name, results[name]["steps"], results[name]["train_seconds"], time.perf_counter() - t0)
            metrics["budget"] = budget.record
    return probabilities, promoted, measured


def update_shipped(args, data, probabilities: dict, promoted: list, measured: dict, metrics: dict) -> None:
    """After promotions: models/metrics.json describes the files beside it (kept models' figures re-measured on
    this run's validation data), the shipped ensemble, calibration and plots. A run that promotes nothing
    changes no file there: what it re-measured goes into its own metrics.json (`shipped_remeasured`)."""
    from common import atomic
    from study import comparison
    from study.promote import read_metrics

    shipped = read_metrics(args.models_dir)
    kept_val = {n: p for n, p in measured.items() if n not in promoted}
    if not promoted:
        remeasured = {n: {} for n in kept_val}
        refresh_kept(remeasured, kept_val, data, args.run_dir)
        metrics["shipped_remeasured"] = remeasured
        return
    have = [n for n in BASE_MODELS if (args.models_dir / model_file(n)).is_file()]
    probs = {n: probabilities[n] for n in have if n in promoted and n in probabilities}
    probs |= shipped_probabilities([n for n in have if n not in probs], args.models_dir, data, kept_val)
    # every kept model was read on this run's validation data for the ensemble, not only those this run trained:
    # one entry left on older data would choose the default model by test accuracy (ModelStore.choice_scores)
    refresh_kept(shipped.get("models", {}), {n: p["val"] for n, p in probs.items() if n not in promoted}, data,
                 args.run_dir)
    # the shipped file describes the files beside it, each entry from the run that made it: nothing else
    shipped = {"models": shipped.get("models", {}), "reference_study": REFERENCE}
    if len(probs) > 1:
        shipped["ensemble"] = ensemble_summary(probs, data)
    calibrate_models(args.models_dir, {n: p["val"] for n, p in probs.items()}, data)
    atomic.write_json(args.models_dir / METRICS_FILE, shipped)
    write_comparison(comparison.shipped_rows(shipped), args.plots_dir, "The shipped models (models/)")


def train_string_reader(args) -> int:
    """The paper reader (issue 36): its own data (real register scans, CVL numbers composed on made paper), its
    own figures (models/string.metrics.json), promoted when the paired test says it reads validation better than
    the shipped one. With --join: no training, the mean of trained readers is the candidate."""
    from string_reader.model import build_model, join
    from study.handwriting import find
    from study.string_training import StringRecipe, join_run, run

    hand = find(args.handwriting)
    if not args.paper or not (Path(args.paper) / "registers-rowid.tar").is_file() or hand is None:
        log.error("the paper reader trains on --paper DIR (with registers-rowid.tar) and --handwriting DIR (with "
                  "cvl/); got --paper %s and --handwriting %s", args.paper, args.handwriting)
        return 2
    overrides = {"epochs": None if args.epochs is None else max(1, round(args.epochs)),
                 "learning_rate": args.learning_rate, "batch_size": args.batch_size}
    recipe = StringRecipe(**{k: v for k, v in overrides.items() if v is not None})
    from study.data import DataError, locate

    mnist = None
    if args.mnist_numbers:
        try:
            arrays, _ = locate(args.data)
            mnist = (arrays["x_train"], arrays["y_train"])
        except DataError as exc:
            log.error("--mnist-numbers needs MNIST: %s", exc)
            return 2
    if args.join:
        try:
            figures = join_run(join, args.join, args.paper, hand, args.models_dir, args.run_dir / "models",
                               args.replace)
        except (OSError, ValueError) as exc:  # a missing or unreadable reader, fewer than two
            log.error("--join: %s", exc)
            return 2
    else:
        figures = run(build_model, args.paper, hand, args.models_dir, args.run_dir / "models", recipe,
                      replace=args.replace, mnist=mnist, seed=args.seed)
    log.info("%s: validation %s -> %s", STRING_MODEL, figures["validation"],
             "promoted into " + str(args.models_dir) if figures["promoted"] else "kept in the run's folder only")
    return 0


def prepare_run(args, data) -> tuple[dict, dict, dict]:
    """This run's folders, recipes and metrics record, and the shipped models' figures read now: the comparison
    at the end is with the models as they were before this run promoted any. Returns (recipes, metrics, shipped
    metrics)."""
    from study import plots
    from study.precision import configure_threads
    from study.promote import read_metrics
    from study.recipes import recipe_for

    configure_threads()
    for d in (args.run_dir / "models", args.run_dir / "plots", args.models_dir, args.plots_dir):
        d.mkdir(parents=True, exist_ok=True)
    log.info("this run writes into %s; better models are promoted into %s", args.run_dir, args.models_dir)
    shipped_before = read_metrics(args.models_dir)
    recipes = {n: recipe_for(args.preset, n, epochs=args.epochs, batch_size=args.batch_size,
                             learning_rate=args.learning_rate, distill=args.distill or None) for n in args.models}
    metrics = {"preset": args.preset, "seed": args.seed, "limit": args.limit, "split": data.describe(),
               "distill": {"alpha": args.distill, "teacher": str(args.warm_start or args.models_dir)
                           if args.distill else None},
               "versions": versions(), "reference_study": REFERENCE, "models": {}, "skipped": {}, "budget": None}
    plots.plot_samples(data.train.x, data.train.y, args.run_dir / "plots" / "samples.png")
    return recipes, metrics, shipped_before


def compare_run(args, data, metrics: dict, shipped_before: dict, measured: dict, promoted: list) -> str:
    """This run's models beside the shipped ones as they were (comparison.png / .md in the run's plots); the
    shipped models' validation figures are the ones this run measured on its own validation data. Returns the
    Markdown table."""
    from study import comparison, machine

    results, today, cpu = metrics["models"], time.strftime("%Y-%m-%d", time.gmtime()), machine.cpu_description()
    rows = comparison.rows(args.models, results, metrics["skipped"], shipped_before, data.val_checksum,
                           {n: float((p.argmax(1) == data.val.y).mean()) for n, p in measured.items()},
                           metrics.get("ensemble"), cpu, today, promoted)
    return write_comparison(rows, args.run_dir / "plots",
                            f"This run ({args.run_dir}; {cpu}, {today}) beside the shipped models ({args.models_dir})",
                            {n: e["promotion"] for n, e in results.items() if "promotion" in e})


def write_run_record(args, metrics: dict, budget, started: float) -> None:
    """The run's metrics.json, last: with the budget's closing figures and the whole run's wall time."""
    from common import atomic

    if budget:
        budget.close()
        metrics["budget"] = budget.record
    metrics["run_seconds"] = round(time.perf_counter() - started, 1)
    atomic.write_json(args.run_dir / "models" / METRICS_FILE, metrics)


def main(argv=None) -> int:
    """The run in the order it happens, one phase a call (each function says why it is one); returns the exit
    code."""
    started = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from study.promote import recover

    if args.restore is not None:
        return restore_models(args)
    recover(args.models_dir)  # a promotion an earlier run was killed in is finished first
    if STRING_MODEL in args.models:
        code = train_string_reader(args)
        args.models = [m for m in args.models if m != STRING_MODEL]
        if code or not args.models:
            return code

    from study.data import DataError
    from study.distill import DistillError

    try:
        data = load_data(args)
        if args.distill:
            data = teach(args, data)
    except (DataError, DistillError) as exc:
        log.error("%s", exc)
        return 2
    from study.budget import BudgetError  # imports Keras (~5 s): after the data, so a wrong path is told at once
    recipes, metrics, shipped_before = prepare_run(args, data)
    try:
        budget, metrics["skipped"] = plan_models(args, recipes, data, started)
    except BudgetError as exc:
        log.error("%s", exc)
        return 3
    try:
        probabilities, promoted, measured = train_models(args, recipes, data, budget, metrics, started)
        calibrate_models(args.run_dir / "models", {n: p["val"] for n, p in probabilities.items()}, data)
        update_shipped(args, data, probabilities, promoted, measured, metrics)
        table = compare_run(args, data, metrics, shipped_before, measured, promoted)
        write_run_record(args, metrics, budget, started)
    except KeyboardInterrupt:
        log.warning("interrupted: %s is as it was, or holds whole promoted models only; this run's finished "
                    "files are in %s", args.models_dir, args.run_dir)
        return 130
    print_outcome(args, table, metrics, promoted)
    return 0


def print_outcome(args, table: str, metrics: dict, promoted: list) -> None:
    """What the user reads at the end (stdout, not the log): the comparison, and what became of each model."""
    results = metrics["models"]
    print(f"\nthis run ({args.run_dir}) beside the shipped models:\n{table}")
    kept = [n for n in results if n not in promoted and (args.models_dir / model_file(n)).is_file()]
    no_result = [n for n in results if n not in promoted and n not in kept]
    print(f"promoted into {args.models_dir}: {', '.join(promoted) or 'none'}"
          + (f"; kept the shipped {', '.join(kept)}" if kept else "")
          + (f"; not promoted: {', '.join(no_result)} (did not learn)" if no_result else "")
          + (f"; not trained: {', '.join(metrics['skipped'])} (see above)" if metrics["skipped"] else ""))
    if not any((args.models_dir / model_file(n)).is_file() for n in BASE_MODELS):
        print(train_hint())


if __name__ == "__main__":
    sys.exit(main())
