"""Hostile input, refused at the edge before any view (or plugin) sees it.

* The body is at most ``MAX_CONTENT_LENGTH`` bytes (Flask's own setting, default
  1 MiB): a larger ``Content-Length`` is a 413 before a byte of the body is read;
  a chunked body is cut off with a 413 as soon as it grows past the limit.
* No NUL character anywhere: not in the path, the query string, a header, or the
  body (raw, escaped as ``\\u0000`` in JSON, or ``%00`` in a form). PostgreSQL's
  text cannot hold one, and no field of ours has a use for it. Lone UTF-16
  surrogates escaped in JSON (``\\ud800``) are refused too: no database encodes them.
* JSON is nested at most ``JSON_MAX_DEPTH`` levels (default 32).

The body checks are byte scans, never a parse: a signed webhook's body is only
parsed by its plugin after the signature is verified, and placement parses its
body once (webargs). Each scan starts with a ``bytes.count``/``in`` test that a
normal body passes at C speed; the slower path only runs on bodies that need it.

Path ids go through :class:`Int64Converter` (registered as Flask's ``int``), so
an id beyond a 64-bit signed column is a 404, never a database error. Names in
paths go through :class:`SegmentConverter`: bounded, and never one of the static
routes beside them.
"""

from __future__ import annotations

import builtins
import itertools
import json
import re

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import BaseConverter, IntegerConverter, UnicodeConverter

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

_ESCAPED_BACKSLASH = b"\\\\"
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SURROGATE_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# +1 for an opening bracket, -1 for a closing one, by byte value (other bytes are deleted first)
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Int64Converter(IntegerConverter):
    """``<int:...>`` bounded to a 64-bit signed column: beyond it the route does not match (404).

    ASCII digits only (werkzeug's ``\\d`` also takes other scripts' digits)."""

    regex = r"[0-9]+"
    signed_regex = r"-?[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        low = INT64_MIN if signed else 0
        super().__init__(map, fixed_digits=fixed_digits,
                         min=low if min is None else builtins.max(min, low),
                         max=INT64_MAX if max is None else builtins.min(max, INT64_MAX), signed=signed)


def int64_param_schema(converter: Int64Converter) -> dict:
    """The OpenAPI schema of an ``<int:...>`` path parameter."""
    return {"type": "integer", "format": "int64", "minimum": converter.min, "maximum": converter.max}


class SegmentConverter(UnicodeConverter):
    """``<segment(maxlength=64, exclude='receipts'):sku>``: a path segment like ``string``, but never ``exclude``.

    ``exclude`` (comma separated) names the static routes beside it: without it ``GET /stock/receipts``
    would fall through to ``/stock/<sku>`` (``POST /stock/receipts`` exists), while the OpenAPI document
    (a concrete path matches before a templated one) says it is a 405."""

    def __init__(self, map, minlength=1, maxlength=None, length=None, exclude=""):
        super().__init__(map, minlength, maxlength, length)
        self.excluded = [name for name in exclude.split(",") if name]
        if self.excluded:
            self.regex = "(?!(?:" + "|".join(re.escape(name) for name in self.excluded) + ")$)" + self.regex


def segment_param_schema(converter: SegmentConverter) -> dict:
    """The OpenAPI schema of a ``<segment(...):...>`` path parameter."""
    bounds = re.findall(r"{([^}]*)}", converter.regex)[-1].split(",")  # {min,max}, {min,} or {length}
    schema = {"type": "string", "minLength": int(bounds[0])}
    if len(bounds) == 1 or bounds[1]:
        schema["maxLength"] = int(bounds[-1])
    # (the excluded names are not documented with "not": those paths are the static routes, which the
    # document lists on their own; a client sending one reaches that route, as OpenAPI says it would)
    return schema


def refuse(status: int, code: str, message: str, errors: dict | None = None) -> Response:
    body = {"code": code, "message": message, "errors": errors or {}}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _too_large() -> RequestEntityTooLarge:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return RequestEntityTooLarge(f"the request body is larger than {limit} bytes (MAX_CONTENT_LENGTH)")


