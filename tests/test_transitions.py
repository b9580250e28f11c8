"""The transition table: the pure rules of ``engine/domain/transitions.py``, and the
same table over the REST API (illegal actions, hold/release, cancel, pick,
deliver/complete, backorders, low stock, returns)."""

from __future__ import annotations

import json

import pytest
from conftest import order_body, place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import select

from engine import outbox
from engine.db import db
from engine.domain import transitions as tx
from engine.errors import IllegalTransition
from engine.models import OrderLine, PurchaseOrder, SerialUnit, StockMovement

# ----------------------------------------------------------------- the table, as DESIGN.md states it

ACTIONS = ("pay", "hold", "release", "pick", "confirm", "pack", "ship", "deliver", "complete", "cancel")
STATUSES = ("placed", "paid", "on_hold", "picking", "picked", "confirmed", "packed", "shipped", "delivered",
            "completed", "cancelled")
CANCELLABLE = ("placed", "paid", "on_hold", "picking", "picked", "confirmed", "packed")
HELD = "<the status it was held from>"

LEGAL = {
    ("placed", "pay"): ("paid",),
    ("placed", "hold"): ("on_hold",),
    ("paid", "hold"): ("on_hold",),
    ("on_hold", "release"): (HELD,),
    ("paid", "pick"): ("picking", "picked"),
    ("picking", "pick"): ("picking", "picked"),
    ("picked", "confirm"): ("confirmed",),
    ("confirmed", "pack"): ("packed",),
    ("packed", "ship"): ("shipped",),
    ("shipped", "deliver"): ("delivered",),
    ("delivered", "complete"): ("completed",),
    **{(status, "cancel"): ("cancelled",) for status in CANCELLABLE},
}


def expected_targets(status, action, held_from):
    if status == "on_hold" and action == "pay":
        # paying an order held from placed records the payment; it stays on hold (release then goes to paid)
        return ("on_hold",) if held_from == "placed" else None
    targets = LEGAL.get((status, action))
    if targets == (HELD,):
        return (held_from,)
    return targets


def expected_allowed(status, held_from=None):
    return [a for a in ACTIONS if expected_targets(status, a, held_from) is not None]


def _cases():
    for status in STATUSES:
        for held_from in (("placed", "paid") if status == "on_hold" else (None,)):
            for action in ACTIONS:
                yield status, held_from, action


def test_the_module_knows_every_status_and_action():
    assert set(tx.STATUSES) == set(STATUSES)
    assert set(tx.ACTIONS) == set(ACTIONS)


@pytest.mark.parametrize(("status", "held_from", "action"), list(_cases()),
                         ids=lambda v: str(v))
def test_every_status_action_pair(status, held_from, action):
    targets = expected_targets(status, action, held_from)
    if targets is not None:
        assert tx.check(status, action, held_from) == targets
        assert action in tx.allowed_actions(status, held_from)
        return
    with pytest.raises(IllegalTransition) as info:
        tx.check(status, action, held_from)
    allowed = expected_allowed(status, held_from)
    assert info.value.allowed == allowed
    assert info.value.status == 409 and info.value.code == "illegal_transition"
    assert status in info.value.message and action in info.value.message
    assert "allowed next actions" in info.value.message
    for name in allowed:
        assert name in info.value.message.split("allowed next actions:")[1]
    if not allowed:
        assert "final" in info.value.message
    assert action not in tx.allowed_actions(status, held_from)


@pytest.mark.parametrize("status", STATUSES)
def test_allowed_actions_in_table_order(status):
    for held_from in (("placed", "paid") if status == "on_hold" else (None,)):
        assert tx.allowed_actions(status, held_from) == expected_allowed(status, held_from)


def test_unknown_action_is_illegal():
    with pytest.raises(IllegalTransition) as info:
        tx.check("placed", "teleport")
    assert info.value.allowed == ["pay", "hold", "cancel"]


def test_open_statuses_hold_reservations():
    assert [s for s in STATUSES if tx.is_open(s)] == list(CANCELLABLE)


# ----------------------------------------------------------------- over the API

MUG_BARCODE = "4006381333948"
# a valid body for each action's endpoint (so a 409 is about the status, never the body)
BODIES = {"pay": {}, "hold": {"reason": "customer asked"}, "release": {}, "pick": {"scans": ["MUG"]},
          "confirm": {}, "pack": {"scans": ["MUG"]}, "ship": {"carrier": "generic", "service": "standard"},
          "deliver": {}, "complete": {}, "cancel": {"reason": "test"}}


