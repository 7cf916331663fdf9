"""TensorFlow's oneDNN kernels must be on before TensorFlow loads, whichever package a program imports first
(TensorFlow leaves them off on AVX2-only CPUs, where training is then several times slower), and a user's own
choice must win."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Imports `pkg` and prints (TF_ENABLE_ONEDNN_OPTS, whether TensorFlow was imported). A finder first in line
# prints them at the moment TensorFlow's import starts, which is when TensorFlow reads the setting, and ends the
# process there: the setting must be in place by then, not only afterwards (and the probe skips TensorFlow's
# 7 s load, which says nothing here).
PROBE = """
import os, sys

class AtTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), True, flush=True)
            os._exit(0)

sys.meta_path.insert(0, AtTensorFlow())
import {pkg}
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "tensorflow" in sys.modules)
"""


def _probe(pkg: str, **env_overrides) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_overrides)
    out = subprocess.run([sys.executable, "-c", PROBE.format(pkg=pkg)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return out.split()


@pytest.mark.parametrize("pkg", ["vgg16", "recognizer"])
def test_onednn_is_on_by_default(pkg):
    onednn, _ = _probe(pkg)
    assert onednn == "1"


def test_a_users_setting_wins():
    onednn, tf_loaded = _probe("vgg16", TF_ENABLE_ONEDNN_OPTS="0")
    assert (onednn, tf_loaded) == ("0", "True")  # vgg16 imports Keras (and so TensorFlow) at import time


def test_recognizer_import_stays_light():
    """The GUI window must open within seconds: importing the core must not load TensorFlow."""
    _, tf_loaded = _probe("recognizer")
    assert tf_loaded == "False"
