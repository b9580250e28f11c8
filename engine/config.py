"""Configuration: defaults are the embedded mode (SQLite file, stage hooks on a background thread).

Every setting can come from the environment as ``HOOKSHOP_<NAME>`` (plus
``DATABASE_URL`` and ``REDIS_URL``), or from a TOML file named by
``HOOKSHOP_CONFIG``. Precedence: explicit ``create_app(config)`` mapping >
environment > TOML file > defaults.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

DEFAULTS: dict = {
    # where the SQLite file lives when DATABASE_URL is not set
    "INSTANCE": None,
    "DATABASE_URL": None,
    "REDIS_URL": None,
    # rq queue name used in production mode
    "QUEUE": "hookshop",
    # seconds the web process waits for Redis when it enqueues stage hooks (connect, then read);
    # if Redis does not answer in time the request still succeeds and the sweeper delivers the events
    "REDIS_ENQUEUE_TIMEOUT": 2.0,
    # embedded mode: seconds a `hookshop` command (at its end) or the process (at exit) waits for
    # the background delivery thread; what is left stays in the outbox for the sweeper
    "DELIVERY_DRAIN_TIMEOUT": 30.0,
    # plugins (entry-point names) that must not be loaded
    "PLUGINS_DISABLED": [],
    # coupons: {"CODE": {"category": "welcome", "percent_off": 10}} (or "amount_off" in minor units)
    "COUPONS": {"WELCOME10": {"category": "welcome", "percent_off": 10}},
    # a customer whose total spent reaches this (minor units) is flagged vip
    "VIP_THRESHOLD": 100_000,
    # per currency instead ({"EUR": 100000, "JPY": 15000000}); a currency left out has no vip threshold
    "VIP_THRESHOLDS": {},
    # delivered orders are completed when the follow-up is sent; with no
    # follow-up configured they are completed at once
    "FOLLOWUP_DAYS": 0,
    # outbox retries: delays in seconds between attempts, then the event is dead
    "OUTBOX_RETRY_DELAYS": [10, 60, 300, 1800, 3600, 3600, 3600],
    # Idempotency-Key records are kept at least this long
    "IDEMPOTENCY_TTL_HOURS": 24,
    "SECRET_KEY": None,
    # hostile input (engine/api/limits.py): the largest request body in bytes (Flask's own setting, also
    # waitress's limit in `hookshop serve`) and the deepest JSON nesting; beyond them 413 and 400
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "JSON_MAX_DEPTH": 32,
    # the shop's public base URL (https://shop.example.com): absolute links for customers (tracking
    # pages) are built on it, never on a request's Host header; unset: links are relative paths
    "PUBLIC_URL": None,
    # who is told of low stock besides the staff users with the warehouse role (comma separated e-mails;
    # recorded on each stock alert and in the stock_low hook's payload: docs/design-decisions.md)
    "WAREHOUSE_EMAIL": None,
}

_LIST_KEYS = {"PLUGINS_DISABLED"}
_INT_KEYS = {"VIP_THRESHOLD", "FOLLOWUP_DAYS", "IDEMPOTENCY_TTL_HOURS", "MAX_CONTENT_LENGTH", "JSON_MAX_DEPTH"}
_JSON_KEYS = {"COUPONS", "OUTBOX_RETRY_DELAYS", "VIP_THRESHOLDS"}
_FLOAT_KEYS = {"REDIS_ENQUEUE_TIMEOUT", "DELIVERY_DRAIN_TIMEOUT"}


def _coerce(key: str, value):
    if not isinstance(value, str):
        return value
    if key in _LIST_KEYS:
        return [v.strip() for v in value.split(",") if v.strip()]
    if key in _INT_KEYS:
        return int(value)
    if key in _FLOAT_KEYS:
        return float(value)
    if key in _JSON_KEYS:
        return json.loads(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def load_settings(overrides: dict | None = None, environ=None) -> dict:
    """Merge defaults, the TOML file, the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    toml_path = environ.get("HOOKSHOP_CONFIG")
    if toml_path:
        with open(toml_path, "rb") as fh:
            data = tomllib.load(fh)
        settings.update({k.upper(): v for k, v in data.items()})
    for name, value in environ.items():
        if name.startswith("HOOKSHOP_") and name != "HOOKSHOP_CONFIG":
            settings[name[len("HOOKSHOP_"):]] = value
    for name in ("DATABASE_URL", "REDIS_URL"):
        if environ.get(name):
            settings[name] = environ[name]
    settings.update(overrides or {})
    return {k: _coerce(k, v) for k, v in settings.items()}


def public_url(settings: dict) -> str | None:
    """``PUBLIC_URL`` without a trailing slash; ``ValueError`` unless it is an absolute http(s) URL."""
    value = settings.get("PUBLIC_URL")
    if not value:
        return None
    parts = urlsplit(str(value).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise ValueError(f"HOOKSHOP_PUBLIC_URL must be an absolute http(s) URL such as https://shop.example.com "
                         f"(no query, no credentials), not {value!r}")
    return str(value).strip().rstrip("/")


def database_uri(settings: dict, instance_path: str) -> str:
    """The SQLAlchemy URI: DATABASE_URL (postgresql:// means psycopg 3) or the instance SQLite file."""
    url = settings.get("DATABASE_URL")
    if not url:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return "sqlite:///" + str(Path(instance_path) / "hookshop.sqlite")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
