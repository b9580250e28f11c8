"""Posting to the journal: what each stage books, idempotently, in balanced entries.

Conventions: amounts are integer minor units, debit positive and credit negative; an entry balances
per currency. Every function here runs inside ``engine.plugin_api.transaction()`` (one per stage hook), so an
entry, the order's bookkeeping row, the receipt and the sync row are committed together or not at all.

What is booked (accounts are roles of the chart, see ``settings.DEFAULT_ACCOUNTS``):

* **payment captured** (``order_paid``, and before any other entry of the order): per captured payment,
  clearing of its provider against receivable; its fee, when known, against the clearing account. An
  authorisation posts nothing; its later capture fires no stage hook, so the order's next hook or the
  periodic task (``book_captured_payments``) posts it.
* **sale** (``order_confirmed``): receivable (the order's total) against sales, shipping revenue and
  VAT per rate, with discounts as a debit. Prices are tax-inclusive: the tax is split out per rate.
* **refund** (``refund_issued``): the money leaves clearing (against receivable); when the sale was
  confirmed, a credit note moves the refunded part of the sale (net per rate and its VAT) to refunds,
  in proportion to the sale's composition. Never more than the sale is credited.
* **cancellation** (``order_cancelled``): when the order had been confirmed, the sale is reversed and
  so are the credit notes of earlier refunds: every revenue and VAT account of the order ends at zero.
  Money that went back is a refund of its own.
* **shipment** (``order_shipped``): COGS against inventory at the product's unit cost (from
  ``POST /stock/receipts`` ``unit_cost``); the carrier's price as a shipping cost payable to the carrier.
* **return** (``return_received``): restocked units back into inventory against COGS, at the cost they
  were shipped at.
* **stock receipt** (``periodic_tasks``): received units into inventory against goods received.

A unit that moves while its product has no unit cost is not posted; it is recorded as a cost gap
and listed by the inventory report.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, insert, select, text

from engine.plugin_api import (
    MOVEMENT_ADJUSTMENT,
    MOVEMENT_RECEIPT,
    MOVEMENT_RETURN,
    MOVEMENT_SHIPMENT,
    TIMELINE_ORDER_CONFIRMED,
    Order,
    OrderEvent,
    Payment,
    Product,
    StockMovement,
    as_utc,
    db,
    insert_if_absent,
    is_postgres,
    utcnow,
)

from .models import CostGap, JournalEntry, OrderBooks, Posting, State, SyncState
from .settings import Settings, current, net_of, rate_key

CAPTURED = ("paid", "partially_refunded", "refunded")


@dataclass
class Line:
    """A posting to write: ``amount`` > 0 is a debit, < 0 a credit."""

    role: str
    account: str
    amount: int
    currency: str
    tax_rate: str | None = None
    sku: str | None = None
    quantity: int | None = None
    memo: str | None = None


class Unbalanced(AssertionError):
    pass


# --------------------------------------------------------------------------- low level


def event_date(event: dict) -> date:
    return as_utc(datetime.fromisoformat(event["created_at"])).date()


def exists(source_key: str) -> bool:
    return db.session.execute(select(JournalEntry.id).where(JournalEntry.source_key == source_key)).first() is not None


def _next_entry_id() -> int:
    if is_postgres():
        return db.session.execute(text(f"SELECT nextval(pg_get_serial_sequence('{JournalEntry.__tablename__}', "
                                       "'id'))")).scalar_one()
    # SQLite: inside the write transaction (BEGIN IMMEDIATE), nobody else inserts meanwhile
    return (db.session.execute(select(func.max(JournalEntry.id))).scalar() or 0) + 1


def merge(lines: list[Line]) -> list[Line]:
    """One line per (role, account, currency, tax rate, sku, memo); zero lines dropped; order kept."""
    merged: dict[tuple, Line] = {}
    for line in lines:
        key = (line.role, line.account, line.currency, line.tax_rate, line.sku, line.memo)
        if key in merged:
            merged[key].amount += line.amount
            if line.quantity is not None:
                merged[key].quantity = (merged[key].quantity or 0) + line.quantity
        else:
            merged[key] = Line(**vars(line))
    return [line for line in merged.values() if line.amount != 0]


def post(source_key: str, kind: str, day: date, description: str, lines: list[Line], *, event_id: int | None = None,
         order=None, source_id: int | None = None, payee: str | None = None, checked: bool = False) -> int | None:
    """Write one balanced entry (postings first, then the entry row, then its sync row).

    Returns the entry id, or None when ``source_key`` is already posted (``checked``: the caller looked)
    or nothing is left to post. The database refuses an unbalanced entry even if this check were skipped.
    """
    if not checked and exists(source_key):
        return None
    lines = merge(lines)
    if not lines:
        return None
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.currency] += line.amount
    off = {cur: total for cur, total in totals.items() if total}
    if off:
        raise Unbalanced(f"{kind} {source_key} does not balance: {off}")
    entry_id = _next_entry_id()
    db.session.execute(insert(Posting), [
        {"entry_id": entry_id, "line_no": index, "account": line.account, "role": line.role, "amount": line.amount,
         "currency": line.currency, "tax_rate": line.tax_rate, "sku": line.sku, "quantity": line.quantity,
         "memo": line.memo} for index, line in enumerate(lines, 1)])
    db.session.execute(insert(JournalEntry).values(
        id=entry_id, uid=uuid.uuid4().hex, source_key=source_key, event_id=event_id, kind=kind,
        order_id=order.id if order is not None else None, order_number=order.number if order is not None else None,
        source_id=source_id, booking_date=day, channel=order.channel if order is not None else None,
        payee=payee if payee is not None else (order.customer_name if order is not None else None),
        description=description[:500]))
    db.session.execute(insert(SyncState).values(entry_id=entry_id, status="pending", attempts=0,
                                                next_attempt_at=utcnow()))
    return entry_id


# --------------------------------------------------------------------------- the sale's composition


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, exactly (largest remainders get the odd units)."""
    whole = sum(weights)
    if not weights:
        return []
    if whole == 0:
        return [total] + [0] * (len(weights) - 1)
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:rest]:
        shares[i] += 1
    return shares


