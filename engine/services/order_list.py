"""Listing and finding orders: the filtered, keyset-paged list (newest first) and the exact search behind it.

A page costs the same statements at 1k or 1M orders (docs/performance.md).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import selectinload

from engine.db import as_utc, db, page_by_id
from engine.models import Customer, Order, OrderFlag


def list_query(*, status=None, channel=None, flag=None, customer=None, ids=None, customers=None, min_id=None,
               max_id=None, created_from=None, created_to=None):
    """The statement of ``list_orders`` (newest first) and the id column its pages are keyed on.

    Every filter is a condition in SQL, and each has an index whose walk newest first serves a page:
    ``order_flags (flag, order_id)``, ``orders (status, id)``, ``(channel, id)``, ``(customer_id, id)``.
    ``ids`` and ``customers`` (what a search found, see ``search_ids``) and ``min_id``/``max_id`` (a date
    range as a range of the primary key, see ``id_range``) are conditions on the key itself;
    ``created_from`` / ``created_to`` keep the exact times within that range.
    """
    stmt = select(Order)
    key = Order.id
    if flag:
        # from the flag's index entries, newest first, to each order by its primary key
        stmt = stmt.join(OrderFlag, OrderFlag.order_id == Order.id).where(OrderFlag.flag == flag)
        key = OrderFlag.order_id
    if status:
        stmt = stmt.where(Order.status == status)
    if channel:
        stmt = stmt.where(Order.channel == channel)
    if customer:
        stmt = stmt.where(Order.customer_id == customer)
    if ids is not None or customers is not None:  # a search: the orders it found, or its customers' orders
        found = ([key.in_(sorted(ids))] if ids else []) + ([Order.customer_id.in_(customers)] if customers else [])
        stmt = stmt.where(or_(*found) if found else false())
    if min_id is not None:
        stmt = stmt.where(key >= min_id)
    if max_id is not None:
        stmt = stmt.where(key < max_id)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    return stmt.order_by(key.desc()), key


LIST_RELATIONS = ("lines", "payments", "shipments", "flag_rows")


def list_orders(*, status=None, channel=None, flag=None, customer=None, limit=50, cursor=None, search=None,
                created_from=None, created_to=None, relations=LIST_RELATIONS) -> tuple[list, int | None]:
    """Newest first; ``cursor`` is the last id of the previous page. A page costs the same statements
    (the page, then one per loaded relationship) at 1k or 1M orders.

    ``search``: an order number, an e-mail, a serial number or a tracking number, matched exactly through
    their indexes (``search_ids``); ``created_from`` / ``created_to`` (aware datetimes, the end excluded):
    a date range, turned into a range of ids first (``id_range``) so the page still walks the primary key."""
    ids, customers = search_ids(search) if search else (None, None)
    min_id, max_id = id_range(created_from, created_to) if created_from or created_to else (None, None)
    stmt, key = list_query(status=status, channel=channel, flag=flag, customer=customer, ids=ids, customers=customers,
                           min_id=min_id,
                           max_id=max_id, created_from=created_from, created_to=created_to)
    stmt = stmt.options(*(selectinload(getattr(Order, name)) for name in relations))
    return page_by_id(stmt, key, limit, cursor)


def search_ids(term: str) -> tuple[set[int], list[int]]:
    """What ``term`` names exactly, as (order ids, customer ids): an order number, a serial number of a unit
    the order holds or held, a shipment's tracking number (order ids: a few), or an e-mail (the customer
    profile with that e-mail: its orders are listed through ``orders (customer_id, id)``, however many).
    Each is one indexed look-up: orders' primary key, serial_units.serial then serial_events by unit,
    shipments.tracking_number, customers.email (a merged profile's e-mail leads to its survivor)."""
    from engine.models import SerialEvent, SerialUnit, Shipment
    from engine.models.orders import ORDER_NUMBER_OFFSET

    term = (term or "").strip()
    found: set[int] = set()
    if not term or len(term) > 254:
        return found, []
    if "@" in term:
        profile = db.session.execute(select(Customer.id, Customer.merged_into_id).where(
            Customer.email == term.lower())).one_or_none()
        for _ in range(10):  # a profile merged into another: its orders are the survivor's (a chain of merges)
            if profile is None or profile.merged_into_id is None:
                break
            profile = db.session.execute(select(Customer.id, Customer.merged_into_id).where(
                Customer.id == profile.merged_into_id)).one_or_none()
        return found, [profile.id] if profile is not None else []
    number = term.lstrip("#")
    if number.isdigit() and int(number) > ORDER_NUMBER_OFFSET:
        found.update(db.session.execute(select(Order.id).where(
            Order.id == int(number) - ORDER_NUMBER_OFFSET)).scalars())
    units = select(SerialUnit.id).where(SerialUnit.serial == term).scalar_subquery()
    found.update(order_id for order_id in db.session.execute(select(SerialEvent.order_id).distinct().where(
        SerialEvent.unit_id.in_(units), SerialEvent.order_id.is_not(None))).scalars() if order_id is not None)
    found.update(db.session.execute(select(Shipment.order_id).where(Shipment.tracking_number == term)).scalars())
    return found, []


# how far an order's created_at may run behind a newer id (two placements at once: each takes its time
# before its INSERT takes the id); the id range of a date filter is widened by this much
ID_CLOCK_SLACK = timedelta(minutes=1)


def id_range(created_from=None, created_to=None) -> tuple[int | None, int | None]:
    """A date range as a range of ids (``min_id <= id < max_id``, None: open): ids grow with created_at, so
    a bisection on the primary key finds the bounds in about 20 point look-ups at a million orders, and the
    list walks that part of the key only (no index on created_at needed). Widened by ``ID_CLOCK_SLACK``;
    the exact times stay a condition of the list."""
    # two scalar subqueries: SQLite reads min() or max() from the index only when each is alone
    lowest, highest = db.session.execute(select(select(func.min(Order.id)).scalar_subquery(),
                                                select(func.max(Order.id)).scalar_subquery())).one()
    if lowest is None:
        return None, None
    low = _first_id_from(created_from - ID_CLOCK_SLACK, lowest, highest) if created_from else None
    high = _first_id_from(created_to + ID_CLOCK_SLACK, lowest, highest) if created_to else None
    return low, high


def _first_id_from(moment, lowest: int, highest: int) -> int:
    """The smallest id whose order was created at ``moment`` or later (one past the last id when none)."""
    lo, hi = lowest, highest + 1

    def from_here(position: int) -> bool:  # the first order at or after ``position`` is at ``moment`` or later
        row = db.session.execute(select(Order.created_at).where(Order.id >= position).order_by(Order.id)
                                 .limit(1)).scalar_one_or_none()
        return row is None or as_utc(row) >= moment

    while lo < hi:
        mid = (lo + hi) // 2
        if from_here(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
