"""The orders list and an order's page, server side (both databases): filters, exact search, keyset pages,
the buttons the transition table and the role allow, transitions through the admin (409 when illegal,
nothing changed), notes, flags and the live regions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from bulk_orders import Spec, insert_orders
from conftest import place, product, receive
from sqlalchemy import event, func, select, update

from engine.admin import permissions
from engine.db import db, utcnow
from engine.domain.transitions import allowed_actions
from engine.models import Order, OrderEvent

ROW = re.compile(r'<tr data-order="(\d+)">')
ACTION = re.compile(r'data-action="(\w+)"')
TOKEN = re.compile(r'data-live-token="([^"]+)"')


def shown(resp) -> list[int]:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
    return [int(x) for x in ROW.findall(resp.get_data(as_text=True))]


def html(resp) -> str:
    return resp.get_data(as_text=True)


def ship(api, order):
    oid = order["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    scans = [line["sku"] for line in order["lines"] for _ in range(line["quantity"])]
    assert api.post(f"/orders/{oid}/pick", {"scans": scans}).get_json()["status"] == "picked"
    assert api.post(f"/orders/{oid}/confirm").status_code == 200
    assert api.post(f"/orders/{oid}/pack", {"scans": scans}).status_code == 200
    body = api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"}).get_json()
    return body["shipments"][0]["tracking_number"]


def status_of(app, order_id) -> tuple[str, int]:
    with app.app_context():
        status = db.session.get(Order, order_id).status
        events = db.session.execute(select(func.count()).select_from(OrderEvent)
                                    .where(OrderEvent.order_id == order_id)).scalar_one()
        db.session.remove()
    return status, events


@pytest.fixture
def shop(api):
    product(api, "MUG", 1200)
    receive(api, "MUG", 50)
    return api


# ---------------------------------------------------------------- the list


def test_the_list_shows_orders_newest_first_with_flag_badges(app, shop, staff_client):
    first = place(shop, [("MUG", 1)], email="ann@example.com")
    second = place(shop, [("MUG", 1)], email="ann@example.com", gift=True)
    client = staff_client("warehouse")
    resp = client.get("/admin/orders")
    assert shown(resp) == [second["id"], first["id"]]
    page = html(resp)
    row = page[page.index(f'data-order="{second["id"]}"'):page.index(f'data-order="{first["id"]}"')]
    assert "flag-gift" in row and "flag-repeat" in row and ">Gift<" in row and ">Repeat<" in row
    assert f"#{second['number']}" in row
    assert 'href="/admin/orders"' in page  # the menu entry, for every role (orders.view)


def test_the_list_links_keep_the_filters_but_never_take_url_for_options_from_the_query(app, shop, staff_client):
    place(shop, [("MUG", 1)])
    client = staff_client("warehouse")
    page = html(client.get("/admin/orders?status=placed&_scheme=javascript&_external=1&_anchor=x"))
    live = re.search(r'hx-get="([^"]+)"', page).group(1)
    assert live == "/admin/orders/live?status=placed"  # relative, the filter kept, no scheme, no fragment


def test_filters_by_status_channel_flag_and_customer(app, staff_client):
    specs = [Spec("placed", "api", 0, ["vip"]), Spec("paid", "shopify", 1, ["gift"]),
             Spec("paid", "api", 0, ["repeat", "vip"]), Spec("cancelled", "shopify", 2, ["replacement"]),
             Spec("placed", "api", 1, ["review:address"])]
    ids, customers = insert_orders(app, specs)
    client = staff_client("customer_service")
    assert shown(client.get("/admin/orders")) == ids[::-1]
    assert shown(client.get("/admin/orders?status=paid")) == [ids[2], ids[1]]
    assert shown(client.get("/admin/orders?channel=shopify")) == [ids[3], ids[1]]
    assert shown(client.get("/admin/orders?flag=vip")) == [ids[2], ids[0]]
    assert shown(client.get("/admin/orders?flag=review:address")) == [ids[4]]
    assert shown(client.get("/admin/orders?flag=vip&status=placed")) == [ids[0]]
    assert shown(client.get("/admin/orders?status=paid&channel=api")) == [ids[2]]
    assert shown(client.get(f"/admin/orders?customer={customers[1]}")) == [ids[4], ids[1]]
    assert shown(client.get("/admin/orders?flag=no-such-flag")) == []
    refused = client.get("/admin/orders?status=lost")
    assert refused.status_code == 200 and "Unknown status lost." in html(refused)
    assert len(shown(refused)) == len(ids)  # the unknown filter is left out, said so


def test_filters_by_date_range(app, staff_client):
    ids, _ = insert_orders(app, [Spec() for _ in range(6)])
    now = utcnow()
    with app.app_context():  # ids grow with created_at, as placements make them
        for age, oid in zip((30, 20, 10, 5, 2, 0), ids, strict=True):
            db.session.execute(update(Order).where(Order.id == oid).values(created_at=now - timedelta(days=age)))
        db.session.commit()
    client = staff_client("accounting")
    day = lambda age: (now - timedelta(days=age)).date().isoformat()  # noqa: E731
    assert shown(client.get(f"/admin/orders?from={day(10)}&to={day(5)}")) == [ids[3], ids[2]]
    assert shown(client.get(f"/admin/orders?from={day(20)}")) == ids[:0:-1]
    assert shown(client.get(f"/admin/orders?to={day(20)}")) == [ids[1], ids[0]]
    assert shown(client.get(f"/admin/orders?from={day(3)}&to={day(1)}")) == [ids[4]]
    assert shown(client.get(f"/admin/orders?from={day(100)}&to={day(50)}")) == []
    bad = client.get("/admin/orders?from=yesterday")
    assert bad.status_code == 200 and "is not a date" in html(bad)


def test_search_by_number_email_serial_and_tracking_number(app, shop, staff_client):
    product(shop, "CAM", 34900, track_serials=True)
    receive(shop, "CAM", 2, serials=["CAM-0001", "CAM-0002"])
    ann = place(shop, [("MUG", 1)], email="ann@example.com")
    bob = place(shop, [("CAM", 1)], email="Bob@Example.com")
    shipped = place(shop, [("MUG", 2)], email="carol@example.com")
    tracking = ship(shop, shipped)
    again = place(shop, [("MUG", 1)], email="ann@example.com")
    client = staff_client("customer_service")
    assert shown(client.get(f"/admin/orders?q={ann['number']}")) == [ann["id"]]
    assert shown(client.get(f"/admin/orders?q=%23{bob['number']}")) == [bob["id"]]
    assert shown(client.get("/admin/orders?q=ANN@example.com")) == [again["id"], ann["id"]]
    assert shown(client.get("/admin/orders?q=bob@example.com")) == [bob["id"]]
    held = [s for s in ("CAM-0001", "CAM-0002") if shown(client.get(f"/admin/orders?q={s}"))]
    assert len(held) == 1 and shown(client.get(f"/admin/orders?q={held[0]}")) == [bob["id"]]
    assert shown(client.get(f"/admin/orders?q={tracking}")) == [shipped["id"]]
    assert shown(client.get("/admin/orders?q=nobody@example.com")) == []
    assert shown(client.get("/admin/orders?q=999999")) == []
    # a search combines with the filters
    assert shown(client.get("/admin/orders?q=ann@example.com&flag=repeat")) == [again["id"]]
    assert shown(client.get(f"/admin/orders?q={tracking}&status=placed")) == []


def test_the_email_of_a_merged_profile_finds_the_survivors_orders(app, shop, staff_client):
    kept = place(shop, [("MUG", 1)], email="ann@example.com")
    duplicate = place(shop, [("MUG", 1)], email="ann.work@example.com")
    merged = shop.post(f"/customers/{kept['customer']['id']}/merge", {"from": [duplicate["customer"]["id"]]})
    assert merged.status_code == 200, merged.get_json()
    client = staff_client("customer_service")
    assert shown(client.get("/admin/orders?q=ann.work@example.com")) == [duplicate["id"], kept["id"]]
    assert shown(client.get("/admin/orders?q=ann@example.com")) == [duplicate["id"], kept["id"]]


def test_keyset_pages_cover_every_order_once(app, staff_client):
    ids, _ = insert_orders(app, [Spec(status="paid" if n % 3 else "placed", flags=["vip"] if n % 2 else [])
                                 for n in range(120)])
    client = staff_client("owner")

    def walk(query: str) -> list[int]:
        seen, url = [], f"/admin/orders?{query}"
        while url:
            resp = client.get(url)
            page = shown(resp)
            assert len(page) <= 50
            seen += page
            found = re.search(r'rel="next" href="([^"]+)"', html(resp))
            url = found.group(1).replace("&amp;", "&") if found else None
            if url:
                assert len(page) == 50 and f"cursor={page[-1]}" in url
        return seen

    assert walk("") == ids[::-1]
    paid = walk("status=paid")
    assert paid == [i for n, i in enumerate(ids) if n % 3][::-1] and len(paid) == 80
    assert walk("status=paid&flag=vip") == [i for n, i in enumerate(ids) if n % 3 and n % 2][::-1]


def test_the_list_pages_by_keyset_without_offset(app, staff_client):
    ids, _ = insert_orders(app, [Spec() for _ in range(60)])
    client = staff_client("owner")
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    offsets: list = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split()).upper()
        statements.append(text)
        if "OFFSET" in text:  # SQLite's compiler writes LIMIT ? OFFSET ? with an offset of 0
            offsets.append(parameters[-1] if isinstance(parameters, tuple | list) else None)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert len(shown(client.get(f"/admin/orders?status=placed&cursor={ids[-1]}"))) == 50
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    pages = [s for s in statements if s.startswith("SELECT ORDERS.") and "ORDER BY ORDERS.ID DESC" in s]
    assert len(pages) == 1, statements
    assert "LIMIT" in pages[0] and "ORDERS.ID <" in pages[0]  # the cursor is a condition on the key
    assert offsets == ([0] if engine.dialect.name == "sqlite" else []), offsets
    assert not any("COUNT(" in s and "ORDERS" in s for s in statements)  # no count of all orders either
    assert len(statements) < 15


def test_the_list_is_a_live_region(app, shop, staff_client):
    client = staff_client("warehouse")
    token = TOKEN.search(html(client.get("/admin/orders"))).group(1)
    assert client.get(f"/admin/orders/live?since={token}").status_code == 204
    order = place(shop, [("MUG", 1)])
    resp = client.get(f"/admin/orders/live?since={token}")
    assert shown(resp) == [order["id"]] and TOKEN.search(html(resp)).group(1) != token
    token = TOKEN.search(html(resp)).group(1)
    shop.post(f"/orders/{order['id']}/pay")  # a status change anywhere is a new token
    resp = client.get(f"/admin/orders/live?since={token}")
    assert resp.status_code == 200 and 'data-status="paid"' in html(resp)


# ---------------------------------------------------------------- one order


def expected_buttons(role: str, status: str) -> list[str]:
    return permissions.order_actions(role, allowed_actions(status))


@pytest.mark.parametrize("role", permissions.ROLES)
def test_the_buttons_are_the_tables_actions_the_role_may_take(app, shop, staff_client, role):
    client = staff_client(role)
    placed = place(shop, [("MUG", 1)])
    paid = place(shop, [("MUG", 1)], email="bob@example.com")
    shop.post(f"/orders/{paid['id']}/pay")
    shipped = place(shop, [("MUG", 1)], email="carol@example.com")
    ship(shop, shipped)
    for order, status in ((placed, "placed"), (paid, "paid"), (shipped, "shipped")):
        page = html(client.get(f"/admin/orders/{order['id']}"))
        assert ACTION.findall(page) == expected_buttons(role, status), (role, status)
    if role in ("owner", "warehouse"):
        page = html(client.get(f"/admin/orders/{paid['id']}"))
        assert f'href="/admin/pick/{paid["id"]}" data-action="pick"' in page
    if role == "accounting":
        assert ACTION.findall(html(client.get(f"/admin/orders/{placed['id']}"))) == ["pay"]
    if role == "warehouse":
        assert ACTION.findall(html(client.get(f"/admin/orders/{shipped['id']}"))) == ["deliver"]


def test_the_page_shows_customer_lines_serials_bins_payments_shipments(app, shop, staff_client):
    assert shop.post("/locations", {"path": "MAIN/A-01"}).status_code == 201
    product(shop, "CAM", 34900, track_serials=True)
    receive(shop, "CAM", 1, serials=["CAM-0001"], location="MAIN/A-01")
    first = place(shop, [("MUG", 1)], email="ann@example.com")
    order = place(shop, [("CAM", 1), ("MUG", 2)], email="ann@example.com")
    client = staff_client("customer_service")
    page = html(client.get(f"/admin/orders/{order['id']}"))
    assert "CAM-0001" in page and "MAIN/A-01" in page  # the reserved unit and its bin
    assert f'href="/admin/orders?customer={order["customer"]["id"]}"' in page
    assert "flag-repeat" in page and "€373.00" in page and "Not shipped yet." in page
    assert "order_placed" in page  # the timeline
    tracking = ship(shop, first)
    page = html(client.get(f"/admin/orders/{first['id']}"))
    assert tracking in page and "data-tracking" in page and "paid" in page
    assert client.get("/admin/orders/999999").status_code == 404


def test_a_transition_through_the_admin(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    oid = order["id"]
    accounting = staff_client("accounting")
    resp = accounting.post(f"/admin/orders/{oid}/pay", {"reference": "bank 42"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/orders/{oid}")
    assert status_of(app, oid)[0] == "paid"
    page = html(accounting.get(f"/admin/orders/{oid}"))
    assert "Payment recorded." in page and "bank 42" in page
    service = staff_client("customer_service")
    assert service.post(f"/admin/orders/{oid}/hold", {"reason": "address check"}).status_code == 303
    assert status_of(app, oid)[0] == "on_hold"
    assert "On hold: address check" in html(service.get(f"/admin/orders/{oid}"))
    assert service.post(f"/admin/orders/{oid}/release").status_code == 303
    assert status_of(app, oid)[0] == "paid"
    assert service.post(f"/admin/orders/{oid}/cancel", {"reason": "customer asked"}).status_code == 303
    assert status_of(app, oid)[0] == "cancelled"


def test_an_illegal_transition_is_a_409_and_changes_nothing(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    oid = order["id"]
    owner = staff_client("owner")
    before = status_of(app, oid)
    for action in ("release", "confirm", "deliver", "complete"):
        resp = owner.post(f"/admin/orders/{oid}/{action}")
        assert resp.status_code == 409, action
        page = html(resp)
        assert f"cannot {action} an order that is placed" in page and 'role="alert"' in page
        assert status_of(app, oid) == before
    shop.post(f"/orders/{oid}/cancel", {"reason": "x"})
    before = status_of(app, oid)
    assert owner.post(f"/admin/orders/{oid}/pay").status_code == 409
    assert owner.post(f"/admin/orders/{oid}/cancel").status_code == 409
    assert status_of(app, oid) == before


def test_each_transition_route_checks_its_own_permission(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    oid = order["id"]
    before = status_of(app, oid)
    warehouse = staff_client("warehouse")
    accounting = staff_client("accounting")
    assert warehouse.post(f"/admin/orders/{oid}/hold", {"reason": "x"}).status_code == 403
    assert warehouse.post(f"/admin/orders/{oid}/cancel").status_code == 403
    assert warehouse.post(f"/admin/orders/{oid}/pay").status_code == 403
    assert accounting.post(f"/admin/orders/{oid}/cancel").status_code == 403
    assert status_of(app, oid) == before
    assert {app.view_functions[f"admin_ui.order_{a}"].admin_permission for a in permissions.ORDER_ACTIONS
            if f"admin_ui.order_{a}" in app.view_functions} == {
        permissions.ORDER_ACTIONS[a] for a in ("pay", "hold", "release", "confirm", "deliver", "complete", "cancel")}


def test_a_hold_needs_a_reason(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    resp = staff_client("customer_service").post(f"/admin/orders/{order['id']}/hold", {"reason": " "})
    assert resp.status_code == 422 and "Give a reason" in html(resp)
    assert status_of(app, order["id"])[0] == "placed"


def test_staff_notes(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    oid = order["id"]
    warehouse = staff_client("warehouse")
    resp = warehouse.post(f"/admin/orders/{oid}/notes", {"text": "box dented, repacked"})
    assert resp.status_code == 303
    page = html(warehouse.get(f"/admin/orders/{oid}"))
    assert "Note added." in page and "box dented, repacked" in page and "warehouse@shop.example" in page
    events = shop.get(f"/orders/{oid}").get_json()["events"]
    assert {"kind": "note", "message": "box dented, repacked"}.items() <= events[-1].items()
    assert warehouse.post(f"/admin/orders/{oid}/notes", {"text": "  "}).status_code == 422
    before = status_of(app, oid)
    assert staff_client("accounting").post(f"/admin/orders/{oid}/notes", {"text": "hi"}).status_code == 403
    assert status_of(app, oid) == before
    assert 'id="note-text"' not in html(staff_client("accounting").get(f"/admin/orders/{oid}"))


def test_staff_set_and_clear_vip_and_review_flags(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    oid = order["id"]
    service = staff_client("customer_service")
    assert service.post(f"/admin/orders/{oid}/flags", {"flag": "vip", "set": "1"}).status_code == 303
    assert service.post(f"/admin/orders/{oid}/flags", {"flag": "review:fraud", "set": "1"}).status_code == 303
    assert shop.get(f"/orders/{oid}").get_json()["flags"] == ["vip", "review:fraud"]
    assert shown(service.get("/admin/orders?flag=review:fraud")) == [oid]
    assert service.post(f"/admin/orders/{oid}/flags", {"flag": "review:fraud", "set": "0"}).status_code == 303
    body = shop.get(f"/orders/{oid}").get_json()
    assert body["flags"] == ["vip"] and [e["kind"] for e in body["events"]][-2:] == ["flag_set", "flag_cleared"]
    assert service.post(f"/admin/orders/{oid}/flags", {"flag": "gift", "set": "1"}).status_code == 422
    assert staff_client("warehouse").post(f"/admin/orders/{oid}/flags", {"flag": "vip", "set": "0"}).status_code == 403
    assert shop.get(f"/orders/{oid}").get_json()["flags"] == ["vip"]


def test_the_order_page_is_a_live_region(app, shop, staff_client):
    order = place(shop, [("MUG", 1)])
    other = place(shop, [("MUG", 1)], email="bob@example.com")
    client = staff_client("owner")
    token = TOKEN.search(html(client.get(f"/admin/orders/{order['id']}"))).group(1)
    assert client.get(f"/admin/orders/{order['id']}/live?since={token}").status_code == 204
    shop.post(f"/orders/{other['id']}/pay")  # another order's change: nothing to redraw here
    assert client.get(f"/admin/orders/{order['id']}/live?since={token}").status_code == 204
    shop.post(f"/orders/{order['id']}/pay")
    resp = client.get(f"/admin/orders/{order['id']}/live?since={token}")
    assert resp.status_code == 200 and 'data-order-status="paid"' in html(resp) and "order_paid" in html(resp)
