"""Returns (RMA): the transition table (engine/domain/return_transitions.py) over the REST API, serials
checked against what the order shipped, receiving to stock or quarantine, refunds within what was paid,
exchanges, and each stage hook once per return. Both databases (the ``app`` fixture)."""

from __future__ import annotations

import pytest
from conftest import place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select
from test_transitions import snapshot

from engine import hookimpl
from engine.db import db
from engine.domain import return_transitions as rma
from engine.models import Location, SerialUnit, StockLevel, StockMovement
from engine.services.payments import RefundOutcome


class Hooks:
    """Records the return hooks (after commit) and can fail refunds, like a provider that is down."""

    name = "flaky"

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.fail_refunds = 0

    def pay(self, order, payment_method=None, data=None):
        from engine.services.payments import PaymentOutcome

        return PaymentOutcome(status="paid", amount=data["amount"], reference=f"flaky-{order.id}")

    def refund(self, payment, amount):
        if self.fail_refunds:
            self.fail_refunds -= 1
            raise RuntimeError("provider down")
        return RefundOutcome(amount=amount, reference=f"flaky-refund-{payment.id}-{payment.refunded_amount}")

    def void(self, payment):
        return None

    @hookimpl
    def register_payment_providers(self):
        return [self]

    @hookimpl
    def return_requested(self, order, order_return, event):
        self.calls.append(("return_requested", order_return.id))

    @hookimpl
    def return_approved(self, order, order_return, event):
        self.calls.append(("return_approved", order_return.id))

    @hookimpl
    def return_rejected(self, order, order_return, event):
        self.calls.append(("return_rejected", order_return.id))

    @hookimpl
    def return_received(self, order, order_return, event):
        self.calls.append(("return_received", order_return.id))

    @hookimpl
    def refund_issued(self, order, payment, amount, event):
        self.calls.append(("refund_issued", event["payload"].get("refund_id")))


@pytest.fixture
def hooks():
    return Hooks()


@pytest.fixture
def app_config(hooks, request):
    extra = getattr(request, "param", {})
    return {"EXTRA_PLUGINS": [("flaky", hooks)], **extra}


@pytest.fixture
def shop(api):
    product(api, "MUG", price=1290)
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 20)
    receive(api, "PHONE", 5, serials=[f"P-{i}" for i in range(1, 6)])
    return api


def shipped(api, lines, provider="manual"):
    """An order of ``lines`` [(sku, quantity, serials or None)] paid, picked, packed and shipped."""
    order = place(api, [(sku, qty) for sku, qty, _ in lines], payment_provider=provider)
    oid = order["id"]
    scans = [s for sku, qty, serials in lines for s in (serials or [sku] * qty)]
    steps = (("pay", {}), ("pick", {"scans": scans}), ("confirm", {}), ("pack", {"scans": scans}),
             ("ship", {"carrier": "generic", "service": "standard"}))
    for action, body in steps[1:] if order["status"] == "paid" else steps:  # a provider may charge at placement
        resp = api.post(f"/orders/{oid}/{action}", body)
        assert resp.status_code == 200, (action, resp.get_json())
    return api.get(f"/orders/{oid}").get_json()


def open_return(api, oid, lines, resolution="refund", expect=201):
    resp = api.post(f"/orders/{oid}/returns", {"lines": lines, "reason": "does not work", "resolution": resolution})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def unit_statuses(app, *serials):
    with app.app_context():
        rows = dict(db.session.execute(select(SerialUnit.serial, SerialUnit.status)
                                       .where(SerialUnit.serial.in_(serials))).all())
        db.session.rollback()
    return [rows[s] for s in serials]


def level_at(app, sku, code):
    with app.app_context():
        from engine.models import Product

        product_id = db.session.execute(select(Product.id).where(Product.sku == sku)).scalar_one()
        location = db.session.execute(select(Location).where(Location.code == code)).scalar_one_or_none()
        if location is None:
            return 0, 0
        on_hand = db.session.execute(select(StockLevel.on_hand).where(
            StockLevel.product_id == product_id, StockLevel.location_id == location.id)).scalar_one_or_none() or 0
        ledger = db.session.execute(select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
            StockMovement.product_id == product_id, StockMovement.location_id == location.id)).scalar_one()
        db.session.rollback()
    return on_hand, ledger


# ------------------------------------------------------------------ the table


