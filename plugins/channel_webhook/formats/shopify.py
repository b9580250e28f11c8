"""Shopify's order webhooks (REST Admin API order object, prices as decimal strings), read with schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, post_load, pre_load

from engine.plugin_api import SalesChannel, is_currency, lenient_locale
from plugins.channel_webhook import signing
from plugins.channel_webhook.formats.addresses import address_schema
from plugins.channel_webhook.formats.common import (
    clean_delivery_id,
    header,
    load,
    load_json,
    not_an_object,
    person_name,
    text,
)
from plugins.channel_webhook.formats.fields import (
    Amount,
    Currency,
    Email,
    ExternalId,
    Integer,
    Items,
    Money,
    Object,
    Rate,
    Raw,
    Text,
    current_money,
    lenient_currency,
    money,
)

OBJECT = "an object is required"
LIST = "a list is required"
ADDRESS = address_schema({"name": "name", "company": "company", "line1": "address1", "line2": "address2",
                          "city": "city", "region": "province_code", "postal_code": "zip",
                          "country": "country_code", "phone": "phone"})
PRESENTMENT = {"subtotal": "subtotal_price_set", "discount": "total_discounts_set",
               "shipping": "total_shipping_price_set", "tax": "total_tax_set", "total": "total_price_set"}


class PlatformSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a platform's object has many more fields than an order needs


class CustomerSchema(PlatformSchema):
    id = Text(128)
    name, first_name, last_name, email, phone = Text(), Text(), Text(), Text(), Text()


class AllocationSchema(PlatformSchema):
    amount = Amount()


class TaxLineSchema(PlatformSchema):
    title = Text(100)
    rate = Rate()
    price = Amount()

    @post_load
    def ours(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"title": data["title"] or "tax", "rate": data["rate"], "amount": data["price"]}


def _allocations() -> Items:
    return Items(Object(AllocationSchema), invalid=LIST)


class LineSchema(PlatformSchema):
    quantity = Integer(minimum=1)
    price = Amount()
    discount_allocations = _allocations()
    sku = Text(64)
    variant_id, product_id, title, name = Text(), Text(), Text(), Text()
    gift_card, requires_shipping = Raw(), Raw()


class ShippingLineSchema(PlatformSchema):
    price = Amount()
    discount_allocations = _allocations()
    tax_lines = Items(Object(TaxLineSchema))


class ShopMoneySchema(PlatformSchema):
    amount = Amount(currency_key="currency_code")


class BuyerMoneySchema(PlatformSchema):
    amount = Amount(currency_key="currency_code", presentment=True)


def _buyer_money() -> Object:
    """The ``presentment_money`` of a money set, read only when the buyer's currency is not the shop's."""
    return Object(BuyerMoneySchema, when=lambda _: current_money().presentment is not None)


class BuyerSetSchema(PlatformSchema):
    presentment_money = _buyer_money()


class ShippingSetSchema(PlatformSchema):
    shop_money = Object(ShopMoneySchema, when=lambda _: current_money().shipping_from_set)
    presentment_money = _buyer_money()


class OrderSchema(PlatformSchema):
    """The order object of ``orders/create``, ``orders/paid``, ``orders/updated``, ``orders/cancelled``."""

    id = ExternalId()
    currency = Currency()
    customer = Object(CustomerSchema)
    email = Email(optional=True)  # the order's, else its contact_email, else its customer's
    phone = Text()
    shipping_address, billing_address = Object(ADDRESS), Object(ADDRESS)
    line_items = Items(Object(LineSchema, invalid=OBJECT, empty=OBJECT), empty="at least one line item is required")
    shipping_lines = Items(Object(ShippingLineSchema, invalid=OBJECT, empty=OBJECT), invalid=LIST)
    total_shipping_price_set = Object(ShippingSetSchema)
    subtotal_price_set, total_discounts_set = Object(BuyerSetSchema), Object(BuyerSetSchema)
    total_tax_set, total_price_set = Object(BuyerSetSchema), Object(BuyerSetSchema)
    total_discounts = Amount(used_when=lambda order: not _allocated(order))  # else the lines' allocations
    total_tax, total_price = Amount(optional=True), Amount(optional=True)
    taxes_included = Raw()
    tax_lines = Items(Object(TaxLineSchema))
    note = Text(2000)
    financial_status, cancelled_at, customer_locale = Raw(), Raw(), Raw()

    @pre_load
    def contact(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        customer = data.get("customer")
        customer = customer if isinstance(customer, dict) else {}
        return {**data, "email": data.get("email") or data.get("contact_email") or customer.get("email")}


def _allocated(order: dict[str, Any]) -> bool:
    """Whether the line items say what of the discount each got (Shopify's ``discount_allocations``)."""
    items = order.get("line_items")
    return isinstance(items, list) and any(isinstance(i, dict) and i.get("discount_allocations") for i in items)


class TransactionSchema(PlatformSchema):
    currency = Currency(fallback="USD")
    amount = Amount(currency_key="currency")


class RefundSchema(PlatformSchema):
    """``refunds/create``: a refund object; its successful ``refund`` transactions are the money."""

    order_id = ExternalId()
    id = ExternalId()
    transactions = Items(Object(TransactionSchema, when=lambda t: t.get("kind") == "refund"
                                and t.get("status") in ("success", None)), invalid=LIST)
    note = Text(500)


ORDER = OrderSchema()
REFUND = RefundSchema()  # one each: a load keeps no state in its schema


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

    def verify(self, request: Any, secrets: Any) -> str | None:
        return signing.verify_body_hmac(secrets, request.headers.get("X-Shopify-Hmac-Sha256"), request.get_data())

    def delivery_id(self, request: Any) -> str:
        return clean_delivery_id(header(request, "X-Shopify-Webhook-Id") or header(request, "X-Shopify-Event-Id"),
                                 request)

    def parse(self, request: Any) -> dict[str, Any]:
        data = load_json(request)
        topic = header(request, "X-Shopify-Topic")
        if isinstance(data, dict) and set(data) == {"order"} and isinstance(data["order"], dict):
            data = data["order"]  # the REST Admin API's {"order": {...}}: the same order object
        if not isinstance(data, dict):
            raise not_an_object()
        result: dict[str, Any] = {"topic": topic, "paths": {"lines": "line_items", "currency": "currency"}}
        if topic == "refunds/create":
            return {**result, **_refund(data)}
        if topic and topic not in (*self.topics, *self.update_topics):
            return {**result, "ignore": f"topic {topic} creates no order"}
        result["action"] = {"orders/updated": "update", "orders/cancelled": "cancel"}.get(topic or "", "create")
        currency = lenient_currency(data.get("currency"))
        presentment = _buyer_currency(data, currency)
        with money(Money(currency=currency, presentment=presentment,
                         shipping_from_set=not data.get("shipping_lines"))):
            order = load(ORDER, data)
        result.update(_order(order, presentment))
        if result.get("cancelled") and result["action"] == "create":
            result["ignore"] = "the order is cancelled or voided on Shopify"
        return result


def _buyer_currency(data: dict[str, Any], currency: str) -> str | None:
    """The buyer's currency (``presentment_currency``) when it is a valid one other than the shop's."""
    theirs = text(data.get("presentment_currency"), 3)
    if not theirs or theirs.upper() == currency or not is_currency(theirs):
        return None
    return theirs.upper()


def _order(order: dict[str, Any], presentment: str | None) -> dict[str, Any]:
    """The ``ChannelOrder`` data of a loaded order object."""
    customer = order["customer"] or {}
    # the buyer (billing) and the recipient (shipping) are people of their own: the shipping address
    # keeps the recipient's name; an order without one (pickup, digital goods) is flagged, not refused
    billing, shipping = order["billing_address"] or {}, order["shipping_address"] or {}
    email = order["email"]
    name = person_name(customer) or billing.get("name") or shipping.get("name") or email or "Shopify customer"
    phone = text(order["phone"] or billing.get("phone") or shipping.get("phone") or customer.get("phone"), 40)
    lines, extras, line_discount = _lines(order["line_items"])
    shipping_total, shipping_discount, shipping_taxes = _shipping(order)
    # the shipping discount (a free-shipping code) comes off the shipping only; Shopify's
    # total_discounts counts it too, so it is taken out of the order discount (never twice)
    if order["total_discounts"] is None:
        discount = line_discount
    else:
        discount = max(0, order["total_discounts"] - shipping_discount)
    tax, included = order["total_tax"] or 0, order["taxes_included"] is True
    if tax:
        tax_status = "inclusive" if included else "exclusive"
    else:
        tax_status = "inclusive_unknown" if included and order["total_tax"] is None else "none"
    financial = order["financial_status"]
    result = {
        "external_id": order["id"], "currency": order["currency"],
        "customer": {"email": email, "name": name, "phone": phone, "shipping_address": shipping.get("address"),
                     "channel_customer_id": customer.get("id")},
        "billing_address": billing.get("address"), "lines": lines, "non_stock_lines": extras,
        "shipping_total": max(shipping_total - shipping_discount, 0),
        "discount_total": discount, "tax_total": tax, "prices_include_tax": included, "tax_status": tax_status,
        "tax_lines": _with_shipping_tax(order["tax_lines"], shipping_taxes), "channel_total": order["total_price"],
        **_presentment_totals(order, presentment),
        "note": order["note"], "payment_status": "paid" if financial == "paid" else None,
        # the language the buyer used at checkout (``tr-TR``); an unknown tag is dropped, never an error
        "locale": lenient_locale(order["customer_locale"]),
    }
    if order["cancelled_at"] or financial == "voided":
        result["cancelled"] = True
    return result


def _lines(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The stock lines, the lines that hold no stock (gift cards, no shipping) and the lines' discounts."""
    lines, extras, discount = [], [], 0
    for index, item in enumerate(items):
        path = f"line_items.{index}"
        discount += sum(a["amount"] for a in item["discount_allocations"])
        keys = [k for k in (item["sku"], item["variant_id"], item["product_id"]) if k]
        line = {"sku": item["sku"], "keys": keys, "quantity": item["quantity"], "unit_price": item["price"],
                "path": path, "sku_path": f"{path}.sku", "title": item["title"] or item["name"]}
        if item["gift_card"] is True:
            extras.append({**line, "kind": "gift_card"})
        elif item["requires_shipping"] is False:
            extras.append({**line, "kind": "no_shipping"})
        else:
            lines.append(line)  # without sku nor mapped id: a custom line (see order_data.order_data)
    return lines, extras, discount


def _shipping(order: dict[str, Any]) -> tuple[int, int, list[dict[str, Any]]]:
    """The shipping's price, its discount and its tax lines."""
    total, discount, taxes = 0, 0, []
    for ship in order["shipping_lines"]:
        total += ship["price"]
        discount += sum(a["amount"] for a in ship["discount_allocations"])
        taxes += ship["tax_lines"]
    shop_set = order["total_shipping_price_set"]
    if not order["shipping_lines"] and shop_set is not None:
        total = (shop_set["shop_money"] or {}).get("amount") or 0
    return total, discount, taxes


def _presentment_totals(order: dict[str, Any], theirs: str | None) -> dict[str, Any]:
    """The buyer's currency and amounts (``presentment_currency``, ``*_set.presentment_money``) when
    they are not the shop's."""
    if theirs is None:
        return {}
    totals = {}
    for ours, key in PRESENTMENT.items():
        side = (order[key] or {}).get("presentment_money")
        totals[ours] = None if side is None else side["amount"]
    return {"presentment_currency": theirs, "presentment_totals": totals}


def _with_shipping_tax(order_lines: list[dict[str, Any]], shipping_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def _refund(data: dict[str, Any]) -> dict[str, Any]:
    refund = load(REFUND, data)
    return {"action": "refund", "external_id": refund["order_id"], "refund_id": refund["id"],
            "refund_amount": sum(t["amount"] for t in refund["transactions"]), "note": refund["note"]}

