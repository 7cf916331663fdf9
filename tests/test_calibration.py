"""Calibration: the fit (study/calibration.py), the file beside the models, and the reading side applying it
(recognizer/calibration.py through ModelStore.predict): probabilities change as the temperature says, the argmax
never; an entry for another .keras file is ignored with one log line; the '?' threshold acts on what is shown."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from common.checksum import file_sha256
from recognizer import ModelStore, Recognizer
from recognizer.calibration import Calibration, apply_temperature
from recognizer.models import LoadedModel
from study import calibration as cal

NAMES = ("ann", "cnn", "vgg16")


def overconfident(n: int = 4000, seed: int = 0, sharpness: float = 3.0):
    """(probabilities, labels): a 'model' right ~80% of the time that says ~99% every time (logits too sharp)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    logits = rng.normal(0, 1, (n, 10))
    logits[np.arange(n), y] += 1.8  # right about 80% of the time
    z = logits * sharpness
    p = np.exp(z - z.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(np.float32), y


def fake_models(folder, temps=None, tamper=()):
    """Stand-in .keras files (any bytes: only their checksums matter here) and a calibration.json for them."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in NAMES:
        (folder / f"{n}.keras").write_bytes(f"model {n}".encode())
    temps = temps or {"ann": 2.0, "cnn": 0.5, "vgg16": 1.5, "ensemble": 0.8}
    sha = {n: file_sha256(folder / f"{n}.keras") for n in NAMES}
    data = {n: {"temperature": temps[n], "keras_sha256": sha[n], "ece_before": 0.1, "ece_after": 0.01,
                "nll_before": 1.0, "nll_after": 0.9, "n": 100} for n in NAMES}
    data["ensemble"] = {"temperature": temps["ensemble"], "members": sha, "n": 100}
    (folder / "calibration.json").write_text(json.dumps(data))
    for n in tamper:  # retrained since the fit
        (folder / f"{n}.keras").write_bytes(b"another model")
    return folder


RAW = {n: np.array([[0.70, 0.20, 0.10] + [0.0] * 7, [0.05, 0.05, 0.40] + [0.5 / 7] * 7], np.float32)
       for n in NAMES}
RAW["cnn"] = np.array([[0.50, 0.30, 0.20] + [0.0] * 7, [0.10, 0.10, 0.30] + [0.5 / 7] * 7], np.float32)


def fake_store(folder, calibrated=True) -> ModelStore:
    """A ModelStore whose base models answer RAW (no ONNX Runtime or Keras needed)."""
    store = ModelStore(folder, calibrated=calibrated)

    def load_file(name):
        return LoadedModel(name, folder / f"{name}.keras", "onnx", lambda b, n=name: np.repeat(
            RAW[n][:1], len(b), 0) if len(b) != 2 else RAW[n], None)

    store._load_file = load_file
    return store


# ------------------------------------------------------------------------------------------ the fit
def test_temperature_fit_lowers_ece_and_nll_and_keeps_the_argmax():
    p, y = overconfident()
    t = cal.fit_temperature(p, y)
    q = apply_temperature(p, t)
    assert t > 1.5  # too sharp: softened
    assert cal.ece(q, y) < 0.02 < cal.ece(p, y)
    assert cal.nll(q, y) < cal.nll(p, y)
    assert (q.argmax(1) == p.argmax(1)).all() and np.allclose(q.sum(1), 1, atol=1e-5)
    # an underconfident model is sharpened
    soft = apply_temperature(p, 6.0)
    assert cal.fit_temperature(soft, y) < 0.5


def test_calibrate_ties_each_entry_to_its_keras_file_and_fits_the_ensemble_on_calibrated_members(tmp_path):
    folder = fake_models(tmp_path / "m")
    y = overconfident(seed=0)[1]
    probs = {n: overconfident(seed=0, sharpness=2.0 + i)[0] for i, n in enumerate(NAMES)}
    out = cal.calibrate(probs, y, folder, val_checksum="abc")
    for n in NAMES:
        assert out[n]["keras_sha256"] == file_sha256(folder / f"{n}.keras")
        assert out[n]["ece_after"] < out[n]["ece_before"] and out[n]["n"] == len(y)
    mean = np.mean([apply_temperature(probs[n], out[n]["temperature"]) for n in NAMES], axis=0)
    assert out["ensemble"]["temperature"] == pytest.approx(cal.fit_temperature(mean, y), rel=1e-3)
    assert out["ensemble"]["members"] == {n: out[n]["keras_sha256"] for n in NAMES}
    path = cal.write(folder, out, keep_others=False)
    stored = json.loads(path.read_text())
    assert stored["cnn"]["temperature"] == out["cnn"]["temperature"] and set(stored) == {*NAMES, "ensemble"}
    assert not list(folder.glob(".calibration*"))  # atomic: no temporary left behind


# ------------------------------------------------------------------------------------------ applied
def test_store_applies_the_stored_temperatures(tmp_path):
    folder = fake_models(tmp_path / "m")
    store, raw = fake_store(folder), fake_store(folder, calibrated=False)
    x = np.zeros((2, 28, 28, 1), np.float32)
    for n, t in (("ann", 2.0), ("cnn", 0.5), ("vgg16", 1.5)):
        got, plain = store.predict(n, x), raw.predict(n, x)
        assert np.allclose(plain, RAW[n], atol=1e-6)
        assert np.allclose(got, apply_temperature(RAW[n], t), atol=1e-6)
        assert (got.argmax(1) == plain.argmax(1)).all()
        # T > 1 softens the top probability, T < 1 sharpens it
        assert (got.max(1) < plain.max(1)).all() if t > 1 else (got.max(1) > plain.max(1)).all()
    members = np.mean([apply_temperature(RAW[n], t) for n, t in (("ann", 2.0), ("cnn", 0.5), ("vgg16", 1.5))], 0)
    assert np.allclose(store.predict("ensemble", x), apply_temperature(members, 0.8), atol=1e-6)
    assert np.allclose(raw.predict("ensemble", x), np.mean([RAW[n] for n in NAMES], 0), atol=1e-6)


def test_an_entry_for_another_keras_file_is_ignored_with_one_log_line(tmp_path, caplog):
    folder = fake_models(tmp_path / "m", tamper=("cnn",))
    caplog.set_level(logging.INFO, logger="recognizer.calibration")
    store = fake_store(folder)
    x = np.zeros((2, 28, 28, 1), np.float32)
    for _ in range(3):
        assert np.allclose(store.predict("cnn", x), RAW["cnn"], atol=1e-6)  # uncalibrated
        assert np.allclose(store.predict("ann", x), apply_temperature(RAW["ann"], 2.0), atol=1e-6)  # still valid
        ens = store.predict("ensemble", x)  # its members changed: no ensemble temperature either
    members = np.mean([apply_temperature(RAW["ann"], 2.0), RAW["cnn"], apply_temperature(RAW["vgg16"], 1.5)], 0)
    assert np.allclose(ens, members, atol=1e-6)
    lines = [r.getMessage() for r in caplog.records if r.name == "recognizer.calibration"]
    assert len([m for m in lines if "cnn temperature" in m]) == 1, lines
    assert len([m for m in lines if "ensemble temperature" in m]) == 1, lines
    assert "scripts/calibrate.py" in lines[0]


def test_no_file_or_a_broken_file_reads_uncalibrated(tmp_path, caplog):
    folder = fake_models(tmp_path / "m")
    (folder / "calibration.json").unlink()
    assert Calibration(folder).temperature("cnn") == 1.0
    (folder / "calibration.json").write_text("{not json")
    caplog.set_level(logging.WARNING, logger="recognizer.calibration")
    assert Calibration(folder).temperature("cnn") == 1.0
    assert "unreadable" in caplog.text


def test_the_question_mark_threshold_acts_on_calibrated_confidence(tmp_path):
    """cnn's raw top probability 0.50 is sharpened by T = 0.5 to ~0.66: a threshold of 0.6 hides the raw
    reading behind '?' but shows the calibrated one."""
    folder = fake_models(tmp_path / "m")
    rec = Recognizer(fake_store(folder), threshold=0.6)
    raw = Recognizer(fake_store(folder, calibrated=False), threshold=0.6)
    canvas = np.full((200, 200), 255, np.uint8)
    canvas[40:160, 95:105] = 0  # one stroke: one digit
    got, plain = rec.read(canvas, "cnn"), raw.read(canvas, "cnn")
    assert len(got.digits) == len(plain.digits) == 1
    assert plain.digits[0].confidence == pytest.approx(0.5, abs=1e-6) and plain.text == "?"
    want = float(apply_temperature(RAW["cnn"][:1], 0.5).max())
    assert got.digits[0].confidence == pytest.approx(want, abs=1e-6) and got.text == "0"
