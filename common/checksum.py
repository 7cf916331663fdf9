"""One way to fingerprint a file: models, ONNX twins and raw data sets are all identified by their sha256; code
that decides cached pixels by the sha256 of its syntax tree."""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (hashlib releases the GIL on large buffers)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_digest(path: str | os.PathLike) -> str:
    """Hex sha256 of a Python file's code, blind to its comments and docstrings: caches keyed on the code that
    made them survive an edit of the prose (a docstring edit had rebuilt minutes of prepared handwriting).
    Remembered per file version (its path, size and modification time): one train_all run asked for the same
    files 48 times, 4 s of parsing on a busy machine."""
    stat = os.stat(path)
    return _code_digest(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _code_digest(path: str, size: int, mtime_ns: int) -> str:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body and \
                isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
                isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()