@pytest.fixture
def app_config(request):
    """Tests choose settings with ``@pytest.mark.parametrize("app_config", [{...}], indirect=True)``."""
    return dict(getattr(request, "param", {}))


def snapshot(app) -> dict:
    with app.app_context():
        state = {t.name: [tuple(r) for r in db.session.execute(select(t).order_by(*t.primary_key.columns)).all()]
                 for t in db.metadata.sorted_tables}
        db.session.rollback()
    return state


def act(api, oid, action, body=None, expect=200):
    resp = api.post(f"/orders/{oid}/{action}", BODIES[action] if body is None else body)
    assert resp.status_code == expect, (action, resp.get_json())
    return resp.get_json()


def assert_illegal_everywhere_else(api, app, oid, status, allowed):
    """Every action but the allowed ones is a 409 naming the allowed ones, and changes nothing."""
    order = api.get(f"/orders/{oid}").get_json()
    assert order["status"] == status
    assert order["allowed_actions"] == allowed
    before = snapshot(app)
    for action in ACTIONS:
        if action in allowed:
            continue
        resp = api.post(f"/orders/{oid}/{action}", BODIES[action])
        body = resp.get_json()
        assert resp.status_code == 409, (status, action, body)
        assert set(body) == {"code", "message", "errors"}
        assert body["code"] == "illegal_transition", body
        tail = body["message"].split("allowed next actions:")[1]
        assert [a for a in ACTIONS if a in tail.replace(",", " ").split()] == allowed, (status, action, body)
        assert body["errors"]["allowed_actions"] == allowed
    after = snapshot(app)
    assert before == after, f"an illegal action changed the database at {status}"


@pytest.fixture
def shop(api):
    product(api, "MUG", price=1290, barcode=MUG_BARCODE)
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 20)
    receive(api, "PHONE", 5, serials=[f"P-{i}" for i in range(1, 6)])
    return api


@pytest.mark.parametrize("app_config", [{"FOLLOWUP_DAYS": 7}], indirect=True)
def test_every_illegal_action_is_409_at_every_status(shop, app):
    api = shop
    oid = place(api, [("MUG", 2), ("PHONE", 1)])["id"]
    assert_illegal_everywhere_else(api, app, oid, "placed", ["pay", "hold", "cancel"])
    act(api, oid, "pay")
    assert_illegal_everywhere_else(api, app, oid, "paid", ["hold", "pick", "cancel"])
    assert act(api, oid, "pick", {"scans": ["MUG"]})["status"] == "picking"
    assert_illegal_everywhere_else(api, app, oid, "picking", ["pick", "cancel"])
    assert act(api, oid, "pick", {"scans": [MUG_BARCODE, "P-3"]})["status"] == "picked"
    assert_illegal_everywhere_else(api, app, oid, "picked", ["confirm", "cancel"])
    act(api, oid, "confirm")
    assert_illegal_everywhere_else(api, app, oid, "confirmed", ["pack", "cancel"])
    act(api, oid, "pack", {"scans": ["MUG", "MUG", "P-3"]})
    assert_illegal_everywhere_else(api, app, oid, "packed", ["ship", "cancel"])
    act(api, oid, "ship")
    assert_illegal_everywhere_else(api, app, oid, "shipped", ["deliver"])
    assert act(api, oid, "deliver")["status"] == "delivered"
    assert_illegal_everywhere_else(api, app, oid, "delivered", ["complete"])
    assert act(api, oid, "complete")["status"] == "completed"
    assert_illegal_everywhere_else(api, app, oid, "completed", [])

    held = place(api, [("MUG", 1)])["id"]
    act(api, held, "hold")
    assert_illegal_everywhere_else(api, app, held, "on_hold", ["pay", "release", "cancel"])
    held_paid = place(api, [("MUG", 1)])["id"]
    act(api, held_paid, "pay")
    act(api, held_paid, "hold")
    assert_illegal_everywhere_else(api, app, held_paid, "on_hold", ["release", "cancel"])
    cancelled = place(api, [("MUG", 1)])["id"]
    act(api, cancelled, "cancel")
    assert_illegal_everywhere_else(api, app, cancelled, "cancelled", [])
    with app.app_context():
        check_stock_invariants()


