#!/usr/bin/env python3
"""Paper benchmark: does recognize.py read numbers written on real paper?

Two sets, each read image by image through `Recognizer.read`, the code path of recognize.py, the API and the page:
* **registers**: the validation split of the real register scans (`../shared/data/paper/registers-rowid.tar`,
  digits-only labels; pages that training never saw, partly the same clerks);
* **composed**: numbers of 1-7 real digits by CVL *test* writers (whom no model trained on), written touching
  and with separators on generated paper (study/paper_data.compose_page), seeded.

Per set: exact number (the text as the user sees it, '?' counts wrong), per-digit accuracy (1 - edit distance /
digits), how often the digit count is wrong (too few / too many), median and 90th-percentile ms per image.
`--source canvas` reads the same images the way the reader did before paper had its own path (the BEFORE
column); `--source segments` cuts the prepared paper into contours for the canvas model (the comparison with the
string reader). `--grid` writes the failures with what was read, `--out` the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recognizer import ModelStore, Recognizer  # noqa: E402
from study.paper_data import REGISTERS_TAR, composed_pages, cvl_sides, read_registers  # noqa: E402

SHARED = ROOT.parent / "shared/data"
EPILOG = """examples:
  python benchmarks/bench_paper.py                                   both sets, default reader
  python benchmarks/bench_paper.py --source canvas --out out/paper_before.json     how the canvas path reads them
  python benchmarks/bench_paper.py --grid plots/paper_failures.png --out benchmarks/results/paper.json
"""


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def score(items: list[tuple[str, str, float]]) -> dict:
    """Figures of [(label, text read, ms)]."""
    n = len(items)
    digits = sum(len(y) for y, _, _ in items)
    edits = sum(min(len(y), edit_distance(y, t)) for y, t, _ in items)
    fewer = sum(len(t) < len(y) for y, t, _ in items)
    more = sum(len(t) > len(y) for y, t, _ in items)
    ms = sorted(m for _, _, m in items)
    return {"images": n, "exact": round(sum(y == t for y, t, _ in items) / n, 4),
            "per_digit": round(1 - edits / max(1, digits), 4), "too_few_digits": round(fewer / n, 4),
            "too_many_digits": round(more / n, 4), "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[int(0.9 * (n - 1))], 2)}


def read_segments(rec: Recognizer, gray: np.ndarray) -> str:
    """The comparison's other side: paper preparation, then the canvas path's contours and model (one contour,
    one digit), i.e. what preparation alone gives without a reader of whole lines."""
    from recognizer.normalize import normalize_batch
    from recognizer.paper import prepare_paper
    from recognizer.segment import segment

    page = prepare_paper(gray)
    segs = segment(np.where(page.ink > 0, np.uint8(255), np.uint8(0)))
    if not segs:
        return ""
    probs = rec.store.predict(rec.resolve_model(None), normalize_batch([s.mask for s in segs]))
    return "".join(str(int(p.argmax())) if p.max() >= rec.threshold else "?" for p in probs)


def read_all(rec: Recognizer, images, segments: bool = False) -> list[tuple[str, str, float, np.ndarray]]:
    out = []
    for gray, label in images:
        t0 = time.perf_counter()
        text = read_segments(rec, gray) if segments else rec.read(gray).text.replace("\n", "")
        out.append((label, text, (time.perf_counter() - t0) * 1000.0, gray))
    return out


def failure_grid(results: dict, path: Path, per_set: int = 24) -> None:
    """A PNG of failures, each image with 'label -> read' under it."""
    import cv2

    tiles = []
    for rows in results.values():
        for label, text, _, gray in [r for r in rows if r[0] != r[1]][:per_set]:
            h = 96
            img = cv2.resize(gray, (max(1, int(gray.shape[1] * h / gray.shape[0])), h))[:, :200]
            tile = np.full((h + 22, 200), 255, np.uint8)
            tile[:h, :img.shape[1]] = img
            cv2.putText(tile, f"{label}->{text or '-'}", (2, h + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1)
            tiles.append(tile)
    if not tiles:
        return
    cols = 8
    tiles += [np.full_like(tiles[0], 255)] * ((-len(tiles)) % cols)
    grid = np.vstack([np.hstack([np.pad(t, 2, constant_values=128) for t in tiles[i:i + cols]])
                      for i in range(0, len(tiles), cols)])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paper", type=Path, default=SHARED / "paper", help="folder with registers-rowid.tar")
    p.add_argument("--handwriting", type=Path, default=SHARED / "handwriting", help="folder with cvl/")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--model", default=None, help="the canvas model (default: the store's default)")
    p.add_argument("--source", choices=("auto", "canvas", "paper", "segments"), default="auto",
                   help="segments: paper preparation + the canvas path's contours and model (the comparison)")
    p.add_argument("--registers", type=int, default=0, help="read only the first N register images (0: all)")
    p.add_argument("--composed", type=int, default=1000, help="composed CVL numbers (0: none)")
    p.add_argument("--composed-writers", choices=("test", "val"), default="test",
                   help="whose digits the composed numbers are made of: CVL test writers (the benchmark) or the "
                        "validation writers (for choices such as --canvas-weight)")
    p.add_argument("--canvas-weight", type=float, default=None,
                   help="share of the canvas model in a paper digit's probabilities (default: the reader's)")
    p.add_argument("--grid", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    segments = args.source == "segments"
    rec = Recognizer(ModelStore(args.models_dir), source="canvas" if segments else args.source)
    if args.canvas_weight is not None:
        rec.paper_canvas_weight = args.canvas_weight
    sets = {}
    if (args.paper / REGISTERS_TAR).is_file():
        regs = read_registers(args.paper / REGISTERS_TAR, "validation")
        if args.registers:
            regs = regs[:args.registers]
        sets["registers"] = [(g, y) for _, g, y in regs]
    if args.composed and (args.handwriting / "cvl").is_dir():
        cvl = cvl_sides(args.handwriting / "cvl" / "cvl-single-digits-28x28.tar.gz")
        sets["composed"] = composed_pages(*cvl[args.composed_writers], n=args.composed, seed=7)
    if not sets:
        print(f"no data: neither {args.paper / REGISTERS_TAR} nor {args.handwriting / 'cvl'}", file=sys.stderr)
        return 2
    rec.read(sets[next(iter(sets))][0][0])  # models loaded and warm: reading time, not loading time
    results = {name: read_all(rec, images, segments) for name, images in sets.items()}
    figures = {name: score([r[:3] for r in rows]) for name, rows in results.items()}
    figures["source"] = args.source
    figures["canvas_weight"] = rec.paper_canvas_weight
    figures["composed_writers"] = args.composed_writers
    print(json.dumps(figures, indent=1))
    if args.grid:
        failure_grid(results, args.grid)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
