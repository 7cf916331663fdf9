"""MNIST digits composed into numbers on made paper: more hands for the string reader.

The reader's other training strips come from a few register clerks and CVL's train writers; the numbers it must
read come from writers none of that data has. MNIST's training digits (~500 writers: Census employees and school
students) composed exactly like the CVL numbers (`study.paper_data.compose_page`: touching digits, separators,
made paper) widen the hands it has seen. MNIST carries no writer ids, so a number's digits are drawn from
anywhere in the set. Only `x_train` is used: MNIST's test images stay out of every choice. Cached like the other
strips, outside the repository.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from study.paper_data import DEFAULT_CACHE, SEED, composed_strips, composed_pages, to_set

log = logging.getLogger(__name__)

COMPOSED_MNIST = 24_000  # composed MNIST numbers, as many as the CVL pool


def build_mnist(x_train: np.ndarray, y_train: np.ndarray, cache: Path = DEFAULT_CACHE, workers: int = 2,
                n: int = COMPOSED_MNIST) -> Path:
    """Make (or reuse) the strips of `n` composed MNIST numbers; returns the cache file (arrays x, w, y)."""
    from common.checksum import code_digest
    from recognizer import paper
    from study import paper_data

    digest = hashlib.sha256("".join(code_digest(Path(m.__file__)) for m in (paper, paper_data)).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update(np.ascontiguousarray(x_train).tobytes())
    digest.update(f"{n}".encode())
    target = Path(cache) / f"mnist-strips-{digest.hexdigest()[:12]}.npz"
    if target.exists():
        return target
    t0 = time.perf_counter()
    dark_on_light = 255 - np.asarray(x_train, np.uint8).reshape(-1, 28, 28)  # as CVL's scans are
    pages = composed_pages(dark_on_light, np.asarray(y_train), np.zeros(len(y_train), int), n=n, seed=SEED + 101)
    s = to_set(composed_strips(pages, True, workers))
    log.info("composed MNIST: %d strips (%.0f s)", len(s), time.perf_counter() - t0)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez(tmp, x=s.x, w=s.widths, y=np.array(s.labels))
    tmp.replace(target)
    return target
