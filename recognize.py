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
from common.names import BASE_MODELS, DEFAULT_MODELS_DIR, MODEL_NAMES, NO_PROFILE, PROFILE_ENV
from recognizer import DEFAULT_THRESHOLD, ModelStore, Recognizer, RecognizerError
from recognizer.profile_store import MAX_ID
from recognizer.images import IMAGE_SUFFIXES, load_gray
from recognizer.paper_reader import SOURCES

EPILOG = """examples:
  python recognize.py photo.jpg                      read one image with the best available model
  python recognize.py scans/ --model ensemble        every PNG/JPEG/BMP in a folder, averaged models
  python recognize.py a.png b.png --json             one JSON object per image per line
  python recognize.py a.png --annotate out/          also write a.png with boxes and labels into out/
  python recognize.py a.png --threshold 0.8          show digits below 80% confidence as '?'
  python recognize.py form.jpg --source paper        a scan or photo of paper, read line by line (auto does this
                                                     for any image without a drawing's flat background)

teach it your handwriting (a profile: one SQLite database in your user data folder, or --profile DIR):
  python recognize.py --correct seven.png 1 num.png 1?7   store the right digits ('?' skips one), then adapt
  python recognize.py --adapt                        adapt now; prints before/after and whether it was accepted
  python recognize.py --profile-stats                readings, corrections, error rate before/after, confusions
  python recognize.py --corrections list | export FILE | import FILE | delete ID
                                                     (import and delete adapt --model again at once)
  python recognize.py --profile-reset [--discard]    forget it (the corrections are exported beside it first)
  python recognize.py a.png --profile none           read with the shipped models alone

JSON fields (image, then those of the Python API's Reading.to_dict()): text, digits[{digit, confidence,
box [x, y, w, h], top3 [[digit, p], ...], uncertain (below --threshold, shown as '?'), line (0 = top)}],
model ("string" for paper), ms (preparation + inference, without model loading), adapted (read with your profile),
source (canvas or paper).
Exit status: 0 if every image was read, 1 if any failed (each failure is reported on stderr), 2 on usage errors,
130 when interrupted (Ctrl-C).
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="recognize.py",
        description="Read handwritten digits in images: several digits in a row, several lines, any stroke\n"
                    "width, dark-on-light or light-on-dark, canvas drawings or photos of paper.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files, or folders (every PNG/JPEG/BMP inside)")
    p.add_argument("--model", choices=MODEL_NAMES, default=None,
                   help="model to use (default: the most accurate one available; on a tie the faster one)")
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="canvas: one contour, one digit (drawings); paper: lines read whole by the string reader "
                        "(scans and photos of paper: touching digits, separators, ruled lines); auto (default): "
                        "paper unless the image has a drawing's flat background")
    p.add_argument("--json", action="store_true", help="print one JSON object per image per line")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"digits with a lower confidence are shown as '?' (default {DEFAULT_THRESHOLD})")
    p.add_argument("--models-dir", default=DEFAULT_MODELS_DIR,
                   help=f"folder with {'/'.join(BASE_MODELS)}.keras (default {DEFAULT_MODELS_DIR})")
    p.add_argument("--annotate", metavar="DIR", default=None,
                   help="write each image with boxes and labels drawn into DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    t = p.add_argument_group("your handwriting (a profile)")
    t.add_argument("--profile", metavar="DIR|none", default=None,
                   help=f"profile folder (default: ${PROFILE_ENV}, else one per user in the platform's data folder); "
                        "'none' reads with the shipped models alone")
    t.add_argument("--correct", nargs="+", metavar="IMAGE TEXT",
                   help="store the right text of images (one character per digit, '?' skips one), then adapt")
    t.add_argument("--adapt", action="store_true", help="adapt to the stored corrections now and say how it went")
    t.add_argument("--profile-stats", action="store_true", help="what the profile holds and how reading went")
    t.add_argument("--profile-reset", action="store_true",
                   help="forget the profile's corrections and adaptations (exported beside it first)")
    t.add_argument("--discard", action="store_true", help="with --profile-reset: do not keep an export")
    t.add_argument("--corrections", nargs="+", metavar="ACTION",
                   help="list | export FILE | import FILE | delete ID")
    args = p.parse_args(argv)
    teach = [o for o in ("correct", "adapt", "profile_stats", "profile_reset", "corrections") if getattr(args, o)]
    if len(teach) > 1:
        p.error("give one of --correct, --adapt, --profile-stats, --profile-reset, --corrections at a time")
    args.teach = teach[0] if teach else None
    if args.teach and args.paths:
        p.error(f"--{args.teach.replace('_', '-')} takes no image paths to read; read them in a separate call")
    if args.discard and not args.profile_reset:
        p.error("--discard goes with --profile-reset")
    if not args.teach and not args.paths:
        p.error("give image files or folders to read (or a profile command such as --profile-stats)")
    if args.teach and args.profile is not None and args.profile.strip().lower() == NO_PROFILE:
        p.error(f"--{args.teach.replace('_', '-')} needs a profile; --profile none has none")
    if args.correct and len(args.correct) % 2:
        p.error("--correct takes pairs: IMAGE TEXT [IMAGE TEXT ...]")
    if args.corrections:
        action, rest = args.corrections[0], args.corrections[1:]
        want = {"list": 0, "export": 1, "import": 1, "delete": 1}
        if action not in want:
            p.error(f"--corrections {action}: choose list, export FILE, import FILE or delete ID")
        if len(rest) != want[action]:
            p.error(f"--corrections {action} takes {want[action] or 'no'} argument" + ("" if want[action] == 1 else "s"))
        if action == "delete" and not (rest[0].isascii() and rest[0].isdigit() and 0 < int(rest[0]) <= MAX_ID):
            p.error(f"--corrections delete takes a correction's number (see --corrections list), got {rest[0]!r}")
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
        args = parse_args(argv)
        return _teach(args) if args.teach else _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    """Read every image of args.paths; one line (or JSON object) per image on stdout, errors on stderr."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    store = ModelStore(args.models_dir)
    failed = 0
    try:
        try:
            profile = _open_profile(args, store, create=False)
        except RecognizerError as exc:  # reading needs no profile: say why it is not used, read on
            print(f"warning: {exc}; reading with the shipped models alone", file=sys.stderr)
            profile = None
        rec = Recognizer(store, threshold=args.threshold, profile=profile, source=args.source)
        name = rec.resolve_model(args.model)
        store.load(name)
        if profile is not None:  # after a model update, or corrections another program stored
            _adapt_stale(profile, name, file=sys.stderr)
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
        if profile is not None:
            profile.count_reading(len(reading.digits), reading.adapted)
        if args.json:
            print(json.dumps({"image": path, **reading.to_dict()}), flush=True)
        else:
            confs = " ".join(f"{d.label}:{d.confidence:.2f}" for d in reading.digits)
            text = reading.text.replace("\n", " / ") if reading.digits else "(no digits)"
            mark = ", your hand" if reading.adapted else ""
            print(f"{path}: {text}   [{reading.model}{mark}, {reading.ms:.1f} ms] {confs}".rstrip(), flush=True)
    return 1 if failed else 0


