"""Log output of the long-running processes (``hookshop serve``, ``hookshop worker``).

``HOOKSHOP_LOG_FORMAT=json`` (the production setting) writes one JSON object per line: ``ts`` (UTC,
ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` and, inside a request, ``method`` and
``path``; an exception's traceback under ``exc``. ``text`` (the default) writes the classic
``time LEVEL logger: message`` line. Either way every message and traceback goes through
``engine.domain.privacy.redact_text``: no API key, secret, card number or full e-mail address is written,
whatever a plugin logs.

Each request gets an id: the caller's ``X-Request-Id`` when it is a sane token (a proxy's or a load
balancer's, up to 64 characters of ``[A-Za-z0-9._-]``), else a new one; it is sent back in the answer's
``X-Request-Id`` and stamped on every line logged while the request runs. In JSON mode each request
also writes one ``request`` line (status, duration in ms) when it ends.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context, request

from engine.domain.privacy import redact_text

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger("hookshop.requests")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": redact_text(record.getMessage())}
        entry.update(_request_fields())
        for key in ("status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact_text(super().format(record))
        fields = _request_fields()
        return f"{line} [request {fields['request_id']}]" if fields else line


def _request_fields() -> dict:
    if not has_request_context() or "request_id" not in g:
        return {}
    return {"request_id": g.request_id, "method": request.method, "path": request.path}


def configure(app, stream=None) -> None:
    """Route the root logger through the chosen formatter (idempotent: the handler is replaced)."""
    kind = (app.config.get("LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if kind == "json" else TextFormatter())
    handler.set_name("hookshop")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "hookshop"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    app.logger.propagate = True
    app.logger.handlers.clear()


def init_app(app) -> None:
    """Give every request an id (and, in JSON mode, an access line)."""

    @app.before_request
    def _start():
        wanted = request.headers.get("X-Request-Id", "")
        g.request_id = wanted if _SANE_ID.fullmatch(wanted) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
            if (app.config.get("LOG_FORMAT") or "text").lower() == "json":
                ms = round((time.perf_counter() - g.request_started) * 1000, 1)
                access_log.info("request", extra={"status": response.status_code, "duration_ms": ms})
        return response
