"""Request body -> Pillow image, in memory only, with limits a client cannot get around.

Why this module exists: Starlette's form parser spools uploads over 1 MB to temporary files on disk, and
Pillow left alone decodes any format it knows (EPS through Ghostscript, among others) at any size. Here the
body is read with a byte limit (checked against Content-Length first, then counted, so chunked uploads are
bounded too), a multipart body is split in memory, and the image is opened with Pillow restricted to the
formats a drawing or photo comes in; its pixel count is checked from the header *before* anything is
decoded (a 20,000 x 20,000 PNG is a few kilobytes). The decoded Pillow image is handed to the recognizer
as it is (``recognizer.images.load_gray`` accepts Pillow images): no preprocessing happens here.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field

from .errors import ApiError

log = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG", "BMP", "WEBP")   # what the API accepts (Pillow format names)
MAX_BODY = 10 * 1024 * 1024                # bytes of request body
MAX_PIXELS = 40_000_000                    # width x height: a 48-megapixel phone photo would be refused
DRAIN_LIMIT = 128 * 1024 * 1024            # an over-size body is read and dropped up to this, so that the
                                           # client gets its 413 instead of a reset connection
MAX_PARTS = 16
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"), (b"RIFF", "WEBP"))
IMAGE_FIELD = "image"
SEND_HINT = ("send the image as a multipart file field 'image' (curl -F image=@digits.png URL) "
             "or as the raw request body (curl --data-binary @digits.png URL)")


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: io.BytesIO = field(default_factory=io.BytesIO)


@dataclass
class Upload:
    """What a request sent: the image bytes and any form fields (model, threshold, ...)."""

    image: bytes
    fields: dict


def too_large(size: int | None, limit: int) -> ApiError:
    got = f" ({size / 1e6:.1f} MB)" if size else ""
    return ApiError(413, f"request body is too large{got}; the limit is {limit / 1e6:.0f} MB "
                         f"({limit} bytes): send a smaller image (a PNG of a drawing is usually under 100 kB)")


async def read_body(request, limit: int = MAX_BODY, drain_limit: int = DRAIN_LIMIT) -> bytes:
    """The whole request body, or ApiError(413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    size = None
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length {declared!r} is not a number") from None
    if size is not None and size > limit:
        if "100-continue" not in request.headers.get("expect", "").lower() and size <= drain_limit:
            await _drain(request, drain_limit)
        raise too_large(size, limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            await _drain(request, drain_limit - total)
            raise too_large(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(request, budget: int) -> None:
    """Read and drop the rest of a body (up to `budget` bytes): nothing of it is kept or written."""
    try:
        async for chunk in request.stream():
            budget -= len(chunk)
            if budget < 0:
                return
    except Exception:  # the stream was consumed already or the client went away: nothing to drop
        return


def split_upload(body: bytes, content_type: str) -> Upload:
    """The image bytes and form fields of a body: multipart/form-data, or the raw image itself."""
    from python_multipart.multipart import parse_options_header

    ctype, params = parse_options_header(content_type or "")
    ctype = ctype.decode("latin-1").lower() if isinstance(ctype, bytes) else str(ctype).lower()
    if ctype != "multipart/form-data":
        return Upload(image=body, fields={})
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data body without a boundary in its Content-Type; " + SEND_HINT)
    parts = _parse_multipart(body, boundary)
    fields, files = {}, {}
    for p in parts:
        if p.filename is not None or p.name == IMAGE_FIELD:
            files.setdefault(p.name, p)
        else:
            try:
                fields[p.name] = p.data.getvalue().decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ApiError(400, f"form field {p.name!r} is not UTF-8 text") from None
    if IMAGE_FIELD not in files:
        sent = sorted({p.name for p in parts})
        raise ApiError(422, f"multipart body has no field {IMAGE_FIELD!r}"
                            + (f" (fields sent: {', '.join(repr(s) for s in sent)})" if sent else " (no fields)")
                            + "; " + SEND_HINT)
    return Upload(image=files[IMAGE_FIELD].data.getvalue(), fields=fields)


def _parse_multipart(body: bytes, boundary: bytes) -> list[Part]:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    parts: list[Part] = []
    header = {"field": b"", "value": b""}
    state = {"headers": {}}

    def on_part_begin():
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, f"multipart body has more than {MAX_PARTS} parts")
        parts.append(Part())
        state["headers"] = {}

    def on_header_field(data, start, end):
        header["field"] += data[start:end]

    def on_header_value(data, start, end):
        header["value"] += data[start:end]

    def on_header_end():
        state["headers"][header["field"].decode("latin-1").lower()] = header["value"]
        header["field"], header["value"] = b"", b""

    def on_headers_finished():
        p = parts[-1]
        disp, opts = parse_options_header(state["headers"].get("content-disposition", b""))
        p.name = opts.get(b"name", b"").decode("utf-8", "replace")
        fn = opts.get(b"filename")
        p.filename = fn.decode("utf-8", "replace") if fn is not None else None  # never used as a path
        p.content_type = state["headers"].get("content-type", b"").decode("latin-1")

    def on_part_data(data, start, end):
        parts[-1].data.write(data[start:end])

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_headers_finished": on_headers_finished, "on_part_data": on_part_data}
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except (MultipartParseError, ValueError, IndexError) as exc:
        raise ApiError(400, f"malformed multipart/form-data body ({exc}); " + SEND_HINT) from None
    return parts


def open_image(data: bytes, max_pixels: int = MAX_PIXELS):
    """Decode image bytes into a Pillow image (EXIF orientation applied, as for a file), within the limits."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ApiError(400, "the request has no image: the body (or its 'image' field) is empty; " + SEND_HINT)
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        head = data[:16]
        for magic, fmt in SIGNATURES:
            if data.startswith(magic) and (fmt != "WEBP" or data[8:12] == b"WEBP"):
                raise ApiError(400, f"truncated {fmt} image: the {len(data)} bytes sent end inside its header") from None
        what = "text" if _looks_like_text(head) else "data"
        raise ApiError(400, f"not an image: the {len(data)} bytes sent look like {what}, not a "
                            f"{'/'.join(FORMATS)} image (starts with {head!r})") from None
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling (2 x MAX_IMAGE_PIXELS), checked on open
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else "too many pixels"
        raise ApiError(413, f"image is {size} (a possible decompression bomb); the limit is "
                            f"{max_pixels / 1e6:.0f} megapixels: scale it down first") from None
    except Exception as exc:  # a header Pillow chokes on: still the client's data, never a 500
        raise ApiError(400, f"unreadable image header ({type(exc).__name__}: {exc})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ApiError(413, f"image is {w} x {h} = {w * h / 1e6:.0f} megapixels; the limit is "
                            f"{max_pixels / 1e6:.0f} megapixels: scale it down first")
    if w < 1 or h < 1:
        raise ApiError(400, f"image is {w} x {h} pixels: empty")
    try:
        im.load()  # decode now: a truncated file fails here, not inside the recognizer
        return ImageOps.exif_transpose(im)
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"image has too many pixels ({exc})") from None
    except Exception as exc:  # truncated / corrupt data (OSError, SyntaxError, struct.error, ...)
        raise ApiError(400, f"unreadable or truncated {im.format} image ({type(exc).__name__}: {exc})") from None


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= 32 or c in (9, 10, 13) for c in head)


async def discard(request, limit: int = MAX_BODY) -> None:
    """Drop a request's body unread (a refused request): the client gets its answer, not a reset connection."""
    await _drain(request, min(limit, DRAIN_LIMIT))
