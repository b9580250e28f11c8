"""What each stage posts: balanced entries, tax split out of gross prices, reversals, idempotency,
and the database refusing unbalanced or edited entries."""

from __future__ import annotations

import pytest
from conftest import make_app, place, product, receive
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import plugins.accounting_export as plugin
from engine import hookimpl, jobs
from engine.db import db, transaction, utcnow
from engine.models import Order, Payment, Return, Shipment
from engine.services import payments
from engine.services.payments import PaymentOutcome, RefundOutcome

from .helpers import by_account, check_books, entries, event_of, order_balances, walk

RECV = "Assets:Receivables:Customers"
CLEARING = "Assets:Clearing:Manual"


def test_a_confirmed_sale_splits_the_tax_per_rate(shop, app):
    order = place(shop, [("MUG", 2), ("BOOK-TALE", 1)], coupon="WELCOME10")
    assert order["totals"]["total"] == 3942  # 2380 + 2000 - 10 %
    walk(shop, order, "confirmed")
    with app.app_context():
        payment, sale = entries(order["id"])
        assert payment["kind"] == "payment" and by_account(payment["postings"]) == {
            (CLEARING, None): 3942, (RECV, None): -3942}
        assert sale["kind"] == "sale"
        # 19 %: 2380 gross, 238 discount -> net 2000, discount net 200, VAT 342 on 1800
        # 7 %: 2000 gross, 200 discount -> net 1869, discount net 187, VAT 118 on 1682
        assert by_account(sale["postings"]) == {
            (RECV, None): 3942,
            ("Income:Sales", "19"): -2000, ("Income:Discounts", "19"): 200, ("Liabilities:VAT:19", "19"): -342,
            ("Income:Sales", "7"): -1869, ("Income:Discounts", "7"): 187, ("Liabilities:VAT:7", "7"): -118,
        }
        assert order_balances(order["id"]) == {CLEARING: 3942, "Income:Sales": -3869, "Income:Discounts": 387,
                                               "Liabilities:VAT:19": -342, "Liabilities:VAT:7": -118}
        check_books()


def test_a_zero_rate_product_and_a_shipped_order(shop, app):
    product(shop, "GIFT-CARD", price=5000)
    receive(shop, "GIFT-CARD", 3)
    order = place(shop, [("GIFT-CARD", 1), ("MUG", 1)])
    walk(shop, order, "shipped")
    with app.app_context():
        kinds = [e["kind"] for e in entries(order["id"])]
        assert kinds == ["payment", "sale", "shipment"]
        sale = entries(order["id"], "sale")[0]
        assert by_account(sale["postings"]) == {(RECV, None): 6190, ("Income:Sales", "0"): -5000,
                                                ("Income:Sales", "19"): -1000, ("Liabilities:VAT:19", "19"): -190}
        shipment = entries(order["id"], "shipment")[0]
        cogs = {(p["account"], p["sku"]): (p["amount"], p["quantity"]) for p in shipment["postings"]}
        # MUG at its unit cost 4.00; the gift card has no cost: nothing posted, a cost gap recorded
        assert cogs[("Expenses:COGS", "MUG")] == (400, 1) and cogs[("Assets:Inventory", "MUG")] == (-400, -1)
        assert ("Expenses:COGS", "GIFT-CARD") not in cogs
        price = db.session.get(Shipment, db.session.get(Order, order["id"]).shipments[0].id).price
        assert price > 0 and cogs[("Expenses:Shipping", None)] == (price, None)
        assert cogs[("Liabilities:Payable:Carriers", None)] == (-price, None)
    report = shop.get("/accounting/reports/inventory").get_json()
    gift = next(p for p in report["products"] if p["sku"] == "GIFT-CARD")
    assert gift["unvalued_units"] == 1 and gift["unit_cost"] is None and "GIFT-CARD" in report["products_without_cost"]


