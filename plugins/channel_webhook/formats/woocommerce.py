"""WooCommerce's order webhooks (REST API v3 order object), read with schemas."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, post_load

from engine.plugin_api import SalesChannel, ValidationFailed, lenient_locale
from plugins.channel_webhook import signing
from plugins.channel_webhook.formats.addresses import address_schema
from plugins.channel_webhook.formats.common import (
    clean_delivery_id,
    header,
    load,
    load_json,
    not_an_object,
    split_line,
    text,
)
from plugins.channel_webhook.formats.fields import (
    Amount,
    Currency,
    ExternalId,
    Integer,
    Items,
    Money,
    Object,
    Rate,
    Raw,
    Text,
    lenient_currency,
    money,
)

OBJECT = "an object is required"
NAMES = {"name": "name", "company": "company", "line1": "address_1", "line2": "address_2", "city": "city",
         "region": "state", "postal_code": "postcode", "country": "country", "phone": "phone"}
LEGACY = ('the body is wrapped in {"order": {...}}, WooCommerce\'s legacy webhook format (legacy REST API '
          'v1-v3), whose fields differ: set the webhook\'s API version to "WP REST API Integration v3"')


class PlatformSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a platform's object has many more fields than an order needs


class LineSchema(PlatformSchema):
    quantity = Integer(minimum=1)
    subtotal = Amount()  # the line before coupons
    subtotal_tax = Amount(tax=True)
    sku = Text(64)
    name = Text()
    variation_id, product_id = Raw(), Raw()


class FeeSchema(PlatformSchema):
    total = Amount(signed=True)  # a negative fee is a discount WooCommerce lets shops add
    total_tax = Amount(tax=True, unsigned=True)
    name = Text()


class TaxLineSchema(PlatformSchema):
    label, rate_code = Text(100), Text(100)
    rate_percent = Rate(percent=True)
    tax_total, shipping_tax_total = Amount(), Amount()

    @post_load
    def ours(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        shipping_tax = data["shipping_tax_total"]
        line = {"title": data["label"] or data["rate_code"] or "tax", "rate": data["rate_percent"],
                "amount": data["tax_total"] + shipping_tax}
        if shipping_tax:
            line["shipping_amount"] = shipping_tax  # the part charged on shipping
        return line


class RefundSchema(PlatformSchema):  # [{"id", "reason", "total": "-10.00"}]
    id = Text(64)
    total = Amount(signed=True)  # the sign is dropped: a refund is money back
    reason = Text(500)


class OrderSchema(PlatformSchema):
    """The order object of ``order.created`` and ``order.updated``."""

    id = ExternalId()
    currency = Currency()
    billing = Object(address_schema(NAMES, email="email"))
    shipping = Object(address_schema(NAMES), blank=("address_1", "city", "postcode", "country"))
    line_items = Items(Object(LineSchema, invalid=OBJECT, empty=OBJECT), empty="at least one line item is required")
    fee_lines = Items(Object(FeeSchema))
    tax_lines = Items(Object(TaxLineSchema))
    refunds = Items(Object(RefundSchema, when=lambda r: r.get("id") not in (None, "")))
    discount_total, shipping_total, total_tax = Amount(), Amount(), Amount()
    discount_tax, shipping_tax = Amount(tax=True), Amount(tax=True)
    total = Amount(used_when=lambda order: bool(order.get("total")))
    prices_include_tax, status, customer_id, lang = Raw(), Raw(), Raw(), Raw()
    meta_data = Items(Raw())
    customer_note = Text(2000)
    transaction_id = Text()


class DeletedSchema(PlatformSchema):
    """``order.deleted``: the body is ``{"id": N}``."""

    id = ExternalId()


ORDER = OrderSchema()
DELETED = DeletedSchema()  # one each: a load keeps no state in its schema


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

    def is_ping(self, request: Any) -> bool:
        return re.fullmatch(rb"webhook_id=\d+", request.get_data().strip()) is not None

    def verify(self, request: Any, secrets: Any) -> str | None:
        return signing.verify_body_hmac(secrets, request.headers.get("X-WC-Webhook-Signature"), request.get_data())

    def delivery_id(self, request: Any) -> str:
        return clean_delivery_id(header(request, "X-WC-Webhook-Delivery-ID"), request)

    def parse(self, request: Any) -> dict[str, Any]:
        data = load_json(request)
        topic = header(request, "X-WC-Webhook-Topic")
        result: dict[str, Any] = {"topic": topic, "paths": {"lines": "line_items", "currency": "currency"}}
        if isinstance(data, dict) and set(data) == {"order"}:
            raise ValidationFailed(LEGACY, errors={
                "order": ["legacy wrapper: send the WP REST API v3 order object unwrapped"]})
        if not isinstance(data, dict):
            raise not_an_object()
        if topic and topic not in self.topics:
            return {**result, "ignore": f"topic {topic} creates no order"}
        result["action"] = {"order.updated": "update", "order.deleted": "cancel"}.get(topic or "", "create")
        if topic == "order.deleted":
            return {**result, "external_id": load(DELETED, data)["id"], "cancelled": True}
        # WooCommerce's REST amounts never contain tax (the tax is beside them: subtotal_tax, shipping_tax,
        # discount_tax). A shop whose prices include tax gets its prices as the buyer saw them: amount + its tax.
        included = data.get("prices_include_tax") is True
        with money(Money(currency=lenient_currency(data.get("currency")), tax_included=included)):
            order = load(ORDER, data)
        result.update(_order(order, included))
        status = order["status"]
        result["payment_status"] = "paid" if status in self.paid_statuses else None
        result["cancelled"] = status in ("cancelled", "failed", "trash")
        result["refunded"] = status == "refunded"
        if status in self.ignored_statuses and result["action"] == "create":
            result["ignore"] = f"the order is {status} on WooCommerce"
        return result


def _order(order: dict[str, Any], included: bool) -> dict[str, Any]:
    """The ``ChannelOrder`` data of a loaded order object (its status apart)."""
    billing, shipping = order["billing"] or {}, order["shipping"] or {}
    email = billing.get("email")
    name = billing.get("name") or shipping.get("name") or email or "WooCommerce customer"
    phone = text(billing.get("phone") or shipping.get("phone"), 40)
    lines = []
    for index, item in enumerate(order["line_items"]):
        path = f"line_items.{index}"
        keys = [k for k in (item["sku"], text(item["variation_id"]) if item["variation_id"] else None,
                            text(item["product_id"]) if item["product_id"] else None) if k]
        lines.extend(split_line({"sku": item["sku"], "keys": keys, "quantity": item["quantity"], "path": path,
                                 "sku_path": f"{path}.sku", "title": item["name"]},
                                item["subtotal"] + item["subtotal_tax"]))
    discount, extras = _fees(order["fee_lines"], order["discount_total"] + order["discount_tax"])
    tax, customer_id = order["total_tax"], order["customer_id"]
    return {
        "external_id": order["id"], "currency": order["currency"],
        "customer": {"email": email, "name": name, "phone": phone, "shipping_address": shipping.get("address"),
                     "channel_customer_id": text(customer_id) if customer_id else None},
        "billing_address": billing.get("address"), "lines": lines, "non_stock_lines": extras,
        "shipping_total": order["shipping_total"] + order["shipping_tax"],
        "discount_total": discount, "tax_total": tax, "prices_include_tax": included,
        "tax_status": ("inclusive" if included else "exclusive") if tax else "none", "tax_lines": order["tax_lines"],
        "channel_total": order["total"], "note": order["customer_note"],
        "payment_reference": order["transaction_id"],
        # WooCommerce keeps no language on an order; WPML's WooCommerce Multilingual adds ``lang``
        # (and the ``wpml_language`` meta entry): read either, drop an unknown tag
        "locale": lenient_locale(order["lang"] or _meta(order["meta_data"], "wpml_language")),
        "refunds": [{"id": r["id"], "amount": r["total"][1], "note": r["reason"]}
                    for r in order["refunds"] if r["total"][1]],
    }


def _fees(fees: list[dict[str, Any]], discount: int) -> tuple[int, list[dict[str, Any]]]:
    """The order's discount with the negative fees added, and the other fees as lines without stock."""
    extras = []
    for fee in fees:
        negative, value = fee["total"]
        value += fee["total_tax"]
        if negative:
            discount += value
        elif value:
            extras.append({"kind": "fee", "title": fee["name"] or "fee", "quantity": 1, "unit_price": value,
                           "sku": None})
    return discount, extras


def _meta(entries: list[Any], key: str) -> Any:
    """A ``meta_data`` entry's value (``[{"key": ..., "value": ...}]``), or None."""
    for entry in entries:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry.get("value")
    return None
