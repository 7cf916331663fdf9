"""No silent loss of shipped models: promotion only when better, --replace keeps the old one, --restore brings
it back, and an interrupted run leaves models/ whole and consistent."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import train_all
from study import promote

ROOT = Path(__file__).resolve().parents[1]


def _write_model(folder: Path, name: str, payload: bytes, val: float) -> None:
    """A stand-in model: bytes in the files, a metrics entry that records their checksum and val accuracy."""
    folder.mkdir(parents=True, exist_ok=True)
    keras_name, onnx_name, adapt_name = promote.model_files(name)
    (folder / keras_name).write_bytes(payload)
    (folder / onnx_name).write_bytes(payload + b"-onnx")
    (folder / adapt_name).write_bytes(payload + b"-adapt")
    metrics = promote.read_metrics(folder)
    metrics.setdefault("models", {})[name] = {"val_accuracy": val,
                                             "keras_sha256": promote.file_sha256(folder / keras_name)}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_promotion_installs_the_new_files_and_keeps_the_old_ones(tmp_path):
    shipped, run = tmp_path / "models", tmp_path / "run"
    _write_model(shipped, "cnn", b"old", 0.99)
    _write_model(shipped, "ann", b"ann", 0.98)
    _write_model(run, "cnn", b"new", 0.995)
    promote.promote("cnn", run, shipped, None)
    assert (shipped / "cnn.keras").read_bytes() == b"new" and (shipped / "cnn.onnx").read_bytes() == b"new-onnx"
    assert (shipped / "previous" / "cnn.keras").read_bytes() == b"old"
    assert promote.read_metrics(shipped)["models"]["cnn"]["val_accuracy"] == 0.995
    assert promote.read_metrics(shipped)["models"]["ann"]["val_accuracy"] == 0.98  # other entries untouched
    assert promote.read_metrics(shipped / "previous")["models"]["cnn"]["val_accuracy"] == 0.99
    assert promote.consistent(shipped) == [] and not (shipped / promote.INCOMING).exists()
    promote.restore("cnn", shipped)  # back to the old one; the new one waits in previous/
    assert (shipped / "cnn.keras").read_bytes() == b"old" and (shipped / "cnn.onnx").read_bytes() == b"old-onnx"
    assert (shipped / "previous" / "cnn.keras").read_bytes() == b"new"
    assert promote.read_metrics(shipped)["models"]["cnn"]["val_accuracy"] == 0.99
    assert promote.consistent(shipped) == []


def test_a_model_without_onnx_twin_does_not_keep_a_stale_twin(tmp_path):
    shipped, run = tmp_path / "models", tmp_path / "run"
    _write_model(shipped, "cnn", b"old", 0.99)
    _write_model(run, "cnn", b"new", 0.995)
    (run / "cnn.onnx").unlink()  # the export failed in this run
    promote.promote("cnn", run, shipped, None)
    assert not (shipped / "cnn.onnx").exists()  # the old twin would not belong to the new model
    assert (shipped / "previous" / "cnn.onnx").read_bytes() == b"old-onnx"


@pytest.mark.parametrize("stop_after", [0, 1, 2, 3])
def test_an_interrupted_promotion_is_finished_by_recover(tmp_path, monkeypatch, stop_after):
    """Kill the promotion after 0..3 of its renames: recover() leaves the new model installed and consistent."""
    shipped, run = tmp_path / "models", tmp_path / "run"
    _write_model(shipped, "cnn", b"old", 0.99)
    _write_model(run, "cnn", b"new", 0.995)
    real_replace, calls = os.replace, []

    def dying_replace(src, dst):
        renames_a_model = Path(src).parent.name != promote.INCOMING or Path(dst).parent == shipped
        if Path(dst).suffix in (".keras", ".onnx") and Path(dst).parent != shipped / promote.INCOMING and \
                renames_a_model:
            if len(calls) == stop_after:
                raise KeyboardInterrupt
            calls.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(promote.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        promote.promote("cnn", run, shipped, None)
    monkeypatch.setattr(promote.os, "replace", real_replace)
    assert promote.consistent(shipped) != []  # the journal says a promotion is pending
    assert promote.recover(shipped)
    assert (shipped / "cnn.keras").read_bytes() == b"new" and (shipped / "cnn.onnx").read_bytes() == b"new-onnx"
    assert (shipped / "previous" / "cnn.keras").read_bytes() == b"old"
    assert promote.consistent(shipped) == [] and not promote.recover(shipped)


def _argv(tmp_path, fake_npz, run, *extra):
    return ["--models", "ann", "--preset", "seed", "--limit", "400", "--data", str(fake_npz), "--models-dir",
            str(tmp_path / "models"), "--plots-dir", str(tmp_path / "plots"), "--run-dir", str(tmp_path / run),
            "-q", *extra]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, fake_npz):
    """A folder whose models/ and plots/ hold a good ANN shipped by a real run (trained once for the module)."""
    folder = tmp_path_factory.mktemp("good")
    assert train_all.main(_argv(folder, fake_npz, "good", "--epochs", "3", "--learning-rate", "3e-3")) == 0
    return folder


def _shipped_copy(good_run: Path, tmp_path: Path) -> Path:
    import shutil

    for name in ("models", "plots"):
        shutil.copytree(good_run / name, tmp_path / name)
    return tmp_path / "models"


def test_a_worse_run_leaves_models_untouched_and_replace_keeps_the_old_one(tmp_path, fake_npz, good_run, caplog):
    shipped = _shipped_copy(good_run, tmp_path)
    before = (shipped / "ann.keras").read_bytes()
    good_entry = promote.read_metrics(shipped)["models"]["ann"]
    assert good_entry["val_accuracy"] > 0.5 and promote.consistent(shipped) == []
    assert (tmp_path / "plots" / "ann_curves.png").exists()
    # one step at a tiny learning rate: worse on validation, so the shipped model stays
    worse = _argv(tmp_path, fake_npz, "worse", "--epochs", "0.1", "--learning-rate", "1e-6")
    assert train_all.main(worse) == 0
    assert (shipped / "ann.keras").read_bytes() == before
    assert promote.read_metrics(shipped)["models"]["ann"] == good_entry
    assert "kept the shipped ann" in caplog.text and (tmp_path / "worse" / "models" / "ann.keras").exists()
    assert not (shipped / "previous" / "ann.keras").exists()
    # --replace takes it anyway, and keeps the better one in previous/
    assert train_all.main([*worse, "--replace", "--run-dir", str(tmp_path / "worse2")]) == 0
    assert (shipped / "ann.keras").read_bytes() != before
    assert (shipped / "previous" / "ann.keras").read_bytes() == before
    assert promote.read_metrics(shipped)["models"]["ann"]["val_accuracy"] < good_entry["val_accuracy"]
    assert promote.consistent(shipped) == []
    # one command puts it back
    assert train_all.main(["--restore", "ann", "--models-dir", str(shipped)]) == 0
    assert (shipped / "ann.keras").read_bytes() == before
    assert promote.read_metrics(shipped)["models"]["ann"] == good_entry
    assert train_all.main(["--restore", "cnn", "--models-dir", str(shipped)]) == 1  # nothing to restore


def test_a_killed_run_leaves_models_as_they_were_or_wholly_replaced(tmp_path, fake_npz):
    """A real process, killed while it trains its second model: the first is promoted whole, the second
    untouched, and the shipped folder is consistent (every model file matches its metrics entry)."""
    shipped = tmp_path / "models"
    _write_model(shipped, "cnn", b"old-cnn", 0.0)  # any trained CNN beats it
    argv = ["--models", "ann", "cnn", "--preset", "seed", "--epochs", "10", "--limit", "400", "--data",
            str(fake_npz), "--models-dir", str(shipped), "--plots-dir", str(tmp_path / "plots"),
            "--run-dir", str(tmp_path / "run"), "-q"]
    proc = subprocess.Popen([sys.executable, "train_all.py", *argv],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # wait until the ANN is promoted and the CNN is training, then kill
    deadline = time.monotonic() + 240
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "== cnn" in line:
            time.sleep(2)
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "".join(lines)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    assert promote.consistent(shipped) == []
    assert (shipped / "cnn.keras").read_bytes() == b"old-cnn"  # the one in training never got there
    entry = promote.read_metrics(shipped)["models"]["ann"]
    assert entry["keras_sha256"] == promote.file_sha256(shipped / "ann.keras")


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_that_promotes_nothing_changes_no_shipped_file_and_keeps_what_it_measured(tmp_path, fake_npz,
                                                                                          good_run, without_exports):
    """Issue 39: a fresh clone stays clean. The shipped model was measured on other validation data (an older
    split); this run re-measures it, keeps it, and writes the new figure into its own folder, not models/."""
    shipped, plots = _shipped_copy(good_run, tmp_path), tmp_path / "plots"
    metrics = promote.read_metrics(shipped)
    good = dict(metrics["models"]["ann"])
    metrics["models"]["ann"] |= {"val_accuracy": 0.2, "val_checksum": "an-older-split"}
    (shipped / "metrics.json").write_text(json.dumps(metrics))
    before = {"models": _files(shipped), "plots": _files(plots)}
    assert train_all.main(_argv(tmp_path, fake_npz, "worse", "--epochs", "0.1", "--learning-rate", "1e-6")) == 0
    assert {"models": _files(shipped), "plots": _files(plots)} == before  # not one byte changed
    run = json.loads((tmp_path / "worse" / "models" / "metrics.json").read_text())
    figure = run["shipped_remeasured"]["ann"]
    assert figure["val_checksum"] == good["val_checksum"] and figure["val_measured_in"] == str(tmp_path / "worse")
    assert figure["val_accuracy"] == pytest.approx(good["val_accuracy"]) and figure["val_accuracy"] > 0.5
    assert run["models"]["ann"]["promotion"]["promoted"] is False


# ------------------------------------------------------------------------------ promotion by a paired test
def _readings(per_class: dict, n_per_class: int = 1800):
    """Labels and two models' predictions built from made-up counts: per class (gained, lost) = digits only the
    candidate reads right, digits only the shipped model reads right; every other digit both read right."""
    y, cand, ship = [], [], []
    for k in range(10):
        gained, lost = per_class.get(k, (0, 0))
        wrong = (k + 1) % 10
        for c_ok, s_ok, n in ((True, False, gained), (False, True, lost), (True, True, n_per_class - gained - lost)):
            y += [k] * n
            cand += [k if c_ok else wrong] * n
            ship += [k if s_ok else wrong] * n
    return np.array(cand), np.array(ship), np.array(y)


def test_exact_mcnemar_tail_matches_the_binomial():
    from study.paired_test import one_sided_p

    assert one_sided_p(0, 0) == 1.0
    assert one_sided_p(5, 0) == pytest.approx(1 / 32)  # all five discordant digits one way: (1/2)^5
    assert one_sided_p(3, 3) == pytest.approx(42 / 64)  # P(X >= 3 | n=6) = (20 + 15 + 6 + 1) / 64
    assert one_sided_p(60, 40) == pytest.approx(0.02844, abs=1e-4)  # the normal approximation gives 0.0287


def test_a_noise_level_class_loss_no_longer_blocks_a_better_model():
    """Issue 38's case: a CNN better overall refused because classes 1, 4 and 8 lost 2-3 digits of ~1,800."""
    from study.paired_test import decide

    per_class = {0: (14, 4), 2: (15, 5), 3: (12, 3), 5: (13, 4), 6: (10, 2), 7: (12, 3), 9: (14, 5),
                 1: (3, 6), 4: (2, 4), 8: (4, 7)}  # 1, 4, 8: net -3, -2, -3
    d = decide(*_readings(per_class))
    assert (d["better"], d["worse"]) == (99, 43) and d["p_better"] < 1e-5
    assert d["classes"]["1"] == {"n": 1800, "better": 3, "worse": 6, "p_worse": pytest.approx(0.2539, abs=1e-4)}
    assert d["blocking_classes"] == [] and d["promote"] is True and "99 digits gained, 43 lost" in d["reason"]


