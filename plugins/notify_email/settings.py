"""Settings of notify_email, read once per app by ``plugin_setup`` (see the README).

``HOOKSHOP_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_TLS`` (``off``, ``starttls``, ``ssl``),
``HOOKSHOP_MAIL_FROM``, ``HOOKSHOP_SHOP_NAME``, ``HOOKSHOP_SUPPORT_EMAIL``, ``HOOKSHOP_DEFAULT_LOCALE``,
``HOOKSHOP_WAREHOUSE_EMAIL``, ``HOOKSHOP_MAIL_RETRY_DELAYS``; links are built on the core's
``HOOKSHOP_PUBLIC_URL`` and follow-ups come after the core's ``HOOKSHOP_FOLLOWUP_AFTER``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import parseaddr

from flask import current_app

from engine.plugin_api import normalize_locale

EXTENSION = "notify_email"
TLS_MODES = ("off", "starttls", "ssl")
DEFAULT_PORTS = {"off": 25, "starttls": 587, "ssl": 465}
LANGUAGES = ("en", "tr")  # the languages the plugin's catalogs have


class SettingsError(ValueError):
    pass


@dataclass
class Settings:
    host: str | None = None
    port: int = 587
    username: str | None = None
    password: str | None = None
    tls: str = "starttls"
    mail_from: str = "hookshop <no-reply@localhost>"
    shop_name: str = "hookshop"
    support_email: str | None = None
    default_locale: str = "en"
    warehouse_email: list[str] = field(default_factory=list)
    public_url: str | None = None
    retry_delays: list[int] = field(default_factory=lambda: [60, 300, 1800, 3600, 3600, 3600])
    timeout: float = 10.0
    queue: str = "email"  # the rq queue of the sending jobs (HOOKSHOP_MAIL_QUEUE; one of HOOKSHOP_JOB_QUEUES)

    @property
    def logs_only(self) -> bool:
        """No SMTP host: messages are written to the log (the embedded default)."""
        return not self.host

    def link(self, path: str) -> str:
        """An absolute link on ``HOOKSHOP_PUBLIC_URL`` (a relative path while it is unset)."""
        return (self.public_url or "") + path


def _address(value: str, name: str) -> str:
    if not parseaddr(value)[1] or "@" not in parseaddr(value)[1]:
        raise SettingsError(f"HOOKSHOP_{name} must be an e-mail address (\"Shop <shop@example.com>\" or "
                            f"shop@example.com), not {value!r}")
    return value


def load(config) -> Settings:
    """Parse the settings; a bad value is a ``SettingsError`` whose sentence disables the plugin."""
    tls = str(config.get("SMTP_TLS") or "starttls").strip().lower()
    if tls not in TLS_MODES:
        raise SettingsError(f"HOOKSHOP_SMTP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
    try:
        port = int(config.get("SMTP_PORT") or DEFAULT_PORTS[tls])
    except (TypeError, ValueError):
        raise SettingsError(f"HOOKSHOP_SMTP_PORT must be a port number, not {config.get('SMTP_PORT')!r}") from None
    shop_name = str(config.get("SHOP_NAME") or "hookshop").strip()
    mail_from = _address(str(config.get("MAIL_FROM") or f"{shop_name} <no-reply@localhost>"), "MAIL_FROM")
    support = config.get("SUPPORT_EMAIL")
    try:
        default_locale = normalize_locale(config.get("DEFAULT_LOCALE") or "en")
    except ValueError as exc:
        raise SettingsError(f"HOOKSHOP_DEFAULT_LOCALE: {exc}") from None
    delays = config.get("MAIL_RETRY_DELAYS") or [60, 300, 1800, 3600, 3600, 3600]
    if isinstance(delays, str):
        delays = json.loads(delays)
    if not isinstance(delays, list) or not all(isinstance(d, int | float) and d >= 0 for d in delays):
        raise SettingsError("HOOKSHOP_MAIL_RETRY_DELAYS must be a JSON list of seconds, e.g. [60, 300, 1800]")
    warehouse = config.get("WAREHOUSE_EMAIL") or []
    if isinstance(warehouse, str):
        warehouse = [w.strip() for w in warehouse.split(",") if w.strip()]
    return Settings(
        host=(str(config.get("SMTP_HOST")).strip() or None) if config.get("SMTP_HOST") else None,
        port=port, username=config.get("SMTP_USERNAME") or None, password=config.get("SMTP_PASSWORD") or None,
        tls=tls, mail_from=mail_from, shop_name=shop_name,
        support_email=_address(str(support), "SUPPORT_EMAIL") if support else parseaddr(mail_from)[1],
        default_locale=default_locale, warehouse_email=[_address(w, "WAREHOUSE_EMAIL") for w in warehouse],
        public_url=config.get("PUBLIC_URL"), retry_delays=[int(d) for d in delays],
        timeout=float(config.get("SMTP_TIMEOUT") or 10.0), queue=str(config.get("MAIL_QUEUE") or "email"))


def current() -> Settings:
    """The current app's settings (parsed at start-up)."""
    settings = current_app.extensions.get(EXTENSION)
    if settings is None:
        settings = current_app.extensions[EXTENSION] = load(current_app.config)
    return settings
