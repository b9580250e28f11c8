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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

DEFAULTS: dict = {
    # where the SQLite file lives when DATABASE_URL is not set
    "INSTANCE": None,
    "DATABASE_URL": None,
    "REDIS_URL": None,
    # rq queue name used in production mode
    "QUEUE": "hookshop",
    # the rq queues of plugins' jobs (engine.jobs.enqueue) that `hookshop worker` works as well
    "JOB_QUEUES": ["email"],
    # seconds the web process waits for Redis when it enqueues stage hooks (connect, then read);
    # if Redis does not answer in time the request still succeeds and the sweeper delivers the events
    "REDIS_ENQUEUE_TIMEOUT": 2.0,
    # production mode: seconds a relay job waits before its first claim, while its "waiting" flag is still
    # set, so the events committed meanwhile join its batch instead of costing a job each (0: claim at once)
    "RELAY_GATHER_SECONDS": 0.05,
    # embedded mode: seconds a `hookshop` command (at its end) or the process (at exit) waits for
    # the background delivery thread; what is left stays in the outbox for the sweeper
    "DELIVERY_DRAIN_TIMEOUT": 30.0,
    # plugins (entry-point names) that must not be loaded
    "PLUGINS_DISABLED": [],
    # when set, only these plugins (entry-point names) are loaded, the others are listed as off (an
    # allow-list: a package installed by accident stays out); the core's own are always loaded
    "PLUGINS_ALLOWED": None,
    # log every hook call (logger hookshop.plugins.trace): its name, the plugins that ran and the time taken
    "TRACE_PLUGINS": False,
    # coupons: {"CODE": {"category": "welcome", "percent_off": 10}} (or "amount_off" in minor units)
    "COUPONS": {"WELCOME10": {"category": "welcome", "percent_off": 10}},
    # a customer whose total spent reaches this (minor units) is flagged vip
    "VIP_THRESHOLD": 100_000,
    # per currency instead ({"EUR": 100000, "JPY": 15000000}); a currency left out has no vip threshold
    "VIP_THRESHOLDS": {},
    # or by orders: a customer with at least "count" orders (not cancelled, this one included) placed within
    # "period" (an ISO 8601 duration in days or weeks) is flagged vip ({"count": 5, "period": "P365D"}); unset: off
    "VIP_ORDERS": None,
    # delivered orders are completed when the follow-up is sent; with no
    # follow-up configured they are completed at once
    "FOLLOWUP_DAYS": 0,
    # the same delay as an ISO 8601 duration (P7D, PT36H, P1M); it wins over FOLLOWUP_DAYS when set
    "FOLLOWUP_AFTER": None,
    # outbox retries: delays in seconds between attempts, then the event is dead
    "OUTBOX_RETRY_DELAYS": [10, 60, 300, 1800, 3600, 3600, 3600],
    # Idempotency-Key records are kept at least this long
    "IDEMPOTENCY_TTL_HOURS": 24,
    # a server process trusts an API key it looked up for this many seconds without asking the database
    # again: a key revoked by another process (`hookshop revoke-api-key`) is refused within that time;
    # 0: look the key up on every request
    "API_KEY_CACHE_SECONDS": 1.0,
    "SECRET_KEY": None,
    # the admin's session cookie is Secure (sent over HTTPS only; browsers also send it to http://127.0.0.1
    # and http://localhost); set to false only behind a plain-HTTP proxy you trust
    "COOKIE_SECURE": True,
    # reverse proxies in front of hookshop that set X-Forwarded-For/-Proto (werkzeug's ProxyFix trusts this
    # many hops): the client's address (login throttling, logs) and scheme come from them; 0: none
    "PROXY_COUNT": 0,
    # outbound HTTP (engine.outbound): networks a guarded client may call although they are not public,
    # for every plugin ("true", or "127.0.0.0/8, ::1"); None: public addresses only
    "OUTBOUND_ALLOW_PRIVATE_TARGETS": None,
    # failed admin logins allowed (Flask-Limiter notation) per address and e-mail, and per address
    "ADMIN_LOGIN_LIMIT": "5 per minute",
    "ADMIN_LOGIN_LIMIT_PER_ADDRESS": "30 per minute",
    # hostile input (engine/api/limits.py): the largest request body in bytes (Flask's own setting, also
    # waitress's limit in `hookshop serve`) and the deepest JSON nesting; beyond them 413 and 400
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "JSON_MAX_DEPTH": 32,
    # the shop's public base URL (https://shop.example.com): absolute links for customers (tracking
    # pages) are built on it, never on a request's Host header; unset: links are relative paths
    "PUBLIC_URL": None,
    # log lines of `hookshop serve` and `hookshop worker`: "text", or "json" (one object per line, with the
    # request id; the production setting); both redact secrets, card numbers and e-mail addresses
    "LOG_FORMAT": "text",
    # GET /healthz answers 503 when the oldest due outbox event has waited longer than this (seconds)
    "HEALTH_MAX_OUTBOX_LAG": 300.0,
    # returns (RMA): a return opened by staff through the API is approved at once unless this is true
    # (a customer's request through the public page always waits for staff to approve it)
    "RETURNS_REQUIRE_APPROVAL": False,
    # the location code damaged returned units go to (received with condition "damaged")
    "RETURNS_QUARANTINE_LOCATION": "MAIN/QUARANTINE",
    # generated serial numbers (POST /stock/receipts with generate: true): fields {sku}, {yyyy}, {yy}, {mm},
    # {seq} (the product's counter, format spec allowed: {seq:06d}); an ISO 7064 Mod 37,36 check character
    # is appended (engine/services/serials.py)
    "SERIAL_PATTERN": "{sku}-{yyyy}{seq:06d}",
    # who is told of low stock besides the staff users with the warehouse role (comma separated e-mails;
    # recorded on each stock alert and in the stock_low hook's payload: docs/design-decisions.md)
    "WAREHOUSE_EMAIL": None,
}