def test_the_table_names_allowed_actions_and_refuses_the_others():
    assert rma.allowed_actions("requested") == ["approve", "reject"]
    assert rma.allowed_actions("approved") == ["reject", "receive"]
    assert rma.allowed_actions("received") == ["resolve"]
    assert rma.allowed_actions("rejected") == rma.allowed_actions("resolved") == []
    with pytest.raises(rma.IllegalReturnTransition) as refused:
        rma.check(7, "rejected", "approve")
    assert "none (the return is final)" in refused.value.message and refused.value.status == 409
    assert rma.migrated_status("refunded") == rma.migrated_status("exchanged") == "resolved"
    assert rma.migrated_status("received") == "received"


@pytest.mark.parametrize("app_config", [{"RETURNS_REQUIRE_APPROVAL": True}], indirect=True)
def test_every_transition_allowed_or_refused_with_nothing_changed(shop, app):
    api = shop
    oid = shipped(api, [("MUG", 4, None)])["id"]
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])
    assert (ret["status"], ret["allowed_actions"]) == ("requested", ["approve", "reject"])
    rid = ret["id"]

    def refused(action, body=None, code="illegal_transition"):
        before = snapshot(app)
        resp = api.post(f"/returns/{rid}/{action}", body or {})
        assert resp.status_code == 409, (action, resp.get_json())
        assert resp.get_json()["code"] == code and "allowed next actions" in resp.get_json()["message"]
        assert snapshot(app) == before

    refused("receive", code="illegal_transition")  # a requested return needs approval first
    refused("resolve")
    resp = api.post(f"/returns/{rid}/reject", {})
    assert resp.status_code == 422 and "reason" in resp.get_json()["errors"]  # the reason is required
    resp = api.post(f"/returns/{rid}/approve")
    assert resp.status_code == 200 and resp.get_json()["status"] == "approved" and resp.get_json()["approved_at"]
    refused("approve")
    refused("resolve")
    resp = api.post(f"/returns/{rid}/receive", {})
    assert resp.status_code == 200 and resp.get_json()["status"] == "resolved"
    for action, body in (("approve", None), ("reject", {"reason": "late"}), ("resolve", None)):
        refused(action, body)
    refused("receive", code="return_closed")

    # rejected: final; an approved return whose parcel never came can be rejected too
    other = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])["id"]
    resp = api.post(f"/returns/{other}/reject", {"reason": "outside the return window"})
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["rejection_reason"]) == ("rejected", "outside the return window")
    rid = other
    for action, body in (("approve", None), ("receive", None), ("resolve", None), ("reject", {"reason": "x"})):
        refused(action, body)
    third = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])["id"]
    assert api.post(f"/returns/{third}/approve").status_code == 200
    assert api.post(f"/returns/{third}/reject", {"reason": "never arrived"}).get_json()["status"] == "rejected"
    assert api.post("/returns/999999/approve").status_code == 404


def test_a_staff_return_is_approved_at_once_and_keeps_the_old_receive(shop, app, hooks):
    api = shop
    oid = shipped(api, [("MUG", 2, None)])["id"]
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])
    assert (ret["status"], ret["source"]) == ("approved", "staff")
    body = api.post(f"/returns/{ret['id']}/receive", {}).get_json()
    assert (body["status"], body["resolution"], body["refund_amount"]) == ("resolved", "refund", 1290)
    assert body["received_lines"] == [{"sku": "MUG", "quantity": 1, "serials": [], "condition": "resellable",
                                       "location": "MAIN"}]
    assert [h for h, _ in hooks.calls] == ["return_requested", "return_approved", "return_received", "refund_issued"]


# ------------------------------------------------------------------ serials and quantities


