"""The customers, returns and refunds screens, server side on both databases: search and profile figures,
staff edits, merge keeping every order, each return action through the admin (what the return table and the
role allow), refunds within and over what was captured, and domain errors shown with their 4xx and nothing
changed."""

from __future__ import annotations

import re

import pytest
from conftest import place, product, receive
from sqlalchemy import select

from engine import hookimpl
from engine.admin import custret_customers
from engine.db import db
from engine.models import Customer, Order, OrderEvent, Refund, Return, SerialUnit
from engine.services.payments import PaymentOutcome, RefundOutcome


class Flaky:
    """A payment provider whose refunds can be made to fail (a provider that is down)."""

    name = "flaky"

    def __init__(self):
        self.fail_refunds = 0

    def pay(self, order, payment_method=None, data=None):
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


@pytest.fixture
def flaky():
    return Flaky()


@pytest.fixture
def app_config(flaky):
    return {"EXTRA_PLUGINS": [("flaky", flaky)]}


@pytest.fixture
def shop(api):
    product(api, "MUG", price=1290)
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "TEA", price=500, currency="JPY")
    receive(api, "MUG", 50)
    receive(api, "TEA", 50)
    receive(api, "PHONE", 5, serials=[f"P-{i}" for i in range(1, 6)])
    return api


def paid(api, lines, **extra):
    order = place(api, lines, **extra)
    if order["status"] == "placed":
        resp = api.post(f"/orders/{order['id']}/pay", {})
        assert resp.status_code == 200, resp.get_json()
    return api.get(f"/orders/{order['id']}").get_json()


def shipped(api, lines, provider="manual", **extra):
    """An order of ``lines`` [(sku, quantity, serials or None)] paid, picked, packed and shipped."""
    order = paid(api, [(sku, qty) for sku, qty, _ in lines], payment_provider=provider, **extra)
    oid = order["id"]
    scans = [s for sku, qty, serials in lines for s in (serials or [sku] * qty)]
    for action, body in (("pick", {"scans": scans}), ("confirm", {}), ("pack", {"scans": scans}),
                         ("ship", {"carrier": "generic", "service": "standard"})):
        resp = api.post(f"/orders/{oid}/{action}", body)
        assert resp.status_code == 200, (action, resp.get_json())
    return api.get(f"/orders/{oid}").get_json()


def request_return(app, order, lines, resolution="refund"):
    """The customer's own request (the public page's JSON twin): it waits for approval."""
    resp = app.test_client().post("/api/v1/returns/requests", json={
        "order_number": order["number"], "email": order["customer"]["email"], "lines": lines,
        "reason": "broken", "resolution": resolution})
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():
        rid = db.session.execute(select(Return.id).order_by(Return.id.desc()).limit(1)).scalar_one()
        db.session.rollback()
    return rid


def state(app) -> dict:
    """Every table but the staff's own (sessions are touched by each request)."""
    with app.app_context():
        rows = {t.name: [tuple(r) for r in db.session.execute(select(t).order_by(*t.primary_key.columns)).all()]
                for t in db.metadata.sorted_tables if not t.name.startswith("staff")}
        db.session.rollback()
    return rows


def read(app, model, row_id):
    with app.app_context():
        row = db.session.get(model, row_id)
        db.session.expunge(row)
        db.session.rollback()
    return row


def text(resp) -> str:
    return resp.get_data(as_text=True)


# ------------------------------------------------------------------ customers


def test_search_by_email_name_and_company_with_cursor_pages(app, shop, staff_client, monkeypatch):
    place(shop, [("MUG", 1)], email="ann@example.com")
    bob = place(shop, [("MUG", 1)], email="bob@builders.example")
    place(shop, [("MUG", 1)], email="carl@example.com")
    shop.patch(f"/customers/{bob['customer']['id']}", {"company": "Acme Tools GmbH"})
    cs = staff_client("customer_service")
    for q, expected in (("BOB@builders", ["bob@builders.example"]), ("acme", ["bob@builders.example"]),
                        ("example.com", ["carl@example.com", "ann@example.com"]), ("nobody", [])):
        page = text(cs.get("/admin/customers", query_string={"q": q}))
        assert re.findall(r'<span class="muted">([^<]+@[^<]+)</span>', page) == expected, q
    monkeypatch.setattr(custret_customers, "PAGE", 2)
    first = cs.get("/admin/customers")
    assert first.status_code == 200
    emails = re.findall(r'<span class="muted">([^<]+@[^<]+)</span>', text(first))
    assert emails == ["carl@example.com", "bob@builders.example"]
    next_url = re.search(r'rel="next" href="([^"]+)"', text(first)).group(1).replace("&amp;", "&")
    second = text(cs.get(next_url))
    assert re.findall(r'<span class="muted">([^<]+@[^<]+)</span>', second) == ["ann@example.com"]
    assert 'rel="next"' not in second