_LIST_KEYS = {"PLUGINS_DISABLED", "PLUGINS_ALLOWED", "JOB_QUEUES"}
_INT_KEYS = {"PROXY_COUNT", "VIP_THRESHOLD", "FOLLOWUP_DAYS", "IDEMPOTENCY_TTL_HOURS", "MAX_CONTENT_LENGTH", "JSON_MAX_DEPTH"}
_JSON_KEYS = {"COUPONS", "OUTBOX_RETRY_DELAYS", "VIP_THRESHOLDS", "VIP_ORDERS"}
_BOOL_KEYS = {"TRACE_PLUGINS", "COOKIE_SECURE"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
_FLOAT_KEYS = {"REDIS_ENQUEUE_TIMEOUT", "RELAY_GATHER_SECONDS", "DELIVERY_DRAIN_TIMEOUT", "HEALTH_MAX_OUTBOX_LAG", "API_KEY_CACHE_SECONDS"}


def _coerce(key: str, value):
    if not isinstance(value, str):
        return value
    if key in _LIST_KEYS:
        return [v.strip() for v in value.split(",") if v.strip()]
    if key in _INT_KEYS:
        return int(value)
    if key in _FLOAT_KEYS:
        return float(value)
    if key in _BOOL_KEYS:
        if value.strip().lower() not in _TRUE + _FALSE:
            raise ValueError(f"HOOKSHOP_{key} must be 1/true/yes/on or 0/false/no/off, not {value!r}")
        return value.strip().lower() in _TRUE
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


def followup_delay(settings: dict):
    """How long after delivery an order gets its follow-up and is completed: ``FOLLOWUP_AFTER`` (ISO 8601,
    parsed by isodate; a timedelta, or an ``isodate.Duration`` for months and years) or ``FOLLOWUP_DAYS``;
    None when follow-ups are off. ``ValueError`` for a duration that is not ISO 8601 or not positive."""
    value = settings.get("FOLLOWUP_AFTER")
    if value in (None, ""):
        days = int(settings.get("FOLLOWUP_DAYS") or 0)
        return timedelta(days=days) if days > 0 else None
    if isinstance(value, timedelta):
        delay = value
    else:
        import isodate

        try:
            delay = isodate.parse_duration(str(value).strip())
        except (isodate.ISO8601Error, ValueError) as exc:
            raise ValueError(f"HOOKSHOP_FOLLOWUP_AFTER must be an ISO 8601 duration such as P7D or PT36H, "
                             f"not {value!r}") from exc
    probe = datetime(2000, 1, 1, tzinfo=UTC)
    if probe + delay <= probe:
        raise ValueError(f"HOOKSHOP_FOLLOWUP_AFTER must be a positive duration, not {value!r}")
    return delay


def database_uri(settings: dict, instance_path: str) -> str:
    """The SQLAlchemy URI: DATABASE_URL (postgresql:// means psycopg 3; a URL naming its driver, e.g.
    postgresql+psycopg2://, is kept) or the instance SQLite file."""
    url = settings.get("DATABASE_URL")
    if not url:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return "sqlite:///" + str(Path(instance_path) / "hookshop.sqlite")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
