"""Channel formats: how each platform signs its order webhook and how its payload maps to an order.

A format (registered with ``register_channels``) is an object with:

* ``name``;
* ``verify(request, secrets) -> None | str``: ``None`` when the raw body (``request.get_data()``) carries
  a valid signature of one of the channel's secrets, else the reason (answered 401);
* ``delivery_id(request) -> str``: the sender's delivery (or event) id, for deduplication;
* optional ``is_ping(request) -> bool``: an unsigned "hello" to acknowledge with 200 (WooCommerce);
* ``parse(request) -> dict``: ``place_order`` data. Besides the core's fields (``external_id``,
  ``customer`` with ``shipping_address``, ``lines`` with ``sku``/``quantity``/``unit_price``,
  ``shipping_total``, ``discount_total``, ``tax_total``, ``note``, ``payment_status``,
  ``payment_reference``) it may give ``currency`` (checked against the products),
  ``billing_address``, ``topic``, ``ignore`` (a reason to acknowledge without creating anything),
  ``paths`` (the payload's own names of ``customer``, ``lines``, ``currency`` for error messages)
  and, per line, ``keys`` (the channel's ids of the item, looked up in the channel's ``sku_map``)
  and ``path`` (where the line is in the payload). Raise ``ValidationFailed`` with field errors
  named after the payload when it is malformed.
* optional ``generates_secret`` (True: the secret may be left out at channel creation and is
  generated, a ``whsec_`` Standard Webhooks secret) and ``check_secret(secret) -> str | None``.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

from engine.plugin_api import (
    SalesChannel,
    SignatureRefused,
    ValidationFailed,
    currency_code,
    exponent,
    is_currency,
    lenient_locale,
)
from engine.plugin_api import verify_webhook as verify_standard
from engine.plugin_api import webhook_secret_key as secret_key
from plugins.channel_webhook import signing
from plugins.channel_webhook.settings import SETTINGS

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_DELIVERY_ID = 200


class Problems:
    """Field errors in marshmallow's nested shape, keyed by the payload's own field names."""

    def __init__(self):
        self.errors: dict = {}

    def add(self, path: str, message: str) -> None:
        node = self.errors
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else {"_": child}
            node = child
        node.setdefault(parts[-1], [])
        if isinstance(node[parts[-1]], dict):
            node[parts[-1]].setdefault("_", []).append(message)
        else:
            node[parts[-1]].append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def check(self, message: str = "the payload is not a valid order: see errors, field by field") -> None:
        if self.errors:
            raise ValidationFailed(message, errors=self.errors)


def load_json(request) -> object:
    raw = request.get_data()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("the body is not valid JSON", errors={"_body": [f"not valid JSON: {exc}"]},
                               code="invalid_json") from exc


def body_hash(request) -> str:
    return "sha256:" + hashlib.sha256(request.get_data()).hexdigest()


def clean_delivery_id(value: str | None, request) -> str:
    if not value:
        return body_hash(request)
    value = value.strip()
    if len(value) > MAX_DELIVERY_ID:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def text(value, limit: int = 200) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    value = str(value).strip()
    return value[:limit] or None


def minor_units(value, currency: str, path: str, problems: Problems) -> int | None:
    """``"19.99"`` (a decimal string, or a number) -> ``1999`` in the currency's minor unit."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        problems.add(path, "a decimal amount such as \"19.99\"")
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        problems.add(path, f"{value!r} is not a decimal amount")
        return None
    if not amount.is_finite() or amount < 0:
        problems.add(path, "must be a finite amount of at least 0")
        return None
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        problems.add(path, f"{value!r} has more decimals than {currency} has")
        return None
    if scaled > 10**12:
        problems.add(path, "too large")
        return None
    return int(scaled)


def split_line(line: dict, line_total: int) -> list[dict]:
    """A line whose total does not divide by its quantity becomes two lines (the remainder cent by cent)."""
    quantity = line["quantity"]
    base, extra = divmod(line_total, quantity)
    if not extra:
        return [{**line, "unit_price": base}]
    return [{**line, "quantity": extra, "unit_price": base + 1}, {**line, "quantity": quantity - extra, "unit_price": base}]


