"""The plugin's translations (Flask-Babel) and the per-locale formatting of money and dates (Babel).

The catalogs are gettext ``.po`` files in ``translations/<lang>/LC_MESSAGES/notify_email.po``. They are
compiled when the distribution is built (setup.py writes each ``.mo`` beside its ``.po`` in the wheel),
so an installed hookshop loads them from the package. An editable install (development) has no compiled
catalogs: the plugin compiles them when it loads, into the instance folder
(``instance/notify_email/translations``), rewriting a ``.mo`` older than its ``.po``; nothing compiled
is committed or written into the source tree.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from flask_babel import Babel, Domain

from engine.plugin_api import catalog_directory, exponent

DOMAIN = "notify_email"
SOURCE = Path(__file__).parent / "translations"


def setup(app) -> Domain:
    """The compiled catalogs (the package's, else compiled now), Flask-Babel on the app, the plugin's domain."""
    target = catalog_directory(SOURCE, DOMAIN, app.instance_path, "notify_email")
    if "babel" not in app.extensions:
        Babel(app)
    return Domain(translation_directories=[str(target)], domain=DOMAIN)


def language_of(tag: str | None, languages) -> str | None:
    """The catalog language for a BCP 47 tag (``tr-TR`` -> ``tr``), or None when there is none."""
    if not tag:
        return None
    try:
        language = Locale.parse(str(tag).replace("-", "_")).language
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return language if language in languages else None


def formatting_locale(tag: str | None, language: str) -> str:
    """Format with the buyer's full locale (``tr_TR``) when it is in the message's language, else the language."""
    if tag and language_of(tag, (language,)):
        return str(tag).replace("-", "_")
    return language


def money(amount: int, currency: str, locale: str) -> str:
    """Minor units as the locale writes them: ``€12.50`` in ``en``, ``12,50 €`` in ``tr``."""
    value = Decimal(int(amount)).scaleb(-exponent(currency))
    return format_currency(value, currency, locale=locale)


def day(value, locale: str) -> str:
    """A date (or the date of a datetime) in the locale's long format: ``5 Aralık 2026``."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, format="long", locale=locale)
