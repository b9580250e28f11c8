"""The generic format: ``POST /orders``'s body signed with Standard Webhooks, read with strict schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, pre_load

from engine.plugin_api import SalesChannel, SignatureRefused, lenient_locale
from engine.plugin_api import verify_webhook as verify_standard
from engine.plugin_api import webhook_secret_key as secret_key
from plugins.channel_webhook.formats.addresses import address_schema
from plugins.channel_webhook.formats.common import (
    clean_delivery_id,
    header,
    load,
    load_json,
    not_an_object,
    text,
)
from plugins.channel_webhook.formats.fields import (
    Choice,
    Currency,
    Email,
    ExternalId,
    Integer,
    Items,
    Object,
    Raw,
    Text,
)
from plugins.channel_webhook.settings import SETTINGS

OBJECT = "an object is required"
CUSTOMER = "an object with email, name and shipping_address is required"
NAMES = {k: k for k in ("name", "company", "line1", "line2", "city", "region", "postal_code", "country", "phone")}
ADDRESS = address_schema(NAMES, checked=True, person=False)
TOPICS = ("order.created", "order_placed")


def _address(empty: str | None = None) -> Object:
    return Object(ADDRESS, invalid=OBJECT, empty=empty, blank=tuple(NAMES))


class Strict(Schema):
    class Meta:
        unknown = RAISE  # the REST API's rule: a field we do not know is a mistake of the sender's

    error_messages = {"unknown": "unknown field"}


class LineSchema(Strict):
    sku = Text(64, needed=True)
    quantity = Integer(minimum=1)
    unit_price = Integer(optional=True)  # minor units; without it, the product's price


class CustomerSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    email = Email()
    name = Text(needed=True)
    phone = Text(40)
    shipping_address = _address("a shipping address is required (and no billing address to fall back to)")


class OrderSchema(Strict):
    external_id = ExternalId()
    id = Raw()  # another name of external_id
    customer = Object(CustomerSchema, invalid=CUSTOMER, empty=CUSTOMER)
    lines = Items(Object(LineSchema, invalid=OBJECT, empty=OBJECT), empty="at least one line is required")
    currency = Currency(optional=True)
    shipping_total, discount_total, tax_total = Integer(default=0), Integer(default=0), Integer(default=0)
    note = Text(2000)
    billing_address = _address()
    payment_status = Choice((None, "paid", "unpaid"), "paid or unpaid")
    payment_reference = Text()
    gift = Choice((None, True, False), "true or false")
    locale = Raw()

    @pre_load
    def order_id(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return data if "external_id" in data else {**data, "external_id": data.get("id")}


ORDER = OrderSchema()  # one each: a load keeps no state in its schema


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

    def verify(self, request: Any, secrets: Any) -> str | None:
        tolerance = SETTINGS.get("TOLERANCE_SECONDS")
        try:
            verify_standard(secrets, request.headers, request.get_data(), tolerance=tolerance, min_bytes=16)
        except SignatureRefused as exc:
            return str(exc)
        return None

    def delivery_id(self, request: Any) -> str:
        return clean_delivery_id(header(request, "webhook-id"), request)

    def parse(self, request: Any) -> dict[str, Any]:
        body = load_json(request)
        prefix, topic = "", None
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and "type" in body:
            topic, body, prefix = text(body.get("type")), body["data"], "data."
            if topic not in TOPICS:
                return {"topic": topic, "ignore": f"type {topic} creates no order"}
        if not isinstance(body, dict):
            raise not_an_object()
        order = load(ORDER, body, prefix)
        customer = order["customer"]
        return {
            "topic": topic,
            "paths": {"lines": prefix + "lines", "currency": prefix + "currency", "customer": prefix + "customer"},
            "external_id": order["external_id"], "currency": order["currency"],
            "customer": {"email": customer["email"], "name": customer["name"], "phone": customer["phone"],
                         "shipping_address": customer["shipping_address"]["address"]},
            "billing_address": (order["billing_address"] or {}).get("address"),
            "lines": [{"sku": line["sku"], "keys": [line["sku"]], "quantity": line["quantity"],
                       "unit_price": line["unit_price"], "path": f"{prefix}lines.{index}",
                       "sku_path": f"{prefix}lines.{index}.sku"} for index, line in enumerate(order["lines"])],
            "shipping_total": order["shipping_total"], "discount_total": order["discount_total"],
            "tax_total": order["tax_total"], "note": order["note"],
            "payment_status": "paid" if order["payment_status"] == "paid" else None,
            "payment_reference": order["payment_reference"], "gift": bool(order["gift"]),
            "locale": lenient_locale(order["locale"]),
        }
