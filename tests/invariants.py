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
    db.session.rollback()
