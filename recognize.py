#!/usr/bin/env python3
"""Read handwritten digits from image files (canvas drawings, photos, scans) with the trained models."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from pathlib import Path

from common.atomic import atomic_path
from common.names import BASE_MODELS, DEFAULT_MODELS_DIR, MODEL_NAMES
from recognizer import DEFAULT_THRESHOLD, ModelStore, Recognizer, RecognizerError
from recognizer.images import IMAGE_SUFFIXES, load_gray

EPILOG = """examples:
  python recognize.py photo.jpg                      read one image with the best available model
  python recognize.py scans/ --model ensemble        every PNG/JPEG/BMP in a folder, averaged models
  python recognize.py a.png b.png --json             one JSON object per image per line
  python recognize.py a.png --annotate out/          also write a.png with boxes and labels into out/
  python recognize.py a.png --threshold 0.8          show digits below 80% confidence as '?'

JSON fields (image, then those of the Python API's Reading.to_dict()): text, digits[{digit, confidence,
box [x, y, w, h], top3 [[digit, p], ...], uncertain (below --threshold, shown as '?'), line (0 = top)}],
model, ms (segmentation + normalisation + inference, without model loading).
Exit status: 0 if every image was read, 1 if any failed (each failure is reported on stderr), 2 on usage errors,
130 when interrupted (Ctrl-C).
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="recognize.py",
        description="Read handwritten digits in images: several digits in a row, several lines, any stroke\n"
                    "width, dark-on-light or light-on-dark, canvas drawings or photos of paper.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders (every PNG/JPEG/BMP inside)")
    p.add_argument("--model", choices=MODEL_NAMES, default=None,
                   help="model to use (default: the most accurate one available; on a tie the faster one)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image per line")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"digits with a lower confidence are shown as '?' (default {DEFAULT_THRESHOLD})")
    p.add_argument("--models-dir", default=DEFAULT_MODELS_DIR,
                   help=f"folder with {'/'.join(BASE_MODELS)}.keras (default {DEFAULT_MODELS_DIR})")
    p.add_argument("--annotate", metavar="DIR", default=None,
                   help="write each image with boxes and labels drawn into DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    args = p.parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        p.error("--threshold must be between 0 and 1")
    if args.annotate and Path(args.annotate).exists() and not Path(args.annotate).is_dir():
        p.error(f"--annotate {args.annotate}: exists and is not a folder")
    return args


def expand(paths) -> list[tuple[str, str | None]]:
    """[(path, error or None)]: folders expand to their images (sorted); missing paths become errors."""
    out = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            try:
                files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as exc:  # no permission to list it
                out.append((raw, f"cannot list folder ({exc.strerror or exc})"))
                continue
            if not files:
                out.append((raw, "folder contains no PNG/JPEG/BMP images"))
            out.extend((str(f), None) for f in files)
        elif p.exists():
            out.append((raw, None))
        else:
            out.append((raw, "no such file or folder"))
    return out


SURE, UNSURE = (0, 160, 0), (255, 0, 0)  # RGB: green box for a confident digit, red for one shown as '?'


def annotate(path: str, reading, out_dir: Path, used: set | None = None) -> Path:
    """Write the image with boxes and labels as out_dir/<stem>.png (atomically; <stem>-2.png on a clash)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(load_gray(path)).convert("RGB")
    draw = ImageDraw.Draw(img)
    thick = max(1, round(max(img.size) / 400))
    for d in reading.digits:
        x, y, w, h = d.box
        colour = UNSURE if d.uncertain else SURE
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=thick)
        text = f"{d.label} {d.confidence:.2f}"
        font = _label_font(round(30 * max(0.4, min(1.2, h / 220, w / 60))))
        bottom = font.getbbox(text)[3]
        draw.text((x, max(bottom, y - 4) - bottom), text, fill=colour, font=font)  # label sits just above the box
    stem, k = Path(path).stem, 1
    target = out_dir / f"{stem}.png"
    while used is not None and target in used:
        k += 1
        target = out_dir / f"{stem}-{k}.png"
    if used is not None:
        used.add(target)
    with atomic_path(target) as tmp:
        try:
            img.save(tmp, format="PNG")
        except (OSError, ValueError) as exc:
            raise RecognizerError(f"could not write {target} ({exc})") from None
    return target


@functools.lru_cache(maxsize=16)
def _label_font(size: int):
    """Pillow's bundled scalable font at `size` pixels; its small bitmap font where FreeType is missing."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1, or built without FreeType
        return ImageFont.load_default()


def main(argv=None) -> int:
    try:
        return _run(parse_args(argv))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    """Read every image of args.paths; one line (or JSON object) per image on stdout, errors on stderr."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    store = ModelStore(args.models_dir)
    rec = Recognizer(store, threshold=args.threshold)
    failed = 0
    try:
        name = rec.resolve_model(args.model)
        store.load(name)
    except RecognizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out_dir = Path(args.annotate) if args.annotate else None
    written: set = set()
    for path, err in expand(args.paths):
        if err is None:
            try:
                reading = rec.read(path, model=name)
                if out_dir is not None:
                    annotate(path, reading, out_dir, written)
            except RecognizerError as exc:
                err = str(exc)
            except OSError as exc:  # e.g. the --annotate folder cannot be written
                err = f"{path}: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        if err is not None:
            failed += 1
            msg = err if err.startswith(path) else f"{path}: {err}"
            print(f"error: {msg}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"image": path, **reading.to_dict()}), flush=True)
        else:
            confs = " ".join(f"{d.label}:{d.confidence:.2f}" for d in reading.digits)
            text = reading.text.replace("\n", " / ") if reading.digits else "(no digits)"
            print(f"{path}: {text}   [{reading.model}, {reading.ms:.1f} ms] {confs}".rstrip(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