def integer(value, path: str, problems: Problems, *, minimum: int = 0) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(path, "an integer is required")
        return None
    if value < minimum:
        problems.add(path, f"must be at least {minimum}")
        return None
    return value


def address(data, names: dict, path: str, problems: Problems, *, required: bool) -> dict | None:
    """Map a platform address to ours (``line1``, ``city``, ``postal_code``, ``country``, ...).

    ``names`` maps our keys to the platform's. Incomplete addresses name the missing fields."""
    if not isinstance(data, dict) or not any(text(data.get(k)) for k in names.values() if isinstance(k, str)):
        if data is not None and not isinstance(data, dict):
            problems.add(path, "an object is required")
        elif required:
            problems.add(path, "a shipping address is required (and no billing address to fall back to)")
        return None
    result = {}
    for ours, theirs in names.items():
        if callable(theirs):
            value = theirs(data)
        else:
            value = text(data.get(theirs), 100 if ours in ("city", "region") else 200)
        if value:
            result[ours] = value
    for ours in ("line1", "city", "postal_code", "country"):
        if not result.get(ours):
            problems.add(f"{path}.{names[ours] if isinstance(names[ours], str) else ours}", "required")
    country = result.get("country")
    if country:
        country = country.upper()
        result["country"] = country
        if not COUNTRY.match(country):
            problems.add(f"{path}.{names['country'] if isinstance(names['country'], str) else 'country'}",
                         "an ISO 3166-1 alpha-2 country code, e.g. DE")
    if len(result.get("postal_code", "")) > 20:
        problems.add(f"{path}.{names['postal_code']}", "at most 20 characters")
    return result


def person_name(*candidates) -> str | None:
    for candidate in candidates:
        if isinstance(candidate, dict):
            name = text(candidate.get("name")) or text(" ".join(filter(None, (
                text(candidate.get("first_name")), text(candidate.get("last_name"))))))
        else:
            name = text(candidate)
        if name:
            return name
    return None


def check_email(value, path: str, problems: Problems) -> str | None:
    email = text(value, 254)
    if not email:
        problems.add(path, "required")
        return None
    if not EMAIL.match(email):
        problems.add(path, "not a valid e-mail address")
        return None
    return email


def check_currency(value, path: str, problems: Problems) -> str | None:
    """The payload's currency, upper-case; an unknown code (``XYZ``, ``XXX``) is a field error."""
    currency = text(value, 4)
    if not currency:
        problems.add(path, "an ISO 4217 currency code is required")
        return None
    if not is_currency(currency):
        problems.add(path, f"{currency!r} is not an active ISO 4217 currency code (e.g. EUR, USD, JPY)")
        return None
    return currency_code(currency)


def external_id_of(value, path: str, problems: Problems) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() == "":
        problems.add(path, "the channel's order id is required")
        return None
    value = str(value).strip()
    if len(value) > 128:
        problems.add(path, "at most 128 characters")
        return None
    return value


def _header(request, name: str) -> str | None:
    value = request.headers.get(name)
    return value.strip() if value else None


# --------------------------------------------------------------------------- Shopify


def _meta(data: dict, key: str):
    """A WooCommerce ``meta_data`` entry's value (``[{"key": ..., "value": ...}]``), or None."""
    for entry in data.get("meta_data") or []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry.get("value")
    return None


def _shopify_address(problems: Problems, path: str, data, required: bool) -> dict | None:
    return address(data, {"name": lambda a: person_name(a), "company": "company", "line1": "address1",
                          "line2": "address2", "city": "city", "region": "province_code",
                          "postal_code": "zip", "country": "country_code", "phone": "phone"},
                   path, problems, required=required)


def _allocated(item: dict, currency: str, path: str, problems: Problems) -> int:
    total = 0
    allocations = item.get("discount_allocations") or []
    if not isinstance(allocations, list):
        problems.add(f"{path}.discount_allocations", "a list is required")
        return 0
    for index, allocation in enumerate(allocations):
        amount = minor_units((allocation or {}).get("amount") if isinstance(allocation, dict) else None,
                             currency, f"{path}.discount_allocations.{index}.amount", problems)
        total += amount or 0
    return total