def test_hold_and_release_return_to_the_held_from_status(shop):
    api = shop
    oid = place(api, [("MUG", 1)])["id"]
    act(api, oid, "pay")
    body = act(api, oid, "hold", {"reason": "address check"})
    assert (body["status"], body["held_from"], body["hold_reason"]) == ("on_hold", "paid", "address check")
    assert stock_of(api, "MUG")["reserved"] == 1  # a held order keeps its reservation
    body = act(api, oid, "release")
    assert (body["status"], body["held_from"], body["hold_reason"]) == ("paid", None, None)
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == ["order_placed", "order_paid", "order_on_hold", "order_released"]

    other = place(api, [("MUG", 1)])["id"]
    act(api, other, "hold")
    assert act(api, other, "release")["status"] == "placed"


def test_pay_while_held_from_placed_stays_on_hold_then_releases_to_paid(shop):
    api = shop
    oid = place(api, [("MUG", 2)])["id"]
    act(api, oid, "hold")
    body = act(api, oid, "pay")
    assert body["status"] == "on_hold" and body["payment_status"] == "paid"
    assert body["totals"]["paid"] == 2 * 1290
    assert body["allowed_actions"] == ["release", "cancel"]  # paying twice is illegal
    act(api, oid, "pay", expect=409)
    body = act(api, oid, "release")
    assert body["status"] == "paid" and body["held_from"] is None
    assert body["payment_status"] == "paid" and len(body["payments"]) == 1


def _walk_to(api, app, status, lines):
    """A new order in ``status`` (one of the cancellable ones); phones are picked by serial."""
    oid = place(api, lines)["id"]
    if status == "placed":
        return oid
    act(api, oid, "pay")
    if status == "on_hold":
        act(api, oid, "hold")
    if status in ("paid", "on_hold"):
        return oid
    phones = [s for s in (f"P-{n}" for n in range(1, 6)) if _pickable(app, s, oid)]
    scans = []
    for sku, qty in lines:
        scans += phones[:qty] if sku == "PHONE" else [sku] * qty
    if status == "picking":
        assert act(api, oid, "pick", {"scans": scans[-1:]})["status"] == "picking"
        return oid
    assert act(api, oid, "pick", {"scans": scans})["status"] == "picked"
    if status == "picked":
        return oid
    act(api, oid, "confirm")
    if status == "confirmed":
        return oid
    act(api, oid, "pack", {"scans": scans[::-1]})
    assert status == "packed"
    return oid


def _pickable(app, serial, order_id):
    """Free, or reserved for this order (placement reserved its units)."""
    with app.app_context():
        status, line_id = db.session.execute(select(SerialUnit.status, SerialUnit.line_id)
                                             .where(SerialUnit.serial == serial)).one()
        mine = line_id is not None and db.session.get(OrderLine, line_id).order_id == order_id
        db.session.rollback()
    return status == "in_stock" or (status == "reserved" and mine)


def test_cancel_from_every_cancellable_status_releases_stock_and_serials_and_refunds(shop, app):
    api = shop
    for status in CANCELLABLE:
        oid = _walk_to(api, app, status, [("MUG", 2), ("PHONE", 1)])
        before = api.get(f"/orders/{oid}").get_json()
        assert before["status"] == status
        assert before["lines"][1]["serials"] == (["P-1"] if status in ("picking", "picked", "confirmed", "packed")
                                                 else [])
        assert stock_of(api, "MUG")["reserved"] == 2 and stock_of(api, "PHONE")["reserved"] == 1
        body = act(api, oid, "cancel", {"reason": "changed my mind"})
        assert body["status"] == "cancelled" and body["allowed_actions"] == [], status
        assert stock_of(api, "MUG") == {"sku": "MUG", "on_hand": 20, "reserved": 0, "available": 20,
                                        "locations": [{"location": "MAIN", "on_hand": 20, "reserved": 0,
                                                       "available": 20}]}, status
        assert stock_of(api, "PHONE")["reserved"] == 0 and stock_of(api, "PHONE")["on_hand"] == 5
        with app.app_context():
            units = db.session.execute(select(SerialUnit).order_by(SerialUnit.serial)).scalars().all()
            assert [(u.serial, u.status, u.line_id) for u in units] == \
                [(f"P-{i}", "in_stock", None) for i in range(1, 6)], status
            check_stock_invariants()
        kinds = [e["kind"] for e in body["events"]]
        assert kinds[-1] == "order_cancelled"
        if before["payment_status"] == "paid":
            assert body["payment_status"] == "refunded", status
            assert body["totals"]["refunded"] == body["totals"]["paid"] == 2 * 1290 + 59900
            assert [p["status"] for p in body["payments"]] == ["refunded"]
            assert "refund_issued" in kinds
        else:
            assert body["payment_status"] == "unpaid" and "refund_issued" not in kinds
    # every unit and the serial P-1 (picked and cancelled four times) are sellable again
    again = _walk_to(api, app, "picked", [("MUG", 20), ("PHONE", 1)])
    assert api.get(f"/orders/{again}").get_json()["lines"][1]["serials"] == ["P-1"]


