"""The REST API (``/api/v1``): flask-smorest blueprints, API keys, errors, idempotency.

Errors are always ``{"code": "<snake_case>", "message": "<a sentence>",
"errors": {...}}``: domain errors carry their own code; HTTP errors get theirs
from the status name; marshmallow's messages become ``errors`` without the
location level (``{"lines": {"0": {"sku": [...]}}}``).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import flask_smorest
from apispec import BasePlugin
from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, g, request, send_from_directory
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from sqlalchemy.exc import IntegrityError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from engine.api import limits
from engine.api.schemas import ErrorSchema
from engine.db import db, reset_write_intent, set_write_intent, transaction
from engine.errors import DomainError, Forbidden
from engine.services import auth

API_PREFIX = "/api/v1"
SIGNED_PATHS = re.compile(r"^/api/v1/(payments/[^/]+/webhook|channels/[^/]+/orders|carriers/[^/]+/tracking)$")
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _flatten(messages) -> dict:
    """webargs nests messages under the location ('json', 'query'); drop a single location level."""
    if isinstance(messages, dict) and len(messages) == 1:
        (location, inner), = messages.items()
        if location in ("json", "query", "form", "view_args", "headers") and isinstance(inner, dict):
            return inner
        if location in ("json", "query", "form") and isinstance(inner, list):
            return {"_body": inner}
    return messages if isinstance(messages, dict) else {"_body": list(messages or [])}


def error_body(code: str, message: str, errors: dict | None = None) -> dict:
    return {"code": code, "message": message, "errors": errors or {}}


class Api(SmorestApi):
    """flask-smorest's Api with hookshop's error format."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        errors = _flatten(data.get("errors") or data.get("messages") or {})
        headers = dict(data.get("headers") or {})
        code = _snake(error.name)
        if error.code == 400 and "Invalid JSON body." in json.dumps(errors):
            code, message = "invalid_json", "the request body is not valid JSON"
        elif error.code == 422:
            code = "validation_error"
            message = data.get("message") or "the request is not valid: see errors, field by field"
        else:
            message = data.get("message") or error.description or error.name
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_body(code, message, errors), error.code, headers


