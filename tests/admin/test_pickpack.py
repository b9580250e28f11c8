"""Pick, pack and ship in the admin, server side: every scan outcome with the service's specific message
and status (and nothing recorded on an error), the pack verification scan by scan, the shipment with its
tracking number, label and packing slip, and who may use each screen."""

from __future__ import annotations

import html
import re

import pytest
from conftest import place, product, receive
from sqlalchemy import func, select

from engine.db import db
from engine.models import OrderEvent, OrderLine, SerialUnit, StockMovement

HX = {"HX-Request": "true"}
MUG_BARCODE = "4006381333948"


def shop(api):
    """MUG (untracked, with a barcode) at MAIN/A-01; PHONE (serial-tracked): SN-1, SN-2 at MAIN/B-01 and a
    free SN-9 at MAIN/C-01; CAP on no order."""
    product(api, "MUG", barcode=MUG_BARCODE, weight_grams=300)
    product(api, "PHONE", price=59900, track_serials=True, weight_grams=200)
    product(api, "CAP")
    for path in ("MAIN/A-01", "MAIN/B-01", "MAIN/C-01"):
        assert api.post("/locations", {"path": path}).status_code == 201
    receive(api, "MUG", 5, location="MAIN/A-01")
    receive(api, "PHONE", 2, serials=["SN-1", "SN-2"], location="MAIN/B-01")
    receive(api, "PHONE", 1, serials=["SN-9"], location="MAIN/C-01")
    receive(api, "CAP", 3)


def paid_order(api, **extra):
    order = place(api, [("MUG", 2), ("PHONE", 2)], **extra)
    assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    return order


def snapshot(app, order_id):
    """What a scan could change: the lines' picked units and serials, the units, the timeline, the ledger."""
    with app.app_context():
        lines = db.session.execute(select(OrderLine.sku, OrderLine.picked_quantity, OrderLine.serials)
                                   .where(OrderLine.order_id == order_id).order_by(OrderLine.id)).all()
        units = db.session.execute(select(SerialUnit.serial, SerialUnit.status, SerialUnit.line_id)
                                   .order_by(SerialUnit.id)).all()
        events = db.session.execute(select(func.count()).select_from(OrderEvent)).scalar_one()
        moves = db.session.execute(select(func.count()).select_from(StockMovement)).scalar_one()
        db.session.rollback()
    return [tuple(r) for r in lines], [tuple(r) for r in units], events, moves


def feedback(resp) -> tuple[str, str]:
    match = re.search(r'class="scan-feedback (ok|error)"[^>]*>([^<]*)<', resp.get_data(as_text=True))
    assert match, resp.get_data(as_text=True)[:2000]
    return match.group(1), html.unescape(match.group(2))


def scan(client, url, code, **form):
    return client.post(url, {"code": code, **form}, headers=HX)


def test_the_pick_queue_and_pick_list(api, staff_client):
    shop(api)
    first = paid_order(api, gift=True)
    vip = place(api, [("CAP", 1)], email="vip@example.com")
    assert api.patch(f"/customers/{vip['customer']['id']}", {"vip": True}).status_code == 200
    second = place(api, [("CAP", 1)], email="vip@example.com")
    assert api.post(f"/orders/{second['id']}/pay").status_code == 200
    unpaid = place(api, [("CAP", 1)], email="later@example.com")
    client = staff_client("warehouse")
    page = client.get("/admin/pick").get_data(as_text=True)
    assert page.index(first["number"]) < page.index(second["number"])  # oldest first
    assert unpaid["number"] not in page
    assert 'class="badge flag-gift">Gift<' in page and 'class="badge flag-vip">VIP<' in page
    assert ">Pick</a>" in page
    # the queue is a live region: unchanged, the poll answers 204; a pick elsewhere (the API) shows at once
    token = re.search(r'data-live-token="([^"]+)"', page).group(1)
    assert client.get(f"/admin/pick/live?since={token}").status_code == 204
    assert api.post(f"/orders/{second['id']}/pick", {"scans": ["CAP"]}).status_code == 200
    live = client.get(f"/admin/pick/live?since={token}").get_data(as_text=True)
    waiting = live[live.index("Picked, waiting for confirmation"):]
    assert second["number"] in waiting and first["number"] not in waiting
    assert second["number"] in client.get("/admin/pick").get_data(as_text=True)
    page = client.get(f"/admin/pick/{first['id']}").get_data(as_text=True)
    assert '<label for="scan-code">Scan</label>' in page
    assert re.search(r'<form id="scan-form"[^>]*data-scan[^>]*hx-post="/admin/pick/' + str(first["id"])
                     + r'/scan" hx-trigger="scan"\s+hx-target="#scan-state"', page)
    assert '<input id="scan-code" name="code"' in page and "autofocus" in page
    # the stops in walk order: where to go, what, how many, the serials held there
    stops = re.findall(r'data-stop="([^"]+)"', page)
    assert stops == ["MAIN/A-01 MUG", "MAIN/B-01 PHONE"]
    assert "<code>SN-1</code>, <code>SN-2</code>" in page and MUG_BARCODE in page
    assert "0 of 4 units picked" in page
    assert client.get("/admin/pick/999999").status_code == 404