def test_the_profile_shows_history_figures_per_currency_and_preferences(app, shop, staff_client):
    first = place(shop, [("MUG", 1)])
    second = place(shop, [("MUG", 2)])
    place(shop, [("TEA", 3)])
    cid = first["customer"]["id"]
    cs = staff_client("customer_service")
    page = text(cs.get(f"/admin/customers/{cid}"))
    assert 'data-figure="order_count">3<' in page
    assert "€38.70" in page and "€19.35" in page  # 3 mugs over 2 EUR orders: 3870 spent, 1935 on average
    assert "¥1,500" in page  # the JPY order on its own
    assert f'href="/admin/orders/{first["id"]}"' in page and f'href="/admin/orders/{second["id"]}"' in page
    assert "manual" in page  # the preferred payment provider
    assert 'class="badge flag-repeat"' in page
    assert "Ann Example" in page and "Sample Street 12" in page
    assert "Save customer" in page  # customer service may change the profile


def test_notes_vip_and_b2b_details_are_saved_through_the_service_and_bad_input_changes_nothing(app, shop,
                                                                                               staff_client):
    cid = place(shop, [("MUG", 1)])["customer"]["id"]
    cs = staff_client("customer_service")
    resp = cs.post(f"/admin/customers/{cid}", {"notes": "Calls before noon.", "vip": "1", "company": "Acme",
                                                "tax_id": "DE 136 695 976"})
    assert resp.status_code == 303
    customer = read(app, Customer, cid)
    assert (customer.notes, customer.vip_by_staff, customer.company, customer.tax_id) == (
        "Calls before noon.", True, "Acme", "DE136695976")
    page = text(cs.get(f"/admin/customers/{cid}"))
    assert "Customer saved." in page and 'class="badge flag-vip"' in page and "format checked" in page
    before = state(app)
    resp = cs.post(f"/admin/customers/{cid}", {"notes": "changed", "tax_id": "DE123"})
    assert resp.status_code == 422
    assert "not a valid DE VAT number" in text(resp) and 'role="alert"' in text(resp)
    assert state(app) == before
    assert cs.post(f"/admin/customers/{cid}", {"vip": ""}).status_code == 303  # back to the rule
    assert read(app, Customer, cid).vip_by_staff is None


def test_merge_a_duplicate_after_a_confirmation_keeps_all_history(app, shop, staff_client):
    keep = place(shop, [("MUG", 1)], email="ann@example.com")
    dup = place(shop, [("MUG", 2)], email="ann.example@mail.example")
    other = place(shop, [("TEA", 1)], email="ann.example@mail.example")
    shop.patch(f"/customers/{dup['customer']['id']}", {"notes": "prefers DHL"})
    keep_id, dup_id = keep["customer"]["id"], dup["customer"]["id"]
    cs = staff_client("customer_service")
    search = text(cs.get(f"/admin/customers/{keep_id}/merge"))
    assert f'data-candidate="{dup_id}"' in search  # the same name: suggested
    confirm = cs.get(f"/admin/customers/{keep_id}/merge", query_string={"from": dup_id})
    assert confirm.status_code == 200 and "This cannot be undone." in text(confirm)
    assert read(app, Customer, dup_id).merged_into_id is None  # the confirmation page changes nothing
    resp = cs.post(f"/admin/customers/{keep_id}/merge", {"from": dup_id})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/customers/{keep_id}")
    survivor, tombstone = read(app, Customer, keep_id), read(app, Customer, dup_id)
    assert tombstone.merged_into_id == keep_id
    assert survivor.order_count == 3 and survivor.spent_by_currency == {"EUR": 3870, "JPY": 500}
    assert "prefers DHL" in survivor.notes
    with app.app_context():
        owners = set(db.session.execute(select(Order.customer_id).where(
            Order.id.in_([keep["id"], dup["id"], other["id"]]))).scalars())
        merged_events = db.session.execute(select(OrderEvent.order_id).where(
            OrderEvent.kind == "customer_merged")).scalars().all()
        db.session.rollback()
    assert owners == {keep_id} and sorted(merged_events) == sorted([dup["id"], other["id"]])
    page = text(cs.get(f"/admin/customers/{keep_id}"))
    assert "merged into this one" in page and all(f'data-order="{o["id"]}"' in page for o in (keep, dup, other))
    assert "ann.example@mail.example" in page  # listed under "Merged into this customer"
    # refused merges: shown with their status, nothing changed
    before = state(app)
    itself = cs.post(f"/admin/customers/{keep_id}/merge", {"from": keep_id})
    assert itself.status_code == 422 and "cannot be merged into itself" in text(itself)
    into_tombstone = cs.post(f"/admin/customers/{dup_id}/merge", {"from": keep_id})
    assert into_tombstone.status_code == 409 and "was itself merged" in text(into_tombstone)
    assert cs.post(f"/admin/customers/{keep_id}/merge", {"from": 999999}).status_code == 404
    assert state(app) == before
    again = cs.post(f"/admin/customers/{keep_id}/merge", {"from": dup_id}, follow_redirects=True)
    assert "was merged into this one already" in text(again)