class ArgumentsParser(FlaskParser):
    """webargs' parser: a JSON body that ``json.loads`` refuses with a plain ValueError is invalid JSON too.

    (Python refuses to convert an integer of more than 4300 digits: that is a 400, not a 500.)"""

    def load_json(self, req, schema):
        try:
            return super().load_json(req, schema)
        except ValueError as exc:  # JSONDecodeError is handled above: this is int_max_str_digits
            return self._handle_invalid_json_error(exc, req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with hookshop's argument parser: the core's blueprints and plugins' use it."""

    ARGUMENTS_PARSER = ArgumentsParser()

    def arguments(self, schema, *args, **kwargs):
        """As flask-smorest's, with a schema class made an instance once, here: webargs makes one per request from
        a class, and each new instance makes its Nested fields' schemas anew (5-6 % of a placement's CPU).
        A marshmallow schema keeps no state between loads, so the views' threads share it; the OpenAPI is
        the same (apispec names an instance without modifiers by its class)."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)


class ErrorResponsesPlugin(BasePlugin):
    """Document 401 (and 403) on every operation that needs an API key; 401 on signed webhooks."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not path or not path.startswith(API_PREFIX):
            return
        signed = SIGNED_PATHS.match(re.sub(r"\{[^}]+\}", "x", path))
        for method, op in (operations or {}).items():
            if op.get("security") == []:  # a public operation (``public`` + ``doc(security=[])``): no key
                continue
            responses = op.setdefault("responses", {})
            if signed:
                _default(responses, "401", {"description": "missing or wrong signature", "content": _error_content()})
                continue
            _default(responses, "401", {"description": "no API key, or an unknown or revoked one",
                                        "content": _error_content()})
            _default(responses, "403", {"description": f"the API key lacks the {_scope_for(method.upper(), path)} "
                                                       "scope", "content": _error_content()})
            op.setdefault("security", [{"ApiKey": []}])


def _default(responses: dict, status: str, response: dict) -> None:
    """Document ``status`` unless the view did (its ``alt_response`` keys are ints, ``doc``'s strings)."""
    if status not in responses and int(status) not in responses:
        responses[status] = response


def _error_content() -> dict:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _scope_for(method: str, path: str, view=None) -> str:
    """The scope a request needs: ``admin`` under /admin and for views marked ``requires_scope("admin")``
    (secrets: creating or rotating channel and webhook-subscription secrets), else read or write by method."""
    if path.startswith(API_PREFIX + "/admin"):
        return "admin"
    marked = _mark(view, method, "hookshop_scope")
    if marked:
        return marked
    return "read" if method in READ_METHODS else "write"


def _mark(view, method: str, name: str):
    """An attribute set by ``public`` or ``requires_scope`` on the view (a MethodView's method, or a function)."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        view = getattr(view_class, method.lower(), None)
    while view is not None:
        value = getattr(view, name, None)
        if value:
            return value
        view = getattr(view, "__wrapped__", None)
    return None


def _authenticate():
    path = request.path
    if not path.startswith(API_PREFIX):
        return None
    if isinstance(request.routing_exception, MethodNotAllowed):
        return None  # a method the resource does not have is a 405 for everyone (the public docs list them)
    writes = request.method not in READ_METHODS
    if SIGNED_PATHS.match(path):
        return _intend_write(writes)
    view = current_app.view_functions.get(request.endpoint)
    if _mark(view, request.method, "hookshop_public"):
        return _intend_write(writes)
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        return _error(401, "unauthorized", "send your API key as 'Authorization: Bearer <key>' "
                      "(create one with 'hookshop create-api-key')")
    api_key = auth.find_api_key(header[7:].strip())
    if api_key is None:
        return _error(401, "unauthorized", "this API key is unknown or revoked")
    scope = _scope_for(request.method, path, view)
    granted = api_key.scope_set
    if "admin" in granted or "write" in granted:  # admin implies everything, write implies read
        granted = granted | {"read"} | ({"write"} if "admin" in granted else set())
    if scope not in granted and "admin" not in granted:
        return _error(403, "forbidden", f"this API key lacks the {scope!r} scope")
    g.api_key = api_key
    return _intend_write(writes)


def _intend_write(writes: bool) -> None:
    """A request that may write starts its transactions as writes (SQLite: ``BEGIN IMMEDIATE``) from here
    on. The key's lookup before this (when it was not cached) ran in a read transaction, ended here: the
    write lock is taken by the view's first statement, not held through the key lookup and validation."""
    if writes:
        session = db.session()
        if session.in_transaction() and session.get_bind().dialect.name == "sqlite":
            session.commit()
        g.write_token = set_write_intent(True)


def _release_write_intent(_exc=None):
    token = g.pop("write_token", None)
    if token is not None:
        reset_write_intent(token)


def _error(status: int, code: str, message: str, errors: dict | None = None) -> Response:
    return Response(json.dumps(error_body(code, message, errors)), status=status, mimetype="application/json")


def handle_domain_error(exc: DomainError):
    return error_body(exc.code, exc.message, exc.errors), exc.status


def handle_integrity_error(exc: IntegrityError):
    """The database refused a change (a unique key or a check): a concurrent request changed the same
    thing first. Nothing was written; the client may read the current state and try again. Outside the
    API (a plugin's own pages) it stays an unhandled error: logged (masked) and a 500."""
    if not request.path.startswith(API_PREFIX):
        raise exc
    db.session.rollback()
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or type(exc.orig).__name__
    current_app.logger.warning("database refused a change (%s) on %s %s", constraint, request.method, request.path)
    return error_body("conflict", "the change conflicts with the current state (most likely a concurrent request "
                      "changed the same data first); nothing was changed: read the resource and try again"), 409


def public(view):
    """Mark a view as needing no API key (signed webhooks verify their own signature)."""
    view.hookshop_public = True
    return view


def requires_scope(scope: str, why: str = ""):
    """Mark a view as needing ``scope`` rather than read (GET) or write (the rest); its 403 says so, and why.

    Views that create, rotate or show a secret (a channel's signing secret, a webhook subscription's)
    take ``requires_scope("admin", "...")``: a ``write`` key gets 403."""
    if scope not in ("read", "write", "admin"):
        raise ValueError(f"unknown scope {scope!r}")
    lower = {"read": "", "write": "a read key gets 403", "admin": "a read or write key gets 403"}[scope]

    def mark(view):
        view = SmorestBlueprint.doc(responses={"403": {
            "description": f"the API key lacks the {scope} scope" + (f": {why}" if why else "")
                           + (f" ({lower})" if lower else ""),
            "content": _error_content()}})(view)
        view.hookshop_scope = scope
        return view

    return mark


def require_scope(scope: str, why: str) -> None:
    """Inside a view: ``Forbidden`` (403) unless the calling key has ``scope`` (for a part of a request,
    e.g. changing where a webhook subscription's signed deliveries go)."""
    granted = g.api_key.scope_set if g.get("api_key") is not None else frozenset()
    if scope not in granted and "admin" not in granted:
        raise Forbidden(f"this API key lacks the {scope!r} scope: {why}")


def idempotent(view=None, *, record_last: bool = False):
    """Honour ``Idempotency-Key`` on a POST that creates something.

    The record is inserted first in the same transaction as the effect, so a
    concurrent twin waits on the unique key and then replays the stored first
    response. A failed request (4xx) stores nothing: it may be retried.

    ``record_last`` (order placement): the transaction looks the key up first (a replay is one
    SELECT), and writes the record once, with its answer, as its last statement (one INSERT instead
    of an INSERT and an UPDATE). On SQLite writers run one at a time, so the lookup sees a twin that
    committed. On PostgreSQL a concurrent twin does its work, waits on the unique key at that
    INSERT, rolls back and replays; a twin that failed instead (e.g. the first took the last unit)
    finds the first's record and replays it too. Only for views that call no outside service
    inside their transaction: a twin runs the view's database work once more, never its effects.
    """
    if view is None:
        return functools.partial(idempotent, record_last=record_last)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        api_key = g.get("api_key")
        if not key or api_key is None:
            return view(*args, **kwargs)
        if len(key) > 255:
            return _error(400, "bad_request", "Idempotency-Key is at most 255 characters")
        fingerprint = auth.request_fingerprint(request.method, request.path, request.get_data(cache=True))
        api_key_id = api_key.id
        try:
            with transaction():
                if record_last:  # a replay after the first committed: no work done again
                    record = auth.find_idempotent(api_key_id, key, fingerprint)
                    if record is not None:
                        return _replay(record)
                record_id = None if record_last else auth.claim_idempotent(api_key_id, key, fingerprint)
                result = view(*args, **kwargs)
                body, status = (result if isinstance(result, tuple) else (result, 200))[:2]
                if record_last:
                    record_id = auth.record_idempotent(api_key_id, key, fingerprint, status, json.dumps(body))
                else:
                    auth.finish_idempotent(record_id, status, json.dumps(body))
                g.idempotency_record_id = record_id
        except (IntegrityError, DomainError) as exc:
            if isinstance(exc, DomainError) and not record_last:
                raise
            db.session.rollback()
            record = auth.find_idempotent(api_key_id, key, fingerprint)
            if record is None:
                raise
            return _replay(record)
        return body, status

    return wrapper


def _replay(record) -> Response:
    return Response(record.response_body, status=record.status_code, mimetype="application/json",
                    headers={"Idempotent-Replayed": "true"})


DOCS_ASSETS = "/api/docs-assets"
REDOC_FOLDER = Path(__file__).resolve().parent.parent / "static" / "redoc"


def docs_assets() -> FlaskBlueprint:
    """Swagger UI's files from the swagger-ui-bundle package (the OpenAPI Initiative's distribution, as
    connexion ships it) and ReDoc's standalone bundle vendored under engine/static/redoc (no Python
    distribution of it exists): the docs pages need no network."""
    from swagger_ui_bundle import swagger_ui_path

    assets = FlaskBlueprint("docs_assets", __name__, url_prefix=DOCS_ASSETS)

    @assets.route("/swagger-ui/<path:filename>")
    def swagger_ui(filename):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)

    @assets.route("/redoc/<path:filename>")
    def redoc(filename):
        return send_from_directory(REDOC_FOLDER, filename, max_age=86400)

    return assets