def test_serials_are_checked_against_what_the_order_shipped(shop, app):
    api = shop
    oid = shipped(api, [("PHONE", 2, ["P-1", "P-2"]), ("MUG", 2, None)])["id"]
    other = shipped(api, [("PHONE", 1, ["P-3"])])["id"]
    before = snapshot(app)
    # a serial that is not on this order (it shipped on another one, or was never shipped)
    for serial in ("P-3", "P-5", "NOPE"):
        resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "PHONE", "quantity": 1, "serials": [serial]}],
                                                   "reason": "x", "resolution": "refund"})
        assert resp.status_code == 422, resp.get_json()
        assert serial in resp.get_json()["errors"]["lines"]["0"]["serials"][0]
    # tracked units need their serials, one per unit; untracked ones have none
    for line in ({"sku": "PHONE", "quantity": 1}, {"sku": "PHONE", "quantity": 2, "serials": ["P-1"]},
                 {"sku": "PHONE", "quantity": 2, "serials": ["P-1", "P-1"]},
                 {"sku": "MUG", "quantity": 1, "serials": ["P-1"]}):
        resp = api.post(f"/orders/{oid}/returns", {"lines": [line], "reason": "x", "resolution": "refund"})
        assert resp.status_code == 422 and "serials" in resp.get_json()["errors"]["lines"]["0"], resp.get_json()
    # more than shipped
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 3}], "reason": "x",
                                               "resolution": "refund"})
    assert resp.status_code == 422 and "at most 2" in resp.get_json()["errors"]["lines"]["0"]["quantity"][0]
    assert snapshot(app) == before

    ret = open_return(api, oid, [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}, {"sku": "MUG", "quantity": 1}])
    assert unit_statuses(app, "P-1", "P-2", "P-3") == ["returned", "shipped", "shipped"]
    # the same serial on a second return: 409 naming it; the quantity left counts the open return
    before = snapshot(app)
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}],
                                               "reason": "x", "resolution": "refund"})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "serial_already_returned")
    assert "P-1" in resp.get_json()["message"]
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 2}], "reason": "x",
                                               "resolution": "refund"})
    assert resp.status_code == 422 and "1 in open returns" in resp.get_json()["errors"]["lines"]["0"]["quantity"][0]
    assert snapshot(app) == before
    # received and back in stock: still not returnable on this order again
    assert api.post(f"/returns/{ret['id']}/receive", {}).status_code == 200
    assert unit_statuses(app, "P-1") == ["in_stock"]
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}],
                                               "reason": "x", "resolution": "refund"})
    assert resp.status_code == 409
    # a rejected return gives its serials back: they can be returned again
    second = open_return(api, other, [{"sku": "PHONE", "quantity": 1, "serials": ["P-3"]}])["id"]
    assert api.post(f"/returns/{second}/reject", {"reason": "never arrived"}).status_code == 200
    assert unit_statuses(app, "P-3") == ["shipped"]
    open_return(api, other, [{"sku": "PHONE", "quantity": 1, "serials": ["P-3"]}])


# ------------------------------------------------------------------ receiving: stock or quarantine


