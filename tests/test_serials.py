"""Serial units: reserved with their order line, picked (or swapped) by scan, shipped, returned, with a
history; the specific pick and pack errors; GET /serials and /products/{sku}/serials."""

from __future__ import annotations

from conftest import place, product, receive
from invariants import check_stock_invariants
from sqlalchemy import select, update

from engine.db import db
from engine.models import SerialUnit

PHONES = [f"P-{i}" for i in range(1, 7)]


def shop(api):
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "MUG", price=1290, barcode="4006381333948")
    product(api, "CAM", price=34900, track_serials=True)
    receive(api, "PHONE", len(PHONES), serials=PHONES)
    receive(api, "MUG", 10)


def units(app) -> dict[str, tuple]:
    with app.app_context():
        rows = db.session.execute(select(SerialUnit.serial, SerialUnit.status, SerialUnit.line_id)).all()
        db.session.rollback()
    return {serial: (status, line_id) for serial, status, line_id in rows}


def statuses(app) -> dict[str, str]:
    return {serial: status for serial, (status, _) in units(app).items()}


def paid(api, lines, **extra) -> dict:
    order = place(api, lines, **extra)
    assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    return order


def set_status(app, serial, status, **values):
    with app.app_context():
        db.session.execute(update(SerialUnit).where(SerialUnit.serial == serial).values(status=status, **values))
        db.session.commit()


def invariants(app):
    with app.app_context():
        check_stock_invariants()


def test_placement_reserves_the_oldest_units_and_cancel_puts_them_back(api, app):
    shop(api)
    first = place(api, [("PHONE", 2)])
    second = place(api, [("PHONE", 1), ("MUG", 1)], email="bob@example.com")
    got = units(app)
    assert [s for s in PHONES if got[s][0] == "reserved"] == ["P-1", "P-2", "P-3"]
    assert got["P-1"][1] == got["P-2"][1] == first["lines"][0]["id"] and got["P-3"][1] == second["lines"][0]["id"]
    invariants(app)
    assert api.post(f"/orders/{first['id']}/cancel", {"reason": "changed mind"}).status_code == 200
    assert statuses(app) == {"P-1": "in_stock", "P-2": "in_stock", "P-3": "reserved", "P-4": "in_stock",
                             "P-5": "in_stock", "P-6": "in_stock"}
    invariants(app)
    third = place(api, [("PHONE", 1)], email="cy@example.com")
    assert units(app)["P-1"] == ("reserved", third["lines"][0]["id"])  # oldest free first again


def test_backorder_fill_reserves_the_received_units(api, app):
    product(api, "CAM", price=34900, track_serials=True, allow_backorder=True)
    order = place(api, [("CAM", 2)])
    assert order["lines"][0]["backordered"] == 2
    receive(api, "CAM", 3, serials=["C-1", "C-2", "C-3"])
    assert units(app) == {"C-1": ("reserved", order["lines"][0]["id"]), "C-2": ("reserved", order["lines"][0]["id"]),
                          "C-3": ("in_stock", None)}
    invariants(app)


def test_pick_a_reserved_unit_or_swap_a_free_one_then_ship(api, app):
    shop(api)
    order = paid(api, [("PHONE", 2)])  # P-1 and P-2 reserved
    resp = api.post(f"/orders/{order['id']}/pick", {"scans": ["P-5", "P-1"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "picked" and resp.get_json()["lines"][0]["serials"] == ["P-5", "P-1"]
    got = statuses(app)
    assert (got["P-1"], got["P-2"], got["P-5"]) == ("picked", "in_stock", "picked")  # P-2 made way for P-5
    invariants(app)
    history = api.get("/serials/P-2").get_json()["history"]
    assert [e["kind"] for e in history] == ["received", "reserved", "released"]
    assert "P-5 was picked instead" in history[-1]["reference"]


def test_a_serials_history_from_receipt_to_return(api, app):
    shop(api)
    order = paid(api, [("PHONE", 1)])
    number = order["number"]
    for action, body in (("pick", {"scans": ["P-1"]}), ("confirm", {}), ("pack", {"scans": ["P-1"]}),
                         ("ship", {"carrier": "generic", "service": "standard"})):
        resp = api.post(f"/orders/{order['id']}/{action}", body)
        assert resp.status_code == 200, (action, resp.get_json())
    unit = api.get("/serials/P-1").get_json()
    assert (unit["sku"], unit["status"], unit["order_number"], unit["location"]) == ("PHONE", "shipped", number, "MAIN")
    resp = api.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}],
                                                       "reason": "broken", "resolution": "refund"})
    assert resp.status_code == 201, resp.get_json()
    assert api.get("/serials/P-1").get_json()["status"] == "returned"
    assert api.post(f"/returns/{resp.get_json()['id']}/receive", {}).status_code == 200
    unit = api.get("/serials/P-1").get_json()
    assert unit["status"] == "in_stock" and unit["order_number"] is None
    assert [(e["kind"], e["status"]) for e in unit["history"]] == [
        ("received", "in_stock"), ("reserved", "reserved"), ("picked", "picked"), ("shipped", "shipped"),
        ("returned", "returned"), ("restocked", "in_stock")]
    assert all(e["order_number"] == number for e in unit["history"][1:])
    invariants(app)


