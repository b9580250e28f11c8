"""One order through all six stages over the REST API."""

from conftest import order_body, place, product, receive, stock_of
from invariants import check_stock_invariants


def test_order_through_every_stage(api, app):
    product(api, "MUG", price=1290, barcode="4006381333948")
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 10)
    receive(api, "PHONE", 2, serials=["P-1", "P-2"])

    order = place(api, [("MUG", 2), ("PHONE", 1)])
    assert order["status"] == "placed"
    assert order["totals"]["total"] == 2 * 1290 + 59900
    assert stock_of(api, "MUG")["reserved"] == 2

    oid = order["id"]
    assert api.post(f"/orders/{oid}/pay").get_json()["status"] == "paid"
    r = api.post(f"/orders/{oid}/pick", {"scans": ["4006381333948"]})
    assert r.status_code == 200 and r.get_json()["status"] == "picking"
    r = api.post(f"/orders/{oid}/pick", {"scans": ["MUG", "P-2"]})
    assert r.get_json()["status"] == "picked"
    assert r.get_json()["lines"][1]["serials"] == ["P-2"]
    assert api.post(f"/orders/{oid}/confirm").get_json()["status"] == "confirmed"
    r = api.post(f"/orders/{oid}/pack", {"scans": ["P-2", "MUG", "4006381333948"]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "packed"
    r = api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"})
    body = r.get_json()
    assert body["status"] == "shipped"
    assert body["shipments"][0]["tracking_number"] and body["shipments"][0]["estimated_delivery"]
    assert stock_of(api, "MUG") == {"sku": "MUG", "on_hand": 8, "reserved": 0, "available": 8,
                                    "locations": [{"location": "MAIN", "on_hand": 8, "reserved": 0, "available": 8}]}
    r = api.post(f"/orders/{oid}/deliver")
    assert r.get_json()["status"] == "completed"
    kinds = [e["kind"] for e in r.get_json()["events"]]
    assert kinds == ["order_placed", "order_paid", "picking", "order_picked", "order_confirmed", "order_packed",
                     "order_shipped", "order_delivered", "order_completed"]
    with app.app_context():
        check_stock_invariants()


def test_bad_input_changes_nothing(api, app):
    product(api, "MUG")
    receive(api, "MUG", 3)
    r = api.post("/orders", order_body([("MUG", 1), ("NOPE", 1)]))
    assert r.status_code == 422
    assert r.get_json()["errors"] == {"lines": {"1": {"sku": ["unknown sku 'NOPE'"]}}}
    assert stock_of(api, "MUG")["reserved"] == 0
    assert api.get("/orders").get_json()["items"] == []


def test_orders_list_pages_newest_first_with_a_cursor_and_filters(api):
    product(api, "MUG")
    receive(api, "MUG", 10)
    ids = [place(api, [("MUG", 1)], email=f"c{i % 2}@example.com", gift=i % 2 == 0)["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = api.get("/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen.append([o["id"] for o in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    gifts = api.get("/orders?limit=2&flag=gift").get_json()
    assert [o["id"] for o in gifts["items"]] == [ids[4], ids[2]]
    rest = api.get(f"/orders?limit=2&flag=gift&cursor={gifts['next_cursor']}").get_json()
    assert [o["id"] for o in rest["items"]] == [ids[0]]