def test_stage_hooks_delivered_again_post_nothing_new(shop, app):
    order = place(shop, [("MUG", 1), ("CAP", 2)])
    walk(shop, order, "shipped")
    refunded = shop.post(f"/orders/{order['id']}/refunds", {"amount": 500, "reason": "scratched"})
    assert refunded.status_code == 200, refunded.get_json()
    with app.app_context():
        before = entries()
        o = db.session.get(Order, order["id"])
        paid, confirmed = event_of(o.id, "order_paid"), event_of(o.id, "order_confirmed")
        shipped, refund = event_of(o.id, "order_shipped"), event_of(o.id, "refund_issued")
        for _ in range(2):  # at least once: a second (and third) delivery of every event
            plugin.order_paid(order=o, event=paid)
            plugin.order_confirmed(order=o, event=confirmed)
            plugin.order_shipped(order=o, shipment=o.shipments[0], event=shipped)
            plugin.refund_issued(order=o, payment=o.payments[0], amount=500, event=refund)
        assert entries() == before
        assert [e["kind"] for e in before] == ["payment", "sale", "shipment", "refund"]
        assert {e["event_id"] for e in before if e["kind"] != "payment"} == {confirmed["id"], shipped["id"], refund["id"]}


def test_a_refund_after_confirmation_is_a_credit_note(shop, app):
    order = place(shop, [("MUG", 2), ("BOOK-TALE", 1)])  # 2380 at 19 %, 2000 at 7 %
    walk(shop, order, "delivered")
    resp = shop.post(f"/orders/{order['id']}/refunds", {"amount": 1000, "reason": "goodwill"})
    assert resp.status_code == 200
    with app.app_context():
        refund = entries(order["id"], "refund")[0]
        split = by_account(refund["postings"])
        # the money leaves clearing; the credit follows the sale's composition (54 % at 19 %, 46 % at 7 %)
        assert split[(CLEARING, None)] == -1000 and (RECV, None) not in split
        assert sum(v for (acc, _), v in split.items() if acc.startswith(("Income:Refunds", "Liabilities:VAT"))) == 1000
        # 1000 of 4380 over net 2000 / VAT 380 at 19 % and net 1869 / VAT 131 at 7 %, largest remainders
        assert split == {(CLEARING, None): -1000, ("Income:Refunds", "19"): 456, ("Liabilities:VAT:19", "19"): 87,
                         ("Income:Refunds", "7"): 427, ("Liabilities:VAT:7", "7"): 30}
        balances = order_balances(order["id"])
        assert balances[CLEARING] == 4380 - 1000 and RECV not in balances
        check_books()


def test_cancelling_a_confirmed_order_reverses_everything(shop, app):
    order = place(shop, [("MUG", 1), ("BOOK-TALE", 2)], coupon="WELCOME10")
    walk(shop, order, "confirmed")
    assert shop.post(f"/orders/{order['id']}/refunds", {"amount": 700}).status_code == 200  # a partial refund first
    resp = shop.post(f"/orders/{order['id']}/cancel", {"reason": "customer changed their mind"})
    assert resp.status_code == 200, resp.get_json()
    with app.app_context():
        assert [e["kind"] for e in entries(order["id"])] == ["payment", "sale", "refund", "refund", "cancellation"]
        # the sale and the credit notes are reversed, the money went back: every account of the order is zero
        assert order_balances(order["id"]) == {}
        check_books()


def test_cancelling_before_confirmation_books_no_revenue(shop, app):
    order = place(shop, [("MUG", 3)])
    assert shop.post(f"/orders/{order['id']}/pay", {"amount": 1000}).status_code == 200  # a part payment
    assert shop.post(f"/orders/{order['id']}/cancel", {}).status_code == 200
    with app.app_context():
        # the part payment never completed the order (no order_paid): the refund books it first
        assert [e["kind"] for e in entries(order["id"])] == ["payment", "refund"]
        assert order_balances(order["id"]) == {}
        refund = entries(order["id"], "refund")[0]
        assert by_account(refund["postings"]) == {(RECV, None): 1000, (CLEARING, None): -1000}