# ------------------------------------------------------------------------------------ your handwriting
def _open_profile(args, store, create: bool):
    """The Profile to use (None: --profile none, or reading with no profile made yet); says where an unreadable
    database was moved."""
    from recognizer.profile import Profile, existing_profile_dir, resolve_profile_dir

    folder = resolve_profile_dir(args.profile) if create else existing_profile_dir(args.profile)
    if folder is None:
        return None
    profile = Profile(folder, store)
    if profile.moved_aside is not None:
        print(f"warning: the profile database could not be read; it was moved to {profile.moved_aside} and a new "
              "one started", file=sys.stderr)
    return profile


def _say_decisions(decisions: dict, file=None) -> None:
    """One line per base model: accepted or not, and why (stdout unless `file`; looked up when called)."""
    for base, d in decisions.items():
        state = "accepted" if d.accepted else "not used"
        print(f"{base}: {state}: {d.reason}", file=file or sys.stdout)


def _adapt_stale(profile, name: str, file=None) -> None:
    """Adapt the base models of `name` that have corrections no adaptation saw, saying so before each (seconds)."""
    def starting(base: str) -> None:
        print(f"learning your handwriting with {base} from {profile.db.count()} corrections...", file=sys.stderr,
              flush=True)

    _say_decisions(profile.adapt_if_stale(name, on_start=starting), file=file)


