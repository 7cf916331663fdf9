#!/usr/bin/env python3
"""Train, evaluate and compare the ANN, the small CNN and the grayscale VGG16 on MNIST.

A linear story: data -> for each model: build -> fit (train split, validation split watched) -> evaluate once on
the test split -> save model, plots, report -> comparison of all. Defaults live in study.training.PRESETS;
the command line overrides them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import study  # noqa: E402,F401  TensorFlow settings (oneDNN, quiet start-up) before anything loads it

from common.names import BASE_MODELS as MODEL_NAMES  # noqa: E402
from study.training import PRECISIONS  # noqa: E402  (NumPy only; TensorFlow loads later)

BUDGET_MINUTES = 30.0  # the 'best' preset's whole run, on 2 CPU cores
REFERENCE = {"ann": 0.954, "cnn": 0.9878, "vgg16": 0.9907}  # published test accuracies of the reference study
log = logging.getLogger("train_all")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train_all.py",
        description="Train and compare a dense network (ANN), a small CNN and a grayscale VGG16 on MNIST "
        "(48,000 train / 12,000 validation / 10,000 test). Saves models, metrics.json, plots and reports.",
        epilog="examples:\n"
        "  python train_all.py                                   # best recipes, all three models\n"
        "  python train_all.py --preset seed                     # the reference study's recipe\n"
        "  python train_all.py --models cnn --epochs 2 --limit 2000 --data ~/mnist.npz   # quick try\n"
        "MNIST is read from --data, $MNIST_PATH, the Keras cache, or downloaded by Keras.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES), metavar="MODEL",
                   help="which models to train: ann cnn vgg16 (default: all three)")
    p.add_argument("--preset", choices=("seed", "best"), default="best",
                   help="'seed' = reference study (Adam 1e-4, 5 epochs, batch 32, no augmentation); "
                   "'best' = each model's tuned recipe (default)")
    p.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    p.add_argument("--learning-rate", type=float, help="override the preset's (peak) learning rate")
    p.add_argument("--budget-minutes", type=float, metavar="MIN",
                   help="fit the whole run into MIN minutes of wall clock: timed steps plan each model's epochs "
                   "here, and each model re-plans them from its real pace after every epoch, between its "
                   "recipe's floor and ceiling (default: 30 for 'best', none for 'seed'; 0 or --epochs: "
                   "no budget)")
    p.add_argument("--seed", type=int, default=0, help="training seed (the data split is fixed regardless; default 0)")
    p.add_argument("--data", metavar="PATH", help="MNIST .npz (Keras layout) or folder of IDX files "
                   "(default: $MNIST_PATH, then the Keras cache, then download)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N images of each split (quick runs)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="where models and metrics.json go")
    p.add_argument("--plots-dir", type=Path, default=Path("plots"), help="where plots and reports go")
    p.add_argument("--vgg-weights", metavar="PATH",
                   help="start VGG16 from ImageNet weights: 'imagenet' (download) or a Keras VGG16 notop weights file")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="training compute precision; 'auto' = bfloat16 on CPUs with native bf16 (AVX512_BF16/AMX), "
                   "else float32 (default: auto for 'best', float32 for 'seed', as the reference study trained). "
                   "Weights and saved models are float32 either way")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress output")
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be a positive integer, got {value}")
    if args.budget_minutes is not None and args.budget_minutes < 0:
        p.error(f"--budget-minutes must be >= 0 (0 = no budget), got {args.budget_minutes}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        p.error(f"--learning-rate must be positive, got {args.learning_rate}")
    args.models = list(dict.fromkeys(args.models))  # keep order, drop repeats
    if args.precision is None:
        args.precision = "float32" if args.preset == "seed" else "auto"
    if args.budget_minutes is None:
        args.budget_minutes = 0.0 if args.preset == "seed" or args.epochs is not None else BUDGET_MINUTES
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


def versions() -> dict:
    import keras
    import numpy
    import sklearn
    import tensorflow

    from study import machine

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "cpu_count": os.cpu_count(),
            "cpu": machine.cpu_description()}


def load_previous(path: Path, preset: str, checksum: str) -> dict:
    """Entries of models not retrained this run are kept if they come from the same preset and split."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if old.get("preset") == preset and old.get("split", {}).get("checksum") == checksum:
        return old.get("models", {})
    return {}


def builder(name: str, recipe, args):
    """A function that builds this model afresh (training copy, float32 twin, timing copy)."""
    return lambda: build(name, dict(recipe.model_kwargs), args.vgg_weights if name == "vgg16" else None)


