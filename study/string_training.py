"""Training the string reader with CTC on paper strips (study/paper_data.py): real register scans plus
composed CVL strings on made paper, validated on register pages and CVL writers that training never saw.

Plain Keras: a generator of padded strips with their digit labels (digit d -> class d + 1, 0 pads and is CTC's
blank), Adam with a one-cycle schedule, and the exact-string accuracy of greedy decoding per source after every
epoch; the epoch with the best validation exact rate is kept.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer.string_reader import text_of

log = logging.getLogger(__name__)

MAX_LABEL = 8  # the longest label a strip carries (numbers of up to 7 digits, one spare)


@dataclass(frozen=True)
class StringRecipe:
    epochs: int = 10
    per_epoch: int = 30_000          # strips drawn per epoch (a random subset of the ~60k: more validation points)
    batch_size: int = 64
    learning_rate: float = 2e-3      # peak of the one-cycle schedule
    weight_decay: float = 1e-4
    shift: bool = True               # strips placed at a random column of the padded width
    gain: float = 0.3                # ink strength scaled by 1 +- this: faint and firm pens


def encode(labels: list) -> np.ndarray:
    y = np.zeros((len(labels), MAX_LABEL), np.int32)
    for i, s in enumerate(labels):
        digits = [int(c) + 1 for c in s[:MAX_LABEL]]
        y[i, :len(digits)] = digits
    return y


def augment(x: np.ndarray, widths: np.ndarray, recipe: StringRecipe, rng: np.random.Generator) -> np.ndarray:
    """Shift each strip to a random column (within the padding) and scale its ink strength."""
    out = np.zeros_like(x, dtype=np.float32)
    W = x.shape[2]
    for i in range(len(x)):
        w = int(widths[i])
        dx = int(rng.integers(0, W - w + 1)) if recipe.shift and w < W else 0
        out[i, :, dx:dx + w] = x[i, :, :w]
    if recipe.gain:
        out *= rng.uniform(1 - recipe.gain, 1 + recipe.gain, (len(x), 1, 1)).astype(np.float32)
        np.clip(out, 0, 1, out=out)
    return out


def read_texts(reader, x: np.ndarray, batch: int = 256) -> list[str]:
    """The texts a Keras reader with its softmax (`with_probabilities`, as saved) reads in a padded set, decoded as
    the product decodes them (recognizer/string_reader.py: beam search over probabilities)."""
    texts = []
    for i in range(0, len(x), batch):
        out = np.asarray(reader(x[i:i + batch, ..., None].astype(np.float32), training=False))
        if out.min() < 0 or not np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
            raise ValueError("read_texts decodes probabilities: pass the reader with its softmax, "
                             "with_probabilities(model), not the logits model CTC trains")
        texts.extend(text_of(f) for f in out)
    return texts


def exact(texts: list[str], labels) -> float:
    return float(np.mean([t == str(y) for t, y in zip(texts, labels)])) if len(texts) else 0.0


def train(model, train_x, train_w, train_y, val: dict, recipe: StringRecipe = StringRecipe(), seed: int = 0,
          max_seconds: float | None = None, progress=None):
    """Train `model` (logits output) in place; return (best weights, history) with per-epoch validation exact
    rates per source. `val` maps a source name to (x, labels); their mean picks the best epoch."""
    import keras

    rng = np.random.default_rng(seed)
    y_all = encode(train_y)
    per_epoch = min(len(train_x), recipe.per_epoch or len(train_x))
    steps = int(math.ceil(per_epoch / recipe.batch_size))
    total = steps * recipe.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe.learning_rate * 0.1, total - total // 10, warmup_target=recipe.learning_rate,
        warmup_steps=total // 10, alpha=0.02)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay),
                  loss=keras.losses.CTC())
    history, best, best_score = [], None, -1.0
    reader = with_probabilities(model)  # the same weights, read as the product reads them
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        order = rng.permutation(len(train_x))[:per_epoch]
        losses = []
        for s in range(steps):
            idx = order[s * recipe.batch_size:(s + 1) * recipe.batch_size]
            xb = augment(train_x[idx], train_w[idx], recipe, rng)[..., None]
            losses.append(float(model.train_on_batch(xb, y_all[idx])))
            if progress:
                progress(epoch, s, steps, losses[-1])
            elif s % 200 == 0:
                log.info("string reader epoch %d, step %d/%d: loss %.3f", epoch + 1, s, steps, np.mean(losses[-50:]))
            if max_seconds and time.perf_counter() - t0 > max_seconds:
                break
        scores = {name: exact(read_texts(reader, vx), vy) for name, (vx, vy) in val.items()}
        score = float(np.mean(list(scores.values())))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), **scores,
                        "seconds": round(time.perf_counter() - t0, 1)})
        log.info("string reader epoch %d: loss %.3f, %s (%.0f s)", epoch + 1, np.mean(losses),
                 ", ".join(f"{k} {v:.2%}" for k, v in scores.items()), time.perf_counter() - t0)
        if score > best_score:
            best, best_score = [w.copy() for w in model.get_weights()], score
        if max_seconds and time.perf_counter() - t0 > max_seconds:
            log.info("string reader: time budget reached after %d epochs", epoch + 1)
            break
    if best is not None:
        model.set_weights(best)
    return model, history


# ------------------------------------------------------------------------------------------ the whole run
STRING_METRICS = "string.metrics.json"  # beside string.keras/.onnx: its validation figures (the digit models' are
                                        # in metrics.json, whose entries choose the canvas's default model)


def with_probabilities(model):
    """The trained logits model with a softmax on top (same weights): the form that is saved and exported."""
    import keras

    out = keras.layers.Softmax(name="probabilities")(model.output)
    return keras.Model(model.input, out, name=model.name)


def run(build_model, paper_dir, handwriting_dir, models_dir, run_dir, recipe: StringRecipe = StringRecipe(),
        max_seconds: float | None = None, warm_start: bool = True, replace: bool = False, mnist=None,
        seed: int = 0) -> dict:
    """Build the strips, train `build_model(**STRING_ARCH)` (from the shipped weights when there are some; from
    the first of its readers when the shipped one is joined), export, and promote into `models_dir` only when the
    paired test says this run reads validation better than the shipped one.
    `mnist`: (x_train, y_train) to compose MNIST numbers from as well (study/paper_mnist.py). `seed` sets the
    first weights and the order and augmentation of the strips.
    Returns the run's figures. (The builder is passed in: the study does not import the builders.)"""
    import keras

    from common.names import STRING_MODEL, model_file

    x, w, y, val = _strips(paper_dir, handwriting_dir, mnist)
    keras.utils.set_random_seed(seed)
    model = build_model(**STRING_ARCH)
    shipped = Path(models_dir) / model_file(STRING_MODEL)
    if warm_start and shipped.is_file():
        readers = members(keras.saving.load_model(shipped, compile=False))
        model.set_weights(readers[0].get_weights())
        log.info("string reader: fine-tuning the shipped weights (%s%s)", shipped,
                 f", the first of its {len(readers)} joined readers" if len(readers) > 1 else "")
    model, history = train(model, x, w, y, val, recipe, seed=seed, max_seconds=max_seconds)
    figures = {"history": history, "train_strips": len(y), "seed": seed,
               "recipe": vars(recipe) if hasattr(recipe, "__dict__") else str(recipe)}
    return _save_and_promote(with_probabilities(model), val, figures, models_dir, run_dir, replace)


