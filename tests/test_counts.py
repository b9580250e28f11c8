"""Cycle counts: open (snapshot), scan, review, post as count_correction adjustments, cancel."""

from __future__ import annotations

from conftest import place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select

from engine.db import db
from engine.models import SerialUnit, StockCount, StockCountLine, StockMovement

STAFF = "cy@shop.example"


def open_count(api, expect=201, **body):
    resp = api.post("/stock/counts", {"location": "MAIN", "staff": STAFF, **body})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def scan(api, count_id, expect=200, **body):
    resp = api.post(f"/stock/counts/{count_id}/scans", body)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def post(api, count_id, expect=200, action="post"):
    resp = api.post(f"/stock/counts/{count_id}/{action}", {"staff": STAFF})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def lines(body):
    return {ln["sku"]: ln for ln in body["lines"]}


def shop_state(app):
    with app.app_context():
        state = (db.session.execute(select(func.count(StockMovement.id))).scalar(),
                 sorted(db.session.execute(select(StockCountLine.product_id, StockCountLine.counted)).all()),
                 sorted(db.session.execute(select(StockCount.id, StockCount.status)).all()),
                 sorted(db.session.execute(select(SerialUnit.serial, SerialUnit.status)).all()))
        db.session.rollback()
    return state


def stocked(api):
    product(api, "MUG", barcode="4006381333948")
    product(api, "CAP")
    product(api, "PHONE", track_serials=True)
    receive(api, "MUG", 5)
    receive(api, "CAP", 3)
    receive(api, "PHONE", 3, serials=["P1", "P2", "P3"])


def test_a_count_with_differences_is_posted_as_count_corrections(app, api):
    stocked(api)
    count = open_count(api)
    assert {sku: ln["expected"] for sku, ln in lines(count).items()} == {"MUG": 5, "CAP": 3, "PHONE": 3}
    assert lines(count)["PHONE"]["missing"] == ["P1", "P2", "P3"]
    body = scan(api, count["id"], scans=["4006381333948", "MUG", "MUG", "P1", "P2"])
    body = scan(api, count["id"], scans=["MUG"], lines=[{"sku": "CAP", "counted": 4}])  # scans accumulate
    got = lines(body)
    assert (got["MUG"]["counted"], got["MUG"]["difference"]) == (4, -1)
    assert (got["CAP"]["counted"], got["CAP"]["difference"]) == (4, 1)
    assert (got["PHONE"]["counted"], got["PHONE"]["missing"], got["PHONE"]["unexpected"]) == (2, ["P3"], [])
    assert body["differences"] == 3 and body["status"] == "open"
    posted = post(api, count["id"])
    assert posted["status"] == "posted" and posted["closed_by"] == STAFF and posted["allowed_actions"] == []
    assert {sku: ln["posted_difference"] for sku, ln in lines(posted).items()} == {"MUG": -1, "CAP": 1, "PHONE": -1}
    assert [stock_of(api, s)["on_hand"] for s in ("MUG", "CAP", "PHONE")] == [4, 4, 2]
    with app.app_context():
        rows = db.session.execute(select(StockMovement.quantity, StockMovement.reason, StockMovement.staff,
                                         StockMovement.reference).where(StockMovement.kind == "adjustment")
                                  .order_by(StockMovement.id)).all()
        assert {tuple(r) for r in rows} == {(-1, "count_correction", STAFF, f"count {count['id']}"),
                                            (1, "count_correction", STAFF, f"count {count['id']}")}
        assert len(rows) == 3
        assert db.session.execute(select(SerialUnit.status).where(SerialUnit.serial == "P3")).scalar() == "scrapped"
        check_stock_invariants()
    assert api.get("/stock/reconciliation").get_json()["ok"] is True


def test_stock_moving_during_the_count_is_no_difference(app, api):
    """A shipment and a receipt after opening: expected follows the ledger, posting compares with on hand then."""
    stocked(api)
    count = open_count(api, skus=["MUG", "PHONE"])
    order = place(api, [("MUG", 2)])
    oid = order["id"]
    for action, body in (("pay", {}), ("pick", {"scans": ["MUG", "MUG"]}), ("confirm", {}),
                         ("pack", {"scans": ["MUG", "MUG"]}), ("ship", {"carrier": "generic", "service": "standard"})):
        assert api.post(f"/orders/{oid}/{action}", body).status_code == 200, action
    receive(api, "PHONE", 1, serials=["P4"])
    body = scan(api, count["id"], scans=["MUG", "MUG", "MUG", "P1", "P2", "P3", "P4"])
    got = lines(body)
    assert (got["MUG"]["expected_at_open"], got["MUG"]["moved_since_open"], got["MUG"]["expected"]) == (5, -2, 3)
    assert got["MUG"]["difference"] == 0 and got["PHONE"]["difference"] == 0
    assert got["PHONE"]["unexpected"] == ["P4"]  # received after the count opened
    assert [m["kind"] for m in body["movements_since_open"]] == ["shipment", "receipt"]
    assert "CAP" not in got
    posted = post(api, count["id"])
    assert {ln["posted_difference"] for ln in posted["lines"]} == {0}
    assert stock_of(api, "MUG")["on_hand"] == 3 and stock_of(api, "PHONE")["on_hand"] == 4


