"""The two export scripts' usage errors, which need no TensorFlow: an unknown model name (what to choose instead,
exit 2) and a folder with no model (how to make one, exit 1)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["export_onnx.py", "export_adapt.py"])
def test_export_scripts_say_what_to_pass_instead(script, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                              timeout=60)

    unknown = run("cnn", "nope")
    assert unknown.returncode == 2 and "unknown model 'nope'; choose from ann, cnn, vgg16" in unknown.stderr
    empty = run("--models-dir", str(tmp_path))
    assert empty.returncode == 1 and "no .keras model in" in empty.stderr and "python train_all.py" in empty.stderr