def _teach(args) -> int:
    """--correct, --adapt, --profile-stats, --profile-reset, --corrections: the profile commands."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from recognizer.profile import stats_lines

    store = ModelStore(args.models_dir)
    try:
        profile = _open_profile(args, store, create=True)
        reads_only = args.profile_stats or (args.corrections and args.corrections[0] in ("list", "export"))
        if not reads_only:
            profile.db.check_writable()
        rec = Recognizer(store, threshold=args.threshold, profile=profile, source=args.source)
        name = rec.resolve_model(args.model)
        if args.profile_stats:
            stats = profile.stats(name)
            print(json.dumps(stats) if args.json else "\n".join(stats_lines(stats)))
            return 0
        if args.profile_reset:
            kept = profile.reset(keep_export=not args.discard)
            print(f"forgot the handwriting of {profile.folder}" + (f"; corrections kept in {kept}" if kept else ""))
            return 0
        if args.corrections:
            return _corrections(profile, name, args.corrections)
        if args.adapt:
            decisions = profile.adapt(name)
            for base, d in decisions.items():
                print(f"{base}: {d.corrections} corrections; judged on ones each fit did not see: shipped model "
                      f"{d.held_out_errors_before} wrong, adapted {d.held_out_errors_after} wrong")
            _say_decisions(decisions)
            return 0 if any(d.accepted for d in decisions.values()) else 1
        return _correct(profile, rec, name, args.correct)
    except RecognizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _correct(profile, rec, name: str, pairs: list[str]) -> int:
    """Store the right text of each image whose segmentation gives as many digits; report the others."""
    failed = stored = 0
    for path, text in zip(pairs[::2], pairs[1::2]):
        try:
            reading = rec.read(path, model=name)
            ids = profile.correct_reading(reading, text, source="cli", image=path)
        except RecognizerError as exc:
            failed += 1
            msg = str(exc)
            print(f"error: {msg if msg.startswith(path) else f'{path}: {msg}'}", file=sys.stderr)
            continue
        stored += len(ids)
        print(f"{path}: read {reading.text!r}, stored {len(ids)} digit(s) as {text!r}")
    if stored:
        _say_decisions(profile.adapt(name))
    return 1 if failed else 0


def _corrections(profile, name: str, spec: list[str]) -> int:
    """list, export, import, delete; an import or a delete adapts `name` again at once, so that the next reading
    does not."""
    action, arg = spec[0], (spec[1] if len(spec) > 1 else None)
    if action == "list":
        for c in profile.db.corrections():
            s = c.summary()
            print(f"{s['id']:>5}  {s['created']}  {s['label']} (read {s['read'] if s['read'] is not None else '-'})"
                  f"  {s['model']}  {s['source']}")
        return 0
    if action == "export":
        n, path = profile.db.export(arg)
        print(f"exported {n} corrections to {path}")
        return 0
    if action == "import":
        added, known = profile.db.import_file(arg)
        print(f"imported {added} corrections from {arg}" + (f" ({known} already there)" if known else ""))
        _adapt_stale(profile, name)
        return 0
    if not profile.delete(int(arg)):
        print(f"error: no correction {arg} in {profile.folder} (see --corrections list)", file=sys.stderr)
        return 1
    print(f"deleted correction {arg}; the adaptation is redone from the rest")
    _adapt_stale(profile, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