def test_each_pick_scan_outcome_with_its_specific_message(api, app, staff_client):
    shop(api)
    order = paid_order(api)
    other = place(api, [("CAP", 1)], email="bob@example.com")
    client = staff_client("warehouse")
    url = f"/admin/pick/{order['id']}/scan"

    resp = scan(client, url, "SN-1")
    assert resp.status_code == 200 and feedback(resp) == ("ok", "SN-1 picked, 1 of 2")
    assert "1 of 4 units picked" in resp.get_data(as_text=True)
    resp = scan(client, url, MUG_BARCODE)
    assert resp.status_code == 200 and feedback(resp) == ("ok", f"MUG ({MUG_BARCODE}) picked, 1 of 2")
    resp = scan(client, url, "MUG")
    assert feedback(resp) == ("ok", "MUG picked, 2 of 2")

    before = snapshot(app, order["id"])
    errors = {
        "SN-1": f"SN-1: already picked for this order ({order['number']})",
        "MUG": "MUG: more units of MUG than were ordered",
        "CAP": f"CAP: product CAP, which is not on order {order['number']}",
        "NO-SUCH-CODE": "NO-SUCH-CODE: unknown code: not a serial, sku or barcode of this shop "
                        f"(it does not belong to order {order['number']})",
        "SN-9": "SN-9: this unit is at MAIN/C-01; the pick list sends you to MAIN/B-01 for PHONE of order "
                f"{order['number']}",
        "PHONE": "PHONE: PHONE is serial-tracked: scan the unit's serial",
        "": "scan at least one unit",
    }
    for code, message in errors.items():
        resp = scan(client, url, code)
        assert resp.status_code == 422, (code, resp.status_code)
        assert resp.headers["X-Scan-Feedback"] == "error"
        assert feedback(resp) == ("error", message), code
        assert snapshot(app, order["id"]) == before, code  # nothing recorded
    resp = scan(client, url, "X" * 129)
    assert resp.status_code == 422 and "longer than 128 characters" in feedback(resp)[1]
    assert snapshot(app, order["id"]) == before

    resp = scan(client, url, "SN-2")
    assert feedback(resp) == ("ok", "SN-2 picked, 2 of 2")
    body = resp.get_data(as_text=True)
    assert "All 4 units picked." in body and "Confirm order" in body
    # a scan once all is picked: the transition table's message, a 409
    resp = scan(client, url, "SN-9")
    assert resp.status_code == 409
    assert feedback(resp) == ("error", "cannot pick an order that is picked; allowed next actions: confirm, cancel")
    # a unit another order holds is refused with its order named (an order of CAP on hold is not pickable)
    resp = scan(client, f"/admin/pick/{other['id']}/scan", "CAP")
    assert resp.status_code == 409 and "cannot pick an order that is placed" in feedback(resp)[1]
    assert scan(client, "/admin/pick/999999/scan", "SN-1").status_code == 404


def test_a_scan_without_htmx_answers_the_whole_page(api, staff_client):
    shop(api)
    order = paid_order(api)
    client = staff_client("warehouse")
    resp = client.post(f"/admin/pick/{order['id']}/scan", {"code": "CAP"})
    assert resp.status_code == 422
    body = resp.get_data(as_text=True)
    assert "<html" in body and '<label for="scan-code">Scan</label>' in body
    assert feedback(resp)[0] == "error"


