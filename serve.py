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

  curl -F image=@digits.png http://127.0.0.1:8000/api/read
  curl --data-binary @digits.png 'http://127.0.0.1:8000/api/read?model=cnn&threshold=0.8'
  curl http://127.0.0.1:8000/api/models

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


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("serve")
    import uvicorn

    from web import create_app

    if exposed(args.host):
        log.warning("listening on %s: the page and the API are reachable from the network, with no login; "
                    "use --host 127.0.0.1 to keep them on this machine", args.host)
    app = create_app(args.models_dir, max_body=int(args.max_body_mb * 2**20),
                     max_pixels=int(args.max_megapixels * 1e6), workers=args.workers)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    log.info("page at http://%s:%d/  API docs at /docs", shown, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False,
                server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