def _pick_errors(api, order_id, scans):
    resp = api.post(f"/orders/{order_id}/pick", {"scans": scans})
    assert resp.status_code == 422, resp.get_json()
    body = resp.get_json()
    assert body["code"] == "validation_error"
    return body["errors"]["scans"]


def test_every_pick_error_is_specific_names_the_scan_and_changes_nothing(api, app):
    shop(api)
    product(api, "BOOK", price=900)
    receive(api, "CAM", 1, serials=["CAM-1"])
    receive(api, "PHONE", 1, location="SHELF-B", serials=["P-B"])
    other = paid(api, [("PHONE", 2)], email="other@example.com")  # reserves P-1, P-2
    order = paid(api, [("PHONE", 2), ("MUG", 1)])  # reserves P-3, P-4
    assert api.post(f"/orders/{other['id']}/pick", {"scans": ["P-1"]}).status_code == 200
    set_status(app, "P-5", "quarantined")
    set_status(app, "P-6", "scrapped")
    before = (units(app), api.get(f"/orders/{order['id']}").get_json())
    scans = ["CAM-1", "BOOK", "P-1", "P-2", "P-B", "P-5", "P-6", "NOPE-42", "MUG", "MUG", "PHONE", "P-3", "P-3",
             "P-4", "MAIN"]
    errors = _pick_errors(api, order["id"], scans)
    codes = {int(i): entry[1] for i, entry in errors.items()}
    assert codes == {0: "wrong_product", 1: "wrong_product", 2: "serial_picked", 3: "reserved_for_other_order",
                     4: "wrong_location", 5: "serial_quarantined", 6: "serial_scrapped", 7: "unknown_code",
                     9: "over_scan", 10: "serial_required", 12: "scanned_twice", 14: "not_a_unit"}
    assert all(entry[0].startswith(scans[int(i)] + ":") for i, entry in errors.items())
    assert f"order {other['number']}" in errors["2"][0] and f"order {other['number']}" in errors["3"][0]
    assert "SHELF-B" in errors["4"][0] and "sends you to MAIN" in errors["4"][0]
    assert "CAM" in errors["0"][0] and f"not on order {order['number']}" in errors["0"][0]
    assert (units(app), api.get(f"/orders/{order['id']}").get_json()) == before
    set_status(app, "P-6", "in_stock")  # (scrapped by hand above, without the ledger's write-off)
    # an over-scan of serials: a third PHONE unit for a line of two
    errors = _pick_errors(api, order["id"], ["P-3", "P-4", "P-2"])
    assert errors["2"][1] == "reserved_for_other_order"
    receive(api, "PHONE", 1, serials=["P-7"])
    errors = _pick_errors(api, order["id"], ["P-3", "P-4", "P-7"])
    assert list(errors) == ["2"] and errors["2"][1] == "over_scan"
    # shipped: the other order goes out, then its unit is scanned here
    for action, body in (("pick", {"scans": ["P-2"]}), ("confirm", {}), ("pack", {"scans": ["P-1", "P-2"]}),
                         ("ship", {"carrier": "generic", "service": "standard"})):
        assert api.post(f"/orders/{other['id']}/{action}", body).status_code == 200
    errors = _pick_errors(api, order["id"], ["P-1"])
    assert errors["0"][1] == "serial_shipped" and other["number"] in errors["0"][0]
    invariants(app)


def test_a_serial_already_picked_into_this_order_says_so(api, app):
    shop(api)
    order = paid(api, [("PHONE", 2)])
    assert api.post(f"/orders/{order['id']}/pick", {"scans": ["P-1"]}).status_code == 200
    errors = _pick_errors(api, order["id"], ["P-1"])
    assert errors["0"][1] == "serial_picked" and f"this order ({order['number']})" in errors["0"][0]