class ShopifyFormat(SalesChannel):
    """Shopify's ``orders/create`` webhook (REST Admin API order object, prices as decimal strings).

    Signature: ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body with the app's client
    secret (or the secret shown in the store's notification settings). Delivery id:
    ``X-Shopify-Webhook-Id`` (the same on Shopify's retries), else ``X-Shopify-Event-Id``.
    """

    name = "shopify"
    generates_secret = False
    topics = ("orders/create", "orders/paid")
    update_topics = ("orders/updated", "orders/cancelled")

    def verify(self, request, secrets):
        return signing.verify_body_hmac(secrets, request.headers.get("X-Shopify-Hmac-Sha256"), request.get_data())

    def delivery_id(self, request):
        return clean_delivery_id(_header(request, "X-Shopify-Webhook-Id") or _header(request, "X-Shopify-Event-Id"),
                                 request)

    def parse(self, request) -> dict:
        data = load_json(request)
        topic = _header(request, "X-Shopify-Topic")
        if isinstance(data, dict) and set(data) == {"order"} and isinstance(data["order"], dict):
            data = data["order"]  # the REST Admin API's {"order": {...}}: the same order object
        if not isinstance(data, dict):
            raise ValidationFailed("the payload is not an order object", errors={"_body": ["an object is required"]})
        result = {"topic": topic, "paths": {"lines": "line_items", "currency": "currency"}}
        if topic == "refunds/create":
            return {**result, **self._refund(data)}
        if topic and topic not in (*self.topics, *self.update_topics):
            return {**result, "ignore": f"topic {topic} creates no order"}
        result["action"] = {"orders/updated": "update", "orders/cancelled": "cancel"}.get(topic, "create")
        problems = Problems()
        external_id = external_id_of(data.get("id"), "id", problems)
        currency = check_currency(data.get("currency"), "currency", problems) or "USD"
        customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
        shipping_data, billing_data = data.get("shipping_address"), data.get("billing_address")
        # the buyer (billing) and the recipient (shipping) are people of their own: the shipping address
        # keeps the recipient's name; an order without one (pickup, digital goods) is flagged, not refused
        billing = _shopify_address(Problems(), "billing_address", billing_data, False)
        shipping = _shopify_address(Problems(), "shipping_address", shipping_data, False)
        raw_email = data.get("email") or data.get("contact_email") or customer.get("email")
        email = check_email(raw_email, "email", problems) if raw_email else None
        name = person_name(customer, billing_data, shipping_data) or email or "Shopify customer"
        phone = text(data.get("phone") or (billing or {}).get("phone") or (shipping or {}).get("phone")
                     or customer.get("phone"), 40)

        lines, extras, line_discount = [], [], 0
        items = data.get("line_items")
        if not isinstance(items, list) or not items:
            problems.add("line_items", "at least one line item is required")
            items = []
        for index, item in enumerate(items):
            path = f"line_items.{index}"
            if not isinstance(item, dict):
                problems.add(path, "an object is required")
                continue
            quantity = integer(item.get("quantity"), f"{path}.quantity", problems, minimum=1)
            price = minor_units(item.get("price"), currency, f"{path}.price", problems)
            line_discount += _allocated(item, currency, path, problems)
            keys = [k for k in (text(item.get("sku"), 64), text(item.get("variant_id")), text(item.get("product_id")))
                    if k]
            if quantity is None or price is None:
                continue
            line = {"sku": text(item.get("sku"), 64), "keys": keys, "quantity": quantity, "unit_price": price,
                    "path": path, "sku_path": f"{path}.sku", "title": text(item.get("title") or item.get("name"))}
            if item.get("gift_card") is True:
                extras.append({**line, "kind": "gift_card"})
            elif item.get("requires_shipping") is False:
                extras.append({**line, "kind": "no_shipping"})
            else:
                lines.append(line)  # without sku nor mapped id: a custom line (see inbound._order_data)
        shipping_total, shipping_discount, shipping_taxes = 0, 0, []
        shipping_lines = data.get("shipping_lines") or []
        if not isinstance(shipping_lines, list):
            problems.add("shipping_lines", "a list is required")
            shipping_lines = []
        for index, ship in enumerate(shipping_lines):
            path = f"shipping_lines.{index}"
            if not isinstance(ship, dict):
                problems.add(path, "an object is required")
                continue
            shipping_total += (minor_units(ship.get("price"), currency, f"{path}.price", problems) or 0)
            shipping_discount += _allocated(ship, currency, path, problems)
            shipping_taxes += _shopify_tax_lines(ship.get("tax_lines"), currency, problems, f"{path}.tax_lines")
        if not shipping_lines and isinstance(data.get("total_shipping_price_set"), dict):
            shipping_total = _shop_money(data, "total_shipping_price_set", currency, problems) or 0
        # the shipping discount (a free-shipping code) comes off the shipping only; Shopify's
        # total_discounts counts it too, so it is taken out of the order discount (never twice)
        if any(isinstance(i, dict) and i.get("discount_allocations") for i in items):
            discount = line_discount
        else:
            discount = max(0, (minor_units(data.get("total_discounts"), currency, "total_discounts", problems) or 0)
                           - shipping_discount)
        tax = minor_units(data.get("total_tax"), currency, "total_tax", problems) or 0
        included = data.get("taxes_included") is True
        tax_lines = _with_shipping_tax(_shopify_tax_lines(data.get("tax_lines"), currency, problems), shipping_taxes)
        if tax:
            tax_status = "inclusive" if included else "exclusive"
        elif included and data.get("total_tax") in (None, ""):
            tax_status = "inclusive_unknown"
        else:
            tax_status = "none"
        channel_total = None
        if data.get("total_price") not in (None, ""):
            channel_total = minor_units(data.get("total_price"), currency, "total_price", problems)
        presentment = _shopify_presentment(data, currency, problems)
        problems.check()
        financial = data.get("financial_status")
        result.update({
            "external_id": external_id, "currency": currency,
            "customer": {"email": email, "name": name, "phone": phone, "shipping_address": shipping,
                         "channel_customer_id": text(customer.get("id"), 128)},
            "billing_address": billing, "lines": lines, "non_stock_lines": extras,
            "shipping_total": max(shipping_total - shipping_discount, 0),
            "discount_total": discount, "tax_total": tax, "prices_include_tax": included, "tax_status": tax_status,
            "tax_lines": tax_lines, "channel_total": channel_total, **presentment,
            "note": text(data.get("note"), 2000),
            "payment_status": "paid" if financial == "paid" else None,
            # the language the buyer used at checkout (``tr-TR``); an unknown tag is dropped, never an error
            "locale": lenient_locale(data.get("customer_locale")),
        })
        cancelled = bool(data.get("cancelled_at")) or financial == "voided"
        if cancelled:
            result["cancelled"] = True
            if result["action"] == "create":
                result["ignore"] = "the order is cancelled or voided on Shopify"
        return result

    def _refund(self, data: dict) -> dict:
        """``refunds/create``: a refund object; its successful ``refund`` transactions are the money."""
        problems = Problems()
        external_id = external_id_of(data.get("order_id"), "order_id", problems)
        refund_id = external_id_of(data.get("id"), "id", problems)
        amounts = []
        transactions = data.get("transactions") or []
        if not isinstance(transactions, list):
            problems.add("transactions", "a list is required")
            transactions = []
        for index, item in enumerate(transactions):
            if isinstance(item, dict) and item.get("kind") == "refund" and item.get("status") in ("success", None):
                currency = check_currency(item.get("currency") or "USD", f"transactions.{index}.currency", problems)
                amounts.append(minor_units(item.get("amount"), currency or "USD", f"transactions.{index}.amount",
                                           problems) or 0)
        problems.check()
        return {"action": "refund", "external_id": external_id, "refund_id": refund_id, "refund_amount": sum(amounts),
                "note": text(data.get("note"), 500)}


