#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then lint (Ruff, settings in pyproject.toml) and run them.
#   .venv/ with the pinned requirements; Xvfb + xdotool for the real-window GUI tests and chromium for the
#   real-browser test of the web page (apt-get, where missing; Playwright is pointed at Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xdotool x11-apps >/dev/null) \
      || echo "warning: could not install xvfb/xdotool: the GUI window tests will be skipped" >&2
  else
    echo "warning: xvfb/xdotool missing and not root: the GUI window tests will be skipped" >&2
  fi
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium: the web page browser test will be skipped" >&2
  else
    echo "warning: chromium missing and not root: the web page browser test will be skipped" >&2
  fi
fi
.venv/bin/ruff check .  # findings fail the run (set -e) before any test starts
exec .venv/bin/python -m pytest "$@"
