"""Distillation (study/distill.py): the targets mix the smoothed labels with the teacher's rows, the teacher's
rows are cached and travel with their images through training, and train_all records the share."""

import json
from pathlib import Path

import numpy as np
import pytest

from study import augment, distill, fit
from study.recipes import Augment, Recipe


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from mnist_fakes import fake_arrays, write_npz
    from study.data import load

    return load(str(write_npz(tmp_path_factory.mktemp("fake") / "mnist.npz", fake_arrays(n_test=200))), limit=1000)


def test_targets_are_the_smoothed_labels_mixed_with_the_teacher():
    teacher = np.full((2, 10), 0.02, np.float32)
    teacher[0, 8] = teacher[1, 1] = 0.82  # the teacher reads the 0 as an 8 and the 7 as a 1
    t = distill.targets(np.array([0, 7]), teacher, alpha=0.5, smoothing=0.05)
    # label row: 0.955 on the label, 0.005 elsewhere; half of it plus half of the teacher's
    assert t[0, 0] == pytest.approx(0.5 * 0.955 + 0.5 * 0.02)
    assert t[0, 8] == pytest.approx(0.5 * 0.005 + 0.5 * 0.82)
    assert t[1, 7] == pytest.approx(0.5 * 0.955 + 0.5 * 0.02) and t[1, 1] == pytest.approx(0.5 * 0.005 + 0.41)
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
    assert t.dtype == np.float32
    # alpha 0: the smoothed one-hot rows, whatever the teacher says; alpha 1: the teacher alone
    np.testing.assert_allclose(distill.targets(np.array([3]), None, 0.0, 0.05)[0],
                               [0.005] * 3 + [0.955] + [0.005] * 6, atol=1e-7)
    np.testing.assert_allclose(distill.targets(np.array([0, 7]), teacher, 1.0, 0.05), teacher, atol=1e-7)
    with pytest.raises(ValueError, match="one teacher row per label"):
        distill.targets(np.array([0, 7, 1]), teacher, 0.5)


def test_labels_for_a_distilling_recipe_gives_the_mixed_rows_and_plain_rows_for_validation():
    recipe = Recipe(label_smoothing=0.1, distill=0.25)
    teacher = np.eye(10, dtype=np.float32)[[5]]
    np.testing.assert_allclose(augment.labels_for(recipe, np.array([2]), teacher)[0, [2, 5]],
                               [0.75 * 0.91, 0.75 * 0.01 + 0.25], atol=1e-7)
    np.testing.assert_allclose(augment.labels_for(recipe, np.array([2]))[0, [2, 5]], [0.91, 0.01], atol=1e-7)


def test_training_follows_the_teachers_rows_through_the_augmented_views(tiny_data, monkeypatch):
    """A teacher that calls every digit k 'k+1': trained on its rows alone (alpha 1), through the augmentation
    and the (image, redrawn copy) pairs, the model reads k as k+1; with alpha 0 the same data train towards the
    labels."""
    from dataclasses import replace

    from cnn import build_model

    wrong = np.eye(10, dtype=np.float32)[(tiny_data.train.y.astype(int) + 1) % 10]
    data = replace(tiny_data, teacher=wrong)
    aug = Augment(rotation_deg=5, shift_px=1, zoom=0.05, thickness=0.2, redraw=0.5)
    monkeypatch.setattr(augment, "redrawn", lambda x, rows=None: np.roll(x, 1, axis=2))  # the fake digits' "redraw"

    def trained(alpha):
        recipe = Recipe(epochs=3, batch_size=32, learning_rate=3e-3, label_smoothing=0.05, distill=alpha, augment=aug)
        import keras

        keras.utils.set_random_seed(0)
        model = build_model(filters=(4, 8, 8), dense_units=16)
        fit.fit(model, data, recipe, verbose=0)
        return model.predict(tiny_data.test.x, verbose=0).argmax(1)

    taught = trained(1.0)
    # measured 0.995 alone, 0.775 once in the whole suite on a loaded machine (3 epochs of a tiny model); a model
    # that ignored the teacher would read the labels instead (< 0.1 here, > 0.8 below)
    assert np.mean(taught == (tiny_data.test.y.astype(int) + 1) % 10) > 0.6
    assert np.mean(taught == tiny_data.test.y) < 0.1
    assert np.mean(trained(0.0) == tiny_data.test.y) > 0.8


