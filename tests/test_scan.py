"""GET /scan/{code}: a serial, a product by sku or barcode (a UPC-A read as EAN-13 too), a location, an
order number; an ambiguous code answers every match; an unknown one is a 404 saying so."""

from __future__ import annotations

from conftest import place, product, receive


def shop(api):
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "MUG", price=1290, barcode="4006381333948")
    product(api, "CAP", price=1500, barcode="036000291452")  # a UPC-A
    receive(api, "PHONE", 2, serials=["SN-1", "SN-2"], location="MAIN/A-01-3")
    receive(api, "MUG", 5)


def scan(api, code, status=200):
    resp = api.get(f"/scan/{code}")
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def test_scan_resolves_every_kind(api, app):
    shop(api)
    order = place(api, [("MUG", 1)])
    serial = scan(api, "SN-1")
    assert (serial["kind"], serial["sku"], serial["status"], serial["location"]) == ("serial", "PHONE", "in_stock",
                                                                                     "MAIN/A-01-3")
    assert serial["url"] == "/api/v1/serials/SN-1?sku=PHONE" and not serial["ambiguous"]
    assert api.get(serial["url"].removeprefix("/api/v1")).status_code == 200
    assert (scan(api, "MUG")["kind"], scan(api, "MUG")["sku"]) == ("product", "MUG")
    by_barcode = scan(api, "4006381333948")
    assert by_barcode["sku"] == "MUG" and "barcode" in by_barcode["summary"]
    assert scan(api, "0036000291452")["sku"] == "CAP"  # the UPC-A as a scanner reads it in EAN-13 mode
    location = scan(api, "MAIN")
    assert (location["kind"], location["location"]) == ("location", "MAIN")
    assert scan(api, "MAIN/A-01-3")["location"] == "MAIN/A-01-3"  # a bin path, slash and all
    found = scan(api, order["number"])
    assert (found["kind"], found["id"], found["url"]) == ("order", order["id"], f"/api/v1/orders/{order['id']}")


def test_an_ambiguous_code_answers_every_match(api, app):
    shop(api)
    product(api, "SN-2", price=100)  # a product whose sku is another product's serial
    body = scan(api, "SN-2")
    assert body["ambiguous"] and [m["kind"] for m in body["matches"]] == ["serial", "product"]
    assert all(m["code"] == "SN-2" for m in body["matches"])


def test_an_unknown_code_is_a_404_saying_what_was_tried(api, app):
    shop(api)
    body = scan(api, "NOTHING-HERE", 404)
    assert body["code"] == "unknown_code" and "NOTHING-HERE" in body["message"] and "serial" in body["message"]
    assert scan(api, "999999", 404)["code"] == "unknown_code"  # no such order number


def test_a_purchase_order_number_is_resolved_in_any_case(api, app):
    shop(api)
    acme = api.post("/suppliers", {"name": "Acme"}).get_json()
    po = api.post("/purchase-orders", {"supplier_id": acme["id"], "lines": [{"sku": "MUG", "quantity": 10}]})
    assert po.status_code == 201, po.get_json()
    po = po.get_json()
    found = scan(api, po["number"])
    assert (found["kind"], found["id"], found["status"]) == ("purchase_order", po["id"], "draft")
    assert found["url"] == f"/api/v1/purchase-orders/{po['id']}" and "Acme" in found["summary"]
    assert api.get(found["url"].removeprefix("/api/v1")).status_code == 200
    assert scan(api, po["number"].lower())["id"] == po["id"]  # a scanner in lower-case mode
    assert scan(api, "PO-999999", 404)["code"] == "unknown_code"