def test_a_real_class_loss_still_blocks_and_noise_overall_does_not_promote():
    from study.paired_test import decide

    per_class = {0: (14, 4), 2: (15, 5), 3: (12, 3), 5: (13, 4), 6: (10, 2), 9: (14, 5), 7: (2, 22)}
    d = decide(*_readings(per_class))
    assert d["p_better"] < 0.05  # better overall (80 gained, 45 lost) ...
    assert d["blocking_classes"] == [7] and d["promote"] is False  # ... but its 7s are really worse
    assert d["classes"]["7"]["p_worse"] < 1e-4 and "class 7 significantly worse (22 lost, 2 gained" in d["reason"]
    # a gain within noise (52 against 45) is not evidence: the shipped model stays
    d = decide(*_readings({0: (30, 25), 5: (22, 20)}))
    assert d["promote"] is False and d["p_better"] > 0.2 and "not better beyond noise" in d["reason"]


def test_a_run_says_whether_other_code_or_another_machine_made_other_validation_digits():
    """Issue 39: the checksum differed between two runs; the record now tells the two causes apart."""
    from types import SimpleNamespace

    data = SimpleNamespace(val_checksum="new", handwriting={"prepared_by": "code-b"})

    def entry(checksum, prepared_by=None):
        hand = {"prepared_by": prepared_by} if prepared_by else {}
        return {"val_checksum": checksum, "data": {"handwriting": hand}}

    assert train_all.other_validation_data(entry("new", "code-a"), data) == ""  # same digits: nothing to say
    assert "prepared by other code: code-a, this run's code-b" in train_all.other_validation_data(
        entry("old", "code-a"), data)
    assert "the digits differ between machines, please report it" in train_all.other_validation_data(
        entry("old", "code-b"), data)
    assert "preparation code not recorded" in train_all.other_validation_data(entry("old"), data)