def test_a_distilling_recipe_without_teacher_rows_is_refused(tiny_data):
    with pytest.raises(ValueError, match="no teacher rows"):
        augment.datasets(tiny_data, Recipe(distill=0.5), seed=0)


def test_teacher_rows_are_the_calibrated_ensemble_and_are_cached(tmp_path, monkeypatch):
    from recognizer import ModelStore

    models = Path(__file__).resolve().parents[1] / "models"
    rng = np.random.default_rng(0)
    x = rng.random((20, 28, 28, 1), dtype=np.float32) * (rng.random((20, 28, 28, 1)) > 0.8)
    monkeypatch.setattr(distill, "BLOCK_ROWS", 8)  # three blocks: 8, 8, 4
    rows = distill.teacher_probabilities(x, models, cache=tmp_path)
    np.testing.assert_allclose(rows, ModelStore(models).predict("ensemble", x), atol=1e-6)
    assert len(list(tmp_path.glob("*.npy"))) == 3
    calls = []
    monkeypatch.setattr(ModelStore, "predict", lambda self, name, batch: calls.append(len(batch)) or
                        np.zeros((len(batch), 10), np.float32))
    np.testing.assert_array_equal(distill.teacher_probabilities(x, models, cache=tmp_path), rows)
    assert calls == []  # every block came from the cache
    x2 = x.copy()
    x2[17] = 0.0  # one image changed: only its block is read again
    again = distill.teacher_probabilities(x2, models, cache=tmp_path)
    assert calls == [4] and not again[16:].any() and np.array_equal(again[:16], rows[:16])


def test_a_teacher_folder_without_the_three_models_is_a_clear_error(tmp_path):
    with pytest.raises(distill.DistillError, match="no ann.keras"):
        distill.teacher_key(tmp_path)


def test_train_all_distills_and_records_the_share(tmp_path, monkeypatch, without_exports):
    """train_all --distill on fake data: the teacher's rows reach the recipe's training, the share is in
    metrics.json and in the model's report; a teacher folder without models is one clear error line (rc 2)."""
    import train_all
    from mnist_fakes import fake_arrays, write_npz

    npz = write_npz(tmp_path / "mnist.npz", fake_arrays(n_test=200))
    seen = {}

    def fake_teacher(data, folder, cache=None):
        from dataclasses import replace

        seen["folder"] = folder
        return replace(data, teacher=np.full((len(data.train), 10), 0.1, np.float32))

    monkeypatch.setattr(distill, "with_teacher", fake_teacher)
    common = ["--preset", "seed", "--limit", "200", "--data", str(npz), "--models", "ann", "--epochs", "1",
              "--plots-dir", str(tmp_path / "p"), "--quiet"]
    rc = train_all.main([*common, "--distill", "0.5", "--models-dir", str(tmp_path / "m"),
                         "--run-dir", str(tmp_path / "run")])
    assert rc == 0 and seen["folder"] == tmp_path / "m"
    metrics = json.loads((tmp_path / "run" / "models" / "metrics.json").read_text())
    assert metrics["distill"] == {"alpha": 0.5, "teacher": str(tmp_path / "m")}
    assert metrics["models"]["ann"]["distill"] == 0.5 and metrics["models"]["ann"]["recipe"]["distill"] == 0.5
    assert "50% of the targets" in (tmp_path / "run" / "plots" / "ann_report.txt").read_text()
    monkeypatch.undo()
    rc = train_all.main([*common, "--distill", "0.5", "--models-dir", str(tmp_path / "empty"),
                         "--run-dir", str(tmp_path / "run2")])
    assert rc == 2
