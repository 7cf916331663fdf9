"""The layering stays true: every project module's imports, read with `ast`, run one way and never in a circle.

Layers, lowest first (a module may import its own layer and the ones below, never one above):

    common  <  recognizer  <  study  <  builders (ann, cnn, vgg16)  <  entry points and views

The reading side (`common`, `recognizer`) must also start without TensorFlow/Keras (no module-level import),
never touch Tkinter, and never import the study. It may import OpenCV (`cv2`, opencv-python-headless in
requirements.txt): its image operations are OpenCV's. Imports inside functions count for the layering and for the
cycles: they run as soon as the function does, and they are how cycles hide.
The checker is tested on small packages written to tmp_path, so that it is known to catch what it should.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = {  # top-level name in the repository -> layer (higher may import lower)
    "common": 0,
    "recognizer": 1,
    "study": 2,
    "ann": 3, "cnn": 3, "vgg16": 3, "string_reader": 3,
    "train_all": 4, "recognize": 4, "serve": 4, "gui_digit_recognizer": 4,
    "gui": 4, "web": 4, "benchmarks": 4, "scripts": 4,
}
LAYER_NAMES = {0: "common", 1: "recognizer", 2: "study", 3: "builders", 4: "entry points/views"}
READING_SIDE = ("common", "recognizer")
HEAVY_AT_START = ("tensorflow", "keras", "tf_keras")  # the reading side may import these inside functions only
NEVER_ON_READING_SIDE = ("tkinter", "_tkinter", "study")  # not even inside functions
# requirements.txt (what the app, recognize.py and serve.py install) leaves these out: nothing those programs run
# may import them, not even inside a function (OpenCV is in it: cv2 is allowed)
NOT_IN_READING_ENV = ("scipy", "skimage", "sklearn", "matplotlib")
READING_ENV_HAS = {"cv2": "opencv-python-headless", "numpy": "numpy", "PIL": "pillow", "onnxruntime": "onnxruntime"}
READING_PROGRAMS = ("common", "recognizer", "recognize", "serve", "gui_digit_recognizer", "gui", "web")
SKIP_DIRS = {"tests", ".venv", "venv", "site-packages", "node_modules", "__pycache__", "build", "dist"}

# Cycles tolerated while a fix is under way (none today). Each entry is one strongly connected set of modules;
# an entry that no longer matches a cycle fails the test, so the list cannot go stale.
KNOWN_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Import:
    source: str       # importing project module, e.g. "recognizer.pipeline"
    target: str       # imported module, e.g. "recognizer.segment" or "tensorflow.keras"
    line: int
    in_function: bool

    def where(self, root: Path, files: dict[str, Path]) -> str:
        kind = "inside a function" if self.in_function else "at module level"
        return f"{files[self.source].relative_to(root)}:{self.line} imports {self.target} ({kind})"


# ------------------------------------------------------------------------------------------ the checker
def project_files(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every .py of the project (not tests, virtualenvs or hidden folders)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The project module an imported dotted name lands in (a.b.func -> a.b), or the name itself if external."""
    probe = name
    while probe:
        if probe in modules:
            return probe
        probe = probe.rpartition(".")[0]
    return name


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import statement of one file, relative ones resolved, with whether it sits inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(module, _resolve(alias.name, modules), child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".") if package else []
                    base = base[:len(base) - (child.level - 1)] if child.level > 1 else base
                    stem = ".".join(base + ([child.module] if child.module else []))
                else:
                    stem = child.module or ""
                for alias in child.names:  # `from pkg import submodule` imports the submodule
                    full = f"{stem}.{alias.name}" if stem else alias.name
                    target = full if full in modules else _resolve(stem, modules)
                    found.append(Import(module, target, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def all_imports(root: Path) -> tuple[dict[str, Path], list[Import]]:
    files = project_files(root)
    return files, [imp for mod, path in files.items() for imp in imports_of(mod, path, files)]


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    return layers.get(module.split(".")[0])


def unlayered(files: dict[str, Path], layers: dict[str, int]) -> list[str]:
    """Project modules whose top-level name has no layer yet (a new package must be placed on purpose)."""
    return sorted(m for m in files if layer_of(m, layers) is None)


def upward_imports(files: dict[str, Path], imports: list[Import], layers: dict[str, int]) -> list[Import]:
    """Imports from a lower layer into a higher one, at module level or inside functions."""
    bad = []
    for imp in imports:
        if imp.target in files:
            src, dst = layer_of(imp.source, layers), layer_of(imp.target, layers)
            if src is not None and dst is not None and dst > src:
                bad.append(imp)
    return bad


def reading_side_violations(imports: list[Import], reading_side=READING_SIDE) -> list[Import]:
    """TensorFlow/Keras at module level, or Tkinter/the study anywhere, in the reading side."""
    bad = []
    for imp in imports:
        if imp.source.split(".")[0] not in reading_side:
            continue
        top = imp.target.split(".")[0]
        if top in NEVER_ON_READING_SIDE or (top in HEAVY_AT_START and not imp.in_function):
            bad.append(imp)
    return bad


def cycles(files: dict[str, Path], imports: list[Import]) -> list[frozenset[str]]:
    """Strongly connected sets of project modules (Tarjan) with more than one member, or a self-import."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for imp in imports:
        if imp.target in files:
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def strongconnect(v: str) -> None:  # the module graph is small: recursion depth is no concern
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def cycle_report(comp: frozenset[str], files: dict[str, Path], imports: list[Import], root: Path) -> str:
    lines = [imp.where(root, files) for imp in imports if imp.source in comp and imp.target in comp]
    return " <-> ".join(sorted(comp)) + "\n    " + "\n    ".join(lines)


# ------------------------------------------------------------------------------------------ the project
@pytest.fixture(scope="module")
def project():
    files, imports = all_imports(ROOT)
    return files, imports


def test_the_checker_sees_the_project(project):
    files, imports = project
    # the packages of every layer are found, with their imports (relative ones resolved)
    for module in ("common.names", "recognizer.pipeline", "recognizer.segment", "study.fit", "cnn.model",
                   "recognize", "train_all", "gui.app"):
        assert module in files, module
    targets = {(i.source, i.target) for i in imports}
    assert ("recognizer.prepare", "recognizer.segment") in targets  # `from .segment import segment`
    assert ("recognizer.pipeline", "common.names") in targets
    assert not any(str(p).startswith(str(ROOT / "tests")) for p in files.values())


def test_every_module_has_a_layer(project):
    files, _ = project
    assert unlayered(files, LAYERS) == [], "give these a layer in LAYERS (tests/test_architecture.py)"


def test_no_import_from_a_lower_layer_to_a_higher_one(project):
    files, imports = project
    bad = upward_imports(files, imports, LAYERS)
    assert not bad, "upward imports:\n" + "\n".join(
        f"{i.where(ROOT, files)}: {LAYER_NAMES[layer_of(i.source, LAYERS)]} -> {LAYER_NAMES[layer_of(i.target, LAYERS)]}"
        for i in bad)


def test_reading_side_starts_without_tensorflow_and_never_uses_tkinter_or_the_study(project):
    files, imports = project
    bad = reading_side_violations(imports)
    assert not bad, "\n".join(i.where(ROOT, files) for i in bad)


def test_reading_programs_need_only_the_reading_requirements(project):
    _, imports = project
    bad = [imp for imp in imports
           if imp.source.split(".")[0] in READING_PROGRAMS and imp.target.split(".")[0] in NOT_IN_READING_ENV]
    assert not bad, "imports missing from requirements.txt: " + "; ".join(f"{i.source} -> {i.target}" for i in bad)


def test_what_the_reading_side_imports_is_pinned_in_requirements_txt(project):
    _, imports = project
    pinned = {line.split("==")[0].strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
              if "==" in line and not line.lstrip().startswith("#")}
    used = {imp.target.split(".")[0] for imp in imports if imp.source.split(".")[0] in READING_PROGRAMS}
    assert "cv2" in used  # the recognizer's image operations are OpenCV's
    missing = {READING_ENV_HAS[m] for m in used & READING_ENV_HAS.keys()} - pinned
    assert not missing, f"the reading side imports these, requirements.txt does not pin them: {sorted(missing)}"


def test_no_import_cycles(project):
    files, imports = project
    found = cycles(files, imports)
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(cycle_report(c, files, imports, ROOT) for c in new)
    stale = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not stale, f"these cycles are gone: delete them from KNOWN_CYCLES: {stale}"


# ------------------------------------------------------------------------------------------ the checker itself
def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


CLEAN = {
    "common/__init__.py": "",
    "common/names.py": "NAMES = ('a',)\n",
    "recognizer/__init__.py": "from .pipeline import read\n",
    "recognizer/pipeline.py": "from common.names import NAMES\nfrom . import segment\n\n"
                              "def read():\n    import keras\n    return segment.cut()\n",
    "recognizer/segment.py": "import numpy as np\nfrom common import names\n\ndef cut():\n    return 1\n",
    "study/__init__.py": "",
    "study/training.py": "import tensorflow as tf\nfrom recognizer.pipeline import read\n",
    "recognize.py": "from recognizer import read\nfrom study import training\n",
    "tests/test_x.py": "import recognize\n",           # tests are not part of the layering
    ".venv/lib/site.py": "import recognize\n",
}


def check(root: Path) -> dict[str, list]:
    files, imports = all_imports(root)
    return {"unlayered": unlayered(files, LAYERS), "upward": upward_imports(files, imports, LAYERS),
            "reading": reading_side_violations(imports), "cycles": cycles(files, imports)}


def test_checker_passes_a_clean_package(tmp_path):
    root = write_tree(tmp_path, CLEAN)
    files, imports = all_imports(root)
    assert sorted(files) == ["common", "common.names", "recognize", "recognizer", "recognizer.pipeline",
                             "recognizer.segment", "study", "study.training"]
    edges = {(i.source, i.target, i.in_function) for i in imports}
    assert ("recognizer.pipeline", "recognizer.segment", False) in edges   # from . import segment
    assert ("recognizer.pipeline", "keras", True) in edges                 # inside a function
    assert ("recognize", "study.training", False) in edges
    assert check(root) == {"unlayered": [], "upward": [], "reading": [], "cycles": []}


def test_checker_catches_an_upward_import_even_inside_a_function(tmp_path):
    root = write_tree(tmp_path, {**CLEAN, "recognizer/segment.py":
                                 "def cut():\n    from study.training import tf\n    return 1\n"})
    found = check(root)
    assert [(i.source, i.target, i.line, i.in_function) for i in found["upward"]] == [
        ("recognizer.segment", "study.training", 2, True)]
    assert [i.target for i in found["reading"]] == ["study.training"]  # the reading side never uses the study


def test_checker_catches_a_cycle_hidden_in_functions(tmp_path):
    root = write_tree(tmp_path, {**CLEAN,
                                 "study/budget.py": "def plan():\n    from .training import tf\n",
                                 "study/training.py": "from recognizer.pipeline import read\n\n"
                                                      "def fit():\n    from study.budget import plan\n"})
    found = check(root)
    assert found["cycles"] == [frozenset({"study.budget", "study.training"})] and not found["upward"]
    root2 = write_tree(tmp_path / "three", {**CLEAN, "common/a.py": "from common import b\n",
                                            "common/b.py": "import common.c\n", "common/c.py": "from . import a\n"})
    assert check(root2)["cycles"] == [frozenset({"common.a", "common.b", "common.c"})]


def test_checker_catches_tensorflow_at_start_and_tkinter_on_the_reading_side(tmp_path):
    root = write_tree(tmp_path, {**CLEAN, "common/names.py": "import tensorflow.keras\n",
                                 "recognizer/segment.py": "def cut():\n    from tkinter import Tk\n"})
    bad = {(i.source, i.target, i.in_function) for i in check(root)["reading"]}
    assert bad == {("common.names", "tensorflow.keras", False), ("recognizer.segment", "tkinter", True)}


def test_checker_asks_for_a_layer_for_new_packages(tmp_path):
    root = write_tree(tmp_path, {**CLEAN, "tools/helper.py": "import recognize\n"})
    assert check(root)["unlayered"] == ["tools.helper"]