@pytest.mark.parametrize("app_config", [{"FOLLOWUP_DAYS": 3}], indirect=True)
def test_cancel_after_shipping_is_409(shop, app):
    api = shop
    oid = _walk_to(api, app, "packed", [("MUG", 1), ("PHONE", 1)])
    for status, step in (("shipped", "ship"), ("delivered", "deliver"), ("completed", "complete")):
        act(api, oid, step)
        before = snapshot(app)
        resp = api.post(f"/orders/{oid}/cancel", {})
        assert resp.status_code == 409 and resp.get_json()["code"] == "illegal_transition"
        assert resp.get_json()["message"].startswith(f"cannot cancel an order that is {status}")
        assert snapshot(app) == before
        assert api.get(f"/orders/{oid}").get_json()["status"] == status


def test_pick_all_scans_at_once_and_partial_picks(shop):
    api = shop
    oid = place(api, [("MUG", 3), ("PHONE", 2)])["id"]
    act(api, oid, "pay")
    body = act(api, oid, "pick", {"scans": ["P-4", "MUG", MUG_BARCODE, "MUG", "P-1"]})
    assert body["status"] == "picked"
    assert [(ln["picked_quantity"], ln["serials"]) for ln in body["lines"]] == [(3, []), (2, ["P-4", "P-1"])]
    assert [e["kind"] for e in body["events"]][-1] == "order_picked"

    other = place(api, [("MUG", 2), ("PHONE", 1)])["id"]
    act(api, other, "pay")
    body = act(api, other, "pick", {"scans": ["MUG"]})
    assert body["status"] == "picking"
    assert [ln["picked_quantity"] for ln in body["lines"]] == [1, 0]
    body = act(api, other, "pick", {"scans": ["P-2"]})
    assert body["status"] == "picking"
    assert [ln["picked_quantity"] for ln in body["lines"]] == [1, 1]
    body = act(api, other, "pick", {"scans": [MUG_BARCODE]})
    assert body["status"] == "picked"
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.count("picking") == 2 and kinds[-1] == "order_picked"


def test_deliver_completes_at_once_when_follow_ups_are_off(shop, app):
    api = shop
    oid = _walk_to(api, app, "packed", [("MUG", 1), ("PHONE", 1)])
    body = act(api, oid, "ship")
    assert body["status"] == "shipped"
    body = act(api, oid, "deliver")
    assert body["status"] == "completed"
    assert [e["kind"] for e in body["events"]][-2:] == ["order_delivered", "order_completed"]
    assert body["shipments"][0]["status"] == "delivered"


@pytest.mark.parametrize("app_config", [{"FOLLOWUP_DAYS": 14}], indirect=True)
def test_deliver_waits_for_complete_when_follow_ups_are_on(shop, app):
    api = shop
    oid = _walk_to(api, app, "packed", [("MUG", 1), ("PHONE", 1)])
    act(api, oid, "ship")
    body = act(api, oid, "deliver")
    assert body["status"] == "delivered" and body["allowed_actions"] == ["complete"]
    assert "order_completed" not in [e["kind"] for e in body["events"]]
    body = act(api, oid, "complete")
    assert body["status"] == "completed"
    assert [e["kind"] for e in body["events"]][-1] == "order_completed"


# ----------------------------------------------------------------- backorders and low stock


def _outbox(app, hook):
    with app.app_context():
        return [json.loads(json.dumps(e.payload)) for e in outbox.events(hook=hook)]


