"""What /docs shows beyond the handlers' signatures: the request bodies, parameters, error answers and examples of
the JSON API (the handlers read their input from the raw request, so OpenAPI learns it from here)."""

from __future__ import annotations

import copy

from common.names import MODEL_NAMES
from recognizer import DEFAULT_THRESHOLD
from recognizer.paper_reader import SOURCES
from recognizer.profile_store import MAX_READING_KEY

from .learning import LEARN_HINT

THRESHOLD_HELP = f"digits less confident than this read as '?' (default {DEFAULT_THRESHOLD})"
IMAGE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "format": "binary", "description": "PNG, JPEG, BMP or WebP image"},
            "model": {"type": "string", "enum": list(MODEL_NAMES), "description": "default: the server's default"},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": THRESHOLD_HELP}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
COMPARE_BODY = copy.deepcopy(IMAGE_BODY)  # every model reads: no model field
del COMPARE_BODY["content"]["multipart/form-data"]["schema"]["properties"]["model"]
QUERY_PARAMS = [
    {"name": "model", "in": "query", "required": False,
     "schema": {"type": "string", "enum": list(MODEL_NAMES)}, "description": "model to read with"},
    {"name": "threshold", "in": "query", "required": False, "schema": {"type": "number", "minimum": 0, "maximum": 1},
     "description": THRESHOLD_HELP},
    {"name": "probabilities", "in": "query", "required": False, "schema": {"type": "boolean"},
     "description": "also answer every digit's 10 probabilities (the page's bars); off: exactly recognize.py --json"},
    {"name": "source", "in": "query", "required": False, "schema": {"type": "string", "enum": list(SOURCES)},
     "description": "canvas: one contour, one digit (drawings); paper: lines read whole (scans and photos of paper); "
                    "auto (default): paper unless the image has a drawing's flat background"},
]
TEXT_HELP = ("the right text: one character per digit read, in reading order (line breaks and spaces ignored), "
             "a digit 0-9 to teach or '?' to skip that digit; e.g. '?7?' says the 2nd of three digits is a 7")
COUNTED_HELP = ("true when the client counts this reading itself with POST /api/profile/readings, as this "
                "server's page does when a drawing is cleared (the default for requests from the page); false, the "
                "default for other clients (curl, scripts), counts the reading here, once per request")
CORRECTION_BODY = copy.deepcopy(IMAGE_BODY)
CORRECTION_BODY["content"]["multipart/form-data"]["schema"] = {"type": "object", "required": ["image", "text"],
                                                              "properties": {
    "image": {"type": "string", "format": "binary", "description": "the image that was read (PNG, JPEG, BMP, WebP)"},
    "text": {"type": "string", "description": TEXT_HELP},
    "model": {"type": "string", "enum": list(MODEL_NAMES), "description": "the model that read it (default: the "
                                                                         "server's default)"},
    "reading": {"type": "string", "maxLength": MAX_READING_KEY,
                "description": "the client's name for this reading (letters, digits, '-', '_'): a digit corrected "
                               "again under the same name replaces its earlier correction (the page sends one)"},
    "counted": {"type": "boolean", "description": COUNTED_HELP}}}
CORRECTION_PARAMS = [{"name": "text", "in": "query", "required": False, "schema": {"type": "string"},
                      "description": TEXT_HELP + " (here or as a form field)"}, QUERY_PARAMS[0]]
READINGS_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["digits"], "properties": {
        "digits": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "digits in the finished reading"},
        "adapted": {"type": "boolean", "description": "read with the writer's adaptation (the reading's 'adapted')"}}},
    "example": {"digits": 3, "adapted": False}}}}
FORBIDDEN = {403: {"description": "the server was started without --learn, or the request comes from another "
                                  "site or names another host",
                   "content": {"application/json": {"example": {
                       "error": "this server does not accept corrections: " + LEARN_HINT, "status": 403}}}}}
ERRORS = {code: {"description": text, "content": {"application/json": {"example": {"error": text, "status": code}}}}
          for code, text in ((400, "not an image, or a truncated one"),
                             (413, "body over the byte limit or image over the pixel limit"),
                             (422, "unknown model, threshold outside [0, 1], or no field 'image'"),
                             (503, "the model is missing or broken; the message says how to train it"))}
READING_EXAMPLE = {"text": "147", "digits": [
    {"digit": 1, "confidence": 0.999, "box": [61, 80, 40, 181], "top3": [[1, 0.999], [7, 0.0008], [4, 0.0001]],
     "uncertain": False, "line": 0}], "model": "cnn", "ms": 6.1}
