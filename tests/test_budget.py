"""Time budget: measured costs and the epoch plan that fits a whole run into the budget."""

import json

import pytest

import train_all
from study import budget, training
from study.budget import Cost
from study.training import Recipe
from mnist_fakes import fake_arrays, write_npz


@pytest.fixture(scope="module")
def fake_npz(tmp_path_factory):
    return write_npz(tmp_path_factory.mktemp("fake") / "mnist.npz", fake_arrays(n_test=400))


def _cost(epoch_seconds: float, n_train=1000, n_val=200, n_test=100) -> Cost:
    per_image = epoch_seconds / (n_train + budget.EVAL_FACTOR * n_val)
    return Cost(per_image, n_train, n_val, n_test)


RECIPES = {
    "ann": Recipe(epochs=24, min_epochs=12),
    "cnn": Recipe(epochs=24, min_epochs=12, max_seconds=285),
    "vgg16": Recipe(epochs=8, min_epochs=3),
}


def test_cost_counts_training_validation_and_evaluation():
    c = Cost(seconds_per_image=0.002, n_train=48000, n_val=12000, n_test=10000)
    assert c.epoch_seconds == pytest.approx(0.002 * (48000 + 6000))  # 108 s
    assert c.fixed_seconds == pytest.approx(0.002 * 5000 + budget.FIXED_SECONDS)


def test_ample_budget_keeps_every_recipe_as_it_is():
    costs = {"ann": _cost(4), "cnn": _cost(9), "vgg16": _cost(180)}
    plan, seconds = budget.plan_epochs(RECIPES, costs, seconds_left=3600)
    assert plan == {"ann": 24, "cnn": 24, "vgg16": 8}
    assert seconds == pytest.approx(24 * 4 + 24 * 9 + 8 * 180 + sum(c.fixed_seconds for c in costs.values()))


def test_tight_budget_shortens_the_costliest_model_first():
    costs = {"ann": _cost(4), "cnn": _cost(9), "vgg16": _cost(180)}
    fixed = sum(c.fixed_seconds for c in costs.values())
    # 1800 s x 0.95 = 1710 s: ann 96 + cnn 216 + fixed leave room for 7 VGG16 epochs (1260 s), not 8
    plan, seconds = budget.plan_epochs(RECIPES, costs, seconds_left=1800)
    assert plan == {"ann": 24, "cnn": 24, "vgg16": 7}
    assert seconds == pytest.approx(96 + 216 + 7 * 180 + fixed) and seconds <= 1800 * budget.SAFETY
    # a machine half as fast: VGG16 goes down to its floor before the small models lose anything
    slow = {n: _cost(2 * c.epoch_seconds) for n, c in costs.items()}
    plan, _ = budget.plan_epochs(RECIPES, slow, seconds_left=1800)
    assert plan["vgg16"] == 3 and plan["ann"] == 24 and plan["cnn"] == 15  # CNN capped at 285 s: 285 // 18


def test_max_seconds_caps_a_model_even_with_time_to_spare():
    plan, _ = budget.plan_epochs({"cnn": RECIPES["cnn"]}, {"cnn": _cost(20)}, seconds_left=10_000)
    assert plan == {"cnn": 14}  # 285 // 20


def test_floors_hold_when_nothing_fits():
    costs = {"ann": _cost(40), "cnn": _cost(90), "vgg16": _cost(1800)}
    plan, seconds = budget.plan_epochs(RECIPES, costs, seconds_left=600)
    assert plan == {"ann": 12, "cnn": 3, "vgg16": 3}  # cnn: 285 // 90 = 3 is its cap, below the floor
    assert seconds > 600  # the caller warns that the budget cannot hold
    unshrinkable = {"ann": Recipe(epochs=5)}
    assert budget.plan_epochs(unshrinkable, {"ann": _cost(100)}, 10)[0] == {"ann": 5}


def test_step_seconds_times_real_fit_steps():
    import keras
    import numpy as np
    import tensorflow as tf

    small = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    big = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1024), keras.layers.Dense(1024),
                            keras.layers.Dense(4)])
    x = np.random.default_rng(0).random((64 * 12, 8), dtype=np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros((len(x), 4), np.float32))).batch(64)
    times = {}
    for name, model in (("small", small), ("big", big)):
        model.compile(optimizer="sgd", loss="mse")
        times[name] = budget.step_seconds(model, ds, steps=8)
    assert 0 < times["small"] < times["big"] < 5  # a million-parameter step costs more than a 36-parameter one
    with pytest.raises(ValueError, match="steps must be >= 2"):
        budget.step_seconds(small, ds, steps=1)


def test_train_all_plans_within_the_budget_and_records_it(tmp_path, fake_npz, caplog):
    out_m = tmp_path / "m"
    argv = ["--models", "ann", "--limit", "400", "--data", str(fake_npz), "--models-dir", str(out_m),
            "--plots-dir", str(tmp_path / "p"), "-q"]
    assert train_all.main([*argv, "--budget-minutes", "0.05"]) == 0  # 3 s: only the floor fits
    metrics = json.loads((out_m / "metrics.json").read_text())
    floor = training.PRESETS["best"]["ann"].min_epochs
    assert metrics["budget"]["planned_epochs"] == {"ann": floor} and metrics["models"]["ann"]["epochs"] == floor
    assert metrics["budget"]["allotted_seconds"] == {"ann": 0.0}  # nothing left: the floor, however long it takes
    assert metrics["budget"]["minutes"] == 0.05 and metrics["budget"]["epoch_seconds"]["ann"] > 0
    assert "over the 0.05-minute budget" in caplog.text
    # --epochs is the user's own choice: no budget then
    assert train_all.main([*argv, "--epochs", "2"]) == 0
    metrics = json.loads((out_m / "metrics.json").read_text())
    assert metrics["budget"] is None and metrics["models"]["ann"]["epochs"] == 2


