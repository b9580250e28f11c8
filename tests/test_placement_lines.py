"""An order's lines are written with one multi-row INSERT (engine/services/placement_writes.py): each stored
line is the one sent, in the order sent, its reservation points at it, and the objects the placement hands on
(the answer, the hooks) carry the stored ids."""

from __future__ import annotations

from conftest import order_body, product, receive
from sqlalchemy import select
from test_statement_count import counting

from engine.db import db
from engine.models import OrderLine, Reservation


def test_lines_are_stored_in_the_order_sent_with_their_own_reservations(api, app):
    for sku, price in (("MUG", 1290), ("CAP", 1500), ("PEN", 300), ("INK", 700)):
        product(api, sku, price=price)
        receive(api, sku, 100)
    body = order_body([("PEN", 3), ("MUG", 2), ("INK", 1), ("CAP", 5), ("MUG", 1)])
    body["lines"][4]["gift"] = True
    with counting(app) as statements:
        resp = api.post("/orders", body)
    assert resp.status_code == 201, resp.get_json()
    assert len([s for s in statements if s.startswith("INSERT INTO order_lines")]) == 1
    order = resp.get_json()
    sent = [("PEN", 3, 300), ("MUG", 2, 1290), ("INK", 1, 700), ("CAP", 5, 1500), ("MUG", 1, 0)]
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in order["lines"]] == sent
    with app.app_context():
        stored = list(db.session.execute(select(OrderLine).where(OrderLine.order_id == order["id"])
                                         .order_by(OrderLine.id)).scalars())
        assert [(ln.sku, ln.quantity, ln.unit_price, ln.gift) for ln in stored] == \
            [(s, q, p, p == 0) for s, q, p in sent]
        assert [ln["id"] for ln in order["lines"]] == [ln.id for ln in stored]
        reserved = {r.line_id: (r.product_id, r.quantity) for r in db.session.execute(
            select(Reservation).where(Reservation.order_id == order["id"])).scalars()}
        assert reserved == {ln.id: (ln.product_id, ln.quantity) for ln in stored}
        db.session.rollback()
    again = api.get(f"/orders/{order['id']}").get_json()
    assert [(ln["id"], ln["sku"]) for ln in again["lines"]] == [(ln["id"], ln["sku"]) for ln in order["lines"]]
