"""What the customers, returns and refunds screens share: a domain error shown on the page it came from
(with its 4xx status, nothing changed), amounts typed in major units, and finding an order by number or id."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from flask import abort, flash, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from engine.db import db
from engine.domain.money import exponent
from engine.errors import DomainError, ValidationFailed
from engine.models import Order
from engine.models.orders import ORDER_NUMBER_OFFSET

PAGE = 50  # rows of a list page
_PLAIN = re.compile(r"^\d{1,15}(?:[.,](\d{1,4}))?$")


def refused(exc: DomainError, template: str, **context):
    """The page again with the service's message (a 4xx, or the provider's 502); the service rolled back."""
    db.session.rollback()
    flash(error_text(exc), "error")
    return render_template(template, **context), exc.status


def error_text(exc: DomainError) -> str:
    """The service's message, with its field errors when they say more (``tax_id: not a valid DE VAT ...``)."""
    details = []

    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, [*path, str(key)])
        elif isinstance(value, (list, tuple)):
            strings = [str(v) for v in value if not isinstance(v, (dict, list, tuple))]
            if strings and len(" ".join(strings)) > 12:  # a sentence, not a marker such as "required"
                details.append(f"{'.'.join(path)}: {'; '.join(strings)}")
            for inner in value:
                if isinstance(inner, (dict, list, tuple)):
                    walk(inner, path)

    if isinstance(exc, ValidationFailed):
        walk(exc.errors, [])
    return exc.message + (" (" + " · ".join(details[:10]) + ")" if details else "")


def minor_units(text: str, currency: str, field: str = "amount") -> int:
    """``12.50`` / ``12,50`` (either separator, in either language) or the locale's ``1.234,50`` as minor units
    of ``currency``; a 422 naming ``field`` for anything else (more decimals than the currency has too)."""
    text = (text or "").strip().replace("\u00a0", "").replace(" ", "")
    digits = exponent(currency)
    value = None
    if _PLAIN.match(text):
        value = Decimal(text.replace(",", "."))
    elif text:
        from babel.numbers import NumberFormatError, parse_decimal

        try:
            value = parse_decimal(text, locale=str(get_locale() or "en"), strict=True)
        except (NumberFormatError, InvalidOperation, ValueError):
            value = None
    if value is None or value <= 0:
        raise ValidationFailed(_("Enter an amount greater than zero, such as 12.50."), errors={field: ["not an amount"]})
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise ValidationFailed(_("%(currency)s has %(digits)s decimal places.", currency=currency, digits=digits),
                               errors={field: ["too many decimals"]})
    return int(scaled)


def find_order(text: str | None) -> Order | None:
    """An order by its number (``1001``) or, below the numbers, its id; None when there is none."""
    text = (text or "").strip().lstrip("#")
    if not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    order = db.session.get(Order, number - ORDER_NUMBER_OFFSET) if number > ORDER_NUMBER_OFFSET else None
    return order or (db.session.get(Order, number) if number <= 2**62 else None)


def cursor_arg(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 18 else None


def order_form(template: str, context: Callable[[Order | None, str], dict]):
    """The page of a form about one order (``?order=`` its number, or its id): 404 with a message when the
    order asked for does not exist."""
    query = (request.args.get("order") or "").strip()
    order = find_order(query) if query else None
    if query and order is None:
        flash(_("There is no order %(number)s.", number=query[:20]), "error")
        return render_template(template, **context(None, query)), 404
    return render_template(template, **context(order, query))


def posted_order() -> Order:
    """The order a form posts for (its ``order_id`` field); 404 when there is none."""
    order_id = cursor_arg(request.form.get("order_id"))
    order = db.session.get(Order, order_id) if order_id else None
    if order is None:
        abort(404)
    return order


def order_url(order_id: int) -> str:
    """The admin's order page (built by the orders screen): a path, so this screen does not depend on its
    endpoint's name."""
    from flask import url_for

    return url_for("admin_ui.dashboard") + f"orders/{int(order_id)}"