def test_a_product_found_in_a_location_counted_whole_joins_the_count(app, api):
    stocked(api)
    product(api, "HAT")
    count = open_count(api)
    body = scan(api, count["id"], scans=["HAT"])
    assert lines(body)["HAT"] == {**lines(body)["HAT"], "expected": 0, "counted": 1, "difference": 1}
    post(api, count["id"])
    assert stock_of(api, "HAT")["on_hand"] == 1


def test_a_scrapped_serial_counted_comes_back(app, api):
    stocked(api)
    assert api.post("/stock/adjustments", {"sku": "PHONE", "serials": ["P2"], "reason": "loss",
                                           "staff": STAFF}).status_code == 201
    count = open_count(api, skus=["PHONE"])
    body = scan(api, count["id"], scans=["P1", "P2", "P3"])
    assert lines(body)["PHONE"]["unexpected"] == ["P2"] and lines(body)["PHONE"]["difference"] == 1
    post(api, count["id"])
    assert stock_of(api, "PHONE")["on_hand"] == 3


def test_bad_scans_record_nothing(app, api):
    stocked(api)
    count = open_count(api, skus=["MUG", "PHONE"])
    scan(api, count["id"], scans=["P1"])
    before = shop_state(app)
    body = scan(api, count["id"], 422, scans=["MUG", "NOPE", "PHONE", "P1", "CAP", "P2", "P2"])
    assert set(body["errors"]["scans"]) == {"1", "2", "3", "4", "6"}
    assert "not a serial, barcode or sku" in body["errors"]["scans"]["1"][0]
    assert "serial-tracked" in body["errors"]["scans"]["2"][0]
    assert "already counted" in body["errors"]["scans"]["3"][0]
    assert "not part of count" in body["errors"]["scans"]["4"][0]
    body = scan(api, count["id"], 422, lines=[{"sku": "PHONE", "counted": 1}, {"sku": "ZZZ", "counted": 1},
                                              {"sku": "MUG", "counted": 1}, {"sku": "MUG", "counted": 2}])
    assert set(body["errors"]["lines"]) == {"0", "1", "2", "3"}
    assert scan(api, count["id"], 422)["errors"]
    assert scan(api, count["id"], 422, lines=[{"sku": "MUG", "counted": -1}])["code"] == "validation_error"
    assert shop_state(app) == before


def test_count_errors_are_clear_and_change_nothing(app, api):
    stocked(api)
    assert open_count(api, 422, location="NOWHERE")["errors"]["location"]
    assert open_count(api, 422, skus=["MUG", "NOPE"])["errors"]["skus"] == ["unknown: NOPE"]
    assert "staff" in open_count(api, 422, staff="")["errors"]
    count = open_count(api)
    before = shop_state(app)
    again = open_count(api, 409)
    assert again["code"] == "count_open" and f"count {count['id']}" in again["message"]
    assert api.get("/stock/counts/999").status_code == 404
    assert api.post("/stock/counts/999/scans", {"scans": ["MUG"]}).status_code == 404
    assert api.post(f"/stock/counts/{count['id']}/post", {}).status_code == 422  # staff required
    assert shop_state(app) == before
    cancelled = post(api, count["id"], action="cancel")
    assert cancelled["status"] == "cancelled"
    before = shop_state(app)
    for action in ("post", "cancel"):
        body = post(api, count["id"], 409, action=action)
        assert body["code"] == "illegal_transition" and "cancelled" in body["message"]
    assert scan(api, count["id"], 409, scans=["MUG"])["code"] == "illegal_transition"
    assert shop_state(app) == before
    assert open_count(api)["status"] == "open"  # the location may be counted again


def test_posting_below_reserved_is_refused_and_posts_nothing(app, api):
    stocked(api)
    place(api, [("MUG", 4)])
    count = open_count(api)
    scan(api, count["id"], lines=[{"sku": "MUG", "counted": 2}, {"sku": "CAP", "counted": 1}])
    before = shop_state(app)
    body = post(api, count["id"], 409)
    assert body["code"] == "below_reserved" and "MUG" in body["message"]
    assert shop_state(app) == before
    assert api.get(f"/stock/counts/{count['id']}").get_json()["status"] == "open"


def test_a_serial_count_is_held_against_reserved_by_its_net_change(app, api):
    """A free unit gone and a scrapped unit found again post as one net change; a unit held for an order
    (serials are reserved with their lines, oldest first) that is not scanned refuses the post."""
    stocked(api)
    assert api.post("/stock/adjustments", {"sku": "PHONE", "serials": ["P3"], "reason": "damage",
                                           "staff": STAFF}).status_code == 201
    receive(api, "PHONE", 1, serials=["P4"])
    place(api, [("PHONE", 2)])  # holds P1 and P2
    count = open_count(api, skus=["PHONE"])
    body = scan(api, count["id"], scans=["P2", "P3"])
    assert lines(body)["PHONE"]["missing"] == ["P1", "P4"] and lines(body)["PHONE"]["unexpected"] == ["P3"]
    before = shop_state(app)
    refused = post(api, count["id"], 409)
    assert refused["code"] == "serial_not_in_stock" and "P1" in refused["message"]
    assert shop_state(app) == before
    body = scan(api, count["id"], scans=["P1"])
    assert lines(body)["PHONE"]["missing"] == ["P4"]
    posted = post(api, count["id"])
    assert lines(posted)["PHONE"]["posted_difference"] == 0
    assert (stock_of(api, "PHONE")["on_hand"], stock_of(api, "PHONE")["reserved"]) == (3, 2)