# the orders whose tax the channel told us (``tax_status``): booked from their own figures
CHANNEL_TAXED = ("exclusive", "inclusive")


def _percent_key(rate: str | None, settings: Settings) -> str:
    """A tax line's rate (a decimal fraction, ``"0.19"``) as the journal's rate key (``"19"``)."""
    if rate in (None, ""):
        return rate_key(settings.default_rate)  # a tax the platform charged without saying its rate
    return rate_key(Decimal(rate) * 100)


def _implied_bases(vat: dict[str, int]) -> dict[str, int]:
    """The net each rate's tax was charged on (tax × 100 / rate): the weights of the net per rate."""
    return {key: int(amount * 100 / Decimal(key)) if Decimal(key) else 0 for key, amount in vat.items()}


def channel_composition(order, settings: Settings) -> list[list] | None:
    """The sale from the order's own tax figures, when the channel gave them (``tax_status`` ``none``,
    or ``exclusive``/``inclusive`` with ``tax_lines``); None otherwise (the configured rates apply).

    VAT per rate is the platform's tax lines (their ``shipping_amount`` is the shipping's part); the net is
    what is left: ``total - tax``, shipping net of its tax when prices include it, the discount's net in
    proportion. The net parts carry the rates in proportion to the tax each rate was charged on."""
    status = order.tax_status
    if status == "none":
        vat, shipping_vat = {}, {}
    elif status in CHANNEL_TAXED and order.tax_lines:
        vat, shipping_vat = defaultdict(int), defaultdict(int)
        for line in order.tax_lines:
            key = _percent_key(line.get("rate"), settings)
            vat[key] += int(line.get("amount") or 0)
            shipping_vat[key] += int(line.get("shipping_amount") or 0)
        off = order.tax_total - sum(vat.values())
        if off:  # tax lines that do not add up to the order's tax: the rest at the largest line's rate
            vat[max(vat, key=lambda k: (vat[k], k))] += off
        vat = {k: v for k, v in vat.items() if v}
        shipping_vat = {k: v for k, v in shipping_vat.items() if v}
    else:
        return None
    tax = sum(vat.values())
    inclusive = order.prices_include_tax
    shipping_tax = sum(shipping_vat.values())
    shipping_net = order.shipping_total - (shipping_tax if inclusive else 0)
    goods_net = order.total - tax - shipping_net  # after the discount
    goods_vat = {k: vat[k] - shipping_vat.get(k, 0) for k in vat}
    discount = order.discount_total
    if inclusive and discount and order.subtotal - discount > 0:
        # the discount contained tax like the prices: its net in the proportion of the lines' net to gross
        discount_net = int((Decimal(discount) * goods_net / (order.subtotal - discount))
                           .quantize(Decimal(1), rounding=ROUND_HALF_UP))
    else:
        discount_net = discount
    parts: dict[tuple[str, str], int] = defaultdict(int)

    def spread(role: str, amount: int, bases: dict[str, int], whole: int, count: int) -> None:
        # rates in proportion to the net they taxed; what no tax line explains is at 0 % (an untaxed gift
        # card), unless it is only the rounding of the tax amounts the bases came from (half a minor unit
        # per line and rate, × 100 / rate)
        weights = {k: v for k, v in bases.items() if v}
        rest = whole - sum(weights.values())
        tolerance = sum(math.ceil(Decimal(50 * count) / Decimal(k)) for k in weights)
        if not weights:
            weights["0"] = 1
        elif rest > tolerance:
            weights["0"] = weights.get("0", 0) + rest
        keys = list(weights)
        for key, share in zip(keys, allocate(amount, [weights[k] for k in keys]), strict=True):
            parts[(role, key)] += share

    goods_bases = _implied_bases(goods_vat)
    count = len(order.lines) + len(order.non_stock_lines or []) + 1
    spread("sales", goods_net + discount_net, goods_bases, goods_net, count)
    if discount_net:
        spread("discounts", -discount_net, goods_bases, goods_net, count)
    if order.shipping_total:
        if shipping_vat:
            spread("shipping", shipping_net, _implied_bases(shipping_vat), shipping_net, 1)
        else:  # the channel did not say which of its tax was the shipping's: like the goods
            spread("shipping", shipping_net, goods_bases, goods_net, count)
    for key, amount in vat.items():
        parts[("vat", key)] += amount
    return [[role, rate, amount] for (role, rate), amount in parts.items() if amount]


