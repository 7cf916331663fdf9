"""The string reader's training and export on a few strips made here: CTC learns, the kept epoch is the best
validation one, the ONNX twin reads any width like Keras, and train_all's `--models string` says what it needs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recognizer.paper import STRIP_HEIGHT
from recognizer.string_reader import text_of


def strips(n: int, seed: int = 0):
    """Strips of 1-3 'digits' that are bars of different heights (a digit's class = its bar height)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, STRIP_HEIGHT, 64), np.float16)
    labels, widths = [], []
    for i in range(n):
        k = int(rng.integers(1, 4))
        label = "".join(str(int(d)) for d in rng.integers(0, 3, k))
        col = 4
        for c in label:
            top = 4 + 8 * int(c)
            x[i, top:28, col:col + 6] = 1.0
            col += 16
        labels.append(label)
        widths.append(col)
    return x, np.array(widths), labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from string_reader.model import build_model
    from study.string_training import StringRecipe, train

    import keras

    keras.utils.set_random_seed(0)  # the same start on every machine: a few hundred steps must learn the bars
    x, w, y = strips(384)
    vx, _, vy = strips(64, seed=1)
    model = build_model(filters=(16, 16, 16, 16, 16), context_units=32, dropout=0.0)
    # 5 epochs (60 steps), measured: loss 10.8, 0.98, 0.045, 0.005, 0.003; validation 0.0, 0.17, 0.38, 0.0, 0.0: the
    # loss falls far under half and the best epoch is not the last (8 epochs took 12.3 s, not 7.9, and only overfit)
    model, history = train(model, x, w, y, {"bars": (vx, vy)},
                           StringRecipe(epochs=5, per_epoch=0, batch_size=32, learning_rate=1e-2, shift=False, gain=0.0))
    return model, history


def test_ctc_training_lowers_the_loss_and_keeps_the_best_epoch(trained):
    """What it reaches on real strips is bench_paper's business (RESULTS "Paper"); a few hundred steps on bars
    must halve the CTC loss, and the weights kept must be those of the best validation epoch, not the last."""
    model, history = trained
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    best = max(h["bars"] for h in history)
    from study.string_training import exact, read_texts, with_probabilities

    vx, _, vy = strips(64, seed=1)
    assert exact(read_texts(with_probabilities(model), vx), vy) == pytest.approx(best)


def test_texts_are_read_from_probabilities_and_logits_are_refused(trained):
    """Training's validation and the paired test decode as the product does, by beam search over probabilities:
    the logits model CTC trains is refused with what to pass instead (logits read as probabilities had picked
    the wrong epochs)."""
    from study.string_training import read_texts, with_probabilities

    model = trained[0]
    x, _, y = strips(16, seed=3)
    assert len(read_texts(with_probabilities(model), x)) == 16
    with pytest.raises(ValueError, match="with_probabilities"):
        read_texts(model, x)


def test_the_onnx_twin_reads_every_width_like_keras(trained, tmp_path):
    from study.export import export_string_onnx
    from study.string_training import with_probabilities

    import onnxruntime as ort

    model = with_probabilities(trained[0])
    keras_path = tmp_path / "string.keras"
    model.save(keras_path)
    onnx_path = export_string_onnx(keras_path, model=model)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x, _, y = strips(8, seed=2)
    for width in (40, 64, 100):
        batch = np.zeros((8, STRIP_HEIGHT, width, 1), np.float32)
        batch[:, :, :min(64, width), 0] = x[:, :, :min(64, width)]
        got = session.run(None, {session.get_inputs()[0].name: batch})[0]
        assert got.shape == (8, width // 4, 11)
        np.testing.assert_allclose(got, np.asarray(model(batch, training=False)), atol=1e-4)
    assert [text_of(f) for f in got] == [text_of(f) for f in np.asarray(model(batch, training=False))]


def test_joined_readers_give_each_readers_frames_in_one_onnx_twin(trained, tmp_path):
    """Readers trained from other seeds run in one model (string_reader.model.join): its frames are each reader's,
    side by side, a joined reader joins by its readers, and its one ONNX twin reads like Keras."""
    import keras
    import onnxruntime as ort

    from string_reader.model import build_model, join
    from study.export import export_string_onnx
    from study.string_training import members, with_probabilities

    first = with_probabilities(trained[0])
    keras.utils.set_random_seed(1)
    second = build_model(filters=(16, 16, 16, 16, 16), context_units=32, probabilities=True)
    x, _, _ = strips(8, seed=4)
    batch = x[..., None].astype(np.float32)
    want = np.stack([np.asarray(first(batch)), np.asarray(second(batch))], axis=2)
    joined = join([first, second])
    np.testing.assert_allclose(np.asarray(joined(batch)), want, atol=1e-6)
    assert len(members(join([joined, build_model(filters=(16,) * 5, context_units=32, probabilities=True)]))) == 3
    with pytest.raises(ValueError, match="two or more"):
        join([first])
    keras_path = tmp_path / "string.keras"
    joined.save(keras_path)
    loaded = keras.saving.load_model(keras_path, compile=False)
    onnx_path = export_string_onnx(keras_path, model=loaded)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: batch})[0], want, atol=1e-5)