def _purchase_orders(app):
    with app.app_context():
        return [(po.product.sku, po.quantity, po.status) for po in
                db.session.execute(select(PurchaseOrder).order_by(PurchaseOrder.id)).scalars()]


def test_backorder_holds_the_order_drafts_a_purchase_order_and_receiving_releases_it(api, app):
    product(api, "BOOK", price=2500, allow_backorder=True)
    receive(api, "BOOK", 1)
    order = place(api, [("BOOK", 3)])
    assert order["status"] == "on_hold" and order["held_from"] == "placed"
    assert order["lines"][0]["backordered"] == 2
    assert order["allowed_actions"] == ["pay", "release", "cancel"]
    assert "BOOK" in order["hold_reason"]
    assert stock_of(api, "BOOK")["reserved"] == 1
    assert _purchase_orders(app) == [("BOOK", 2, "draft")]
    assert [p["quantity"] for p in _outbox(app, "purchase_order_created")] == [2]
    assert len(_outbox(app, "order_on_hold")) == 1
    # staff cannot release it while units are missing
    resp = api.post(f"/orders/{order['id']}/release")
    assert resp.status_code == 409 and resp.get_json()["code"] == "still_backordered"

    # a second backordered order, paid while held: released to paid
    second = place(api, [("BOOK", 1)], email="bob@example.com")
    assert second["status"] == "on_hold" and second["lines"][0]["backordered"] == 1
    assert _purchase_orders(app) == [("BOOK", 3, "draft")]  # added to the open draft
    assert act(api, second["id"], "pay")["status"] == "on_hold"

    receive(api, "BOOK", 1)  # not enough for the first order (oldest first): nothing released
    first = api.get(f"/orders/{order['id']}").get_json()
    assert first["status"] == "on_hold" and first["lines"][0]["backordered"] == 1
    receive(api, "BOOK", 2)
    first = api.get(f"/orders/{order['id']}").get_json()
    assert (first["status"], first["lines"][0]["backordered"], first["held_from"]) == ("placed", 0, None)
    assert first["events"][-1]["kind"] == "order_released"
    later = api.get(f"/orders/{second['id']}").get_json()
    assert (later["status"], later["lines"][0]["backordered"]) == ("paid", 0)
    assert stock_of(api, "BOOK") == {"sku": "BOOK", "on_hand": 4, "reserved": 4, "available": 0,
                                     "locations": [{"location": "MAIN", "on_hand": 4, "reserved": 4,
                                                    "available": 0}]}
    with app.app_context():
        check_stock_invariants()


def test_without_backorders_a_short_order_is_refused(api, app):
    product(api, "LAMP", price=4500)
    receive(api, "LAMP", 1)
    resp = api.post("/orders", order_body([("LAMP", 2)]))
    assert resp.status_code == 409 and resp.get_json()["code"] == "insufficient_stock"
    assert _purchase_orders(app) == []


def test_low_stock_fires_stock_low_once_when_crossing_the_reorder_point(api, app):
    product(api, "PEN", price=150, reorder_point=3, reorder_quantity=50)
    receive(api, "PEN", 6)
    place(api, [("PEN", 2)])  # 4 available: above the point
    assert _outbox(app, "stock_low") == []
    place(api, [("PEN", 1)])  # 3 available: crossed
    events = _outbox(app, "stock_low")
    assert len(events) == 1
    assert (events[0]["sku"], events[0]["available"], events[0]["reorder_point"]) == ("PEN", 3, 3)
    assert _purchase_orders(app) == [("PEN", 50, "draft")]
    place(api, [("PEN", 1)])  # already below: no new event
    assert len(_outbox(app, "stock_low")) == 1
    with app.app_context():  # without REDIS_URL the delivery thread relayed it after the commit (drained)
        assert [e.status for e in outbox.events(hook="stock_low")] == ["done"]


# ----------------------------------------------------------------- returns


def _shipped(api, lines, deliver=False):
    oid = place(api, lines)["id"]
    act(api, oid, "pay")
    scans = [sku for sku, qty in lines for _ in range(qty)]
    act(api, oid, "pick", {"scans": scans})
    act(api, oid, "confirm")
    act(api, oid, "pack", {"scans": scans})
    body = act(api, oid, "ship")
    if deliver:
        body = act(api, oid, "deliver")
    return body