def test_damaged_units_go_to_quarantine_and_resellable_ones_to_stock(shop, app):
    api = shop
    oid = shipped(api, [("PHONE", 2, ["P-1", "P-2"]), ("MUG", 3, None)])["id"]
    ret = open_return(api, oid, [{"sku": "PHONE", "quantity": 2, "serials": ["P-1", "P-2"]},
                                 {"sku": "MUG", "quantity": 3}])
    assert unit_statuses(app, "P-1", "P-2") == ["returned", "returned"]
    mug_main = level_at(app, "MUG", "MAIN")
    before = snapshot(app)
    for lines in ([{"sku": "PHONE", "serials": ["P-3"], "condition": "damaged"}],
                  [{"sku": "MUG", "quantity": 4, "condition": "damaged"}],
                  [{"sku": "PHONE", "quantity": 1, "condition": "damaged"}],
                  [{"sku": "CAP", "quantity": 1, "condition": "damaged"}]):
        resp = api.post(f"/returns/{ret['id']}/receive", {"lines": lines})
        assert resp.status_code == 422, (lines, resp.get_json())
    resp = api.post(f"/returns/{ret['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 1, "condition": "broken"}]})
    assert resp.status_code == 422
    assert snapshot(app) == before

    resp = api.post(f"/returns/{ret['id']}/receive", {"lines": [
        {"sku": "PHONE", "serials": ["P-2"], "condition": "damaged"}, {"sku": "MUG", "quantity": 2, "condition": "damaged"}]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "resolved"
    assert sorted((g["sku"], g["quantity"], g["condition"], g["location"]) for g in body["received_lines"]) == [
        ("MUG", 1, "resellable", "MAIN"), ("MUG", 2, "damaged", "MAIN/QUARANTINE"),
        ("PHONE", 1, "damaged", "MAIN/QUARANTINE"), ("PHONE", 1, "resellable", "MAIN")]
    assert unit_statuses(app, "P-1", "P-2") == ["in_stock", "quarantined"]
    with app.app_context():
        quarantine, kind, pickable = db.session.execute(select(Location.id, Location.kind, Location.pickable)
                                                        .where(Location.code == "MAIN/QUARANTINE")).one()
        assert (kind, pickable) == ("quarantine", False)  # made on first use, never allocated
        assert db.session.execute(select(SerialUnit.location_id).where(SerialUnit.serial == "P-2")).scalar_one() \
            == quarantine
        db.session.rollback()
    assert level_at(app, "MUG", "MAIN/QUARANTINE") == (2, 2) and level_at(app, "PHONE", "MAIN/QUARANTINE") == (1, 1)
    assert level_at(app, "MUG", "MAIN") == (mug_main[0] + 1, mug_main[1] + 1)
    assert stock_of(api, "MUG")["on_hand"] == 20  # 17 left after shipping, 3 back: 1 at MAIN, 2 in quarantine
    with app.app_context():
        check_stock_invariants()


@pytest.mark.parametrize("app_config", [{"RETURNS_QUARANTINE_LOCATION": "MAIN/DAMAGED-1"}], indirect=True)
def test_the_quarantine_location_is_a_setting(shop, app):
    api = shop
    oid = shipped(api, [("MUG", 1, None)])["id"]
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])
    api.post(f"/returns/{ret['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 1, "condition": "damaged"}]})
    assert level_at(app, "MUG", "MAIN/DAMAGED-1") == (1, 1)
    location = api.get("/locations/MAIN/DAMAGED-1").get_json()
    assert (location["kind"], location["pickable"]) == ("quarantine", False)


@pytest.mark.parametrize("app_config", [{"RETURNS_QUARANTINE_LOCATION": "MAIN/SHELF-9"}], indirect=True)
def test_a_pickable_quarantine_setting_is_refused_and_nothing_is_received(shop, app):
    api = shop
    assert api.post("/locations", {"path": "MAIN/SHELF-9"}).status_code == 201  # a pickable bin
    oid = shipped(api, [("MUG", 1, None)])["id"]
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])
    before = snapshot(app)
    resp = api.post(f"/returns/{ret['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 1, "condition": "damaged"}]})
    assert resp.status_code == 409 and resp.get_json()["code"] == "quarantine_pickable"
    assert "pickable: false" in resp.get_json()["message"]
    assert snapshot(app) == before


def test_restock_false_writes_the_units_off(shop, app):
    api = shop
    oid = shipped(api, [("PHONE", 1, ["P-1"])])["id"]
    ret = open_return(api, oid, [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}], resolution="exchange")
    on_hand = stock_of(api, "PHONE")["on_hand"]
    body = api.post(f"/returns/{ret['id']}/receive", {"restock": False}).get_json()
    assert body["status"] == "resolved" and body["received_lines"][0]["condition"] == "written_off"
    assert unit_statuses(app, "P-1") == ["scrapped"]
    assert stock_of(api, "PHONE")["on_hand"] == on_hand  # nothing back on hand; the replacement reserved one
    assert stock_of(api, "PHONE")["reserved"] == 1


# ------------------------------------------------------------------ refunds and exchanges


def test_a_partial_refund_and_a_refund_over_the_limit(shop, app):
    api = shop
    oid = shipped(api, [("MUG", 2, None)])["id"]
    assert api.post(f"/orders/{oid}/refunds", {"amount": 2000, "reason": "goodwill"}).status_code in (200, 201)
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])
    before = snapshot(app)
    # paid 2580, refunded 2000: 580 left; asking 581 is refused and nothing is received
    resp = api.post(f"/returns/{ret['id']}/receive", {"refund_amount": 581})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "refund_exceeds_refundable"), resp.get_json()
    assert snapshot(app) == before
    resp = api.post(f"/returns/{ret['id']}/receive", {"refund_amount": 500})
    assert resp.status_code == 200 and resp.get_json()["status"] == "resolved"
    order = api.get(f"/orders/{oid}").get_json()
    assert order["totals"]["refunded"] == 2500
    assert [r["amount"] for r in order["refunds"] if r["return_id"] == ret["id"]] == [500]
    # an exchange refunds nothing
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 1}], resolution="exchange")
    assert api.post(f"/returns/{ret['id']}/receive", {"refund_amount": 1}).status_code == 422


def test_the_lines_share_is_capped_at_what_can_still_be_refunded(shop, app):
    api = shop
    oid = shipped(api, [("MUG", 2, None)])["id"]
    api.post(f"/orders/{oid}/refunds", {"amount": 2000, "reason": "goodwill"})
    ret = open_return(api, oid, [{"sku": "MUG", "quantity": 2}])
    body = api.post(f"/returns/{ret['id']}/receive", {}).get_json()
    assert body["status"] == "resolved"
    assert api.get(f"/orders/{oid}").get_json()["totals"]["refunded"] == 2580  # never above what was paid