def test_accounting_sees_customers_but_changes_nothing_and_the_warehouse_sees_none(app, shop, staff_client):
    cid = place(shop, [("MUG", 1)])["customer"]["id"]
    accounting = staff_client("accounting")
    assert accounting.get("/admin/customers").status_code == 200
    page = accounting.get(f"/admin/customers/{cid}")
    assert page.status_code == 200 and "Save customer" not in text(page) and "Merge a duplicate" not in text(page)
    before = state(app)
    assert accounting.post(f"/admin/customers/{cid}", {"notes": "x"}).status_code == 403
    assert accounting.get(f"/admin/customers/{cid}/merge").status_code == 403
    assert accounting.post(f"/admin/customers/{cid}/merge", {"from": cid}).status_code == 403
    assert state(app) == before
    warehouse = staff_client("warehouse")
    assert warehouse.get("/admin/customers").status_code == 403
    assert "Customers" not in re.search(r"<nav.*?</nav>", text(warehouse.get("/admin/")), re.S).group(0)


# ------------------------------------------------------------------ returns


def test_approve_and_reject_a_customers_request_through_the_admin(app, shop, staff_client):
    order = shipped(shop, [("MUG", 3, None)])
    rid = request_return(app, order, [{"sku": "MUG", "quantity": 1}])
    cs, warehouse = staff_client("customer_service"), staff_client("warehouse")
    page = text(cs.get(f"/admin/returns/{rid}"))
    assert ">Approve<" in page and ">Reject<" in page and ">Receive<" not in page
    assert ">Approve<" not in text(warehouse.get(f"/admin/returns/{rid}"))  # the warehouse only receives
    before = state(app)
    assert warehouse.post(f"/admin/returns/{rid}/approve").status_code == 403
    refused = cs.post(f"/admin/returns/{rid}/receive")
    assert refused.status_code == 403  # receiving is the warehouse's
    assert state(app) == before
    resp = cs.post(f"/admin/returns/{rid}/approve")
    assert resp.status_code == 303 and read(app, Return, rid).status == "approved"
    before = state(app)
    again = cs.post(f"/admin/returns/{rid}/approve")
    assert again.status_code == 409 and "allowed next actions: reject, receive" in text(again)
    assert state(app) == before
    # an approved return whose parcel never came: rejected with a reason (required)
    no_reason = cs.post(f"/admin/returns/{rid}/reject", {"reason": " "})
    assert no_reason.status_code == 422 and state(app) == before
    assert cs.post(f"/admin/returns/{rid}/reject", {"reason": "never arrived"}).status_code == 303
    rejected = read(app, Return, rid)
    assert (rejected.status, rejected.rejection_reason) == ("rejected", "never arrived")
    page = text(cs.get(f"/admin/returns/{rid}"))
    assert ">Approve<" not in page and ">Reject<" not in page and "never arrived" in page
    listed = text(cs.get("/admin/returns", query_string={"status": "rejected"}))
    assert f'data-return="{rid}"' in listed
    assert f'data-return="{rid}"' not in text(cs.get("/admin/returns", query_string={"status": "approved"}))


