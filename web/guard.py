"""Refuse cross-site requests and DNS rebinding on the endpoints that change a profile.

Why: a server on 127.0.0.1 is reachable from every web page the user visits. Another site cannot read its
answers (no CORS headers), but it can *send* a multipart form POST, and a site whose name it makes resolve to
127.0.0.1 (DNS rebinding) is same-origin with itself. So every request that changes a profile must name this
server in ``Host`` (a loopback name or the address it was started on, and its port), and, when the browser
says where the request comes from (``Origin``, ``Sec-Fetch-Site``), come from this server's own page. curl and
scripts send no ``Origin``: they are the user's own programs and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import ApiError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("", "0.0.0.0", "::")


def allowed_names(host: str | None = None) -> frozenset[str]:
    """Host names a request may use: the loopback ones and the address the server listens on (not a wildcard)."""
    names = set(LOOPBACK_NAMES)
    if host and host.strip("[]").lower() not in WILDCARDS:
        names.add(host.strip("[]").lower())
    return frozenset(names)


def _split(netloc: str) -> tuple[str, int | None]:
    """("name", port or None) of a "name[:port]" or "[v6]:port"; ValueError when malformed."""
    parts = urlsplit("//" + netloc)
    if not parts.hostname or parts.username is not None or parts.path or parts.query:
        raise ValueError(netloc)
    return parts.hostname.lower(), parts.port


def check(request, names: frozenset[str], what: str = "change the profile") -> None:
    """ApiError(403) unless `request` names this server in Host and comes from its own page (or from no page)."""
    server = request.scope.get("server")
    port = int(server[1]) if server and len(server) > 1 and server[1] else None
    host = request.headers.get("host", "")
    try:
        name, hport = _split(host)
    except ValueError:
        name, hport = "", None
    own = f"http://{host}"
    if name not in names or (port is not None and (hport or 80) != port):
        raise ApiError(403, f"refused: requests that {what} must be addressed to this server by "
                            f"http://127.0.0.1:{port or 'PORT'}/ (or localhost), not Host {host!r}; this guards "
                            "against DNS rebinding", reason="host")
    origin = request.headers.get("origin")
    if origin is not None:
        o = urlsplit(origin)
        try:
            oname, oport = (o.hostname or "").lower(), o.port
        except ValueError:
            oname, oport = "", None
        if o.scheme != "http" or oname not in names or (port is not None and (oport or 80) != port):
            raise ApiError(403, f"refused: a page from {origin} may not {what}; only this server's own page "
                                f"({own}) may (cross-site request)", reason="origin")
    elif request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise ApiError(403, f"refused: a request from another site may not {what} (cross-site request)",
                       reason="origin")
