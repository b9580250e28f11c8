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

The sale's composition is computed in ``composition.py``; the stock postings (shipment, return, stock
receipt) are in ``stock_postings.py``.

A unit that moves while its product has no unit cost is not posted; it is recorded as a cost gap
and listed by the inventory report.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, insert, select, text

from engine.plugin_api import (
    TIMELINE_ORDER_CONFIRMED,
    Order,
    OrderEvent,
    Payment,
    as_utc,
    db,
    enqueue_task,
    insert_if_absent,
    is_postgres,
    utcnow,
)

from .composition import allocate, composition
from .models import JournalEntry, OrderBooks, Posting, State, SyncState
from .settings import Settings, current

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
    enqueue_task("accounting_export.sync", str(entry_id), {"entry_id": entry_id})  # sync.KIND: the retry queue
    return entry_id




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