def _shop_money(data: dict, key: str, currency: str, problems: Problems, side: str = "shop_money") -> int | None:
    money = (data.get(key) or {}).get(side) if isinstance(data.get(key), dict) else None
    if not isinstance(money, dict):
        return None
    return minor_units(money.get("amount"), str(money.get("currency_code") or currency).upper(), f"{key}.{side}.amount",
                       problems)


def _shopify_presentment(data: dict, currency: str, problems: Problems) -> dict:
    """The buyer's currency and amounts (``presentment_currency``, ``*_set.presentment_money``) when
    they are not the shop's."""
    theirs = text(data.get("presentment_currency"), 3)
    if not theirs or theirs.upper() == currency:
        return {}
    theirs = theirs.upper()
    totals = {}
    for ours, key in (("subtotal", "subtotal_price_set"), ("discount", "total_discounts_set"),
                      ("shipping", "total_shipping_price_set"), ("tax", "total_tax_set"), ("total", "total_price_set")):
        totals[ours] = _shop_money(data, key, theirs, problems, "presentment_money")
    return {"presentment_currency": theirs, "presentment_totals": totals}


def _shopify_tax_lines(value, currency: str, problems: Problems, path: str = "tax_lines") -> list[dict]:
    lines = []
    for index, item in enumerate(value if isinstance(value, list) else []):
        if not isinstance(item, dict):
            continue
        rate = item.get("rate")
        try:
            rate = str(Decimal(str(rate))) if isinstance(rate, (int, float, str)) and rate != "" else None
        except InvalidOperation:
            problems.add(f"{path}.{index}.rate", "a number is required")
            rate = None
        lines.append({"title": text(item.get("title"), 100) or "tax", "rate": rate,
                      "amount": minor_units(item.get("price"), currency, f"{path}.{index}.price", problems) or 0})
    return lines


