"""The stock invariants, checked straight in the database."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.db import db
from engine.models import Reservation, StockLevel, StockMovement


def check_stock_invariants() -> None:
    """on_hand == sum(ledger); reserved == sum(open reservations); available >= 0 (per level)."""
    ledger = dict(((p, loc), q) for p, loc, q in db.session.execute(
        select(StockMovement.product_id, StockMovement.location_id, func.sum(StockMovement.quantity))
        .group_by(StockMovement.product_id, StockMovement.location_id)).all())
    reserved = dict(((p, loc), q) for p, loc, q in db.session.execute(
        select(Reservation.product_id, Reservation.location_id, func.sum(Reservation.quantity))
        .where(Reservation.status == "open").group_by(Reservation.product_id, Reservation.location_id)).all())
    levels = db.session.execute(select(StockLevel)).scalars().all()
    for level in levels:
        key = (level.product_id, level.location_id)
        assert level.on_hand == (ledger.get(key) or 0), f"on_hand {level.on_hand} != ledger {ledger.get(key)}"
        assert level.reserved == (reserved.get(key) or 0), f"reserved {level.reserved} != open {reserved.get(key)}"
        assert level.on_hand - level.reserved >= 0, "available is negative"
    known = {(lv.product_id, lv.location_id) for lv in levels}
    assert set(ledger) <= known and set(reserved) <= known
    check_serial_invariants()


def check_serial_invariants() -> None:
    """Serial-tracked products: the units on hand at a location are the level's on_hand; every open
    reservation holds exactly its quantity of units (reserved or picked, at its location); no unit is
    reserved or picked without an open reservation."""
    from engine.models import Product, SerialUnit
    from engine.models.stock import ON_HAND_SERIAL_STATUSES

    tracked = set(db.session.execute(select(Product.id).where(Product.track_serials)).scalars())
    on_hand = dict(((p, loc), n) for p, loc, n in db.session.execute(
        select(SerialUnit.product_id, SerialUnit.location_id, func.count())
        .where(SerialUnit.status.in_(ON_HAND_SERIAL_STATUSES)).group_by(SerialUnit.product_id,
                                                                        SerialUnit.location_id)).all())
    for level in db.session.execute(select(StockLevel).where(StockLevel.product_id.in_(tracked))).scalars():
        key = (level.product_id, level.location_id)
        assert on_hand.get(key, 0) == level.on_hand, f"{on_hand.get(key, 0)} units on hand, level says {level.on_hand}"
    opened = {r.id: r for r in db.session.execute(select(Reservation).where(
        Reservation.status == "open", Reservation.product_id.in_(tracked))).scalars()}
    held: dict = {}
    for unit in db.session.execute(select(SerialUnit).where(SerialUnit.status.in_(("reserved", "picked")))).scalars():
        assert unit.reservation_id in opened, f"unit {unit.serial} is {unit.status} without an open reservation"
        reservation = opened[unit.reservation_id]
        assert (unit.location_id, unit.line_id) == (reservation.location_id, reservation.line_id), unit.serial
        held[unit.reservation_id] = held.get(unit.reservation_id, 0) + 1
    assert held == {rid: r.quantity for rid, r in opened.items()}, "units held per open reservation"
    db.session.rollback()