def test_an_exchange_places_a_zero_priced_replacement_linked_to_the_return(shop, app):
    api = shop
    oid = shipped(api, [("PHONE", 1, ["P-1"])])["id"]
    ret = open_return(api, oid, [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}], resolution="exchange")
    body = api.post(f"/returns/{ret['id']}/receive", {}).get_json()
    assert (body["status"], body["resolution"]) == ("resolved", "exchange") and body["resolved_at"]
    replacement = api.get(f"/orders/{body['replacement_order_id']}").get_json()
    assert "replacement" in replacement["flags"] and replacement["replacement_for"] == oid
    assert replacement["totals"]["total"] == 0 and replacement["status"] == "paid"
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in replacement["lines"]] == [("PHONE", 1, 0)]
    assert stock_of(api, "PHONE")["reserved"] == 1


# ------------------------------------------------------------------ hooks: once each


def test_each_hook_fires_once_per_return_even_when_the_refund_is_retried(shop, app, hooks):
    api = shop
    oid = shipped(api, [("MUG", 2, None)], provider="flaky")["id"]
    rid = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])["id"]
    hooks.fail_refunds = 2
    resp = api.post(f"/returns/{rid}/receive", {})
    assert (resp.status_code, resp.get_json()["code"]) == (502, "provider_unavailable")
    assert api.get(f"/returns/{rid}").get_json()["status"] == "received"
    resp = api.post(f"/returns/{rid}/resolve")
    assert resp.status_code == 502
    on_hand = stock_of(api, "MUG")["on_hand"]
    resp = api.post(f"/returns/{rid}/receive", {})  # the old way to retry: the refund only
    assert resp.status_code == 200 and resp.get_json()["status"] == "resolved", resp.get_json()
    assert stock_of(api, "MUG")["on_hand"] == on_hand
    assert api.post(f"/returns/{rid}/resolve").status_code == 409
    assert api.post(f"/returns/{rid}/receive", {}).get_json()["code"] == "return_closed"
    mine = [hook for hook, _ in hooks.calls]
    assert mine == ["return_requested", "return_approved", "return_received", "refund_issued"], hooks.calls
    assert api.get(f"/orders/{oid}").get_json()["totals"]["refunded"] == 1290


@pytest.mark.parametrize("app_config", [{"RETURNS_REQUIRE_APPROVAL": True}], indirect=True)
def test_hook_return_approved(shop, app, hooks):
    api = shop
    oid = shipped(api, [("MUG", 1, None)])["id"]
    rid = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])["id"]
    assert hooks.calls == [("return_requested", rid)]
    api.post(f"/returns/{rid}/approve")
    api.post(f"/returns/{rid}/approve")  # refused: fires nothing
    assert hooks.calls == [("return_requested", rid), ("return_approved", rid)]


@pytest.mark.parametrize("app_config", [{"RETURNS_REQUIRE_APPROVAL": True}], indirect=True)
def test_hook_return_rejected(shop, app, hooks):
    api = shop
    oid = shipped(api, [("MUG", 1, None)])["id"]
    rid = open_return(api, oid, [{"sku": "MUG", "quantity": 1}])["id"]
    assert api.post(f"/returns/{rid}/reject", {"reason": "used"}).status_code == 200
    assert api.post(f"/returns/{rid}/reject", {"reason": "used"}).status_code == 409
    assert hooks.calls == [("return_requested", rid), ("return_rejected", rid)]
    with app.app_context():
        from engine import outbox

        payloads = [e.payload for e in outbox.events(hook="return_rejected")]
        db.session.rollback()
    assert payloads == [{"order_id": oid, "return_id": rid, "reason": "used"}]


def test_a_stored_requested_staff_return_is_received_as_before(shop, app, hooks):
    """A return opened before approvals existed is still ``requested``: receiving approves it on the way."""
    api = shop
    oid = shipped(api, [("PHONE", 1, ["P-1"])])["id"]
    rid = open_return(api, oid, [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}])["id"]
    with app.app_context():
        from engine.models import Return

        db.session.get(Return, rid).status = "requested"  # what revision 0012 leaves of a stored one
        db.session.commit()
    hooks.calls.clear()
    body = api.post(f"/returns/{rid}/receive", {}).get_json()
    assert body["status"] == "resolved" and body["approved_at"] and body["received_at"]
    assert [h for h, _ in hooks.calls] == ["return_approved", "return_received", "refund_issued"]
    assert unit_statuses(app, "P-1") == ["in_stock"]