def line_rate(order, settings: Settings, sku: str) -> str | None:
    """The VAT rate a receipt shows on a line: the configured one, or for an order booked from its own
    tax figures the platform's rate when there is one (several rates: None, the tax table says it all)."""
    if order.tax_status == "none":
        return "0"
    if order.tax_status in CHANNEL_TAXED and order.tax_lines:
        rates = {_percent_key(line.get("rate"), settings) for line in order.tax_lines if line.get("amount")}
        return rates.pop() if len(rates) == 1 else None
    return rate_key(settings.rate_for(sku))


def composition(order, settings: Settings) -> list[list]:
    """The sale seen from revenue: ``[[role, tax_rate, amount], ...]`` (credits positive), summing to
    ``order.total``. A channel order that carries its own tax figures is booked from them
    (``channel_composition``). Otherwise lines are grouped by VAT rate; the discount is spread over the
    rates in proportion to their gross; shipping carries the shipping rate."""
    own = channel_composition(order, settings)
    if own is not None:
        off = order.total - sum(amount for _, _, amount in own)
        if off:  # never let a mismatch unbalance the books
            own.append(["sales", "0", off])
        return own
    groups: dict[str, int] = {}
    for line in order.lines:
        key = rate_key(settings.rate_for(line.sku))
        groups[key] = groups.get(key, 0) + line.unit_price * line.quantity
    rates = list(groups)
    discounts = dict(zip(rates, allocate(min(order.discount_total, sum(groups.values())),
                                         [groups[r] for r in rates]), strict=True))
    parts: dict[tuple[str, str], int] = {}

    def add(role: str, rate: str, amount: int) -> None:
        parts[(role, rate)] = parts.get((role, rate), 0) + amount

    if order.tax_total:
        # a channel that charged tax on top of its (net) prices: the tax it charged is split over the rates
        ship_rate = rate_key(settings.shipping_rate)
        bases = {rate: groups[rate] - discounts[rate] for rate in rates}
        for rate in rates:
            add("sales", rate, groups[rate])
            add("discounts", rate, -discounts[rate])
        if order.shipping_total:
            add("shipping", ship_rate, order.shipping_total)
            bases[ship_rate] = bases.get(ship_rate, 0) + order.shipping_total
        keys = list(bases)
        weights = [int(bases[k] * Decimal(k) * 100) for k in keys]
        if not any(weights):
            keys, weights = [rate_key(settings.default_rate)], [1]
        for key, tax in zip(keys, allocate(order.tax_total, weights), strict=True):
            add("vat", key, tax)
        groups = {}
    for rate, gross in groups.items():
        discount = discounts[rate]
        full = net_of(gross, Decimal(rate))
        after = net_of(gross - discount, Decimal(rate))
        add("sales", rate, full)
        add("discounts", rate, -(full - after))
        add("vat", rate, gross - discount - after)
    if order.shipping_total and not order.tax_total:
        rate = rate_key(settings.shipping_rate)
        net = net_of(order.shipping_total, Decimal(rate))
        add("shipping", rate, net)
        add("vat", rate, order.shipping_total - net)
    off = order.total - sum(parts.values())
    if off:  # the core's totals always add up; never let a mismatch unbalance the books
        add("sales", rate_key(settings.default_rate), off)
    return [[role, rate, amount] for (role, rate), amount in parts.items() if amount]