def measure_costs(args, recipes: dict, data, started: float) -> tuple[dict | None, dict | None]:
    """Under a time budget: what an epoch of each model costs here (timed steps), and the first plan."""
    from study import budget, training

    if not args.budget_minutes:
        return None, None
    precision = training.resolve_precision(args.precision)
    costs = {n: budget.measure(builder(n, r, args), r, data, precision, args.seed) for n, r in recipes.items()}
    left = args.budget_minutes * 60 - (time.perf_counter() - started)
    plan, planned = budget.plan_epochs(recipes, costs, left)
    for n, r in recipes.items():
        log.info("budget: %s %d of %d epochs (~%.0f s per epoch here)", n, plan[n], r.epochs, costs[n].epoch_seconds)
    if planned > left:
        log.warning("even the fewest epochs take ~%.1f min here, over the %g-minute budget (%.1f min left)",
                    planned / 60, args.budget_minutes, left / 60)
    record = {"minutes": args.budget_minutes, "planned_seconds": round(planned, 1),
              "epoch_seconds": {n: round(c.epoch_seconds, 3) for n, c in costs.items()},
              "planned_epochs": plan, "allotted_seconds": {}}
    return costs, record


def allotment(args, todo: list, recipes: dict, costs: dict | None, record: dict | None, started: float):
    """(planned epochs, seconds) for todo[0] under the budget, (None, None) without one. Re-planned before
    each model: the ones before it may have run faster or slower than their timed steps said."""
    from study import budget

    if not costs:
        return None, None
    name, left = todo[0], args.budget_minutes * 60 - (time.perf_counter() - started)
    epochs, seconds = budget.allot(name, {n: recipes[n] for n in todo}, costs, left)
    record["allotted_seconds"][name] = round(seconds, 1)
    log.info("budget: %s gets %.0f s (%.1f of %g min left)", name, seconds, left / 60, args.budget_minutes)
    return epochs, seconds


def train_one(name, recipe, args, data, plots_dir: Path, models_dir: Path, epochs=None, seconds=None):
    """Build, train (`epochs` planned, within `seconds` if given), evaluate and save one model; returns
    (summary dict, test probabilities)."""
    from common import atomic
    from study import machine, plots, reports, training
    from study.evaluation import evaluate_model

    precision = training.resolve_precision(args.precision)
    rebuild = builder(name, recipe, args)

    with training.fast_build(precision):
        model = rebuild()
    log.info("== %s: %s parameters, %s, recipe %s", name, f"{model.count_params():,}", precision, recipe.to_dict())
    history, seconds = training.fit(model, data, recipe, seed=args.seed, verbose=0 if args.quiet else None,
                                    epochs=epochs, seconds=seconds)
    model = training.portable_twin(model, rebuild)  # what is evaluated and saved runs at full precision anywhere
    ev = evaluate_model(model, data.test.x, data.test.y)  # the one and only look at the test split
    atomic.save_model(model, models_dir / f"{name}.keras")
    best_epoch = int(max(range(len(history["val_accuracy"])), key=history["val_accuracy"].__getitem__))
    summary = {
        "test_accuracy": ev.test_accuracy, "test_loss": ev.test_loss,
        "val_accuracy": history["val_accuracy"][best_epoch], "train_seconds": round(seconds, 2),
        "epochs": len(history["val_accuracy"]), "best_epoch": best_epoch + 1, "params": int(model.count_params()),
        "ms_per_image": ev.ms_per_image, "per_class": ev.per_class, "confusion": ev.confusion,
        "history": history, "recipe": recipe.to_dict(), "precision": precision,
        "cpu": machine.cpu_description(),  # models of one metrics.json may come from runs on different machines
    }
    plots.plot_curves(history, name, plots_dir / f"{name}_curves.png")
    plots.plot_confusion(ev.confusion, name, plots_dir / f"{name}_confusion.png")
    wrong = ev.predictions != data.test.y
    plots.plot_misclassified(data.test.x[wrong], data.test.y[wrong], ev.predictions[wrong], ev.confidence[wrong],
                             name, plots_dir / f"{name}_misclassified.png")
    reports.write_model_report(plots_dir / f"{name}_report.txt", name, ev.report,
                               reports.keras_summary_text(model), summary)
    return summary, ev.probabilities


