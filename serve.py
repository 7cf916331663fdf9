#!/usr/bin/env python3
"""Serve the drawing page and the JSON API over the recognizer (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from common.names import DEFAULT_MODELS_DIR

EPILOG = """examples:
  python serve.py                                   page at http://127.0.0.1:8000/ (this machine only)
  python serve.py --port 8080 --models-dir models
  python serve.py --host 0.0.0.0                    reachable from the network (logs a warning)
  python serve.py --learn                           click a digit on the page to correct it; it learns your hand
  python serve.py --profile none                    read with the shipped models alone

  curl -F image=@digits.png http://127.0.0.1:8000/api/read
  curl --data-binary @digits.png 'http://127.0.0.1:8000/api/read?model=cnn&threshold=0.8'
  curl http://127.0.0.1:8000/api/models
  curl -F image=@digits.png -F text=?7? http://127.0.0.1:8000/api/corrections      (with --learn)
  curl http://127.0.0.1:8000/api/profile            counts, error rate before/after adaptation, state
  curl -X DELETE http://127.0.0.1:8000/api/profile  forget the handwriting (exported first; ?keep=false not)
  curl http://127.0.0.1:8000/api/corrections        the corrections stored, newest first
  curl -X DELETE http://127.0.0.1:8000/api/corrections/12   remove one (with --learn)

API docs (work offline): http://127.0.0.1:8000/docs   schema: /openapi.json
"""


def parse_args(argv=None) -> argparse.Namespace:
    from web import upload

    p = argparse.ArgumentParser(prog="serve.py", description="Draw digits in a browser and read them; "
                                "POST images to /api/read for the same JSON as recognize.py --json.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--models-dir", default=DEFAULT_MODELS_DIR, help="folder with the trained models (default models)")
    p.add_argument("--max-body-mb", type=float, default=upload.MAX_BODY / 2**20,
                   help="largest request body in MiB (default %(default).0f)")
    p.add_argument("--max-megapixels", type=float, default=upload.MAX_PIXELS / 1e6,
                   help="largest image in megapixels, against decompression bombs (default %(default).0f)")
    p.add_argument("--workers", type=int, default=None,
                   help="readings run at the same time (default: the number of CPUs, at least 2)")
    p.add_argument("--profile", default=None, metavar="DIR|none",
                   help="the writer's profile folder (default: $DIGITS_PROFILE, else one per user in the platform's "
                        "user data folder); 'none' reads with the shipped models alone. Without --learn it is only "
                        "read, and only if it exists")
    p.add_argument("--learn", action="store_true",
                   help="accept corrections from the page and the API (POST /api/corrections) and adapt to them; "
                        "for single-user local use")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = p.parse_args(argv)
    if not 1 <= args.port <= 65535:
        p.error("--port must be between 1 and 65535")
    if args.max_body_mb <= 0 or args.max_megapixels <= 0:
        p.error("--max-body-mb and --max-megapixels must be positive")
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be at least 1")
    return args


def exposed(host: str) -> bool:
    """True when `host` is not a loopback address: other machines can reach the server."""
    if host in ("localhost", ""):
        return host == ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return True


def open_profile(spec, store, learn: bool, log):
    """The profile to read (and with `learn`, to teach) with, or None. Without --learn a profile that does not
    exist is not made; with --learn one must be usable (RecognizerError says why not)."""
    from common.names import PROFILE_DB
    from recognizer import RecognizerError
    from recognizer.profile import Profile, resolve_profile_dir

    folder = resolve_profile_dir(spec)
    if folder is None:
        if learn:
            raise RecognizerError("--learn needs a profile to keep the corrections in; drop --profile none")
        log.info("no profile: reading with the shipped models alone")
        return None
    if not learn and not (folder / PROFILE_DB).is_file():
        log.info("no profile at %s yet: reading with the shipped models (--learn starts one)", folder)
        return None
    try:
        profile = Profile(folder, store)
        if learn:
            profile.db.check_writable()
    except RecognizerError as exc:
        if learn:
            raise
        log.warning("the profile at %s cannot be used (%s): reading with the shipped models alone", folder, exc)
        return None
    if profile.moved_aside is not None:
        log.warning("the profile database could not be read; it was moved to %s and a new one started",
                    profile.moved_aside)
    log.info("profile %s: %s", folder, "learning from corrections (--learn)" if learn else
             "reading with its adaptation; corrections are off (--learn turns them on)")
    return profile


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("serve")
    import uvicorn

    from web import create_app

    from recognizer import ModelStore, RecognizerError

    if exposed(args.host):
        log.warning("listening on %s: the page and the API are reachable from the network, with no login; "
                    "use --host 127.0.0.1 to keep them on this machine", args.host)
    store = ModelStore(args.models_dir)
    try:
        profile = open_profile(args.profile, store, args.learn, log)
    except RecognizerError as exc:
        log.error("%s", exc)
        return 2
    if args.learn and exposed(args.host):
        log.warning("--learn on %s: corrections change one writer's profile; it is meant for single-user local "
                    "use (changes are accepted only through http://127.0.0.1:%d/ or the address given to "
                    "--host)", args.host, args.port)
    app = create_app(args.models_dir, store=store, max_body=int(args.max_body_mb * 2**20),
                     max_pixels=int(args.max_megapixels * 1e6), workers=args.workers, profile=profile,
                     learn=args.learn, host=args.host)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    log.info("page at http://%s:%d/  API docs at /docs", shown, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False,
                server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