def test_open_a_return_from_the_admin_and_the_warehouse_receives_it_with_conditions(app, shop, staff_client):
    order = shipped(shop, [("MUG", 2, None), ("PHONE", 2, ["P-1", "P-2"])])
    cs, warehouse = staff_client("customer_service"), staff_client("warehouse")
    form = text(cs.get("/admin/returns/new", query_string={"order": order["number"]}))
    assert 'value="P-1"' in form and 'value="P-2"' in form and "2 returnable" in form
    with app.app_context():
        lines = {line.sku: line.id for line in db.session.get(Order, order["id"]).lines}
        db.session.rollback()
    resp = cs.post("/admin/returns", {"order_id": order["id"], f"quantity-{lines['MUG']}": "2",
                                      f"serial-{lines['PHONE']}": "P-2", "reason": "does not work",
                                      "resolution": "refund"})
    assert resp.status_code == 303
    rid = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert read(app, Return, rid).status == "approved"  # opened by staff: approved at once
    assert ">Receive<" not in text(cs.get(f"/admin/returns/{rid}"))
    page = text(warehouse.get(f"/admin/returns/{rid}"))
    assert ">Receive<" in page and ">Approve<" not in page and 'name="damaged_serials"' in page
    # a scanned serial that is not on the return: refused, nothing changed
    before = state(app)
    wrong = warehouse.post(f"/admin/returns/{rid}/receive", {"damaged_serials": "P-1"})
    assert wrong.status_code == 422 and "Not on this return: P-1" in text(wrong)
    assert state(app) == before
    resp = warehouse.post(f"/admin/returns/{rid}/receive", {"damaged_serials": "P-2\n", "damaged-0": "1"})
    assert resp.status_code == 303, text(resp)[:2000]
    received = read(app, Return, rid)
    assert received.status == "resolved"  # refunded at once by the manual provider
    conditions = sorted((g["sku"], g["quantity"], g["condition"]) for g in received.received_lines)
    assert conditions == [("MUG", 1, "damaged"), ("MUG", 1, "resellable"), ("PHONE", 1, "damaged")]
    with app.app_context():
        unit = db.session.execute(select(SerialUnit).where(SerialUnit.serial == "P-2")).scalar_one()
        refunds = db.session.execute(select(Refund).where(Refund.return_id == rid)).scalars().all()
        assert unit.status == "quarantined"
        assert [(r.status, r.amount) for r in refunds] == [("succeeded", 2 * 1290 + 59900)]
        db.session.rollback()
    before = state(app)
    again = warehouse.post(f"/admin/returns/{rid}/receive")
    assert again.status_code == 409 and state(app) == before


def test_an_exchange_is_received_into_its_replacement_order(app, shop, staff_client):
    order = shipped(shop, [("MUG", 2, None)])
    cs, warehouse = staff_client("customer_service"), staff_client("warehouse")
    with app.app_context():
        line_id = db.session.get(Order, order["id"]).lines[0].id
        db.session.rollback()
    resp = cs.post("/admin/returns", {"order_id": order["id"], f"quantity-{line_id}": "1", "reason": "wrong colour",
                                      "resolution": "exchange"})
    rid = int(resp.headers["Location"].rsplit("/", 1)[1])
    refund_field = staff_client("owner").post(f"/admin/returns/{rid}/receive", {"refund_amount": "5"})
    assert refund_field.status_code == 422 and "An exchange refunds nothing." in text(refund_field)
    assert warehouse.post(f"/admin/returns/{rid}/receive", {}).status_code == 303
    exchanged = read(app, Return, rid)
    assert exchanged.status == "resolved" and exchanged.replacement_order_id
    page = text(cs.get(f"/admin/returns/{rid}"))
    assert f'href="/admin/orders/{exchanged.replacement_order_id}"' in page


def test_a_refund_that_fails_at_the_provider_is_retried_with_resolve(app, shop, staff_client, flaky):
    order = shipped(shop, [("MUG", 2, None)], provider="flaky")
    rid = request_return(app, order, [{"sku": "MUG", "quantity": 1}])
    cs, warehouse = staff_client("customer_service"), staff_client("warehouse")
    assert cs.post(f"/admin/returns/{rid}/approve").status_code == 303
    before = state(app)
    assert warehouse.post(f"/admin/returns/{rid}/receive", {"refund_amount": "10,00"}).status_code == 403
    assert state(app) == before  # another amount than the lines' share is customer service's decision
    owner = staff_client("owner")  # receives (returns.receive) and decides refunds (refunds.create)
    flaky.fail_refunds = 1
    failed = owner.post(f"/admin/returns/{rid}/receive", {"refund_amount": "10,00"})
    assert failed.status_code == 502 and "provider down" in text(failed)
    assert read(app, Return, rid).status == "received"  # received; its refund released
    page = text(cs.get(f"/admin/returns/{rid}"))
    assert ">Retry the refund<" in page
    assert warehouse.post(f"/admin/returns/{rid}/resolve").status_code == 403
    assert cs.post(f"/admin/returns/{rid}/resolve").status_code == 303
    resolved = read(app, Return, rid)
    assert (resolved.status, resolved.refund_amount) == ("resolved", 1000)


