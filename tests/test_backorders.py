"""Units freed by a cancel or a return go to orders waiting on a backorder."""

from conftest import place, product, receive, stock_of
from invariants import check_stock_invariants


def _ship(api, order):
    oid = order["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    scans = [line["sku"] for line in order["lines"] for _ in range(line["quantity"])]
    assert api.post(f"/orders/{oid}/pick", {"scans": scans}).get_json()["status"] == "picked"
    assert api.post(f"/orders/{oid}/confirm").status_code == 200
    assert api.post(f"/orders/{oid}/pack", {"scans": scans}).status_code == 200
    assert api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"}).status_code == 200


def test_cancelled_units_release_a_backordered_order(api, app):
    product(api, "POSTER", allow_backorder=True)
    receive(api, "POSTER", 2)
    first = place(api, [("POSTER", 2)])
    waiting = place(api, [("POSTER", 1)], email="bob@example.com")
    assert waiting["status"] == "on_hold" and waiting["lines"][0]["backordered"] == 1

    api.post(f"/orders/{first['id']}/cancel", {"reason": "changed mind"})
    released = api.get(f"/orders/{waiting['id']}").get_json()
    assert released["status"] == "placed" and released["lines"][0]["backordered"] == 0
    assert "order_released" in [e["kind"] for e in released["events"]]
    assert stock_of(api, "POSTER")["reserved"] == 1
    with app.app_context():
        check_stock_invariants()


def test_returned_units_release_a_backordered_order(api, app):
    product(api, "POSTER", allow_backorder=True)
    receive(api, "POSTER", 1)
    shipped = place(api, [("POSTER", 1)])
    _ship(api, shipped)
    waiting = place(api, [("POSTER", 1)], email="bob@example.com")
    assert waiting["status"] == "on_hold"

    ret = api.post(f"/orders/{shipped['id']}/returns",
                   {"lines": [{"sku": "POSTER", "quantity": 1}], "reason": "torn", "resolution": "refund"})
    assert ret.status_code == 201
    assert api.post(f"/returns/{ret.get_json()['id']}/receive", {}).status_code == 200
    assert api.get(f"/orders/{waiting['id']}").get_json()["status"] == "placed"
    assert stock_of(api, "POSTER") == {"sku": "POSTER", "on_hand": 1, "reserved": 1, "available": 0,
                                       "locations": [{"location": "MAIN", "on_hand": 1, "reserved": 1,
                                                      "available": 0}]}
    with app.app_context():
        check_stock_invariants()
