"""Suppliers and purchase orders (issue #11): the transition table, receiving quantities and serials with
short, over and damaged units, backorders filled oldest first from a receipt, concurrent receipts."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select
from test_concurrency import answer, together
from test_openapi import check_against_spec, conforms, spec  # noqa: F401 - spec is a fixture

from engine.db import db
from engine.models import PurchaseOrder, PurchaseOrderLine, SerialUnit, StockMovement


def supplier(api, name="Acme", **extra):
    resp = api.post("/suppliers", {"name": name, "email": "orders@acme.example", "lead_time_days": 5, **extra})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def purchase_order(api, lines, supplier_id=None, expect=201):
    body = {"lines": [{"sku": sku, "quantity": qty, "unit_cost": 300} for sku, qty in lines]}
    if supplier_id is not None:
        body["supplier_id"] = supplier_id
    resp = api.post("/purchase-orders", body)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def act(api, po, action, expect=200, **body):
    resp = api.post(f"/purchase-orders/{po['id']}/{action}", body)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def receive_po(api, po, lines, expect=200, **extra):
    resp = api.post(f"/purchase-orders/{po['id']}/receive", {"lines": lines, **extra})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def _snapshot(app):
    with app.app_context():
        data = (db.session.execute(select(func.count()).select_from(StockMovement)).scalar_one(),
                [(po.id, po.status) for po in db.session.execute(select(PurchaseOrder)).unique().scalars()],
                [(ln.id, ln.quantity, ln.received, ln.damaged) for ln in
                 db.session.execute(select(PurchaseOrderLine)).scalars()])
        db.session.rollback()
        return data


def test_suppliers_are_created_listed_read_and_changed(api):
    acme = supplier(api, currency="eur", phone="+49 30 1", notes="net 30")
    assert (acme["currency"], acme["lead_time_days"], acme["notes"]) == ("EUR", 5, "net 30")
    assert api.get(f"/suppliers/{acme['id']}").get_json() == acme
    changed = api.patch(f"/suppliers/{acme['id']}", {"lead_time_days": 9, "phone": None}).get_json()
    assert (changed["lead_time_days"], changed["phone"], changed["name"]) == (9, None, "Acme")
    supplier(api, "Bolt")
    page = api.get("/suppliers?limit=1").get_json()
    assert [s["name"] for s in page["items"]] == ["Bolt"] and page["next_cursor"]
    rest = api.get(f"/suppliers?cursor={page['next_cursor']}").get_json()
    assert [s["name"] for s in rest["items"]] == ["Acme"] and rest["next_cursor"] is None
    dup = api.post("/suppliers", {"name": "Acme"})
    assert dup.status_code == 409 and dup.get_json()["code"] == "duplicate_supplier"
    assert api.get("/suppliers/999").status_code == 404
    bad = api.post("/suppliers", {"name": "X", "lead_time_days": -1, "colour": "red"})
    assert bad.status_code == 422 and {"lead_time_days", "colour"} <= set(bad.get_json()["errors"])


def test_a_purchase_order_goes_draft_ordered_partially_received_received_closed(api, app):
    product(api, "MUG", price=1290)
    product(api, "CAP", price=990)
    acme = supplier(api)
    po = purchase_order(api, [("MUG", 10), ("CAP", 4)], acme["id"])
    assert po["number"] == f"PO-{po['id']:06d}" and po["status"] == "draft"
    assert po["allowed_actions"] == ["edit", "order", "cancel"]
    assert [(ln["sku"], ln["quantity"], ln["short"]) for ln in po["lines"]] == [("MUG", 10, 10), ("CAP", 4, 4)]
    # a second draft for the supplier is refused: one open draft per supplier
    second = api.post("/purchase-orders", {"supplier_id": acme["id"], "lines": []})
    assert second.status_code == 409 and second.get_json()["code"] == "draft_exists"
    assert po["number"] in second.get_json()["message"]
    # lines change while draft: upsert by sku, 0 removes
    po = api.patch(f"/purchase-orders/{po['id']}", {"lines": [{"sku": "MUG", "quantity": 12},
                                                              {"sku": "CAP", "quantity": 0}]}).get_json()
    assert [(ln["sku"], ln["quantity"]) for ln in po["lines"]] == [("MUG", 12)]
    po = act(api, po, "order")
    assert po["status"] == "ordered" and po["ordered_at"] and po["expected_at"] > po["ordered_at"]
    po = receive_po(api, po, [{"sku": "MUG", "quantity": 5}])
    assert po["status"] == "partially_received" and po["allowed_actions"] == ["receive", "close"]
    assert (po["lines"][0]["received"], po["lines"][0]["short"]) == (5, 7)
    po = receive_po(api, po, [{"sku": "MUG", "quantity": 7}], location="BACK", reference="DN-1")
    assert po["status"] == "received" and po["received_at"] and po["lines"][0]["short"] == 0
    assert stock_of(api, "MUG")["on_hand"] == 12
    assert {loc["location"]: loc["on_hand"] for loc in stock_of(api, "MUG")["locations"]} == {"MAIN": 5, "BACK": 7}
    po = act(api, po, "close")
    assert po["status"] == "closed" and po["allowed_actions"] == []
    listed = api.get(f"/purchase-orders?status=closed&supplier_id={acme['id']}").get_json()
    assert [p["number"] for p in listed["items"]] == [po["number"]]
    assert api.get("/purchase-orders?status=draft").get_json()["items"] == []
    with app.app_context():
        refs = db.session.execute(select(StockMovement.reference).order_by(StockMovement.id)).scalars().all()
        assert refs == [po["number"], f"{po['number']} DN-1"]
        check_stock_invariants()
    # the supplier may get a new draft now
    assert purchase_order(api, [("CAP", 1)], acme["id"])["status"] == "draft"


@pytest.mark.parametrize("status, action, allowed", [
    ("draft", "receive", "edit, order, cancel"), ("draft", "close", "edit, order, cancel"),
    ("ordered", "order", "receive, cancel"), ("ordered", "close", "receive, cancel"),
    ("received", "cancel", "close"), ("received", "receive", "close"), ("cancelled", "order", "none"),
    ("closed", "receive", "none"), ("ordered", "edit", "receive, cancel"),
])
def test_a_refused_transition_is_a_409_naming_the_allowed_actions_and_changes_nothing(api, app, status, action,
                                                                                       allowed):
    product(api, "MUG", price=1290)
    po = purchase_order(api, [("MUG", 2)])
    for step, reached in (("order", "ordered"), ("receive", "received"), ("close", "closed")):
        if po["status"] == status or status == "cancelled":
            break
        po = act(api, po, step, **({"lines": [{"sku": "MUG", "quantity": 2}]} if step == "receive" else {}))
        assert po["status"] == reached
    if status == "cancelled":
        po = act(api, po, "cancel")
    before = _snapshot(app)
    if action == "edit":
        resp = api.patch(f"/purchase-orders/{po['id']}", {"lines": [{"sku": "MUG", "quantity": 5}]})
    else:
        resp = api.post(f"/purchase-orders/{po['id']}/{action}",
                        {"lines": [{"sku": "MUG", "quantity": 1}]} if action == "receive" else {})
    body = resp.get_json()
    assert resp.status_code == 409 and body["code"] == "illegal_transition", body
    assert po["number"] in body["message"] and f"it is {status}" in body["message"]
    assert allowed in body["message"]
    assert _snapshot(app) == before


def test_bad_receipts_are_422s_naming_the_problem_and_change_nothing(api, app):
    product(api, "MUG", price=1290)
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "CAP", price=990)
    po = act(api, purchase_order(api, [("MUG", 3), ("PHONE", 2)]), "order")
    before = _snapshot(app)
    for lines, field, text in (
        ([{"sku": "CAP", "quantity": 1}], "sku", "CAP is not on"),
        ([{"sku": "MUG", "quantity": 0}], "quantity", "nothing received"),
        ([{"sku": "PHONE", "quantity": 2, "serials": ["S1"]}], "serials", "one serial per unit"),
        ([{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 1}], "sku", "two lines"),
        ([{"sku": "MUG", "quantity": 1}, {"sku": "PHONE", "quantity": 1}], "serials", "serial-tracked"),
    ):
        resp = api.post(f"/purchase-orders/{po['id']}/receive", {"lines": lines})
        body = resp.get_json()
        assert resp.status_code == 422, body
        assert text in body["message"] and field in str(body["errors"]), body
        assert _snapshot(app) == before
    receive(api, "PHONE", 1, serials=["S1"])
    resp = api.post(f"/purchase-orders/{po['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 3},
                                                                       {"sku": "PHONE", "serials": ["S1", "S2"]}]})
    assert resp.status_code == 409 and resp.get_json()["code"] == "serial_exists"
    assert stock_of(api, "MUG")["on_hand"] == 0  # the MUG half was rolled back with it
    assert api.post("/purchase-orders/999/receive", {"lines": [{"sku": "MUG", "quantity": 1}]}).status_code == 404
    unknown = api.post("/purchase-orders", {"lines": [{"sku": "NOPE", "quantity": 1}]})
    assert unknown.status_code == 422 and "NOPE" in unknown.get_json()["message"]
    empty = act(api, purchase_order(api, []), "order", expect=422)
    assert "no lines" in empty["message"]


def test_receiving_serials_short_over_and_damaged_units(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "MUG", price=1290)
    po = act(api, purchase_order(api, [("PHONE", 3), ("MUG", 10)]), "order")
    po = receive_po(api, po, [{"sku": "PHONE", "serials": ["P-1", "P-2"], "damaged": 1},
                              {"sku": "MUG", "quantity": 6, "damaged": 2}])
    phone, mug = po["lines"]
    assert (phone["received"], phone["damaged"], phone["short"], phone["over"]) == (2, 1, 0, 0)
    assert (mug["received"], mug["damaged"], mug["short"], mug["over"]) == (6, 2, 2, 0)
    assert po["status"] == "partially_received"
    # damaged units are recorded, not put on hand
    assert stock_of(api, "PHONE")["on_hand"] == 2 and stock_of(api, "MUG")["on_hand"] == 6
    po = receive_po(api, po, [{"sku": "MUG", "quantity": 3}])  # one more than was missing: over
    mug = po["lines"][1]
    assert (mug["received"], mug["short"], mug["over"]) == (9, 0, 1) and po["status"] == "received"
    assert stock_of(api, "MUG")["on_hand"] == 9  # the over unit is in the warehouse
    with app.app_context():
        units = db.session.execute(select(SerialUnit.serial, SerialUnit.status).order_by(SerialUnit.id)).all()
        assert [tuple(u) for u in units] == [("P-1", "in_stock"), ("P-2", "in_stock")]
        check_stock_invariants()
    # closing a partial receipt keeps what never came as short
    po2 = act(api, purchase_order(api, [("MUG", 4)]), "order")
    po2 = act(api, receive_po(api, po2, [{"sku": "MUG", "quantity": 1}]), "close")
    assert (po2["status"], po2["lines"][0]["short"]) == ("closed", 3)
    cancel = api.post(f"/purchase-orders/{po2['id']}/cancel")
    assert cancel.status_code == 409


def test_a_receipt_fills_waiting_backorders_oldest_order_first(api, app):
    product(api, "BOOK", price=2500, allow_backorder=True)
    first = place(api, [("BOOK", 2)])
    second = place(api, [("BOOK", 3)], email="bob@example.com")
    third = place(api, [("BOOK", 1)], email="cy@example.com")
    assert [o["status"] for o in (first, second, third)] == ["on_hold"] * 3
    with app.app_context():  # the backorders went to the product's one draft
        drafts = db.session.execute(select(PurchaseOrder).where(PurchaseOrder.status == "draft")).unique().scalars().all()
        assert [(d.product.sku, d.quantity) for d in drafts] == [("BOOK", 6)]
        draft_id = drafts[0].id
        db.session.rollback()
    po = act(api, {"id": draft_id}, "order")
    receive_po(api, po, [{"sku": "BOOK", "quantity": 4}])  # enough for the first two: the third waits
    states = [api.get(f"/orders/{o['id']}").get_json() for o in (first, second, third)]
    # the first order got its 2, the second 2 of its 3 (oldest first), the third nothing yet
    assert [(o["status"], o["lines"][0]["backordered"]) for o in states] == [("placed", 0), ("on_hold", 1),
                                                                              ("on_hold", 1)]
    assert stock_of(api, "BOOK")["reserved"] == 4 and stock_of(api, "BOOK")["available"] == 0
    receive_po(api, po, [{"sku": "BOOK", "quantity": 2}])
    states = [api.get(f"/orders/{o['id']}").get_json() for o in (first, second, third)]
    assert [(o["status"], o["lines"][0]["backordered"]) for o in states] == [("placed", 0)] * 3
    with app.app_context():
        check_stock_invariants()


def test_concurrent_receipts_of_one_purchase_order_record_what_came_beyond_the_order_as_over(api, app):
    product(api, "MUG", price=1290)
    product(api, "CAP", price=990)
    po = act(api, purchase_order(api, [("MUG", 10), ("CAP", 5)]), "order")
    # 8 receipts of 3 mugs and 2 caps at once: they queue on the product rows, each sees the ones before;
    # the 4th completes the order (12 mugs: 2 over, 8 caps: 3 over), the later ones find it received
    body = {"lines": [{"sku": "CAP", "quantity": 2}, {"sku": "MUG", "quantity": 3}]}
    results = together(app, api.key, [lambda c: answer(c.post(f"/purchase-orders/{po['id']}/receive", body))
                                      for _ in range(8)])
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 4, 409: 4}, results
    assert all(b["code"] == "illegal_transition" and "it is received" in b["message"]
               for s, b in results if s == 409)
    done = api.get(f"/purchase-orders/{po['id']}").get_json()
    mug, cap = done["lines"]
    assert done["status"] == "received"
    assert (mug["received"], mug["over"], cap["received"], cap["over"]) == (12, 2, 8, 3)
    assert sorted(b["status"] for s, b in results if s == 200) == ["partially_received"] * 3 + ["received"]
    assert stock_of(api, "MUG")["on_hand"] == 12 and stock_of(api, "CAP")["on_hand"] == 8
    with app.app_context():
        check_stock_invariants()


def test_concurrent_receipt_and_cancel_one_wins(api, app):
    product(api, "MUG", price=1290)
    po = act(api, purchase_order(api, [("MUG", 4)]), "order")
    jobs = [lambda c: answer(c.post(f"/purchase-orders/{po['id']}/receive", {"lines": [{"sku": "MUG", "quantity": 4}]})),
            lambda c: answer(c.post(f"/purchase-orders/{po['id']}/cancel"))]
    results = together(app, api.key, jobs)
    assert sorted(s for s, _ in results) == [200, 409], results
    final = api.get(f"/purchase-orders/{po['id']}").get_json()
    expected_on_hand = 4 if final["status"] == "received" else 0
    assert final["status"] in ("received", "cancelled")
    assert stock_of(api, "MUG")["on_hand"] == expected_on_hand
    with app.app_context():
        check_stock_invariants()


def test_hookshop_purchase_orders_list_and_receive(api, app, tmp_path):
    product(api, "MUG", price=1290)
    product(api, "PHONE", price=59900, track_serials=True)
    po = act(api, purchase_order(api, [("MUG", 5), ("PHONE", 2)], supplier(api)["id"]), "order")
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["purchase-orders", "list", "--status", "ordered"])
    assert listed.exit_code == 0 and po["number"] in listed.output and "Acme" in listed.output
    assert "MUG 0/5" in listed.output
    serials = tmp_path / "scans.txt"
    serials.write_text("PHONE SN-1\nPHONE SN-2\n")
    result = runner.invoke(args=["purchase-orders", "receive", po["number"], "--line", "MUG=4+1",
                                 "--serials", str(serials), "--reference", "DN-7"])
    assert result.exit_code == 0, result.output
    assert f"{po['number']} is received" in result.output
    assert "MUG: 4 received, 1 damaged of 5 ordered (short 0, over 0)" in result.output
    assert stock_of(api, "PHONE")["on_hand"] == 2 and stock_of(api, "MUG")["on_hand"] == 4
    again = runner.invoke(args=["purchase-orders", "receive", str(po["id"]), "--line", "MUG=1"])
    assert again.exit_code != 0 and "it is received" in again.output
    bad = runner.invoke(args=["purchase-orders", "receive", po["number"], "--line", "MUG=x"])
    assert bad.exit_code != 0 and "SKU=QUANTITY" in bad.output
    missing = runner.invoke(args=["purchase-orders", "receive", "PO-999999", "--line", "MUG=1"])
    assert missing.exit_code != 0 and "no purchase order" in missing.output
    as_json = runner.invoke(args=["purchase-orders", "list", "--json"])
    assert json.loads(as_json.output)[0]["lines"][0]["received"] == 4


def test_purchasing_answers_agree_with_the_documented_schemas(api, app, spec):  # noqa: F811
    from engine.api import purchasing_schemas as s

    product(api, "MUG", price=1290, reorder_point=2, reorder_quantity=5)
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 4)
    acme = conforms(spec, "post", "/suppliers", "201", api.post("/suppliers", {"name": "Acme", "currency": "EUR"}),
                    s.SupplierOut())
    conforms(spec, "get", "/suppliers/{}", "200", api.get(f"/suppliers/{acme['id']}"), s.SupplierOut())
    conforms(spec, "patch", "/suppliers/{}", "200", api.patch(f"/suppliers/{acme['id']}", {"notes": "n"}),
             s.SupplierOut())
    conforms(spec, "get", "/suppliers", "200", api.get("/suppliers"), s.SupplierPage(), all_keys=False)
    body = {"supplier_id": acme["id"], "lines": [{"sku": "MUG", "quantity": 3}, {"sku": "PHONE", "quantity": 1}]}
    po = conforms(spec, "post", "/purchase-orders", "201", api.post("/purchase-orders", body), s.PurchaseOrderOut())
    conforms(spec, "patch", "/purchase-orders/{}", "200",
             api.patch(f"/purchase-orders/{po['id']}", {"notes": "rush"}), s.PurchaseOrderOut())
    conforms(spec, "post", "/purchase-orders/{}/order", "200", api.post(f"/purchase-orders/{po['id']}/order"),
             s.PurchaseOrderOut())
    received = api.post(f"/purchase-orders/{po['id']}/receive",
                        {"lines": [{"sku": "MUG", "quantity": 3, "damaged": 1}, {"sku": "PHONE", "serials": ["S"]}]})
    conforms(spec, "post", "/purchase-orders/{}/receive", "200", received, s.PurchaseOrderOut())
    conforms(spec, "post", "/purchase-orders/{}/close", "200", api.post(f"/purchase-orders/{po['id']}/close"),
             s.PurchaseOrderOut())
    conforms(spec, "get", "/purchase-orders/{}", "200", api.get(f"/purchase-orders/{po['id']}"), s.PurchaseOrderOut())
    refused = api.post(f"/purchase-orders/{po['id']}/cancel")
    check_against_spec(spec, {"$ref": "#/components/schemas/Error"}, refused.get_json())
    place(api, [("MUG", 5)])  # 7 -> 2: crosses the product-wide rule
    rules = conforms(spec, "get", "/products/{}/reorder-rules", "200", api.get("/products/MUG/reorder-rules"),
                     s.ReorderRulesOut())
    assert rules["rules"][0]["state"] == "below"
    put = api.client.put("/api/v1/products/MUG/reorder-rules", headers={"Authorization": f"Bearer {api.key}"},
                         json={"rules": [{"reorder_point": 2, "reorder_quantity": 5, "supplier_id": acme["id"]},
                                         {"location": "MAIN", "reorder_point": 1, "max_level": 9}]})
    conforms(spec, "put", "/products/{}/reorder-rules", "200", put, s.ReorderRulesOut())
    page = conforms(spec, "get", "/stock/alerts", "200", api.get("/stock/alerts"), s.StockAlertPage(), all_keys=False)
    assert page["items"] and page["items"][0]["purchase_order_id"]
    conforms(spec, "get", "/purchase-orders", "200", api.get("/purchase-orders?limit=1"), s.PurchaseOrderPage(),
             all_keys=False)