def test_a_return_of_an_order_not_shipped_is_refused_with_nothing_changed(app, shop, staff_client):
    order = paid(shop, [("MUG", 1)])
    cs = staff_client("customer_service")
    with app.app_context():
        line_id = db.session.get(Order, order["id"]).lines[0].id
        db.session.rollback()
    form = text(cs.get("/admin/returns/new", query_string={"order": order["number"]}))
    assert "Nothing on this order can be returned" in form
    before = state(app)
    resp = cs.post("/admin/returns", {"order_id": order["id"], f"quantity-{line_id}": "1", "reason": "x",
                                      "resolution": "refund"})
    assert resp.status_code == 409 and "only shipped, delivered or completed orders" in text(resp)
    assert state(app) == before
    assert cs.get("/admin/returns/new", query_string={"order": "99999"}).status_code == 404
    assert staff_client("accounting").post("/admin/returns", {"order_id": order["id"]}).status_code == 403
    assert state(app) == before


# ------------------------------------------------------------------ refunds


def test_a_refund_within_what_was_captured_and_one_over_it(app, shop, staff_client):
    order = paid(shop, [("MUG", 2)])  # 25.80 captured
    cs = staff_client("customer_service")
    form = text(cs.get("/admin/refunds/new", query_string={"order": order["number"]}))
    assert 'data-figure="refundable">€25.80<' in form
    resp = cs.post("/admin/refunds", {"order_id": order["id"], "amount": "10.00", "reason": "late delivery"})
    assert resp.status_code == 303
    assert read(app, Order, order["id"]).refunded_total == 1000
    before = state(app)
    over = cs.post("/admin/refunds", {"order_id": order["id"], "amount": "15.81", "reason": "too much"})
    assert over.status_code == 409
    assert "exceeds what can be refunded" in text(over) and 'role="alert"' in text(over)
    assert 'data-figure="refundable">€15.80<' in text(over)
    assert state(app) == before
    for bad in ("abc", "0", "1.234"):
        resp = cs.post("/admin/refunds", {"order_id": order["id"], "amount": bad})
        assert resp.status_code == 422, bad
    assert state(app) == before
    listed = text(staff_client("accounting").get("/admin/refunds"))
    assert "late delivery" in listed and "€10.00" in listed
    assert "Refund an order" not in listed  # accounting views refunds, makes none


def test_refund_roles(app, shop, staff_client):
    order = paid(shop, [("MUG", 1)])
    accounting, warehouse = staff_client("accounting"), staff_client("warehouse")
    before = state(app)
    assert accounting.get("/admin/refunds").status_code == 200
    assert accounting.get("/admin/refunds/new").status_code == 403
    assert accounting.post("/admin/refunds", {"order_id": order["id"], "amount": "1"}).status_code == 403
    assert warehouse.get("/admin/refunds").status_code == 403
    assert warehouse.get("/admin/returns").status_code == 200  # the warehouse sees returns, to receive them
    assert state(app) == before


def test_a_turkish_amount(app, shop, staff_client):
    order = paid(shop, [("MUG", 2)])
    cs = staff_client("customer_service", locale="tr")
    assert cs.post("/admin/refunds", {"order_id": order["id"], "amount": "1.234,50"}).status_code == 409
    assert cs.post("/admin/refunds", {"order_id": order["id"], "amount": "12,50"}).status_code == 303
    assert read(app, Order, order["id"]).refunded_total == 1250
    page = text(cs.get("/admin/refunds"))
    assert "Para iadeleri" in page and "€12,50" in page
    customer = text(cs.get(f"/admin/customers/{order['customer']['id']}"))
    assert "Sipariş geçmişi" in customer and "Müşteriyi kaydet" in customer