def test_a_return_puts_units_back_at_the_cost_they_left_with(shop, app):
    order = place(shop, [("MUG", 2)])
    walk(shop, order, "delivered")
    receive(shop, "MUG", 10, unit_cost=550)  # the product's cost changes after the shipment
    ret = shop.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "broken",
                                                       "resolution": "refund"}).get_json()
    received = shop.post(f"/returns/{ret['id']}/receive", {})
    assert received.status_code == 200 and received.get_json()["status"] == "resolved"
    with app.app_context():
        back = entries(order["id"], "return")[0]
        assert by_account(back["postings"]) == {("Assets:Inventory", None): 400, ("Expenses:COGS", None): -400}
        assert [p["quantity"] for p in back["postings"]] == [1, -1]
        refund = entries(order["id"], "refund")[0]
        assert by_account(refund["postings"])[(CLEARING, None)] == -1190
        # net: one mug sold (COGS 400), one refunded as a credit note
        balances = order_balances(order["id"])
        assert balances["Expenses:COGS"] == 400 and balances["Assets:Inventory"] == -400
        assert balances["Income:Refunds"] == 1000 and balances["Income:Sales"] == -2000
        check_books()


def test_an_exchange_ships_the_replacement_at_cost(shop, app):
    order = place(shop, [("CAP", 1)])
    walk(shop, order, "delivered")
    ret = shop.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "CAP", "quantity": 1}], "reason": "size",
                                                       "resolution": "exchange"}).get_json()
    done = shop.post(f"/returns/{ret['id']}/receive", {}).get_json()
    replacement = shop.get(f"/orders/{done['replacement_order_id']}").get_json()
    assert replacement["status"] == "paid" and replacement["totals"]["total"] == 0
    walk_from_paid = {**replacement}
    for step, body in (("pick", {"scans": ["CAP"]}), ("confirm", {}), ("pack", {"scans": ["CAP"]}),
                       ("ship", {"carrier": "generic", "service": "standard"})):
        assert shop.post(f"/orders/{walk_from_paid['id']}/{step}", body).status_code == 200
    with app.app_context():
        # nothing to sell or pay on the replacement, but its unit leaves inventory
        kinds = [e["kind"] for e in entries(replacement["id"])]
        assert kinds == ["shipment"]
        cogs = by_account(entries(replacement["id"], "shipment")[0]["postings"])
        assert cogs[("Expenses:COGS", None)] == 600
        check_books()
    receipt = shop.get(f"/accounting/orders/{replacement['id']}/receipt")
    assert receipt.status_code == 200 and receipt.get_json()["total"] == 0