def _credit_parts(books: OrderBooks) -> list[tuple[str, str]]:
    """The sale as credit notes see it: net and VAT per rate (keys), in a stable order."""
    keys = []
    for role, rate, _amount in books.composition:
        key = ("vat" if role == "vat" else "net", rate)
        if key not in keys:
            keys.append(key)
    return keys


def _credited(books: OrderBooks, cumulative: int) -> dict[tuple[str, str], int]:
    """How ``cumulative`` credited gross splits over net and VAT per rate (the same split every time)."""
    keys = _credit_parts(books)
    weights = {key: 0 for key in keys}
    for role, rate, amount in books.composition:
        weights[("vat" if role == "vat" else "net", rate)] += amount
    return dict(zip(keys, allocate(cumulative, [weights[k] for k in keys]), strict=True))


def lock_books(order) -> OrderBooks:
    """The order's bookkeeping row, created on first use (its sale composition frozen then), locked."""
    stmt = select(OrderBooks).where(OrderBooks.order_id == order.id).with_for_update() \
        .execution_options(populate_existing=True)
    books = db.session.execute(stmt).scalar_one_or_none()
    if books is None:
        insert_if_absent(OrderBooks, {"order_id": order.id, "currency": order.currency, "total": order.total,
                                      "composition": composition(order, current()), "credited": 0,
                                      "cancelled": False, "updated_at": utcnow()}, ["order_id"])
        books = db.session.execute(stmt).scalar_one()
    return books


def was_confirmed(order) -> bool:
    """The order reached stage 3 (its sale is, or will be, booked), whatever the hooks' order."""
    return db.session.execute(select(OrderEvent.id).where(
        OrderEvent.order_id == order.id, OrderEvent.kind == TIMELINE_ORDER_CONFIRMED).limit(1)).first() is not None


def _revenue_line(settings: Settings, role: str, rate: str, amount: int, currency: str) -> Line:
    return Line(role, settings.account(role, rate=rate), amount, currency, tax_rate=rate)


# --------------------------------------------------------------------------- stage postings


def book_payments(order, day: date) -> list[int]:
    """Post every captured payment of the order not posted yet (and its fee, once known)."""
    settings = current()
    keys = {}
    for payment in order.payments:
        if payment.status in CAPTURED and payment.amount > 0:
            keys[f"payment:{payment.id}"] = payment
            if payment.fee:
                keys[f"payment-fee:{payment.id}"] = payment
    if not keys:
        return []
    done = set(db.session.execute(select(JournalEntry.source_key).where(
        JournalEntry.source_key.in_(list(keys)))).scalars())
    posted = []
    for key, payment in keys.items():
        if key in done:
            continue
        clearing = settings.account("clearing", provider=payment.provider)
        ref = f" ({payment.reference})" if payment.reference else ""
        if key.startswith("payment:"):
            lines = [Line("clearing", clearing, payment.amount, payment.currency, memo=payment.provider),
                     Line("receivable", settings.account("receivable"), -payment.amount, payment.currency)]
            entry = post(key, "payment", day, f"Order {order.number}: payment captured with {payment.provider}{ref}",
                         lines, order=order, source_id=payment.id, checked=True)
        else:
            lines = [Line("fees", settings.account("fees"), payment.fee, payment.currency, memo=payment.provider),
                     Line("clearing", clearing, -payment.fee, payment.currency, memo=payment.provider)]
            entry = post(key, "fee", day, f"Order {order.number}: {payment.provider} fee{ref}", lines,
                         order=order, source_id=payment.id, payee=payment.provider, checked=True)
        if entry:
            posted.append(entry)
    return posted