def saved_probabilities(models_dir: Path, names, x_test) -> dict:
    """Test probabilities of models kept from an earlier run (same preset and split), so the ensemble always
    averages every model in models_dir, not only the ones retrained now. Unreadable files are left out."""
    import keras
    import numpy as np

    out = {}
    for name in names:
        try:
            model = keras.saving.load_model(models_dir / f"{name}.keras", compile=False)
        except (OSError, ValueError) as exc:
            log.warning("ensemble leaves out %s: %s", name, exc)
            continue
        out[name] = np.asarray(model.predict(x_test, batch_size=512, verbose=0))
    return out


def ensemble_summary(probabilities: dict, y_test) -> dict:
    import numpy as np

    from study.evaluation import cross_entropy

    mean = np.mean([probabilities[n] for n in probabilities], axis=0)
    return {"members": list(probabilities), "test_accuracy": float(np.mean(mean.argmax(1) == y_test)),
            "test_loss": cross_entropy(mean, np.asarray(y_test, dtype=np.int64))}


def print_table(results: dict, ensemble: dict | None) -> None:
    print("\n" + f"{'model':<8}{'test acc':>10}{'test loss':>11}{'val acc':>9}{'params':>12}{'train s':>9}{'ms/img':>8}")
    for name, s in results.items():
        print(f"{name:<8}{s['test_accuracy']:>10.4%}{s['test_loss']:>11.4f}{s['val_accuracy']:>9.4%}"
              f"{s['params']:>12,}{s['train_seconds']:>9.1f}{s['ms_per_image']:>8.3f}")
    if ensemble:
        print(f"{'ensemble':<8}{ensemble['test_accuracy']:>10.4%}{ensemble['test_loss']:>11.4f}"
              f"   (mean of {', '.join(ensemble['members'])})")


def main(argv=None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from common import atomic
    from study import plots, training
    from study.data import DataError, load

    try:
        data = load(args.data, args.limit)
    except DataError as exc:
        log.error("%s", exc)
        return 2
    training.configure_threads()
    args.models_dir.mkdir(parents=True, exist_ok=True)
    args.plots_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = args.models_dir / "metrics.json"
    results = load_previous(metrics_path, args.preset, data.checksum)
    metrics = {"preset": args.preset, "seed": args.seed, "limit": args.limit, "split": data.describe(),
               "versions": versions(), "reference_study": REFERENCE, "models": results}
    plots.plot_samples(data.train.x, data.train.y, args.plots_dir / "samples.png")
    kept = [n for n in MODEL_NAMES if n in results and n not in args.models]
    probabilities = saved_probabilities(args.models_dir, kept, data.test.x)
    ensemble = None
    try:
        recipes = {n: training.recipe_for(args.preset, n, epochs=args.epochs, batch_size=args.batch_size,
                                          learning_rate=args.learning_rate) for n in args.models}
        costs, metrics["budget"] = measure_costs(args, recipes, data, started)
        for i, name in enumerate(args.models):
            epochs, seconds = allotment(args, args.models[i:], recipes, costs, metrics["budget"], started)
            results[name], probabilities[name] = train_one(name, recipes[name], args, data, args.plots_dir,
                                                           args.models_dir, epochs, seconds)
            if len(probabilities) > 1:
                members = {n: probabilities[n] for n in MODEL_NAMES if n in probabilities}
                ensemble = metrics["ensemble"] = ensemble_summary(members, data.test.y)
            results = metrics["models"] = {n: results[n] for n in MODEL_NAMES if n in results}  # table order
            metrics["total_train_seconds"] = round(sum(s["train_seconds"] for s in results.values()), 1)
            metrics["run_seconds"] = round(time.perf_counter() - started, 1)  # this invocation, wall clock
            # after every model: an interrupt loses at most the model in flight
            atomic.write_json(metrics_path, metrics)
            write_comparison(results, args.plots_dir)
    except KeyboardInterrupt:
        log.warning("Interrupted: files already written are complete; the model in training was not saved.")
        return 130
    print_table(results, ensemble)
    return 0


def write_comparison(results: dict, plots_dir: Path) -> None:
    """comparison.png and comparison.md from the per-model summaries (scalars only)."""
    from study import plots, reports

    compare = {n: {k: v for k, v in s.items() if not isinstance(v, (dict, list))} for n, s in results.items()}
    plots.plot_comparison(compare, plots_dir / "comparison.png")
    reports.write_comparison_markdown(compare, plots_dir / "comparison.md", reference=REFERENCE)


if __name__ == "__main__":
    sys.exit(main())