class FeeProvider:
    """Card payments with a fee; authorisation first, capture later (like Stripe with manual capture)."""

    name = "feecard"

    def __init__(self):
        self.authorize_only = False

    def pay(self, order, payment_method=None, data=None):
        amount = (data or {}).get("amount") or order.total - order.paid_total
        status = "authorized" if self.authorize_only else "paid"
        return PaymentOutcome(status=status, amount=amount, reference=f"fc-{order.id}", fee=35 + amount // 50)

    def refund(self, payment, amount):
        return RefundOutcome(amount=amount, reference=f"fc-r-{payment.id}-{payment.refunded_amount}")

    def void(self, payment):
        return None


class FeePlugin:
    def __init__(self):
        self.provider = FeeProvider()

    @hookimpl
    def register_payment_providers(self):
        return [self.provider]


@pytest.fixture
def fee_app(database, tmp_path, request):
    extra = FeePlugin()
    app = make_app(database, tmp_path, request, EXTRA_PLUGINS=[("feecard", extra)],
                   ACCOUNTING_ACCOUNTS={"clearing:feecard": "Assets:Clearing:CardsInc"})
    app.fee_plugin = extra
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_fees_and_captures_of_another_provider(fee_app, database):
    from conftest import ApiClient, new_key

    api = ApiClient(fee_app.test_client(), new_key(fee_app))
    product(api, "MUG", price=1190, unit_cost=400)
    receive(api, "MUG", 5)
    fee_app.fee_plugin.provider.authorize_only = True
    order = place(api, [("MUG", 2)], payment_provider="feecard")
    assert order["payment_status"] == "authorized"
    with fee_app.app_context():
        assert entries(order["id"]) == []  # an authorisation moves no money
        payments.apply_payment(order["id"], "feecard", PaymentOutcome(status="paid", amount=2380,
                                                                       reference=f"fc-{order['id']}", fee=82))
        assert jobs.drain(fee_app)  # had it fired a stage hook, the delivery thread would have run it by now
        # the capture fires no stage hook (order_paid came with the authorisation): the periodic task books it
        assert entries(order["id"]) == []
        jobs.run_periodic_tasks(utcnow())
        payment, fee = entries(order["id"])
        assert by_account(payment["postings"]) == {("Assets:Clearing:CardsInc", None): 2380, (RECV, None): -2380}
        assert fee["kind"] == "fee" and by_account(fee["postings"]) == {
            ("Expenses:PaymentFees", None): 82, ("Assets:Clearing:CardsInc", None): -82}
        check_books()


def test_cancel_delivered_before_confirm_still_nets_to_zero(database, tmp_path, request):
    """Stage hooks may arrive in any order (a retried event comes after later ones): with the plugin
    off while the order moves, its hooks are then called in reverse order; the books still net to zero."""
    app = make_app(database, tmp_path, request, PLUGINS_DISABLED=["accounting_export"])
    try:
        from conftest import ApiClient, new_key

        api = ApiClient(app.test_client(), new_key(app))
        product(api, "MUG", price=1190, unit_cost=400)
        receive(api, "MUG", 5)
        order = place(api, [("MUG", 2)])
        walk(api, order, "confirmed")
        assert api.post(f"/orders/{order['id']}/refunds", {"amount": 300}).status_code == 200
        assert api.post(f"/orders/{order['id']}/cancel", {}).status_code == 200
        with app.app_context():
            o = db.session.get(Order, order["id"])
            paid = db.session.get(Payment, o.payments[0].id)
            events = {hook: event_of(o.id, hook) for hook in ("order_paid", "order_confirmed", "order_cancelled")}
            from engine import outbox

            refunds = outbox.events(hook="refund_issued")
            assert len(refunds) == 2
            plugin.order_cancelled(order=o, event=events["order_cancelled"])
            for ev in reversed(refunds):
                plugin.refund_issued(order=o, payment=paid, amount=ev.payload["amount"], event={
                    "id": ev.id, "hook": ev.hook, "created_at": ev.created_at.isoformat(), "payload": ev.payload})
            plugin.order_confirmed(order=o, event=events["order_confirmed"])
            plugin.order_paid(order=o, event=events["order_paid"])
            assert sorted(e["kind"] for e in entries(o.id)) == ["cancellation", "payment", "refund", "refund", "sale"]
            assert order_balances(o.id) == {}
            check_books()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_stock_receipts_are_posted_by_the_periodic_task(api, app):
    product(api, "MUG", price=1190)
    receive(api, "MUG", 10, unit_cost=400)
    receive(api, "MUG", 5)  # no new cost: the product's cost stays 4.00
    product(api, "LOOSE", price=100)
    receive(api, "LOOSE", 3)  # never costed: a cost gap
    with app.app_context():
        assert jobs.run_periodic_tasks(utcnow()) == []
        assert jobs.run_periodic_tasks(utcnow()) == []  # a second round finds nothing new
        receipts = entries(kind="stock_receipt")
        assert [by_account(e["postings"]) for e in receipts] == [
            {("Assets:Inventory", None): 4000, ("Liabilities:Payable:GoodsReceived", None): -4000},
            {("Assets:Inventory", None): 2000, ("Liabilities:Payable:GoodsReceived", None): -2000}]
    report = api.get("/accounting/reports/inventory").get_json()
    mug = next(p for p in report["products"] if p["sku"] == "MUG")
    assert mug["valuation"] == mug["account_value"] == 6000 and mug["difference"] == 0
    loose = next(p for p in report["products"] if p["sku"] == "LOOSE")
    assert loose["unvalued_units"] == 3 and report["unposted_stock_movements"] == 0
    assert report["products_without_cost"] == ["LOOSE"]


def _raw(sql: str, **params):
    db.session.execute(text(sql), params)


POSTING = ("INSERT INTO accounting_export_postings (entry_id, line_no, account, role, amount, currency) "
           "VALUES (:e, :n, :a, 'test', :amt, 'EUR')")
ENTRY = ("INSERT INTO accounting_export_entries (id, uid, source_key, kind, booking_date, description, created_at) "
         "VALUES (:e, :u, :u, 'test', '2026-01-05', 'written by hand', CURRENT_TIMESTAMP)")


def _commit_raw(statements):
    try:
        with transaction():
            for sql, params in statements:
                _raw(sql, **params)
    except DBAPIError as exc:
        db.session.rollback()
        return str(exc.orig)
    return None


def test_the_database_refuses_unbalanced_and_edited_entries(app):
    with app.app_context():
        good = [(POSTING, {"e": 900, "n": 1, "a": "Assets:Bank:Checking", "amt": 1000}),
                (POSTING, {"e": 900, "n": 2, "a": "Income:Sales", "amt": -1000}), (ENTRY, {"e": 900, "u": "u900"})]
        assert _commit_raw(good) is None
        unbalanced = [(POSTING, {"e": 901, "n": 1, "a": "Assets:Bank:Checking", "amt": 1000}),
                      (POSTING, {"e": 901, "n": 2, "a": "Income:Sales", "amt": -999}), (ENTRY, {"e": 901, "u": "u901"})]
        assert "balance" in _commit_raw(unbalanced) or "sum to zero" in _commit_raw(unbalanced)
        single = [(POSTING, {"e": 902, "n": 1, "a": "Assets:Bank:Checking", "amt": 1000}), (ENTRY, {"e": 902, "u": "x"})]
        assert _commit_raw(single) is not None
        header_only = [(ENTRY, {"e": 903, "u": "u903"})]
        assert _commit_raw(header_only) is not None
        orphans = [(POSTING, {"e": 904, "n": 1, "a": "Assets:Bank:Checking", "amt": 5}),
                   (POSTING, {"e": 904, "n": 2, "a": "Income:Sales", "amt": -5})]
        assert _commit_raw(orphans) is not None  # postings whose entry never comes
        added = [(POSTING, {"e": 900, "n": 3, "a": "Assets:Bank:Checking", "amt": 7}),
                 (POSTING, {"e": 900, "n": 4, "a": "Income:Sales", "amt": -7})]
        assert "immutable" in _commit_raw(added)  # even balanced lines cannot join a posted entry
        for sql in ("UPDATE accounting_export_postings SET amount = amount + 1 WHERE entry_id = 900",
                    "UPDATE accounting_export_entries SET description = 'edited' WHERE id = 900",
                    "DELETE FROM accounting_export_postings WHERE entry_id = 900",
                    "DELETE FROM accounting_export_entries WHERE id = 900"):
            assert "immutable" in _commit_raw([(sql, {})]), sql
        assert [e["id"] for e in entries()] == [900]
        assert by_account(entries()[0]["postings"]) == {("Assets:Bank:Checking", None): 1000,
                                                        ("Income:Sales", None): -1000}


def test_bad_settings_disable_the_plugin_with_a_reason(tmp_path, request):
    app = make_app("sqlite", tmp_path, request, ACCOUNTING_TAX_RATE="nineteen",
                   ACCOUNTING_ACCOUNTS='{"sales": "Revenue:Sales"}')
    try:
        with app.app_context():
            from engine.plugins import registry

            info = next(i for i in registry().infos if i.name == "accounting_export")
            assert not info.enabled and "HOOKSHOP_ACCOUNTING_" in info.reason
    finally:
        with app.app_context():
            db.engine.dispose()


def test_returns_without_restock_post_no_inventory(shop, app):
    order = place(shop, [("MUG", 1)])
    walk(shop, order, "delivered")
    ret = shop.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "lost",
                                                       "resolution": "refund"}).get_json()
    assert shop.post(f"/returns/{ret['id']}/receive", {"restock": False}).status_code == 200
    with app.app_context():
        assert db.session.get(Return, ret["id"]).status == "resolved"
        assert entries(order["id"], "return") == []
        assert order_balances(order["id"])["Expenses:COGS"] == 400  # the unit is written off
        check_books()


def test_the_plugin_keeps_the_hook_contracts(api):
    from engine.testing import check_plugin

    assert check_plugin(plugin) == ["admin_order_panels", "admin_screens", "order_cancelled", "order_confirmed",
                                    "order_documents", "order_paid", "order_shipped", "periodic_tasks", "plugin_setup", "refund_issued", "register_blueprints",
                                    "register_commands", "register_exporters", "register_task_kinds", "return_received"]
    listed = {p["name"]: p for p in api.get("/plugins").get_json()}["accounting_export"]
    assert listed["enabled"] and "order_confirmed" in listed["hooks"]