def init_api(app) -> Api:
    app.config.setdefault("API_TITLE", "hookshop")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "/docs")
    # the docs pages work offline: hookshop serves their assets itself (docs_assets below)
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{DOCS_ASSETS}/swagger-ui/")
    app.config.setdefault("OPENAPI_REDOC_PATH", "/redoc")
    app.config.setdefault("OPENAPI_REDOC_URL", f"{DOCS_ASSETS}/redoc/redoc.standalone.js")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "hookshop's REST API. Authenticate with `Authorization: Bearer <api key>`. "
                                "A request body is at most MAX_CONTENT_LENGTH bytes (default 1 MiB: 413), "
                                "JSON at most JSON_MAX_DEPTH levels deep (default 32: 400 json_too_deep), and no string, path, "
                                "query or header may hold a NUL character (400 nul_character)."},
        "components": {"securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer"}}},
    })
    # every <int:...> in a route (the core's and the plugins') is bounded to a 64-bit column: beyond, a 404
    app.url_map.converters["int"] = limits.Int64Converter
    app.url_map.converters["segment"] = limits.SegmentConverter
    app.url_map.converters["location_path"] = limits.LocationPathConverter
    app.url_map.converters["code_path"] = limits.CodePathConverter
    api = Api(app, spec_kwargs={"extra_plugins": [ErrorResponsesPlugin()]})
    app.register_blueprint(docs_assets())
    api.register_converter(limits.Int64Converter, limits.int64_param_schema)
    api.register_converter(limits.SegmentConverter, limits.segment_param_schema)
    api.register_converter(limits.LocationPathConverter, limits.location_path_param_schema)
    api.register_converter(limits.CodePathConverter, limits.code_path_param_schema)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    # hostile input: size and NUL before authentication, the body's scan after it (engine/api/limits.py)
    app.before_request(limits.screen_head)
    app.before_request(_authenticate)
    app.before_request(limits.screen_body)
    app.teardown_request(_release_write_intent)

    from engine.api import (
        admin,
        catalog,
        coupons,
        customers,
        locations,
        orders,
        plugins_view,
        purchasing,
        returns,
        serials,
        stock_ops,
        webhooks,
    )

    for module in (catalog, orders, returns, customers, coupons, plugins_view, webhooks, admin, locations,
                   stock_ops, serials, purchasing):
        api.register_blueprint(module.blp)
    return api
