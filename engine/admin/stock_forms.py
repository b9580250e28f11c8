"""What the stock screens' forms share: reading a form field, whole numbers, a textarea of scanned codes, the
REST API's own marshmallow schema as the check of a form, and how a refused change is shown."""

from __future__ import annotations

import re

import marshmallow as ma
from flask import flash, request
from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import DomainError, ValidationFailed
from engine.services import locations

ALL_LOCATIONS = 500  # the location <select>s list this many (paths in walk order)


def text(name: str, form=None) -> str | None:
    """A form field, stripped; None when empty."""
    value = (form if form is not None else request.form).get(name, "").strip()
    return value or None


def number(name: str, form=None, *, label: str | None = None) -> int | None:
    """A whole number from a form field (None when empty); anything else is a 422 naming the field."""
    value = text(name, form)
    if value is None:
        return None
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", value):
        message = _("%(field)s must be a whole number, not %(value)r", field=label or name, value=value[:40])
        raise ValidationFailed(message, errors={name: [message]})
    return int(value)


def codes(value: str | None) -> list[str]:
    """Serials or scans typed or scanned into a textarea: one per line (commas and tabs separate too)."""
    return [part.strip() for part in re.split(r"[\r\n,\t]+", value or "") if part.strip()]


def validated(schema: type[ma.Schema], data: dict) -> dict:
    """``data`` checked by the API's own schema (the same bounds, lengths and formats as the REST API)."""
    try:
        return schema().load(data)
    except ma.ValidationError as exc:
        leaves = [f"{path}: {message}" for path, message in _leaves(exc.messages)]
        raise ValidationFailed("; ".join(leaves[:5]) or str(exc), errors=exc.messages_dict) from None


def _leaves(messages, path: str = ""):
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _leaves(value, path)
    else:
        yield path, str(messages)


def error_text(exc: DomainError) -> str:
    """What a refused change says on the page: the service's message, with a 422's field details."""
    message = exc.message
    if exc.status == 422:
        details = [leaf for _path, leaf in _leaves(exc.errors) if leaf not in message]
        if details:
            message += " — " + "; ".join(details[:5])
    return message


def refuse(exc: DomainError) -> None:
    """Show a refused change: the page it was made from is rendered again with this, and its status."""
    flash(error_text(exc), "error")


def staff_name() -> str:
    return current_user.email


def all_locations() -> list[dict]:
    items, _next = locations.list_locations(limit=ALL_LOCATIONS)
    return items