def _with_shipping_tax(order_lines: list[dict], shipping_lines: list[dict]) -> list[dict]:
    """Shopify's order ``tax_lines`` hold the shipping's tax too; the shipping lines' own ``tax_lines`` say
    how much of each was charged on shipping: kept as ``shipping_amount`` of the order's line (same title
    and rate), so the books can tax shipping at its own rate."""
    for ship in shipping_lines:
        if not ship["amount"]:
            continue
        match = next((line for line in order_lines if line["title"] == ship["title"] and line["rate"] == ship["rate"]),
                     None) or next((line for line in order_lines if line["rate"] == ship["rate"]), None)
        if match is not None:
            match["shipping_amount"] = min(match.get("shipping_amount", 0) + ship["amount"], match["amount"])
    return order_lines


# --------------------------------------------------------------------------- WooCommerce

_WOO_ADDRESS = {"name": lambda a: person_name(a), "company": "company", "line1": "address_1", "line2": "address_2",
                "city": "city", "region": "state", "postal_code": "postcode", "country": "country", "phone": "phone"}


class WooCommerceFormat(SalesChannel):
    """WooCommerce's ``order.created`` webhook (REST API v3 order object).

    Signature: ``X-WC-Webhook-Signature`` = base64 HMAC-SHA256 of the raw body with the webhook's
    secret. Delivery id: ``X-WC-Webhook-Delivery-ID``. When a webhook is created WooCommerce sends an
    unsigned ping, a form body ``webhook_id=N``: it is answered 200 and creates nothing.
    """

    name = "woocommerce"
    generates_secret = False
    paid_statuses = ("processing", "completed")
    topics = ("order.created", "order.updated", "order.deleted")
    ignored_statuses = ("cancelled", "refunded", "failed", "trash", "checkout-draft")

    def is_ping(self, request) -> bool:
        return re.fullmatch(rb"webhook_id=\d+", request.get_data().strip()) is not None

    def verify(self, request, secrets):
        return signing.verify_body_hmac(secrets, request.headers.get("X-WC-Webhook-Signature"), request.get_data())

    def delivery_id(self, request):
        return clean_delivery_id(_header(request, "X-WC-Webhook-Delivery-ID"), request)

    def parse(self, request) -> dict:
        data = load_json(request)
        topic = _header(request, "X-WC-Webhook-Topic")
        result = {"topic": topic, "paths": {"lines": "line_items", "currency": "currency"}}
        if isinstance(data, dict) and set(data) == {"order"}:
            raise ValidationFailed(
                'the body is wrapped in {"order": {...}}, WooCommerce\'s legacy webhook format (legacy REST API '
                'v1-v3), whose fields differ: set the webhook\'s API version to "WP REST API Integration v3"',
                errors={"order": ["legacy wrapper: send the WP REST API v3 order object unwrapped"]})
        if not isinstance(data, dict):
            raise ValidationFailed("the payload is not an order object", errors={"_body": ["an object is required"]})
        if topic and topic not in self.topics:
            return {**result, "ignore": f"topic {topic} creates no order"}
        result["action"] = {"order.updated": "update", "order.deleted": "cancel"}.get(topic, "create")
        problems = Problems()
        external_id = external_id_of(data.get("id"), "id", problems)
        if topic == "order.deleted":  # the body is {"id": N}
            problems.check()
            return {**result, "external_id": external_id, "cancelled": True}
        currency = check_currency(data.get("currency"), "currency", problems) or "USD"
        billing_data = data.get("billing") if isinstance(data.get("billing"), dict) else None
        shipping_data = data.get("shipping")
        billing = address(billing_data, _WOO_ADDRESS, "billing", Problems(), required=False)
        ship_given = isinstance(shipping_data, dict) and any(
            text(shipping_data.get(k)) for k in ("address_1", "city", "postcode", "country"))
        shipping = address(shipping_data, _WOO_ADDRESS, "shipping", Problems(), required=False) if ship_given else None
        raw_email = (billing_data or {}).get("email")
        email = check_email(raw_email, "billing.email", problems) if text(raw_email) else None
        name = person_name(billing_data, shipping_data if ship_given else None) or email or "WooCommerce customer"
        phone = text((billing_data or {}).get("phone") or (shipping or {}).get("phone"), 40)
        # WooCommerce's REST amounts never contain tax (the tax is beside them: subtotal_tax, shipping_tax,
        # discount_tax). A shop whose prices include tax gets its prices as the buyer saw them: amount + its tax.
        included = data.get("prices_include_tax") is True

        def amount(value, tax_value, path):
            base = minor_units(value, currency, path, problems)
            extra = minor_units(tax_value, currency, path + "_tax", problems) if included else 0
            return None if base is None else base + (extra or 0)

        lines, extras = [], []
        items = data.get("line_items")
        if not isinstance(items, list) or not items:
            problems.add("line_items", "at least one line item is required")
            items = []
        for index, item in enumerate(items):
            path = f"line_items.{index}"
            if not isinstance(item, dict):
                problems.add(path, "an object is required")
                continue
            quantity = integer(item.get("quantity"), f"{path}.quantity", problems, minimum=1)
            # subtotal: the line before coupons
            subtotal = amount(item.get("subtotal"), item.get("subtotal_tax"), f"{path}.subtotal")
            variation = item.get("variation_id")
            product_id = item.get("product_id")
            keys = [k for k in (text(item.get("sku"), 64), text(variation) if variation else None,
                                text(product_id) if product_id else None) if k]
            if quantity is None or subtotal is None:
                continue
            lines.extend(split_line({"sku": text(item.get("sku"), 64), "keys": keys, "quantity": quantity,
                                     "path": path, "sku_path": f"{path}.sku", "title": text(item.get("name"))},
                                    subtotal))
        discount = amount(data.get("discount_total"), data.get("discount_tax"), "discount_total") or 0
        for index, fee in enumerate(data.get("fee_lines") or []):
            if not isinstance(fee, dict):
                continue
            raw = str(fee.get("total") or "0").strip()
            negative = raw.startswith("-")  # a negative fee is a discount WooCommerce lets shops add
            value = amount(raw.lstrip("-"), str(fee.get("total_tax") or "0").lstrip("-"), f"fee_lines.{index}.total")
            if value is None:
                continue
            if negative:
                discount += value
            elif value:
                extras.append({"kind": "fee", "title": text(fee.get("name")) or "fee", "quantity": 1,
                               "unit_price": value, "sku": None})
        shipping_total = amount(data.get("shipping_total"), data.get("shipping_tax"), "shipping_total") or 0
        tax = minor_units(data.get("total_tax"), currency, "total_tax", problems) or 0
        channel_total = minor_units(data.get("total"), currency, "total", problems) if data.get("total") else None
        tax_lines = []
        for index, item in enumerate(data.get("tax_lines") or []):
            if not isinstance(item, dict):
                continue
            percent = item.get("rate_percent")
            rate = None
            if isinstance(percent, (int, float, str)) and str(percent).strip():
                try:
                    rate = str((Decimal(str(percent)) / 100).normalize())
                except InvalidOperation:
                    problems.add(f"tax_lines.{index}.rate_percent", "a number is required")
            shipping_tax = minor_units(item.get("shipping_tax_total"), currency,
                                       f"tax_lines.{index}.shipping_tax_total", problems) or 0
            line = {"title": text(item.get("label"), 100) or text(item.get("rate_code"), 100) or "tax", "rate": rate,
                    "amount": (minor_units(item.get("tax_total"), currency, f"tax_lines.{index}.tax_total",
                                           problems) or 0) + shipping_tax}
            if shipping_tax:
                line["shipping_amount"] = shipping_tax  # the part charged on shipping
            tax_lines.append(line)
        refunds = []
        for index, item in enumerate(data.get("refunds") or []):  # [{"id", "reason", "total": "-10.00"}]
            if isinstance(item, dict) and item.get("id") not in (None, ""):
                value = minor_units(str(item.get("total") or "0").strip().lstrip("-"), currency,
                                    f"refunds.{index}.total", problems) or 0
                if value:
                    refunds.append({"id": text(item.get("id"), 64), "amount": value, "note": text(item.get("reason"), 500)})
        problems.check()
        status = data.get("status")
        customer_id = data.get("customer_id")
        result.update({
            "external_id": external_id, "currency": currency,
            "customer": {"email": email, "name": name, "phone": phone, "shipping_address": shipping,
                         "channel_customer_id": text(customer_id) if customer_id else None},
            "billing_address": billing, "lines": lines, "non_stock_lines": extras, "shipping_total": shipping_total,
            "discount_total": discount, "tax_total": tax, "prices_include_tax": included,
            "tax_status": ("inclusive" if included else "exclusive") if tax else "none", "tax_lines": tax_lines,
            "channel_total": channel_total, "note": text(data.get("customer_note"), 2000),
            "payment_status": "paid" if status in self.paid_statuses else None,
            "payment_reference": text(data.get("transaction_id")),
            # WooCommerce keeps no language on an order; WPML's WooCommerce Multilingual adds ``lang``
            # (and the ``wpml_language`` meta entry): read either, drop an unknown tag
            "locale": lenient_locale(data.get("lang") or _meta(data, "wpml_language")),
        })
        result["cancelled"] = status in ("cancelled", "failed", "trash")
        result["refunds"], result["refunded"] = refunds, status == "refunded"
        if status in self.ignored_statuses:
            if result["action"] == "create":
                result["ignore"] = f"the order is {status} on WooCommerce"
        return result


