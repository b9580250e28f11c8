"""Placing an order: validate, upsert the customer, reserve stock, total, flag, record (one transaction).

``place_order`` is the use case; the steps below it each do one part of it, in the engine-wide lock order
(docs/design-decisions.md): stock levels, the customer, the coupon, then the reorder rules.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from sqlalchemy import bindparam, select

from engine.db import db, transaction
from engine.domain import addresses, locales
from engine.domain import flags as flag_rules
from engine.domain import transitions as tx
from engine.domain.money import MAX_AMOUNT
from engine.errors import ValidationFailed
from engine.models import Customer, Order, OrderLine, Product
from engine.plugins import registry
from engine.services import coupons, customers, placement_customer, placement_writes, stock
from engine.services.orders import find_channel_order, hold_locked, note, stage


def _customer_errors(customer: dict, lenient: bool, needs_address: bool = True) -> tuple[dict, list[str]]:
    """The customer's field errors, and (``lenient``: a channel order, which is never refused for
    what it lacks) the review flags that take their place. A channel order with nothing to ship
    (``needs_address`` False: a gift card sent by e-mail) needs no address."""
    errors: dict = {}
    flags: list[str] = []
    if not (customer.get("name") or "").strip():
        errors["name"] = ["required"]
    if not (customer.get("email") or "").strip():
        if lenient:
            flags.append(flag_rules.NO_EMAIL)
        else:
            errors["email"] = ["required"]
    address = customer.get("shipping_address")
    address_errors = addresses.address_errors(address) if needs_address else {}
    if address_errors:
        if lenient:
            flags.append(flag_rules.REVIEW_ADDRESS)
        else:
            errors["shipping_address"] = address_errors
    return errors, flags


def _non_stock_lines(data: dict) -> list[dict]:
    lines = []
    for item in data.get("non_stock_lines") or []:
        quantity = int(item.get("quantity") or 1)
        unit_price = int(item.get("unit_price") or 0)
        lines.append({"kind": item.get("kind") or "custom", "title": str(item.get("title") or item.get("kind")
                                                                           or "line")[:200],
                      "sku": item.get("sku"), "quantity": quantity, "unit_price": unit_price,
                      "total": quantity * unit_price, "requires_shipping": bool(item.get("requires_shipping"))})
    return lines


def _check_amount(amount: int, currency: str) -> None:
    """An order's subtotal and total stay within MAX_AMOUNT (the API's bound on money): else a 422."""
    if amount > MAX_AMOUNT:
        raise ValidationFailed(f"the order's total ({amount} {currency} minor units) is more than an order may "
                               f"reach ({MAX_AMOUNT})",
                               errors={"lines": [f"the lines add up to more than {MAX_AMOUNT} minor units"]})


def _gift_lines_allowed(data: dict) -> bool:
    """Zero-priced thank-you lines (``gift: true``) go with other lines, or on a gift order or a replacement."""
    lines = data.get("lines") or []
    if not any(line.get("gift") for line in lines):
        return True
    paid_lines = [line for line in lines if not line.get("gift")] + list(data.get("non_stock_lines") or [])
    return bool(paid_lines) or bool(data.get("gift")) or data.get("replacement_for") is not None


class Totals(NamedTuple):
    """What an order costs: the lines' subtotal, the discount (coupon and channel), shipping, tax, the total
    the lines add up to and the total kept (a channel's own when it sent one)."""

    subtotal: int
    discount: int
    shipping: int
    tax: int
    prices_include_tax: bool
    tax_status: str
    lines_total: int
    total: int


def place_order(data: dict) -> tuple[Order, bool]:
    """Place an order: validate, upsert the customer, reserve stock, total, flag, record.

    ``data`` is the validated body of ``POST /orders`` (plus optional
    ``unit_price`` per line for channel orders, ``replacement_for``,
    ``payment_status`` ``paid`` for orders paid on a marketplace, and what a
    channel charged besides its lines: ``shipping_total``, ``discount_total``
    (its own discounts, added to a coupon's), ``tax_total`` (tax charged on
    top of the prices), and a ``note`` for the timeline).
    Returns ``(order, created)``; an order with the same (channel,
    external_id) is returned as it is with ``created`` False.
    """
    reg = registry()
    channel = data.get("channel") or "api"
    provider = data.get("payment_provider") or "manual"
    extra_lines = _non_stock_lines(data)
    review_flags = _check_request(data, provider, extra_lines, reg)
    with transaction():
        external_id = data.get("external_id")
        if external_id is not None:
            existing = find_channel_order(channel, external_id)
            if existing is not None:
                return existing, False
        products = _products_of(data)
        currency = _currency_of(data, products)
        lines = _lines_of(data, products)
        subtotal = sum(line.unit_price * line.quantity for line in lines) + sum(x["total"] for x in extra_lines)
        _check_amount(subtotal, currency)
        by_id = {p.id: p for p in products.values()}
        levels = stock.lock_levels(list(by_id))
        before = stock.available_by_product(levels)
        # an exchange's replacement is promised: what stock cannot give now is backordered (on hold), never
        # a refused receipt of the return
        allocations, short = stock.allocate(lines, by_id, levels, allow_short=data.get("replacement_for") is not None)
        customer, previous_orders = placement_customer.upsert_customer(data["customer"], currency, channel,
                                                                       data.get("billing_address"))
        # lock order: stock levels, the customer (above), then the coupon (counted under its lock)
        applied = coupons.apply_locked(data.get("coupon"), customer=customer, currency=currency, subtotal=subtotal,
                                       identified=bool(customer.email or customer.channel_customer_id),
                                       shipping_total=int(data.get("shipping_total") or 0))
        totals = _totals_of(data, subtotal, applied)
        if totals.total != totals.lines_total:
            review_flags.append(flag_rules.REVIEW_TOTALS)
        _check_amount(totals.total, currency)
        is_vip = customers.vip_at_placement(customer, currency, totals.total)  # may count orders: before the new one
        order = _new_order(data, customer, currency, totals, lines, extra_lines, channel, provider)
        order.flags = _flags_of(order, customer, previous_orders, is_vip, applied, review_flags, reg)
        placement_writes.add_order(order, lines)  # the order, its flags and its lines: one INSERT each
        coupons.record_use(applied, order)
        stock.reserve(order, allocations)
        stage(order, "order_placed", f"order {order.number} placed on channel {channel}",
              total=totals.total, currency=currency, flags=order.flags)
        _timeline_notes(order, data, totals, review_flags)
        _backorder(order, lines, short, by_id)
        stock.check_low_stock(list(by_id.values()), before, levels)
        if data.get("payment_status") == "paid" or totals.total == 0:
            _paid_at_placement(order, provider, totals.total, data.get("payment_reference"))
    return order, True


def _flags_of(order: Order, customer: Customer, previous_orders: int, is_vip: bool, applied, review_flags: list[str],
              reg) -> list[str]:
    """The core's flags, the review flags and every plugin's ``order_flags``, merged in that order."""
    flags = flag_rules.core_flags(previous_orders=previous_orders, is_vip=is_vip, gift=order.gift,
                                  coupon_category=applied.category if applied else None,
                                  replacement=order.replacement_for_id is not None)
    return flag_rules.merge(flags, [review_flags, *reg.pm.hook.order_flags(order=order, customer=customer)])


def _paid_at_placement(order: Order, provider: str, total: int, reference: str | None) -> None:
    """An order the channel already collected, or one that costs nothing, is paid as it is placed."""
    from engine.services import payments

    payments.record_paid_locked(order, provider, total, reference,
                                note_text="paid on the channel" if total else "nothing to pay")


def _check_request(data: dict, provider: str, extra_lines: list[dict], reg) -> list[str]:
    """What can be refused before the transaction (a 422 naming every field), and the review flags a
    lenient (channel) order gets instead of a refusal."""
    lenient = bool(data.get("incomplete_ok"))
    errors: dict = {}
    if provider not in reg.providers:
        errors["payment_provider"] = [f"unknown payment provider {provider!r}; known: {', '.join(sorted(reg.providers))}"]
    if not data.get("lines") and not extra_lines:
        errors["lines"] = ["an order needs at least one line"]
    needs_address = not lenient or tx.fulfilment(len(data.get("lines") or []), extra_lines) != tx.DIGITAL
    customer_errors, review_flags = _customer_errors(data.get("customer") or {}, lenient, needs_address)
    if customer_errors:
        errors["customer"] = customer_errors
    if errors:
        raise ValidationFailed("the order is not valid", errors=errors)
    return review_flags


@functools.cache
def _products_by_sku():
    return select(Product).where(Product.sku.in_(bindparam("skus", expanding=True)))


def _products_of(data: dict) -> dict[str, Product]:
    """The lines' products by sku; a 422 naming each bad line (unknown or archived sku, quantity, a priced
    gift, a gift alone), or ``product_archived`` when archived products are all that is wrong."""
    skus = {line["sku"] for line in data["lines"]}
    products = {p.sku: p for p in db.session.execute(_products_by_sku(), {"skus": sorted(skus)}).scalars()}
    line_errors = {}
    archived = []
    # an archived product is no longer sold; a replacement (an exchange) still sends what was bought
    replacing = data.get("replacement_for") is not None
    for index, line in enumerate(data["lines"]):
        if line["sku"] not in products:
            line_errors[str(index)] = {"sku": [f"unknown sku {line['sku']!r}"]}
        elif products[line["sku"]].archived_at is not None and not replacing:
            line_errors[str(index)] = {"sku": [f"{line['sku']} is archived: it can no longer be ordered"]}
            archived.append(line["sku"])
        elif line["quantity"] <= 0:
            line_errors[str(index)] = {"quantity": ["must be at least 1"]}
        elif line.get("gift") and line.get("unit_price"):
            line_errors[str(index)] = {"unit_price": ["a gift line is free: its unit_price is 0"]}
    if not line_errors and not _gift_lines_allowed(data):
        line_errors = {str(i): {"gift": ["a thank-you gift goes with an order of other lines, or on a gift "
                                         "order (gift: true)"]} for i, ln in enumerate(data["lines"]) if ln.get("gift")}
    if line_errors:
        if len(archived) == len(line_errors):
            raise ValidationFailed(f"archived products cannot be ordered: {', '.join(archived)}",
                                   errors={"lines": line_errors}, code="product_archived")
        raise ValidationFailed("the order has invalid lines", errors={"lines": line_errors})
    return products


def _currency_of(data: dict, products: dict[str, Product]) -> str:
    """The order's one currency: its products' (a 422 when they differ), or the channel's for an order of
    non-stock lines only."""
    currencies = {products[line["sku"]].currency for line in data["lines"]}
    if not currencies:  # only non-stock lines: the channel's currency
        if not data.get("currency"):
            raise ValidationFailed("an order of non-stock lines only needs its currency",
                                   errors={"currency": ["required"]})
        currencies = {str(data["currency"]).upper()}
    if len(currencies) > 1:
        raise ValidationFailed("all lines must share one currency",
                               errors={"lines": [f"mixed currencies: {', '.join(sorted(currencies))}"]})
    return currencies.pop()


def _lines_of(data: dict, products: dict[str, Product]) -> list[OrderLine]:
    """The order's lines at the product's price (a channel's own ``unit_price`` kept; gifts at 0)."""
    return [OrderLine(product_id=products[ln["sku"]].id, sku=ln["sku"], name=products[ln["sku"]].name,
                      quantity=ln["quantity"],
                      unit_price=0 if ln.get("gift") else
                      ln["unit_price"] if ln.get("unit_price") is not None else products[ln["sku"]].price,
                      gift=bool(ln.get("gift")), backordered=0, picked_quantity=0, returned_quantity=0, serials=[])
            for ln in data["lines"]]


def _totals_of(data: dict, subtotal: int, applied) -> Totals:
    """The order's totals from its subtotal, the applied coupon (or None) and what a channel charged."""
    shipping = int(data.get("shipping_total") or 0)
    discount = min(subtotal, (applied.discount if applied else 0) + int(data.get("discount_total") or 0))
    discount += applied.shipping_discount if applied else 0
    tax = int(data.get("tax_total") or 0)
    inclusive = bool(data.get("prices_include_tax"))
    tax_status = data.get("tax_status") or ("not_given" if not tax else "inclusive" if inclusive else "exclusive")
    lines_total = subtotal - discount + shipping + (0 if inclusive else tax)
    channel_total = data.get("channel_total")
    total = lines_total if channel_total is None else int(channel_total)
    return Totals(subtotal, discount, shipping, tax, inclusive, tax_status, lines_total, total)


def _new_order(data: dict, customer: Customer, currency: str, totals: Totals, lines: list[OrderLine],
               extra_lines: list[dict], channel: str, provider: str) -> Order:
    external_id = data.get("external_id")
    buyer = data["customer"]
    return Order(
        status=tx.PLACED, payment_status="unpaid", payment_provider=provider, channel=channel,
        external_id=str(external_id) if external_id is not None else None, customer=customer,
        email=customer.email, customer_name=buyer["name"].strip(),
        phone=buyer.get("phone"), shipping_address=buyer.get("shipping_address"),
        billing_address=data.get("billing_address"), non_stock_lines=extra_lines,
        tax_lines=list(data.get("tax_lines") or []), prices_include_tax=totals.prices_include_tax,
        tax_status=totals.tax_status, presentment_currency=data.get("presentment_currency"),
        presentment_totals=data.get("presentment_totals"), currency=currency, subtotal=totals.subtotal,
        discount_total=totals.discount, shipping_total=totals.shipping, tax_total=totals.tax, total=totals.total,
        paid_total=0, refunded_total=0, coupon=data.get("coupon"), gift=bool(data.get("gift")),
        replacement_for_id=data.get("replacement_for"), locale=locales.lenient(data.get("locale")),
        lines=lines, events=[], payments=[], shipments=[],
    )


def _timeline_notes(order: Order, data: dict, totals: Totals, review_flags: list[str]) -> None:
    """The placement's notes for staff: the customer's note, a channel total that differs from the lines',
    an address to review."""
    if data.get("note"):
        note(order, "customer_note", str(data["note"])[:2000])
    if totals.total != totals.lines_total:
        note(order, "totals_differ", f"the channel charged {totals.total} {order.currency} minor units; the lines "
             f"add up to {totals.lines_total}: the channel's total is kept, review it", channel_total=totals.total,
             lines_total=totals.lines_total)
    if flag_rules.REVIEW_ADDRESS in review_flags:
        problems = addresses.address_errors(order.shipping_address) if order.shipping_address else {}
        note(order, "address_review", "no shipping address was sent" if not order.shipping_address else
             "the shipping address is incomplete: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in problems.items()),
             errors=problems)


def _backorder(order: Order, lines: list[OrderLine], short: dict[int, int], by_id: dict[int, Product]) -> None:
    """Lines stock could not give in full (an exchange's replacement): backordered, on a draft purchase
    order, and the order on hold."""
    if not short:
        return
    parts = []
    for index, missing in short.items():
        lines[index].backordered = missing
        parts.append(f"{lines[index].sku} x{missing}")
        stock.draft_purchase_order(by_id[lines[index].product_id], missing, f"backorder for order {order.number}")
    hold_locked(order, "backorder: " + ", ".join(parts))