def screen_head():
    """Before authentication: the declared size, and NUL in the path, the query string and the headers."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise _too_large()
    if limit is not None and _chunked():
        # werkzeug stops reading a stream at the limit without saying whether more was coming: let it read
        # one byte more, and screen_body refuses a body that got it
        request.max_content_length = limit + 1
    if "\x00" in request.path:
        return refuse(400, "nul_character", "the path contains a NUL character (%00)", {"_path": ["NUL"]})
    query = request.query_string
    if b"%00" in query or b"\x00" in query:
        return refuse(400, "nul_character", "the query string contains a NUL character (%00)",
                      {"_query": ["NUL"]})
    for name, value in request.headers.items():
        if "\x00" in value:
            return refuse(400, "nul_character", f"the {name} header contains a NUL character", {name: ["NUL"]})
    return None


def screen_body():
    """After authentication: NUL, lone surrogates and the nesting depth of the body (a byte scan)."""
    if request.content_length is None and not _chunked():
        return None
    try:
        body = request.get_data(cache=True)  # bounded: at most MAX_CONTENT_LENGTH (+ 1 when chunked)
    except RequestEntityTooLarge:
        raise _too_large() from None
    if not body:
        return None
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and len(body) > limit:
        raise _too_large()
    if b"\x00" in body:
        return refuse(400, "nul_character", "the body contains a NUL byte", {"_body": ["NUL"]})
    mimetype = request.mimetype
    if mimetype == "application/x-www-form-urlencoded" and b"%00" in body:
        return refuse(400, "nul_character", "the form contains a NUL character (%00)", {"_body": ["NUL"]})
    if not _looks_like_json(body, mimetype):
        return None
    if b"\\" in body:
        # neutralise escaped backslashes first (left to right, as JSON reads them), so that every backslash
        # left starts an escape; "//" keeps what stood on either side apart
        text = body.replace(_ESCAPED_BACKSLASH, b"//")
        if b"\\u0000" in text:
            return refuse(400, "nul_character", "the JSON body contains a NUL character (\\u0000): text fields "
                          "cannot hold it", {"_body": ["NUL"]})
        if (b"\\ud" in text or b"\\uD" in text) and _LONE_SURROGATE.search(_SURROGATE_PAIR.sub(b"", text)):
            return refuse(400, "invalid_unicode", "the JSON body contains a lone UTF-16 surrogate (\\ud800 to "
                          "\\udfff without its pair): it is not a character", {"_body": ["lone surrogate"]})
    else:
        text = body
    max_depth = current_app.config.get("JSON_MAX_DEPTH") or 32
    if text.count(b"[") + text.count(b"{") > max_depth and _depth(text) > max_depth:
        return refuse(400, "json_too_deep", f"the JSON body is nested more than {max_depth} levels deep",
                      {"_body": [f"at most {max_depth} levels of arrays and objects"]})
    return None


def _chunked() -> bool:
    return request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _looks_like_json(body: bytes, mimetype: str) -> bool:
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return True
    return body.lstrip()[:1] in (b"{", b"[")


def _depth(text: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside JSON strings (escaped backslashes neutralised)."""
    brackets = _JSON_STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


class LocationPathConverter(BaseConverter):
    """``<location_path:path>``: a location's path in a URL, slashes included (``MAIN/A-01-3``).

    At most 64 characters (the column), never starting or ending with ``/`` nor holding ``//``, and no
    ``.`` (no segment of a path has one): so ``/locations/labels.pdf`` is only the label sheet's route,
    and its ``Allow`` names only that route's methods. What the path format allows beyond that is the
    service's to say (an unknown path is a 404)."""

    part_isolating = False
    regex = r"[^/.](?:[^/.]|/(?=[^/.])){0,63}"
    weight = 200


def location_path_param_schema(_converter: LocationPathConverter) -> dict:
    """The OpenAPI schema of a ``<location_path:...>`` path parameter."""
    return {"type": "string", "minLength": 1, "maxLength": 64,
            "description": "a location path, e.g. MAIN/A-01-3 (its slashes are part of the URL's path)"}


class CodePathConverter(BaseConverter):
    """``<code_path:code>``: a scanned code or a serial in a URL, slashes included (a bin path scanned
    from its label, a supplier's serial with a slash): at most 200 characters, never starting or ending
    with ``/`` nor holding ``//``; longer is a 404, like any URL that names nothing."""

    part_isolating = False
    regex = r"[^/](?:[^/]|/(?=[^/])){0,199}"
    weight = 200


def code_path_param_schema(_converter: CodePathConverter) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": 200,
            "description": "a serial or a scanned code (slashes allowed, as in MAIN/A-01-3)"}