def test_budget_flag_is_checked_and_defaults_follow_the_preset():
    assert train_all.parse_args([]).budget_minutes == train_all.BUDGET_MINUTES
    assert train_all.parse_args(["--preset", "seed"]).budget_minutes == 0
    assert train_all.parse_args(["--epochs", "3"]).budget_minutes == 0
    assert train_all.parse_args(["--budget-minutes", "12"]).budget_minutes == 12
    with pytest.raises(SystemExit):
        train_all.parse_args(["--budget-minutes", "-1"])


def test_onecycle_matches_keras_cosine_decay_and_can_end_earlier():
    import keras

    from study.onecycle import OneCycle

    ours = OneCycle(2e-3, total_steps=1000, warmup_steps=100, alpha=1e-3)
    keras_own = keras.optimizers.schedules.CosineDecay(2e-3 / 25, decay_steps=900, warmup_target=2e-3,
                                                       warmup_steps=100, alpha=1e-3)
    for step in (0, 1, 50, 99, 100, 101, 400, 777, 999, 1000, 1500):
        assert float(ours(step)) == pytest.approx(float(keras_own(step)), rel=1e-4, abs=1e-9), step
    ours.set_total_steps(600)  # re-planned: the decay now ends at step 600
    assert float(ours(600)) == pytest.approx(2e-6, rel=1e-3) and float(ours(350)) == pytest.approx(1e-3, rel=1e-2)
    assert float(ours(50)) == pytest.approx(float(keras_own(50)), rel=1e-4)  # the warm-up is not moved
    ours.set_total_steps(10)  # never inside the warm-up
    assert float(ours.total_steps.numpy()) == 101
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        OneCycle(1e-3, total_steps=10, warmup_steps=10)


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _run(deadline, epoch_seconds, clock, max_epochs):
    """Drive a Deadline the way model.fit does, with epochs of the given durations; returns epochs run."""

    class Model:
        stop_training = False

    deadline.set_model(Model())
    deadline.on_train_begin()
    for epoch in range(max_epochs):
        clock.now += epoch_seconds(epoch)
        deadline.on_epoch_end(epoch)
        if deadline.model.stop_training:
            return epoch + 1
    return max_epochs


def test_deadline_shortens_a_slow_run_and_moves_the_schedule_end(monkeypatch):
    from study.onecycle import OneCycle

    clock = _Clock()
    monkeypatch.setattr(budget.time, "perf_counter", clock)
    schedule = OneCycle(1e-3, total_steps=8 * 50, warmup_steps=40)
    d = budget.Deadline(100, steps_per_epoch=50, planned=8, floor=3, ceiling=8, schedule=schedule)
    assert _run(d, lambda e: 20.0, clock, 8) == 5  # 20 s epochs: 5 fit in 100 s, not the planned 8
    assert float(schedule.total_steps.numpy()) == 5 * 50  # the one-cycle ends with the 5th epoch
    # never below the floor, even when the time is gone
    d = budget.Deadline(10, steps_per_epoch=50, planned=8, floor=3, ceiling=8, schedule=schedule)
    assert _run(d, lambda e: 20.0, clock, 8) == 3


def test_deadline_lengthens_only_early_and_never_past_the_ceiling(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(budget.time, "perf_counter", clock)
    fast = budget.Deadline(1000, steps_per_epoch=10, planned=4, floor=2, ceiling=6)
    assert _run(fast, lambda e: 10.0, clock, 6) == 6  # time for 100 epochs: the ceiling
    # the machine speeds up late (epoch 4 of 4 planned): no lengthening any more, the annealing is done
    late = budget.Deadline(100, steps_per_epoch=10, planned=4, floor=2, ceiling=8)
    assert _run(late, lambda e: 24.0 if e < 3 else 1.0, clock, 8) == 4
    with pytest.raises(ValueError, match="floor <= ceiling"):
        budget.Deadline(10, steps_per_epoch=1, planned=2, floor=5, ceiling=4)


def test_fit_follows_the_plan_and_the_deadline(fake_npz):
    from study.data import load

    data = load(str(fake_npz), limit=256)
    recipe = Recipe(epochs=4, min_epochs=1, batch_size=64, learning_rate=3e-3, schedule="onecycle")

    def epochs_run(**kw):
        model = train_all.build("ann", {"hidden_units": (32,)}, None)
        history, _ = training.fit(model, data, recipe, verbose=0, **kw)
        return len(history["val_accuracy"])

    assert epochs_run() == 4
    assert epochs_run(epochs=2) == 2  # a plan without a deadline is kept
    assert epochs_run(epochs=2, seconds=1e9) == 4  # time to spare: back up to the recipe's ceiling
    assert epochs_run(epochs=3, seconds=0) == 1  # no time: down to the floor