# --------------------------------------------------------------------------- generic (Standard Webhooks)

_GENERIC_ADDRESS = {"name": "name", "company": "company", "line1": "line1", "line2": "line2", "city": "city",
                    "region": "region", "postal_code": "postal_code", "country": "country", "phone": "phone"}


class GenericFormat(SalesChannel):
    """Any other channel (an own website, a marketplace connector): the REST order body, signed with
    Standard Webhooks (``webhook-id``, ``webhook-timestamp`` within ±5 minutes, ``webhook-signature``).

    The body is ``POST /orders``'s (``customer`` with ``shipping_address``, ``lines`` of ``sku`` and
    ``quantity``) plus ``external_id`` (required), per line ``unit_price`` (minor units), and optional
    ``currency``, ``shipping_total``, ``discount_total``, ``tax_total`` (minor units), ``note``,
    ``billing_address``, ``payment_status`` (``paid`` or ``unpaid``) and ``payment_reference``. It may
    come wrapped in a Standard Webhooks envelope ``{"type": "order.created", "timestamp", "data"}``.
    """

    name = "generic"
    generates_secret = True

    def check_secret(self, secret: str) -> str | None:
        try:
            secret_key(secret)
        except ValueError as exc:
            return str(exc)
        return None

    def verify(self, request, secrets):
        tolerance = SETTINGS.get("TOLERANCE_SECONDS")
        try:
            verify_standard(secrets, request.headers, request.get_data(), tolerance=tolerance, min_bytes=16)
        except SignatureRefused as exc:
            return str(exc)
        return None

    def delivery_id(self, request):
        return clean_delivery_id(_header(request, "webhook-id"), request)

    def parse(self, request) -> dict:
        body = load_json(request)
        problems = Problems()
        prefix, topic = "", None
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and "type" in body:
            topic, body, prefix = text(body.get("type")), body["data"], "data."
            if topic not in ("order.created", "order_placed"):
                return {"topic": topic, "ignore": f"type {topic} creates no order"}
        if not isinstance(body, dict):
            raise ValidationFailed("the payload is not an order object", errors={"_body": ["an object is required"]})
        result = {"topic": topic, "paths": {"lines": prefix + "lines", "currency": prefix + "currency",
                                            "customer": prefix + "customer"}}
        known = {"external_id", "id", "customer", "lines", "currency", "shipping_total", "discount_total",
                 "tax_total", "note", "billing_address", "payment_status", "payment_reference", "gift",
                 "locale"}
        for key in sorted(set(body) - known):
            problems.add(prefix + key, "unknown field")
        external_id = external_id_of(body.get("external_id", body.get("id")), prefix + "external_id", problems)
        currency = None
        if body.get("currency") is not None:
            currency = check_currency(body.get("currency"), prefix + "currency", problems)
        customer = body.get("customer")
        if not isinstance(customer, dict):
            problems.add(prefix + "customer", "an object with email, name and shipping_address is required")
            customer = {}
        email = check_email(customer.get("email"), prefix + "customer.email", problems)
        name = text(customer.get("name"))
        if not name:
            problems.add(prefix + "customer.name", "required")
        shipping = address(customer.get("shipping_address"), _GENERIC_ADDRESS, prefix + "customer.shipping_address",
                           problems, required=True)
        billing = address(body.get("billing_address"), _GENERIC_ADDRESS, prefix + "billing_address", problems,
                          required=False)
        lines = []
        items = body.get("lines")
        if not isinstance(items, list) or not items:
            problems.add(prefix + "lines", "at least one line is required")
            items = []
        for index, item in enumerate(items):
            path = f"{prefix}lines.{index}"
            if not isinstance(item, dict):
                problems.add(path, "an object is required")
                continue
            sku = text(item.get("sku"), 64)
            if not sku:
                problems.add(f"{path}.sku", "required")
            quantity = integer(item.get("quantity"), f"{path}.quantity", problems, minimum=1)
            unit_price = None
            if item.get("unit_price") is not None:
                unit_price = integer(item.get("unit_price"), f"{path}.unit_price", problems)
            for key in sorted(set(item) - {"sku", "quantity", "unit_price"}):
                problems.add(f"{path}.{key}", "unknown field")
            if sku and quantity:
                lines.append({"sku": sku, "keys": [sku], "quantity": quantity, "unit_price": unit_price,
                              "path": path, "sku_path": f"{path}.sku"})
        amounts = {}
        for key in ("shipping_total", "discount_total", "tax_total"):
            amounts[key] = integer(body.get(key, 0), prefix + key, problems) or 0
        status = body.get("payment_status")
        if status not in (None, "paid", "unpaid"):
            problems.add(prefix + "payment_status", "paid or unpaid")
        if body.get("gift") not in (None, True, False):
            problems.add(prefix + "gift", "true or false")
        problems.check()
        result.update({
            "external_id": external_id, "currency": currency,
            "customer": {"email": email, "name": name, "phone": text(customer.get("phone"), 40),
                         "shipping_address": shipping},
            "billing_address": billing, "lines": lines, **amounts, "note": text(body.get("note"), 2000),
            "payment_status": "paid" if status == "paid" else None,
            "payment_reference": text(body.get("payment_reference")), "gift": bool(body.get("gift")),
            "locale": lenient_locale(body.get("locale")),
        })
        return result


FORMATS = [GenericFormat(), ShopifyFormat(), WooCommerceFormat()]