def _state(name: str) -> State:
    insert_if_absent(State, {"name": name, "value": 0}, ["name"])
    return db.session.execute(select(State).where(State.name == name).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()


def book_captured_payments(now: datetime, margin: timedelta = timedelta(minutes=10), every: int = 60) -> int:
    """Post payments captured without a stage hook (a capture after an authorisation that already fired
    ``order_paid``), at most once per ``every`` seconds. (The order's next stage hook posts them too.)

    The scan looks at payments updated since the newest one the previous scan saw (less ``margin``, for
    transactions that committed late). Returns how many payments were posted."""
    last_run = _state("payments_scan_run")
    if last_run.value and 0 <= now.timestamp() - last_run.value < every:
        return 0
    last_run.value = int(now.timestamp())
    seen = _state("payments_seen")
    stmt = select(Payment.id, Payment.order_id, Payment.updated_at).where(
        Payment.status.in_(CAPTURED), Payment.amount > 0)
    if seen.value:
        stmt = stmt.where(Payment.updated_at >= datetime.fromtimestamp(seen.value, UTC) - margin)
    rows = db.session.execute(stmt).all()
    if not rows:
        return 0
    seen.value = max(seen.value, max(int(as_utc(updated_at).timestamp()) for _, _, updated_at in rows))
    done = set(db.session.execute(select(JournalEntry.source_id).where(
        JournalEntry.kind == "payment", JournalEntry.source_id.in_([r[0] for r in rows]))).scalars())
    orders: dict[int, datetime] = {}
    for payment_id, order_id, updated_at in rows:
        if payment_id not in done:
            orders[order_id] = max(orders.get(order_id, updated_at), updated_at)
    posted = 0
    for order_id, updated_at in sorted(orders.items()):
        order = db.session.get(Order, order_id)
        lock_books(order)
        posted += len(book_payments(order, as_utc(updated_at).date()))
    return posted


def book_sale(order, event: dict, books: OrderBooks | None = None) -> int | None:
    settings = current()
    books = books or lock_books(order)
    day = event_date(event)
    book_payments(order, day)
    lines = [Line("receivable", settings.account("receivable"), books.total, books.currency)]
    lines += [_revenue_line(settings, role, rate, -amount, books.currency) for role, rate, amount in books.composition]
    return post(f"ev:{event['id']}:sale:{order.id}", "sale", day, f"Order {order.number}: sale", lines,
                event_id=event["id"], order=order)


def book_refund(order, payment, amount: int, event: dict) -> int | None:
    settings = current()
    key = f"ev:{event['id']}:refund:{order.id}"
    books = lock_books(order)  # first: a concurrent delivery of the same event waits here, then sees the entry
    if exists(key):
        return None
    day = event_date(event)
    book_payments(order, day)
    currency = payment.currency
    credit = 0
    if was_confirmed(order) and not books.cancelled:
        credit = max(0, min(amount, books.total - books.credited))
    lines = [Line("clearing", settings.account("clearing", provider=payment.provider), -amount, currency,
                  memo=payment.provider)]
    if amount - credit:
        lines.append(Line("receivable", settings.account("receivable"), amount - credit, currency))
    if credit:
        before = _credited(books, books.credited)
        after = _credited(books, books.credited + credit)
        for (part, rate), value in after.items():
            role = "vat" if part == "vat" else "refunds"
            lines.append(_revenue_line(settings, role, rate, value - before[(part, rate)], currency))
    reason = (event.get("payload") or {}).get("reason") or ""
    entry = post(key, "refund", day, f"Order {order.number}: refund" + (f" ({reason})" if reason else ""), lines,
                 event_id=event["id"], order=order, source_id=payment.id, checked=True)
    if entry:
        books.credited += credit
    return entry


def book_cancellation(order, event: dict) -> int | None:
    settings = current()
    key = f"ev:{event['id']}:cancellation:{order.id}"
    books = lock_books(order)
    if exists(key):
        return None
    day = event_date(event)
    book_payments(order, day)
    if books.cancelled or not was_confirmed(order):
        books.cancelled = True  # a refund booked later is money only: nothing is left to credit
        return None
    currency = books.currency
    # the sale, reversed ...
    lines = [Line("receivable", settings.account("receivable"), -books.total, currency)]
    lines += [_revenue_line(settings, role, rate, amount, currency) for role, rate, amount in books.composition]
    # ... and the credit notes of earlier refunds too: every revenue and VAT account of the order ends at zero
    if books.credited:
        lines.append(Line("receivable", settings.account("receivable"), books.credited, currency))
        for (part, rate), value in _credited(books, books.credited).items():
            role = "vat" if part == "vat" else "refunds"
            lines.append(_revenue_line(settings, role, rate, -value, currency))
    books.cancelled = True
    return post(key, "cancellation", day, f"Order {order.number}: cancelled, sale reversed", lines,
                event_id=event["id"], order=order, checked=True)


def _cost_gap(source_key: str, kind: str, order_id: int | None, sku: str, quantity: int) -> None:
    insert_if_absent(CostGap, {"source_key": source_key, "kind": kind, "order_id": order_id, "sku": sku,
                               "quantity": quantity, "created_at": utcnow()},
                     ["source_key", "sku"])


def _movements(order_id: int, kind: str) -> dict[int, int]:
    rows = db.session.execute(select(StockMovement.product_id, func.sum(StockMovement.quantity)).where(
        StockMovement.order_id == order_id, StockMovement.kind == kind).group_by(StockMovement.product_id)).all()
    return {product_id: int(quantity) for product_id, quantity in rows}


def _booked_quantities(order_id: int, kind: str, role: str) -> dict[str, tuple[int, int]]:
    """sku -> (quantity, amount) already posted on ``role`` by the order's entries of ``kind``."""
    rows = db.session.execute(select(Posting.sku, func.sum(Posting.quantity), func.sum(Posting.amount))
                              .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                              .where(JournalEntry.order_id == order_id, JournalEntry.kind == kind,
                                     Posting.role == role, Posting.sku.is_not(None))
                              .group_by(Posting.sku)).all()
    return {sku: (int(qty or 0), int(amount or 0)) for sku, qty, amount in rows}


def book_shipment(order, shipment, event: dict) -> int | None:
    settings = current()
    key = f"ev:{event['id']}:shipment:{order.id}"
    books = lock_books(order)
    if exists(key):
        return None
    day = event_date(event)
    book_payments(order, day)
    shipped = {pid: -qty for pid, qty in _movements(order.id, MOVEMENT_SHIPMENT).items() if qty}
    products = {p.id: p for p in db.session.execute(select(Product).where(Product.id.in_(list(shipped)))).scalars()}
    lines: list[Line] = []
    for product_id, quantity in sorted(shipped.items()):
        product = products[product_id]
        if product.unit_cost is None:
            _cost_gap(key, "shipment", order.id, product.sku, quantity)
            continue
        value = product.unit_cost * quantity
        memo = f"{quantity} x {product.unit_cost}"
        lines.append(Line("cogs", settings.account("cogs"), value, product.currency, sku=product.sku,
                          quantity=quantity, memo=memo))
        lines.append(Line("inventory", settings.account("inventory"), -value, product.currency, sku=product.sku,
                          quantity=-quantity, memo=memo))
    if shipment is not None and shipment.price:
        lines.append(Line("shipping_costs", settings.account("shipping_costs"), shipment.price, books.currency,
                          memo=f"{shipment.carrier} {shipment.service}"))
        lines.append(Line("carrier_payable", settings.account("carrier_payable"), -shipment.price, books.currency,
                          memo=shipment.carrier))
    tracking = f", tracking {shipment.tracking_number}" if shipment is not None and shipment.tracking_number else ""
    return post(key, "shipment", day, f"Order {order.number}: shipped{tracking}", lines, event_id=event["id"],
                order=order, source_id=shipment.id if shipment is not None else None, checked=True)


def book_return(order, order_return, event: dict) -> int | None:
    settings = current()
    key = f"ev:{event['id']}:return:{order.id}"
    lock_books(order)
    if exists(key):
        return None
    day = event_date(event)
    restocked = _movements(order.id, MOVEMENT_RETURN)
    booked = _booked_quantities(order.id, "return", "inventory")
    shipped = _booked_quantities(order.id, "shipment", "cogs")
    products = {p.id: p for p in db.session.execute(select(Product).where(Product.id.in_(list(restocked)))).scalars()}
    lines: list[Line] = []
    for product_id, quantity in sorted(restocked.items()):
        product = products[product_id]
        todo = quantity - booked.get(product.sku, (0, 0))[0]
        if todo <= 0:
            continue
        ship_qty, ship_value = shipped.get(product.sku, (0, 0))
        # back at the cost it left with; the current unit cost when it left without one
        unit = ship_value // ship_qty if ship_qty else product.unit_cost
        if unit is None:
            _cost_gap(key, "return", order.id, product.sku, todo)
            continue
        memo = f"{todo} x {unit}"
        lines.append(Line("inventory", settings.account("inventory"), unit * todo, product.currency, sku=product.sku,
                          quantity=todo, memo=memo))
        lines.append(Line("cogs", settings.account("cogs"), -unit * todo, product.currency, sku=product.sku,
                          quantity=-todo, memo=memo))
    what = f"return {order_return.id}" if order_return is not None else "return"
    return post(key, "return", day, f"Order {order.number}: {what} restocked", lines, event_id=event["id"],
                order=order, source_id=order_return.id if order_return is not None else None, checked=True)


STOCK_KINDS = (MOVEMENT_RECEIPT, MOVEMENT_ADJUSTMENT)
LOOKBACK = 1000  # movements committed late (concurrent receipts) are still found


def book_stock_movements(limit: int = 500) -> int:
    """Post stock receipts (and adjustments) not posted yet, oldest first: inventory against goods
    received (adjustments: against inventory adjustments), at the product's unit cost. Returns how many
    movements were handled."""
    settings = current()
    cursor = _state("stock_scanned")
    window = select(StockMovement.id).where(StockMovement.id > max(0, cursor.value - LOOKBACK)) \
        .order_by(StockMovement.id).limit(limit * 20).subquery()
    scanned = db.session.execute(select(func.max(window.c.id))).scalar()
    rows = db.session.execute(
        select(StockMovement, Product).join(Product, Product.id == StockMovement.product_id)
        .where(StockMovement.id.in_(select(window.c.id)), StockMovement.kind.in_(STOCK_KINDS))
        .order_by(StockMovement.id).limit(limit)).all()
    if len(rows) == limit:  # more receipts than one round takes: continue after the last one next time
        scanned = rows[-1][0].id
    if scanned is not None and scanned > cursor.value:
        cursor.value = scanned
    if not rows:
        return 0
    keys = [f"movement:{movement.id}" for movement, _ in rows]
    done = set(db.session.execute(select(JournalEntry.source_key).where(JournalEntry.source_key.in_(keys))).scalars())
    done |= set(db.session.execute(select(CostGap.source_key).where(CostGap.source_key.in_(keys))).scalars())
    handled = 0
    for movement, product in rows:
        key = f"movement:{movement.id}"
        if key in done or not movement.quantity:
            continue
        handled += 1
        kind = "stock_receipt" if movement.kind == MOVEMENT_RECEIPT else "stock_adjustment"
        if product.unit_cost is None:
            _cost_gap(key, kind, None, product.sku, movement.quantity)
            continue
        value = product.unit_cost * movement.quantity
        memo = f"{movement.quantity} x {product.unit_cost}"
        other = "goods_received" if kind == "stock_receipt" else "inventory_adjustments"
        lines = [Line("inventory", settings.account("inventory"), value, product.currency, sku=product.sku,
                      quantity=movement.quantity, memo=memo),
                 Line(other, settings.account(other), -value, product.currency, sku=product.sku, memo=memo)]
        what = "received" if kind == "stock_receipt" else "adjusted"
        ref = f" ({movement.reference})" if movement.reference else ""
        post(key, kind, as_utc(movement.created_at).date(), f"Stock {what}: {product.sku} x{movement.quantity}{ref}",
             lines, source_id=movement.id, payee="")
    return handled
