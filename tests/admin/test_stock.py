"""The stock screens, server side, on both databases: receiving, transfers, adjustments and reorder rules made
through the admin's forms change stock exactly as the REST API would (checked with ``GET /stock/{sku}``);
refused changes show their error with a 4xx and change nothing; accounting may look, not change."""

from __future__ import annotations

import re

from conftest import place, product, receive, stock_of
from sqlalchemy import func, select

from engine.db import db
from engine.models import SerialUnit, StockMovement

HX = {"HX-Request": "true"}


def _movements(app) -> int:
    with app.app_context():
        count = db.session.execute(select(func.count()).select_from(StockMovement)).scalar_one()
        db.session.remove()
    return count


def _level(body, location):
    return next((lv for lv in body["locations"] if lv["location"] == location), None)


def _page(resp) -> str:
    return resp.get_data(as_text=True)


def test_receive_transfer_and_adjust_through_the_forms(app, api, staff_client):
    product(api, "MUG", reorder_point=2)
    client = staff_client("warehouse")
    resp = client.post("/admin/stock/receive", {"sku": "MUG", "quantity": "5", "location": "MAIN",
                                                "reference": "delivery 7"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/stock/MUG")
    assert stock_of(api, "MUG")["on_hand"] == 5
    assert "Received 5 of MUG" in _page(client.get("/admin/stock/MUG"))

    assert client.post("/admin/locations", {"path": "MAIN/A-01", "name": "Aisle A"}).status_code == 303
    resp = client.post("/admin/stock/transfer", {"sku": "MUG", "from": "MAIN", "to": "MAIN/A-01", "quantity": "2"})
    assert resp.status_code == 303
    body = stock_of(api, "MUG")
    assert body["on_hand"] == 5 and _level(body, "MAIN")["on_hand"] == 3 and _level(body, "MAIN/A-01")["on_hand"] == 2

    resp = client.post("/admin/stock/adjust", {"sku": "MUG", "reason": "damage", "location": "MAIN/A-01",
                                               "quantity": "-1", "note": "dropped"})
    assert resp.status_code == 303
    body = stock_of(api, "MUG")
    assert body["on_hand"] == 4 and _level(body, "MAIN/A-01")["on_hand"] == 1
    with app.app_context():
        move = db.session.execute(select(StockMovement).order_by(StockMovement.id.desc())).scalars().first()
        assert (move.kind, move.reason, move.staff, move.note) == ("adjustment", "damage", client.email, "dropped")
    page = _page(client.get("/admin/stock/MUG"))
    assert "MAIN/A-01" in page and "dropped" in page and client.email in page
    # the location screens show it too
    assert 'data-location="MAIN/A-01"' in _page(client.get("/admin/locations"))
    assert "MUG" in _page(client.get("/admin/locations/MAIN/A-01"))


def test_serials_are_scanned_one_by_one_then_received(app, api, staff_client):
    product(api, "CAM", track_serials=True)
    receive(api, "CAM", 1, serials=["C-OLD"])
    client = staff_client("warehouse")
    resp = client.post("/admin/stock/serial-scan", {"sku": "CAM", "code": "C-1", "serials-0": ""}, headers=HX)
    assert resp.status_code == 200
    assert 'scan-feedback ok' in _page(resp) and re.search(r"<textarea[^>]*>C-1</textarea>", _page(resp))
    resp = client.post("/admin/stock/serial-scan", {"sku": "CAM", "code": "C-2", "serials-0": "C-1"}, headers=HX)
    assert resp.status_code == 200 and "C-1\nC-2</textarea>" in _page(resp)
    again = client.post("/admin/stock/serial-scan", {"sku": "CAM", "code": "C-1", "serials-0": "C-1\nC-2"}, headers=HX)
    assert again.status_code == 409 and "scan-feedback error" in _page(again) and "textarea" not in _page(again)
    known = client.post("/admin/stock/serial-scan", {"sku": "CAM", "code": "C-OLD", "serials-0": ""}, headers=HX)
    assert known.status_code == 409 and "already known" in _page(known)
    assert stock_of(api, "CAM")["on_hand"] == 1  # scanning stores nothing

    resp = client.post("/admin/stock/receive", {"sku": "CAM", "serials-0": "C-1\nC-2\n", "location": "MAIN"})
    assert resp.status_code == 303
    assert stock_of(api, "CAM")["on_hand"] == 3
    page = _page(client.get("/admin/stock/CAM"))
    assert 'data-serial="C-1"' in page and 'data-serial="C-2"' in page and "In stock" in page
    assert "/admin/labels/products.pdf?sku=CAM" in page
    pdf = client.get("/admin/labels/products.pdf?sku=CAM&serials=in_stock")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.get_data().startswith(b"%PDF")


def test_refused_changes_are_shown_and_change_nothing(app, api, staff_client):
    product(api, "MUG")
    product(api, "CAM", track_serials=True)
    receive(api, "MUG", 5)
    receive(api, "CAM", 1, serials=["C-1"])
    place(api, [("MUG", 3)])
    client = staff_client("warehouse")
    before, mug, cam = _movements(app), stock_of(api, "MUG"), stock_of(api, "CAM")
    refused = [
        ("/admin/stock/transfer", {"sku": "MUG", "from": "MAIN", "to": "MAIN/NOWHERE", "quantity": "1"}, 422,
         "unknown location"),
        ("/admin/stock/adjust", {"sku": "MUG", "reason": "loss", "location": "MAIN", "quantity": "-3"}, 409,
         "only 2 of MUG available"),
        ("/admin/stock/adjust", {"sku": "MUG", "reason": "found", "location": "MAIN", "quantity": "-1"}, 422,
         "found adds units"),
        ("/admin/stock/receive", {"sku": "CAM", "serials-0": "C-1", "location": "MAIN"}, 409, "already known"),
        ("/admin/stock/receive", {"sku": "MUG", "quantity": "lots", "location": "MAIN"}, 422, "whole number"),
        ("/admin/stock/receive", {"sku": "MUG", "quantity": "0", "location": "MAIN"}, 422, "quantity"),
        ("/admin/stock/receive", {"sku": "NOPE", "quantity": "1"}, 422, "unknown sku"),
        ("/admin/stock/adjust", {"sku": "CAM", "reason": "damage", "serials": "C-404"}, 422, "unknown serials"),
    ]
    client.post("/admin/locations", {"path": "MAIN/B-01"})
    before = _movements(app)
    refused.append(("/admin/stock/transfer", {"sku": "MUG", "from": "MAIN", "to": "MAIN/B-01", "quantity": "3"}, 409,
                    "only 2 of MUG available at MAIN"))
    for path, form, status, words in refused:
        resp = client.post(path, form)
        page = _page(resp)
        assert resp.status_code == status, (path, form, resp.status_code)
        assert 'class="flash error"' in page and words in page, (path, words)
    assert _movements(app) == before
    assert stock_of(api, "MUG") == mug and stock_of(api, "CAM") == cam


def test_reorder_rules_are_set_through_the_service(app, api, staff_client):
    product(api, "MUG")
    receive(api, "MUG", 2)
    client = staff_client("warehouse")
    resp = client.post("/admin/stock/rules", {"sku": "MUG", "location": ["", "MAIN", ""],
                                              "reorder_point": ["3", "1", ""], "reorder_quantity": ["10", "", ""],
                                              "max_level": ["", "5", ""], "supplier_id": ["", "", ""],
                                              "lead_time_days": ["4", "", ""]})
    assert resp.status_code == 303
    rules = api.get("/products/MUG/reorder-rules").get_json()["rules"]
    assert [(r["location"], r["reorder_point"], r["reorder_quantity"], r["max_level"], r["lead_time_days"])
            for r in rules] == [(None, 3, 10, None, 4), ("MAIN", 1, 0, 5, None)]
    # 2 available, reorder at 3: the list and the page mark it low
    assert re.search(r'data-sku="MUG">.*?Low stock', _page(client.get("/admin/stock")), re.S)
    assert "Low stock" in _page(client.get("/admin/stock/MUG"))
    bad = client.post("/admin/stock/rules", {"sku": "MUG", "location": [""], "reorder_point": ["3"],
                                             "reorder_quantity": ["10"], "max_level": ["20"], "supplier_id": [""],
                                             "lead_time_days": [""]})
    assert bad.status_code == 422 and "not both" in _page(bad)
    assert api.get("/products/MUG/reorder-rules").get_json()["rules"] == rules
    # removing a rule
    resp = client.post("/admin/stock/rules", {"sku": "MUG", "location": ["", "MAIN"], "reorder_point": ["3", "1"],
                                              "reorder_quantity": ["10", ""], "max_level": ["", "5"],
                                              "supplier_id": ["", ""], "lead_time_days": ["4", ""], "remove": ["1"]})
    assert resp.status_code == 303
    assert [r["location"] for r in api.get("/products/MUG/reorder-rules").get_json()["rules"]] == [None]


def test_the_list_searches_and_pages(app, api, staff_client, monkeypatch):
    from engine.admin import stock as screen

    product(api, "MUG-RED", barcode="4006381333931")
    product(api, "MUG-BLUE")
    product(api, "CAP")
    receive(api, "MUG-RED", 4)
    client = staff_client("accounting")
    page = _page(client.get("/admin/stock?q=mug"))
    assert 'data-sku="MUG-RED"' in page and 'data-sku="MUG-BLUE"' in page and 'data-sku="CAP"' not in page
    assert 'data-sku="MUG-RED"' in _page(client.get("/admin/stock?q=4006381333931"))
    monkeypatch.setattr(screen, "PAGE", 2)
    first = _page(client.get("/admin/stock"))
    assert first.count("data-sku=") == 2
    cursor = re.search(r'cursor=(\d+)" rel="next"', first).group(1)
    second = _page(client.get(f"/admin/stock?cursor={cursor}"))
    assert second.count("data-sku=") == 1 and 'data-sku="MUG-RED"' in second


def test_counts_open_scan_review_and_post(app, api, staff_client):
    product(api, "MUG", barcode="4006381333931")
    product(api, "CAM", track_serials=True)
    receive(api, "MUG", 5)
    receive(api, "CAM", 2, serials=["C-1", "C-2"])
    client = staff_client("warehouse")
    resp = client.post("/admin/counts", {"location": "MAIN"})
    assert resp.status_code == 303
    count_url = resp.headers["Location"]
    count_id = int(count_url.rsplit("/", 1)[1])
    again = client.post("/admin/counts", {"location": "MAIN"})
    assert again.status_code == 409 and "is open" in _page(again)
    for code in ("4006381333931", "MUG", "4006381333931", "C-1"):
        resp = client.post(f"/admin/counts/{count_id}/scan", {"code": code}, headers=HX)
        assert resp.status_code == 200 and "scan-feedback ok" in _page(resp)
    bad = client.post(f"/admin/counts/{count_id}/scan", {"code": "WHAT-IS-THIS"}, headers=HX)
    assert bad.status_code == 422 and "not a serial, barcode or sku" in _page(bad)
    twice = client.post(f"/admin/counts/{count_id}/scan", {"code": "C-1"}, headers=HX)
    assert twice.status_code == 422 and "already counted" in _page(twice)
    review = api.get(f"/stock/counts/{count_id}").get_json()
    lines = {line["sku"]: line for line in review["lines"]}
    assert lines["MUG"]["counted"] == 3 and lines["CAM"]["missing"] == ["C-2"]
    page = _page(client.get(count_url))
    assert "C-2" in page and "Products that differ: 2" in page
    # a typed quantity replaces the tally of an untracked product
    assert client.post(f"/admin/counts/{count_id}/lines", {"sku": "MUG", "counted": "4"}).status_code == 303
    resp = client.post(f"/admin/counts/{count_id}/post", {})
    assert resp.status_code == 303
    assert stock_of(api, "MUG")["on_hand"] == 4 and stock_of(api, "CAM")["on_hand"] == 1
    with app.app_context():
        unit = db.session.execute(select(SerialUnit).where(SerialUnit.serial == "C-2")).scalar_one()
        assert unit.status == "scrapped"
    posted = _page(client.get(count_url))
    assert "Posted" in posted and "Post differences" not in posted
    before = _movements(app)
    late = client.post(f"/admin/counts/{count_id}/cancel", {})
    assert late.status_code == 409 and 'class="flash error"' in _page(late)
    assert _movements(app) == before


def test_a_count_post_below_reserved_is_refused(app, api, staff_client):
    product(api, "MUG")
    receive(api, "MUG", 3)
    place(api, [("MUG", 2)])
    client = staff_client("warehouse")
    count_id = int(client.post("/admin/counts", {"location": "MAIN"}).headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/admin/counts/{count_id}/lines", {"sku": "MUG", "counted": "1"}).status_code == 303
    before = _movements(app)
    resp = client.post(f"/admin/counts/{count_id}/post", {})
    assert resp.status_code == 409 and "release or ship the orders" in _page(resp)
    assert _movements(app) == before and stock_of(api, "MUG")["on_hand"] == 3
    assert client.post(f"/admin/counts/{count_id}/cancel", {}).status_code == 303
    assert api.get(f"/stock/counts/{count_id}").get_json()["status"] == "cancelled"


def _po_id(resp) -> int:
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def test_purchase_orders_are_drafted_ordered_and_received(app, api, staff_client):
    product(api, "MUG")
    product(api, "CAM", track_serials=True)
    client = staff_client("warehouse")
    assert client.post("/admin/suppliers", {"name": "Acme", "lead_time_days": "3", "currency": "eur"}).status_code == 303
    supplier = api.get("/suppliers").get_json()["items"][0]
    po_id = _po_id(client.post("/admin/purchase-orders", {
        "supplier_id": str(supplier["id"]), "sku-0": "MUG", "quantity-0": "5", "unit_cost-0": "250",
        "sku-1": "CAM", "quantity-1": "2", "unit_cost-1": "", "sku-2": "", "quantity-2": "", "notes": "spring"}))
    body = api.get(f"/purchase-orders/{po_id}").get_json()
    assert body["status"] == "draft" and [(ln["sku"], ln["quantity"]) for ln in body["lines"]] == [("MUG", 5), ("CAM", 2)]
    page = _page(client.get(f"/admin/purchase-orders/{po_id}"))
    assert 'value="order"' in page and 'value="cancel"' in page and 'value="close"' not in page
    assert "Receive goods" not in page and "Change the draft" in page
    # a draft's lines change (0 removes one)
    resp = client.post(f"/admin/purchase-orders/{po_id}/lines", {
        "supplier_id": str(supplier["id"]), "sku-0": "MUG", "quantity-0": "4", "sku-1": "CAM", "quantity-1": "2",
        "sku-2": "", "quantity-2": "", "notes": "spring"})
    assert resp.status_code == 303
    assert [ln["quantity"] for ln in api.get(f"/purchase-orders/{po_id}").get_json()["lines"]] == [4, 2]

    assert client.post(f"/admin/purchase-orders/{po_id}/action", {"action": "order"}).status_code == 303
    page = _page(client.get(f"/admin/purchase-orders/{po_id}"))
    assert "Receive goods" in page and "Change the draft" not in page and 'value="order"' not in page
    scan = client.post("/admin/stock/serial-scan", {"po": str(po_id), "line": "1", "code": "C-9", "serials-1": ""},
                       headers=HX)
    assert scan.status_code == 200 and 'id="serials-box-1"' in _page(scan) and "C-9</textarea>" in _page(scan)
    resp = client.post(f"/admin/purchase-orders/{po_id}/receive", {
        "quantity-0": "2", "damaged-0": "1", "serials-1": "C-9\nC-10", "damaged-1": "", "location": "MAIN",
        "reference": "DN-1"})
    assert resp.status_code == 303
    body = api.get(f"/purchase-orders/{po_id}").get_json()
    assert body["status"] == "partially_received"
    assert [(ln["received"], ln["damaged"], ln["short"]) for ln in body["lines"]] == [(2, 1, 1), (2, 0, 0)]
    assert stock_of(api, "MUG")["on_hand"] == 2 and stock_of(api, "CAM")["on_hand"] == 2

    # refused: cancelling after a receipt (the table), a serial received twice, nothing to receive
    before, po_before = _movements(app), api.get(f"/purchase-orders/{po_id}").get_json()
    for path, form, status, words in [
            (f"/admin/purchase-orders/{po_id}/action", {"action": "cancel"}, 409, "allowed next actions: receive, close"),
            (f"/admin/purchase-orders/{po_id}/action", {"action": "receive"}, 422, "Unknown action"),
            (f"/admin/purchase-orders/{po_id}/receive", {"serials-1": "C-9"}, 409, "already known"),
            (f"/admin/purchase-orders/{po_id}/receive", {"quantity-0": ""}, 422, "Nothing to receive"),
            (f"/admin/purchase-orders/{po_id}/receive", {"quantity-0": "1", "location": "MAIN/NOPE/X"}, 422,
             "does not exist")]:
        resp = client.post(path, form)
        assert resp.status_code == status, (form, resp.status_code)
        assert 'class="flash error"' in _page(resp) and words in _page(resp), words
    assert _movements(app) == before and api.get(f"/purchase-orders/{po_id}").get_json() == po_before

    assert client.post(f"/admin/purchase-orders/{po_id}/action", {"action": "close"}).status_code == 303
    assert api.get(f"/purchase-orders/{po_id}").get_json()["status"] == "closed"
    listing = _page(client.get("/admin/purchase-orders?status=closed"))
    assert f'data-po="{body["number"]}"' in listing
    assert f'data-po="{body["number"]}"' not in _page(client.get("/admin/purchase-orders?status=draft"))


def test_accounting_may_look_but_not_change(app, api, staff_client):
    product(api, "MUG")
    receive(api, "MUG", 2)
    owner = staff_client("owner")
    po_id = _po_id(owner.post("/admin/purchase-orders", {"sku-0": "MUG", "quantity-0": "3"}))
    client = staff_client("accounting")
    for path in ("/admin/stock", "/admin/stock/MUG", "/admin/locations", "/admin/locations/MAIN", "/admin/counts",
                 "/admin/purchase-orders", f"/admin/purchase-orders/{po_id}"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        page = _page(resp)
        assert "<form method=\"post\" action=\"/admin/stock/receive\"" not in page
        assert 'value="order"' not in page and "New location" not in page and "Open a count" not in page
    before = _movements(app)
    for path, form in [("/admin/stock/receive", {"sku": "MUG", "quantity": "1"}),
                       ("/admin/stock/adjust", {"sku": "MUG", "reason": "loss", "quantity": "-1"}),
                       (f"/admin/purchase-orders/{po_id}/action", {"action": "order"}),
                       ("/admin/counts", {"location": "MAIN"})]:
        assert client.post(path, form).status_code == 403, path
    assert _movements(app) == before and stock_of(api, "MUG")["on_hand"] == 2
    assert api.get(f"/purchase-orders/{po_id}").get_json()["status"] == "draft"
    nav = _page(client.get("/admin/"))
    assert ">Stock</a>" in nav and ">Purchase orders</a>" in nav
    service = staff_client("customer_service")
    assert service.get("/admin/stock").status_code == 403
    assert service.get("/admin/purchase-orders").status_code == 403
    assert ">Stock</a>" not in _page(service.get("/admin/"))


def test_the_stock_screens_in_turkish(app, api, staff_client):
    product(api, "MUG")
    client = staff_client("warehouse", locale="tr")
    page = _page(client.get("/admin/stock/MUG"))
    assert "Stok teslim al" in page and "Konuma göre seviyeler" in page and "Receive stock" not in page
    resp = client.post("/admin/stock/adjust", {"sku": "MUG", "reason": "loss", "quantity": "-1"})
    assert resp.status_code == 409 and 'class="flash error"' in _page(resp)
    assert "Satın alma siparişleri" in _page(client.get("/admin/purchase-orders"))


def test_a_sku_with_a_slash_and_the_live_levels(app, api, staff_client):
    product(api, "KIT/2")
    client = staff_client("warehouse")
    page = _page(client.get("/admin/stock/KIT/2"))
    token = re.search(r'data-live-token="([^"]+)"', page).group(1)
    assert client.get(f"/admin/stock/KIT/2?part=levels&since={token}").status_code == 204
    assert client.post("/admin/stock/receive", {"sku": "KIT/2", "quantity": "3"}).headers["Location"].endswith(
        "/admin/stock/KIT/2")
    region = client.get(f"/admin/stock/KIT/2?part=levels&since={token}")
    assert region.status_code == 200 and '<strong data-total="on_hand">3</strong>' in _page(region)
    with app.app_context():  # (GET /stock/{sku} takes no slash: the API cannot name this product)
        from engine.services import stock

        assert stock.get_stock("KIT/2")["on_hand"] == 3
        db.session.remove()
    assert client.get("/admin/stock/NOPE/1").status_code == 404
    assert client.get("/admin/stock/NOPE?part=levels").status_code == 404