def test_pack_errors_are_specific(api, app):
    shop(api)
    other = paid(api, [("PHONE", 1)], email="other@example.com")
    order = paid(api, [("PHONE", 1), ("MUG", 1)])
    assert api.post(f"/orders/{other['id']}/pick", {"scans": ["P-1"]}).status_code == 200
    assert api.post(f"/orders/{order['id']}/pick", {"scans": ["P-2", "MUG"]}).status_code == 200
    assert api.post(f"/orders/{order['id']}/confirm").status_code == 200
    resp = api.post(f"/orders/{order['id']}/pack", {"scans": ["P-2", "P-2", "P-1", "P-3", "MUG", "MUG", "XX"]})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    codes = {i: entry[1] for i, entry in errors["scans"].items()}
    assert codes == {"1": "scanned_twice", "2": "serial_picked", "3": "not_picked", "5": "over_scan",
                     "6": "unknown_code"}
    assert other["number"] in errors["scans"]["2"][0]


def test_get_serial_unknown_ambiguous_and_listing(api, app):
    shop(api)
    receive(api, "CAM", 1, serials=["P-1"])  # two products share the serial string P-1
    assert api.get("/serials/NOPE").status_code == 404
    resp = api.get("/serials/P-1")
    assert resp.status_code == 409 and resp.get_json()["code"] == "serial_ambiguous"
    assert sorted(resp.get_json()["errors"]["sku"]) == ["CAM", "PHONE"]
    assert api.get("/serials/P-1?sku=CAM").get_json()["sku"] == "CAM"
    place(api, [("PHONE", 1)])
    page = api.get("/products/PHONE/serials?status=in_stock&limit=3").get_json()
    assert [u["serial"] for u in page["items"]] == ["P-2", "P-3", "P-4"]
    rest = api.get(f"/products/PHONE/serials?status=in_stock&limit=3&cursor={page['next_cursor']}").get_json()
    assert [u["serial"] for u in rest["items"]] == ["P-5", "P-6"] and rest["next_cursor"] is None
    assert api.get("/products/PHONE/serials?status=lost").status_code == 422
    assert api.get("/products/NOPE/serials").status_code == 404



def test_only_tracked_lines_cost_statements_at_placement(api, app):
    from test_statement_count import counting

    shop(api)
    with counting(app) as untracked:
        place(api, [("MUG", 2)])
    with counting(app) as tracked:
        place(api, [("MUG", 2), ("PHONE", 2)])
    assert not [s for s in untracked if "serial_" in s]
    serial_statements = [s for s in tracked if "serial_" in s]
    assert len(serial_statements) == 2, serial_statements
    assert serial_statements[0].startswith("UPDATE serial_units SET status=")
    assert serial_statements[1].startswith("INSERT INTO serial_events")


def test_transfers_adjustments_and_damaged_returns_are_in_a_units_history(api, app):
    product(api, "CAM", price=34900, track_serials=True)
    receive(api, "CAM", 2, serials=["C-1", "C-2"])
    assert api.post("/locations", {"path": "MAIN/B-1"}).status_code == 201
    moved = api.post("/stock/transfers", {"sku": "CAM", "serials": ["C-1"], "from": "MAIN", "to": "MAIN/B-1"})
    assert moved.status_code == 201, moved.get_json()
    for reason, serial in (("damage", "C-2"), ("found", "C-2")):
        resp = api.post("/stock/adjustments", {"sku": "CAM", "serials": [serial], "reason": reason,
                                               "staff": "ann@shop.example"})
        assert resp.status_code == 201, resp.get_json()
    one = api.get("/serials/C-1").get_json()
    assert (one["location"], [(e["kind"], e["status"]) for e in one["history"]]) == (
        "MAIN/B-1", [("received", "in_stock"), ("transferred", "in_stock")])
    assert one["history"][-1]["reference"].startswith(f"transfer {moved.get_json()['id']}")
    two = api.get("/serials/C-2").get_json()
    assert [(e["kind"], e["status"]) for e in two["history"]] == [
        ("received", "in_stock"), ("scrapped", "scrapped"), ("adjusted", "in_stock")]
    assert "damage, ann@shop.example" in two["history"][1]["reference"]
    check_stock_invariants_in(app)


def check_stock_invariants_in(app):
    with app.app_context():
        check_stock_invariants()
        db.session.rollback()