def join_run(join, readers, paper_dir, handwriting_dir, models_dir, run_dir, replace: bool = False) -> dict:
    """Join trained readers (.keras files, or folders holding string.keras) into one model that runs them all
    (`join`: string_reader.model.join, passed in like the builder; the decoder reads the string they find
    likeliest together), and promote it like a trained one: by the paired test on the validation strips."""
    from common.names import STRING_MODEL, model_file

    paths = [Path(r) / model_file(STRING_MODEL) if Path(r).is_dir() else Path(r) for r in readers]
    if missing := [str(p) for p in paths if not p.is_file()]:
        raise FileNotFoundError(f"no string reader at {', '.join(missing)}")
    joined = join([_load_reader(p) for p in paths])
    val = _validation(_strip_cache(paper_dir, handwriting_dir))
    return _save_and_promote(joined, val, {"joined": [_provenance(p) for p in paths]}, models_dir, run_dir, replace)


def _load_reader(path: Path):
    """A trained reader from its .keras file; anything else is a ValueError that names the file."""
    import zipfile

    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable Keras string reader "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _provenance(path: Path) -> dict:
    """Where a joined reader came from: its file, and its own run's seed, recipe and figures where they lie
    beside it."""
    import json

    try:
        own = json.loads((path.parent / STRING_METRICS).read_text())
    except (OSError, ValueError):
        own = {}
    return {"file": str(path), **{k: own[k] for k in ("seed", "recipe", "validation", "joined") if k in own}}


