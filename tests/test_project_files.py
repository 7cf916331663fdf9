"""Project files that users rely on stay consistent with each other."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return dict(m.groups() for m in (re.match(r"^\s*-?\s*([A-Za-z0-9_.-]+)==([^\s#]+)", line) for line in lines) if m)


def test_environment_yml_pins_match_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    for extra in ("requirements-train.txt", "requirements-dev.txt"):
        req |= _pins((ROOT / extra).read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert len(req) >= 8 and env == req


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in (ROOT / ".ci/run").read_text()


def test_no_mnist_data_in_the_repository():
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in files if re.search(r"(mnist[^/]*\.npz|idx[13]-ubyte)", f, re.I)]