def _movements(app, kind):
    with app.app_context():
        return [(m.quantity, m.order_id) for m in db.session.execute(
            select(StockMovement).where(StockMovement.kind == kind).order_by(StockMovement.id)).scalars()]


def test_return_with_refund(shop, app):
    api = shop
    order = _shipped(api, [("MUG", 3)])
    oid = order["id"]
    assert stock_of(api, "MUG")["on_hand"] == 17
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 2}], "reason": "chipped",
                                               "resolution": "refund"})
    assert resp.status_code == 201, resp.get_json()
    ret = resp.get_json()
    # opened by staff: approved at once (RETURNS_REQUIRE_APPROVAL is off)
    assert ret["status"] == "approved" and ret["order_id"] == oid and ret["source"] == "staff"
    assert api.get(f"/returns/{ret['id']}").get_json()["status"] == "approved"
    assert stock_of(api, "MUG")["on_hand"] == 17  # nothing back before it is received

    resp = api.post(f"/returns/{ret['id']}/receive", {})
    assert resp.status_code == 200, resp.get_json()
    ret = resp.get_json()
    assert (ret["status"], ret["resolution"]) == ("resolved", "refund") and ret["refund_amount"] == 2 * 1290
    assert stock_of(api, "MUG")["on_hand"] == 19
    assert _movements(app, "return") == [(2, oid)]
    body = api.get(f"/orders/{oid}").get_json()
    assert body["status"] == "shipped"
    assert body["totals"]["refunded"] == 2 * 1290 and body["payment_status"] == "partially_refunded"
    assert body["lines"][0]["returned_quantity"] == 2
    kinds = [e["kind"] for e in body["events"]]
    assert kinds[-4:] == ["return_requested", "return_approved", "return_received", "refund_issued"]
    # receiving twice is refused
    assert api.post(f"/returns/{ret['id']}/receive", {}).status_code == 409
    # only one more mug can come back
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 2}], "reason": "x",
                                               "resolution": "refund"})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]["lines"]["0"]) == {"quantity"}
    with app.app_context():
        check_stock_invariants()


def test_return_with_exchange_places_a_replacement_order(shop, app):
    api = shop
    order = _shipped(api, [("MUG", 2)], deliver=True)
    assert order["status"] == "completed"
    oid = order["id"]
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "wrong colour",
                                               "resolution": "exchange"})
    assert resp.status_code == 201
    ret = api.post(f"/returns/{resp.get_json()['id']}/receive", {}).get_json()
    assert (ret["status"], ret["resolution"]) == ("resolved", "exchange") and ret["replacement_order_id"]
    replacement = api.get(f"/orders/{ret['replacement_order_id']}").get_json()
    assert "replacement" in replacement["flags"]
    assert replacement["replacement_for"] == oid
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in replacement["lines"]] == [("MUG", 1, 0)]
    assert replacement["totals"]["total"] == 0
    assert replacement["status"] in ("placed", "paid")
    original = api.get(f"/orders/{oid}").get_json()
    assert original["totals"]["refunded"] == 0 and original["payment_status"] == "paid"
    # 18 after shipping, +1 returned, 1 reserved for the replacement
    assert stock_of(api, "MUG")["on_hand"] == 19 and stock_of(api, "MUG")["reserved"] == 1
    assert _movements(app, "return") == [(1, oid)]
    with app.app_context():
        check_stock_invariants()


def test_returning_more_than_shipped_or_before_shipping_is_refused(shop, app):
    api = shop
    order = _shipped(api, [("MUG", 2)])
    oid = order["id"]
    before = snapshot(app)
    for lines in ([{"sku": "MUG", "quantity": 3}],
                  [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}],
                  [{"sku": "PHONE", "quantity": 1}]):
        resp = api.post(f"/orders/{oid}/returns", {"lines": lines, "reason": "x", "resolution": "refund"})
        assert resp.status_code == 422, resp.get_json()
        assert set(resp.get_json()) == {"code", "message", "errors"} and "lines" in resp.get_json()["errors"]
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "x",
                                               "resolution": "keep it"})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"resolution"}
    open_order = place(api, [("MUG", 1)])["id"]
    assert snapshot(app) != before
    before = snapshot(app)
    resp = api.post(f"/orders/{open_order}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "x",
                                                      "resolution": "refund"})
    assert resp.status_code == 409, resp.get_json()
    assert snapshot(app) == before