def members(model) -> list:
    """The readers a joined reader runs (string_reader.model.join), or [model] for a single one."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.Model)] or [model]


def _strip_cache(paper_dir, handwriting_dir):
    """The strips of the paper data (study/paper_data.py), made once and cached; arrays load when read."""
    from study.paper_data import build

    return np.load(build(Path(paper_dir), Path(handwriting_dir)))


def _validation(cache) -> dict:
    """{source: (validation strips, labels)}: register pages and CVL writers that training never saw."""
    return {"registers": (cache["reg_val_x"], cache["reg_val_y"]), "composed": (cache["cvl_val_x"], cache["cvl_val_y"])}


def _strips(paper_dir, handwriting_dir, mnist):
    """(train x, widths, labels, {source: validation (x, labels)}) from the strip cache."""
    d = _strip_cache(paper_dir, handwriting_dir)
    parts = ("reg_train", "cvl_train")
    x = np.concatenate([d[f"{k}_x"] for k in parts])
    w = np.concatenate([d[f"{k}_w"] for k in parts])
    y = [str(v) for k in parts for v in d[f"{k}_y"]]
    if mnist is not None:
        from study.paper_mnist import build_mnist

        m = np.load(build_mnist(*mnist))
        x, w, y = np.concatenate([x, m["x"]]), np.concatenate([w, m["w"]]), y + [str(v) for v in m["y"]]
    return x, w, y, _validation(d)


def _save_and_promote(final, val: dict, figures: dict, models_dir, run_dir, replace: bool) -> dict:
    """Save `final` (the reader with its softmax) and its ONNX twin into the run's folder with its validation
    figures, and copy them into `models_dir` when there is no reader there, when asked (`replace`), or when the
    paired test against the shipped one says so."""
    import json
    import shutil

    import keras

    from common.atomic import atomic_path
    from common.names import STRING_MODEL, model_file, onnx_file
    from study.export import export_string_onnx

    models_dir, run_dir = Path(models_dir), Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    scores = {name: exact(read_texts(final, vx), vy) for name, (vx, vy) in val.items()}
    score = float(np.mean(list(scores.values())))
    keras_path = run_dir / model_file(STRING_MODEL)
    with atomic_path(keras_path) as tmp:
        final.save(tmp)
    export_string_onnx(keras_path, run_dir / onnx_file(STRING_MODEL), model=final)
    figures = {"validation": scores, "validation_score": round(score, 4), **figures}
    shipped = models_dir / model_file(STRING_MODEL)
    if shipped.is_file():
        figures["promotion"] = paired_decision(final, keras.saving.load_model(shipped, compile=False), val)
        log.info("string reader against the shipped one: %s", figures["promotion"]["reason"])
    (run_dir / STRING_METRICS).write_text(json.dumps(figures, indent=1) + "\n")
    figures["promoted"] = replace or not shipped.is_file() or figures["promotion"]["promote"]
    log.info("string reader: validation %s: %s", f"{score:.2%}", "promoted" if figures["promoted"] else "kept")
    if figures["promoted"]:
        for name in (model_file(STRING_MODEL), onnx_file(STRING_MODEL), STRING_METRICS):
            with atomic_path(models_dir / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)
    return figures


def paired_decision(candidate, shipped, val: dict) -> dict:
    """Promotion by evidence, as for the digit models (study/paired_test.py): both readers read the same validation
    strips; the candidate must read more of them exactly beyond noise, and no source (registers, composed numbers)
    be significantly worse (Bonferroni over the sources)."""
    from study.paired_test import ALPHA, decide_right

    c_right, s_right, sources = [], [], []
    for name, (vx, vy) in val.items():
        labels = [str(v) for v in vy]
        c_right += [t == y for t, y in zip(read_texts(candidate, vx), labels)]
        s_right += [t == y for t, y in zip(read_texts(shipped, vx), labels)]
        sources += [name] * len(labels)
    return decide_right(c_right, s_right, sources, list(val), ALPHA / len(val), what="numbers", group="source")


# the architecture the shipped string reader has (string_reader/model.py's knobs; a change retrains from scratch)
STRING_ARCH = {"filters": (16, 32, 48, 64, 64), "context_units": 128}