def test_train_all_joins_readers_into_one_and_promotes_it_by_the_paired_test(trained, tmp_path, monkeypatch,
                                                                             caplog):
    import study.string_training as st
    import train_all

    vx, _, vy = strips(64, seed=1)
    monkeypatch.setattr(st, "_strip_cache", lambda *a: None)
    monkeypatch.setattr(st, "_validation", lambda cache: {"bars": (vx, vy)})
    (tmp_path / "registers-rowid.tar").write_bytes(b"")
    reader = st.with_probabilities(trained[0])
    for name in ("a", "b", "models"):
        (tmp_path / name).mkdir()
        reader.save(tmp_path / name / "string.keras")
    common = ["--models", "string", "--paper", str(tmp_path), "--handwriting", str(tmp_path),
              "--models-dir", str(tmp_path / "models"), "--run-dir", str(tmp_path / "run")]
    before = (tmp_path / "models" / "string.keras").read_bytes()
    assert train_all.main(common + ["--join", str(tmp_path / "a"), str(tmp_path / "b" / "string.keras")]) == 0
    figures = json.loads((tmp_path / "run" / "models" / "string.metrics.json").read_text())
    assert len(figures["joined"]) == 2 and (tmp_path / "run" / "models" / "string.onnx").is_file()
    assert figures["joined"][0]["file"] == str(tmp_path / "a" / "string.keras")
    # the same reader twice reads exactly as the shipped one: no evidence, nothing replaced
    assert figures["promotion"]["promote"] is False
    assert (tmp_path / "models" / "string.keras").read_bytes() == before
    assert train_all.main(common + ["--join", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    (tmp_path / "bad.keras").write_text("not a model")
    assert train_all.main(common + ["--join", str(tmp_path / "a"), str(tmp_path / "bad.keras")]) == 2
    assert "bad.keras is not a readable Keras string reader" in caplog.text
    with pytest.raises(SystemExit):
        train_all.main(["--models", "cnn", "--join", str(tmp_path / "a"), str(tmp_path / "b")])


def test_training_over_a_joined_shipped_reader_starts_from_its_first_reader(trained, tmp_path, monkeypatch):
    """`train_all.py --models string` after a join: the run fine-tunes the joined reader's first reader (the same
    architecture); saving and the paired test against the joined one are the --join test's."""
    import study.string_training as st
    from string_reader.model import build_model, join

    x, w, y = strips(64)
    vx, _, vy = strips(64, seed=1)
    monkeypatch.setattr(st, "_strips", lambda *a, **k: (x, w, y, {"bars": (vx, vy)}))
    monkeypatch.setattr(st, "STRING_ARCH", {"filters": (16,) * 5, "context_units": 32, "dropout": 0.0})
    monkeypatch.setattr(st, "_save_and_promote", lambda final, val, figures, *a: figures)
    first = st.with_probabilities(trained[0])
    (tmp_path / "models").mkdir()
    join([first, build_model(filters=(16,) * 5, context_units=32, probabilities=True)]).save(
        tmp_path / "models" / "string.keras")
    figures = st.run(build_model, tmp_path, tmp_path, tmp_path / "models", tmp_path / "run",
                     st.StringRecipe(epochs=1, per_epoch=0, batch_size=32, learning_rate=1e-4, shift=False, gain=0.0))
    # it started from the trained reader (0.38 of these strips), not from scratch (nothing after two steps)
    assert figures["history"][0]["bars"] > 0.3


def test_train_all_string_needs_its_data(tmp_path, caplog):
    import train_all

    code = train_all.main(["--models", "string", "--paper", str(tmp_path), "--run-dir", str(tmp_path / "run"),
                           "--models-dir", str(tmp_path / "models")])
    assert code == 2
    assert "registers-rowid.tar" in caplog.text


def test_train_all_string_trains_with_the_seed_it_is_given(tmp_path, monkeypatch):
    """`--seed` reaches the string reader's training (its first weights and its strips' order), as for the digit
    models: two runs that should differ, for an ensemble or a seed spread, were the same run."""
    import study.string_training
    import train_all

    (tmp_path / "registers-rowid.tar").write_bytes(b"")
    seen = {}

    def fake_run(*args, **kwargs):
        seen.update(kwargs)
        return {"validation": {}, "promoted": False}

    monkeypatch.setattr(study.string_training, "run", fake_run)
    code = train_all.main(["--models", "string", "--paper", str(tmp_path), "--handwriting", str(tmp_path),
                           "--seed", "3", "--run-dir", str(tmp_path / "run"), "--models-dir", str(tmp_path / "m")])
    assert code == 0 and seen["seed"] == 3


def test_composed_mnist_numbers_are_strips_with_their_digits_and_are_cached(tmp_path):
    """MNIST digits (light on dark) composed on made paper like the CVL numbers: strips with digit labels (and
    empty-label strips of the page's other marks), made once and then read from the cache."""
    import time

    from study.paper_mnist import build_mnist

    rng = np.random.default_rng(0)
    x = np.zeros((30, 28, 28), np.uint8)
    for i in range(30):  # a bar of ink, as MNIST draws it: white on black
        x[i, 4:24, 12:16] = 255
    y = rng.integers(0, 10, 30)
    path = build_mnist(x, y, cache=tmp_path, workers=1, n=12)
    d = np.load(path)
    labels = [str(v) for v in d["y"]]
    assert len(d["x"]) == len(d["w"]) == len(labels) >= 12
    assert sum(lab.isdigit() for lab in labels) >= 10 and all(lab == "" or lab.isdigit() for lab in labels)
    assert d["x"].max() > 0.5  # the strips hold the digits' ink
    stamp = path.stat().st_mtime
    time.sleep(0.01)
    assert build_mnist(x, y, cache=tmp_path, workers=1, n=12) == path and path.stat().st_mtime == stamp


class _Reader:
    """A stand-in reader: strip i (its first pixel holds i / 10,000) reads texts[i]; frames as CTC decodes them."""

    def __init__(self, texts):
        self.texts = texts

    def __call__(self, x, training=False):
        frames = np.zeros((len(x), 16, 11), np.float32)
        frames[:, :, 0] = 1.0
        for n, strip in enumerate(np.asarray(x)):
            for t, c in enumerate(self.texts[int(round(float(strip[0, 0, 0]) * 10_000))]):
                frames[n, 2 * t, 0], frames[n, 2 * t, int(c) + 1] = 0.0, 1.0
        return frames


def _val(sizes: dict):
    val, start = {}, 0
    for name, n in sizes.items():
        x = np.zeros((n, STRIP_HEIGHT, 8), np.float32)
        x[:, 0, 0] = (np.arange(start, start + n)) / 10_000
        val[name] = (x, ["12"] * n)
        start += n
    return val


def test_the_string_reader_is_promoted_by_a_paired_test_per_source():
    """As for the digit models: more numbers read exactly beyond noise, and no source significantly worse."""
    from study.string_training import paired_decision

    val = _val({"registers": 300, "composed": 100})
    right, wrong = "12", "17"
    shipped = _Reader([right] * 250 + [wrong] * 50 + [right] * 80 + [wrong] * 20)
    better = _Reader([right] * 290 + [wrong] * 10 + [right] * 78 + [wrong] * 22)  # +40 / -0 and +0 / -2
    d = paired_decision(better, shipped, val)
    assert d["promote"] and (d["better"], d["worse"]) == (40, 2) and d["blocking"] == []
    noise = _Reader([right] * 254 + [wrong] * 46 + [right] * 80 + [wrong] * 20)  # 4 numbers more: noise
    assert not paired_decision(noise, shipped, val)["promote"]
    # registers far better, composed numbers far worse: the source blocks (Bonferroni: 0.05 / 2 sources)
    trade = _Reader([right] * 300 + [right] * 60 + [wrong] * 40)
    d = paired_decision(trade, shipped, val)
    assert not d["promote"] and d["blocking"] == ["composed"] and "source composed significantly worse" in d["reason"]
