"""Placement's writes that skip the ORM's unit of work: the order row, its flags and its lines as Core
statements.

The order is one ``INSERT ... RETURNING id``, its flags one multi-row INSERT and its lines one multi-row
``INSERT ... VALUES (...), (...) RETURNING`` (SQLite: the ORM cannot match RETURNING rows to a multi-row
insert there and falls back to a statement per row). The ``Order``, ``OrderFlag`` and ``OrderLine`` objects
then stand for the stored rows (persistent, every column set, no SELECT), as if the flush had written them:
the signals, the timeline, the outbox, the plugins' hooks and the answer read them as before, and a later
change to them (a payment at placement, a hold) is an ordinary ORM UPDATE. A customer still without an id
(a new profile on SQLite, one without an e-mail) is written by a flush first; the customer's other changes
wait for the commit's flush, with its statistics (one UPDATE).
"""

from __future__ import annotations

import functools

from sqlalchemy import insert
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from engine.db import db, insert_once, is_postgres, utcnow
from engine.models import Order, OrderFlag, OrderLine

ORDERS = Order.__table__
FLAGS = OrderFlag.__table__
LINES = OrderLine.__table__

# the statements are built once per process (not per request): no cache key computed again per order
INSERT_ORDER = insert(ORDERS).returning(ORDERS.c.id)


@functools.cache
def _insert_lines(postgres: bool):
    return insert(LINES).returning(LINES.c.id, LINES.c.product_id, LINES.c.quantity, LINES.c.unit_price,
                                   sort_by_parameter_order=postgres)


def add_order(order: Order, lines: list[OrderLine]) -> None:
    """Store a new (transient) order: its row, then its flags and ``lines`` (one INSERT each)."""
    flags = list(order.flag_rows)
    for name in ("lines", "flag_rows", "refunds"):  # written below, or none yet: no lazy SELECT later
        set_committed_value(order, name, [])
    customer = order.customer
    if customer is not None and customer.id is None:
        db.session.flush()  # the new customer's INSERT: the order points at it
    values = _order_row(order)
    order.id = db.session.execute(INSERT_ORDER, values).scalar_one()
    make_transient_to_detached(order)
    db.session.add(order)
    insert_flags(order, flags)
    insert_lines(order, lines)


def _order_row(order: Order) -> dict:
    """The order's column values, its defaults filled in on the object too (it must stand for the row)."""
    now = utcnow()
    if order.customer is not None:
        order.customer_id = order.customer.id
    values: dict = {}
    for prop in Order.__mapper__.column_attrs:
        if prop.key == "id":
            continue
        column = prop.columns[0]
        if prop.key not in order.__dict__ or (order.__dict__[prop.key] is None and column.default is not None):
            default = column.default
            value = None
            if default is not None and default.is_scalar:
                value = default.arg
            elif default is not None and default.is_callable:
                value = now if column.key in ("created_at", "updated_at") else default.arg(None)
            setattr(order, prop.key, value)
        values[column.key] = order.__dict__[prop.key]
    return values


def insert_flags(order: Order, flags: list[OrderFlag]) -> None:
    """The order's flags in one multi-row INSERT; the rows then stand for the stored ones."""
    if flags:
        db.session.execute(insert_once(FLAGS), [{"order_id": order.id, "flag": row.flag, "position": row.position}
                                           for row in flags])
        for row in flags:
            row.order_id = order.id
            make_transient_to_detached(row)
            db.session.add(row)
            set_committed_value(row, "order", order)
    set_committed_value(order, "flag_rows", flags)


def insert_lines(order: Order, lines: list[OrderLine]) -> None:
    """The order's lines in one multi-row INSERT with RETURNING, matched back to ``lines`` in order."""
    if lines:
        rows = [_row(line, order.id) for line in lines]
        # PostgreSQL: SQLAlchemy sorts the RETURNING rows by the parameters' order (a sentinel counter);
        # SQLite has no such form, but its rowids follow the VALUES order of one INSERT, and this
        # transaction holds the database's write lock: sorting the new ids gives the lines' order
        returned = list(db.session.execute(_insert_lines(is_postgres()), rows).all())
        if not is_postgres():
            returned.sort(key=lambda r: r[0])
        if [tuple(r[1:]) for r in returned] != [(row["product_id"], row["quantity"], row["unit_price"]) for row in rows]:
            raise RuntimeError("the inserted order lines came back in another order than they were sent")
        for line, row in zip(lines, returned, strict=True):
            line.id, line.order_id = row[0], order.id
            make_transient_to_detached(line)
            db.session.add(line)
            set_committed_value(line, "order", order)
    set_committed_value(order, "lines", list(lines))


def _row(line: OrderLine, order_id: int) -> dict:
    values: dict = {"order_id": order_id}
    for prop in OrderLine.__mapper__.column_attrs:
        if prop.key in ("id", "order_id"):
            continue
        values[prop.columns[0].key] = line.__dict__.get(prop.key)
    return values