def pick_all(client, order):
    for code in ("SN-1", "SN-2", "MUG", "MUG"):
        assert scan(client, f"/admin/pick/{order['id']}/scan", code).status_code == 200


def test_confirm_pack_and_ship(api, app, staff_client):
    shop(api)
    order = paid_order(api)
    client = staff_client("warehouse")
    pick_all(client, order)
    resp = client.post(f"/admin/pick/{order['id']}/confirm")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/pack/{order['id']}")
    assert order["number"] in client.get("/admin/pack").get_data(as_text=True)

    page = client.get(f"/admin/pack/{order['id']}").get_data(as_text=True)
    assert 'hx-post="/admin/pack/{}/scan"'.format(order["id"]) in page and "0 of 4 units in the parcel" in page
    url = f"/admin/pack/{order['id']}/scan"
    before = snapshot(app, order["id"])
    resp = scan(client, url, "SN-2")
    assert feedback(resp) == ("ok", "SN-2 in the parcel, 1 of 2")
    verified = re.findall(r'name="verified" value="([^"]+)" form="pack-scan-form"', resp.get_data(as_text=True))
    assert verified == ["SN-2"]
    refused = {"SN-2": "SN-2: scanned twice",
               "SN-9": f"SN-9: was not picked for order {order['number']}: pick it first",
               "CAP": f"CAP: product CAP, which is not on order {order['number']}"}
    for code, message in refused.items():
        resp = scan(client, url, code, verified=verified)
        assert resp.status_code == 422 and feedback(resp) == ("error", message), code
        assert re.findall(r'name="verified" value="([^"]+)" form=', resp.get_data(as_text=True)) == verified
    for code in ("MUG", MUG_BARCODE, "SN-1"):
        resp = scan(client, url, code, verified=verified)
        assert resp.status_code == 200, feedback(resp)
        verified.append(code)
    assert feedback(resp) == ("ok", "SN-1 in the parcel, 2 of 2")
    resp = scan(client, url, "MUG", verified=verified)
    assert feedback(resp) == ("error", "MUG: more units of MUG than were picked")
    assert snapshot(app, order["id"]) == before  # verifying records nothing
    body = client.post(url, {"code": "SN-1", "verified": verified[:-1]}, headers=HX).get_data(as_text=True)
    assert "All 4 units are in the parcel." in body and ">Pack</button>" in body

    # packing with a unit short is refused with what is missing
    resp = client.post(f"/admin/pack/{order['id']}", {"verified": verified[:-1]})
    assert resp.status_code == 422 and "SN-1" in resp.get_data(as_text=True)
    resp = client.post(f"/admin/pack/{order['id']}", {"verified": verified})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/ship/{order['id']}")
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "packed"

    assert order["number"] in client.get("/admin/ship").get_data(as_text=True)
    page = client.get(f"/admin/ship/{order['id']}").get_data(as_text=True)
    rates = api.get(f"/orders/{order['id']}/rates").get_json()
    choices = re.findall(r'name="rate" value="([^"]+)"', page)
    assert len(choices) == len(rates) >= 2
    express = next(c for c in choices if "express" in c)
    assert client.post(f"/admin/ship/{order['id']}", {"rate": "nonsense"}).status_code == 422
    resp = client.post(f"/admin/ship/{order['id']}", {"rate": html.unescape(express)})
    assert resp.status_code == 303
    shipped = api.get(f"/orders/{order['id']}").get_json()
    assert shipped["status"] == "shipped" and shipped["shipments"][0]["service"] == "express"
    tracking = shipped["shipments"][0]["tracking_number"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"<strong data-tracking>{tracking}</strong>" in page
    label = re.search(r'href="(/admin/shipments/\d+/label.pdf)"', page).group(1)
    slip = re.search(r'href="(/admin/ship/\d+/documents/packing-slip-[^"]+)"', page).group(1)
    for link in (label, slip):
        resp = client.get(link)
        assert resp.status_code == 200 and resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    assert client.get(f"/admin/ship/{order['id']}/documents/other.pdf").status_code == 404
    assert client.get("/admin/shipments/999999/label.pdf").status_code == 404
    # shipped: the form is gone, a second shipment cannot be made
    assert 'name="rate"' not in page
    resp = client.post(f"/admin/ship/{order['id']}", {"rate": html.unescape(express)})
    assert resp.status_code == 409 and "cannot ship an order that is shipped" in resp.get_data(as_text=True)


def test_pack_and_ship_refuse_orders_not_ready(api, staff_client):
    shop(api)
    order = paid_order(api)
    client = staff_client("warehouse")
    resp = scan(client, f"/admin/pack/{order['id']}/scan", "SN-1")
    assert resp.status_code == 409 and "cannot pack an order that is paid" in feedback(resp)[1]
    assert "nothing to pack" in client.get(f"/admin/pack/{order['id']}").get_data(as_text=True)
    assert "cannot be shipped now" in client.get(f"/admin/ship/{order['id']}").get_data(as_text=True)
    assert client.post(f"/admin/pick/{order['id']}/confirm").status_code == 409
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "paid"


@pytest.mark.parametrize("role", ["owner", "warehouse", "accounting", "customer_service"])
def test_who_may_pick_pack_and_ship(api, app, staff_client, role):
    shop(api)
    order = paid_order(api)
    client = staff_client(role)
    allowed = role in ("owner", "warehouse")
    for path in ("/admin/pick", f"/admin/pick/{order['id']}", "/admin/pack", f"/admin/pack/{order['id']}",
                 "/admin/ship", f"/admin/ship/{order['id']}"):
        assert client.get(path).status_code == (200 if allowed else 403), path
    before = snapshot(app, order["id"])
    resp = scan(client, f"/admin/pick/{order['id']}/scan", "SN-1")
    assert resp.status_code == (200 if allowed else 403)
    assert (snapshot(app, order["id"]) == before) is not allowed
    nav = client.get("/admin/").get_data(as_text=True)
    assert all((f">{label}</a>" in nav) is allowed for label in ("Pick", "Pack", "Ship"))


def test_the_screens_in_turkish(api, staff_client):
    shop(api)
    order = paid_order(api)
    client = staff_client("warehouse", locale="tr")
    page = client.get(f"/admin/pick/{order['id']}").get_data(as_text=True)
    assert '<label for="scan-code">Okut</label>' in page and "Toplama listesi" in page
    resp = scan(client, f"/admin/pick/{order['id']}/scan", "SN-1")
    assert feedback(resp) == ("ok", "SN-1 toplandı, 2 birimden 1")
    assert ">Topla</a>" in client.get("/admin/").get_data(as_text=True)


def test_an_order_with_nothing_to_pick_is_confirmed_from_the_pick_queue_and_shipped(api, app, staff_client):
    """Only a non-stock line that needs shipping (an engraved plate): no pick, no pack; confirm, then ship."""
    from conftest import SUPPORT_ADDRESS

    from engine.services import orders

    with app.app_context():
        order, _ = orders.place_order({
            "channel": "market", "external_id": "PLATE-1", "incomplete_ok": True, "payment_status": "paid",
            "currency": "EUR", "lines": [],
            "customer": {"email": "ann@example.com", "name": "Ann Buyer", "shipping_address": dict(SUPPORT_ADDRESS)},
            "non_stock_lines": [{"kind": "custom", "title": "Engraved plate", "quantity": 1, "unit_price": 2000,
                                 "requires_shipping": True}]})
        order_id, number, status = order.id, order.number, order.status
    assert status == "paid"
    client = staff_client("warehouse")
    queue = client.get("/admin/pick").get_data(as_text=True)
    assert number in queue[queue.index("Picked, waiting for confirmation"):]
    page = client.get(f"/admin/pick/{order_id}").get_data(as_text=True)
    assert "This order has no stock to pick: confirm it." in page and 'name="code"' not in page
    resp = client.post(f"/admin/pick/{order_id}/confirm")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/ship/{order_id}")
    assert number in client.get("/admin/ship").get_data(as_text=True)
    page = client.get(f"/admin/ship/{order_id}").get_data(as_text=True)
    rate = html.unescape(re.search(r'name="rate" value="([^"]+)"', page).group(1))
    assert client.post(f"/admin/ship/{order_id}", {"rate": rate}).status_code == 303
    assert api.get(f"/orders/{order_id}").get_json()["status"] == "shipped"
