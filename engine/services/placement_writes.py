"""Placement's writes that skip the ORM's unit of work: an order's lines in one multi-row INSERT.

The order itself still goes through the flush (its flags, the customer and the coupon use are ORM objects
the signals, the timeline, the outbox and the plugins' hooks read); its lines are one Core
``INSERT ... VALUES (...), (...) RETURNING`` instead of one INSERT per line (SQLite: the ORM cannot match
RETURNING rows to a multi-row insert there and falls back to a statement per row). The ``OrderLine``
objects then stand for the stored rows (persistent, every column set, no SELECT), as if the flush had
written them.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from engine.db import db, is_postgres
from engine.models import Order, OrderLine


def add_order(order: Order, lines: list[OrderLine]) -> None:
    """Store a new order (the flush: its row, flags, customer) and then its ``lines`` (one INSERT)."""
    set_committed_value(order, "lines", [])  # the flush leaves the lines alone: they follow in one INSERT
    db.session.add(order)
    db.session.flush()
    set_committed_value(order, "refunds", [])  # a new order has none: its answer needs no SELECT
    insert_lines(order, lines)


def insert_lines(order: Order, lines: list[OrderLine]) -> None:
    """The order's lines in one multi-row INSERT with RETURNING, matched back to ``lines`` in order."""
    if lines:
        table = OrderLine.__table__
        rows = [_row(line, order.id) for line in lines]
        # PostgreSQL: SQLAlchemy sorts the RETURNING rows by the parameters' order (a sentinel counter);
        # SQLite has no such form, but its rowids follow the VALUES order of one INSERT, and this
        # transaction holds the database's write lock: sorting the new ids gives the lines' order
        stmt = insert(table).returning(table.c.id, table.c.product_id, table.c.quantity, table.c.unit_price,
                                       sort_by_parameter_order=is_postgres())
        returned = list(db.session.execute(stmt, rows).all())
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
