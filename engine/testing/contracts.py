"""Contract test classes: subclass one in your plugin's tests and the kit's tests run against your plugin.

Each class names the fixtures a subclass provides (the object under test, and for channels how to sign a
request); everything else comes from the kit's fixtures (``hookshop_app``, ``hookshop_api``,
``hookshop_orders``, ``hookshop_run_jobs``), so the tests run on SQLite and on PostgreSQL.

* ``PaymentProviderContract`` — ``provider``: pay returns an outcome with a reference; refunds never go
  above the capture; a webhook with a bad signature changes nothing.
* ``CarrierContract`` — ``carrier``: rates in minor units and a real currency; a shipment with a tracking
  number; the label is a PDF; a tracking webhook with a bad signature changes nothing.
* ``SalesChannelContract`` — ``channel_format``, ``channel_secret``, ``order_payload``, ``sign(body, secret)``:
  a signed order comes in once (a replay answers the same order); a bad signature changes nothing.
* ``ExporterContract`` — ``exporter``, ``load(text)``: an order's journal exports and loads with the
  format's own tool.
* ``StageHookContract`` — ``observe(app)``: every stage hook delivered a second time (at least once
  delivery) changes nothing the plugin keeps.
"""

from __future__ import annotations

import io

import pytest

from engine.testing import ConformanceError, check_carrier, check_payment_provider


def _snapshot(app) -> dict:
    """Orders, payments, stock and the inbox: what a webhook with a bad signature must not touch."""
    from sqlalchemy import text

    from engine.db import db

    with app.app_context():
        rows = {table: db.session.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()  # noqa: S608
                for table in ("orders", "payments", "stock_levels", "shipments", "order_events")}
        rows["inbox"] = db.session.execute(text("SELECT * FROM inbox_records ORDER BY 1")).all()
        db.session.remove()
    return rows


def _order_model(app, order_id):
    from engine.services.orders import get_order

    return get_order(order_id)


class PaymentProviderContract:
    """Provide ``provider`` (the registered provider object). Set ``placement`` to what an order body
    needs to be charged at placement (e.g. a test card's ``payment_method``); override
    ``settle(api, order)`` when the money only arrives by the provider's webhook (the default pays with
    ``POST /orders/{id}/pay``)."""

    placement: dict = {}

    @pytest.fixture
    def provider(self):
        raise NotImplementedError("return your payment provider object")

    def settle(self, api, order) -> dict:
        if order["status"] == "paid":
            return order
        resp = api.post(f"/orders/{order['id']}/pay")
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def test_pay_returns_an_outcome_with_a_reference(self, provider, hookshop_app, hookshop_orders):
        order = hookshop_orders.place()
        with hookshop_app.app_context():
            check_payment_provider(provider, _order_model(hookshop_app, order["id"]))

    def test_refunds_never_go_above_the_capture(self, provider, hookshop_api, hookshop_orders):
        order = self.settle(hookshop_api, hookshop_orders.place(payment_provider=provider.name,
                                                                     **self.placement))
        total = order["totals"]["paid"]
        assert total > 0, order
        first = hookshop_api.post(f"/orders/{order['id']}/refunds", {"amount": total - 1})
        assert first.status_code == 200, first.get_json()
        too_much = hookshop_api.post(f"/orders/{order['id']}/refunds", {"amount": 2})
        assert too_much.status_code in (409, 422), too_much.get_json()
        after = hookshop_api.get(f"/orders/{order['id']}").get_json()
        assert after["totals"]["refunded"] == total - 1  # the refused refund changed nothing
        last = hookshop_api.post(f"/orders/{order['id']}/refunds", {"amount": 1})
        assert last.status_code == 200 and last.get_json()["totals"]["refunded"] == total

    def test_a_webhook_with_a_bad_signature_changes_nothing(self, provider, hookshop_app, hookshop_orders):
        if not hasattr(provider, "handle_webhook"):
            pytest.skip("the provider takes no webhook")
        hookshop_orders.place(payment_provider=provider.name)
        before = _snapshot(hookshop_app)
        resp = hookshop_app.test_client().post(f"/api/v1/payments/{provider.name}/webhook", data=b'{"id": "evt_1"}',
                                               content_type="application/json",
                                               headers={"Stripe-Signature": "t=1,v1=00", "X-Signature": "00"})
        assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
        assert _snapshot(hookshop_app) == before


class CarrierContract:
    """Provide ``carrier`` (the registered carrier object)."""

    @pytest.fixture
    def carrier(self):
        raise NotImplementedError("return your carrier object")

    def test_rates_and_a_shipment(self, carrier, hookshop_app, hookshop_orders):
        order = hookshop_orders.place()
        with hookshop_app.app_context():
            check_carrier(carrier, _order_model(hookshop_app, order["id"]))

    def test_an_order_ships_with_a_tracking_number_and_a_pdf_label(self, carrier, hookshop_api, hookshop_orders):
        order = hookshop_orders.advance(hookshop_orders.place(), "packed")
        resp = hookshop_api.post(f"/orders/{order['id']}/ship", {"carrier": carrier.name, "service": carrier.services[0]})
        assert resp.status_code == 200, resp.get_json()
        [shipment] = resp.get_json()["shipments"]
        assert shipment["tracking_number"] and shipment["carrier"] == carrier.name
        label = hookshop_api.get(f"/shipments/{shipment['id']}/label.pdf")
        assert label.status_code == 200 and label.data.startswith(b"%PDF"), label.status_code

    def test_a_tracking_webhook_with_a_bad_signature_changes_nothing(self, carrier, hookshop_app, hookshop_orders):
        if not hasattr(carrier, "handle_tracking"):
            pytest.skip("the carrier takes no tracking webhook")
        hookshop_orders.advance(hookshop_orders.place(), "shipped", carrier=carrier.name)
        before = _snapshot(hookshop_app)
        resp = hookshop_app.test_client().post(f"/api/v1/carriers/{carrier.name}/tracking", json={"status": "delivered"},
                                               headers={"X-Signature": "00", "webhook-signature": "v1,AAAA"})
        assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
        assert _snapshot(hookshop_app) == before


class SalesChannelContract:
    """Provide ``channel_format`` (its name), ``order_payload`` (a dict the platform would send) and
    ``sign(body: bytes, secret) -> headers``; override ``channel_secret``/``wrong_secret`` when the format
    wants secrets of a shape, ``channel_options`` (e.g. a ``sku_map``), ``channel_products`` (the SKUs
    the payload orders, created with stock) and ``channel_currency`` (theirs)."""

    @pytest.fixture
    def channel_secret(self):
        return "kit-channel-secret-0123456789"

    @pytest.fixture
    def wrong_secret(self):
        return "kit-some-other-secret-9876543210"

    @pytest.fixture
    def channel_options(self):
        return {}

    @pytest.fixture
    def channel_products(self):
        return ["KIT-SKU"]

    @pytest.fixture
    def channel_currency(self):
        return "EUR"

    def sign(self, body: bytes, secret: str) -> dict:
        raise NotImplementedError("return the headers your platform signs a delivery with")

    @pytest.fixture
    def channel(self, hookshop_api, hookshop_orders, channel_format, channel_secret, channel_options,
                channel_products, channel_currency):
        for sku in channel_products:
            hookshop_orders.product(sku, price=1000, currency=channel_currency)
        resp = hookshop_api.post("/channels", {"name": "kit", "format": channel_format, "secret": channel_secret,
                                               **channel_options})
        assert resp.status_code == 201, resp.get_json()
        return "kit"

    def _deliver(self, app, channel, body: bytes, headers: dict):
        return app.test_client().post(f"/api/v1/channels/{channel}/orders", data=body, headers=headers,
                                      content_type="application/json")

    def test_a_signed_order_comes_in_once(self, hookshop_app, hookshop_api, channel, channel_secret, order_payload):
        import json

        body = json.dumps(order_payload).encode()
        headers = self.sign(body, channel_secret)
        first = self._deliver(hookshop_app, channel, body, headers)
        assert first.status_code in (200, 201), first.get_json()
        again = self._deliver(hookshop_app, channel, body, headers)
        assert again.status_code in (200, 201) and again.get_json()["id"] == first.get_json()["id"]
        items = hookshop_api.get("/orders").get_json()["items"]
        assert [o["id"] for o in items] == [first.get_json()["id"]] and items[0]["channel"] == channel

    def test_a_bad_signature_changes_nothing(self, hookshop_app, channel, channel_secret, wrong_secret,
                                             order_payload):
        import json

        body = json.dumps(order_payload).encode()
        before = _snapshot(hookshop_app)
        assert self._deliver(hookshop_app, channel, body, self.sign(body, wrong_secret)).status_code == 401
        tampered = body[:-1] + b" }"  # the same JSON, other bytes: the signature no longer matches
        assert self._deliver(hookshop_app, channel, tampered, self.sign(body, channel_secret)).status_code == 401
        assert _snapshot(hookshop_app) == before


class ExporterContract:
    """Provide ``exporter`` and ``load(text)`` (parse the export with the format's own tool and raise on an
    error). Override ``book(api, orders)`` when your journal needs more than a shipped order."""

    @pytest.fixture
    def exporter(self):
        raise NotImplementedError("return your exporter object")

    def load(self, text: str) -> None:
        raise NotImplementedError("load the export with the format's own tool")

    def book(self, api, orders) -> None:
        orders.advance(orders.place([("KIT-SKU", 2)]), "shipped")

    def test_an_orders_journal_exports_and_loads(self, exporter, hookshop_app, hookshop_api, hookshop_orders):
        self.book(hookshop_api, hookshop_orders)
        fh = io.StringIO()
        with hookshop_app.app_context():
            exporter.export(None, None, fh)
        text = fh.getvalue()
        if not text.strip():
            raise ConformanceError(f"exporter {exporter.format!r} wrote nothing for a shipped order")
        self.load(text)


class StageHookContract:
    """Provide ``observe(app)``: what your plugin keeps (rows, messages sent, requests made), comparable
    with ``==``. The test runs an order's whole life, then hands every stage event to the plugin again,
    as the outbox may after a crash: nothing observable may change."""

    plugin_name: str = ""

    def observe(self, app):
        raise NotImplementedError("return what your plugin keeps, comparable with ==")

    def life(self, api, orders) -> None:
        order = orders.advance(orders.place([("KIT-SKU", 1)]), "delivered")
        resp = api.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "KIT-SKU", "quantity": 1}],
                                                             "reason": "kit", "resolution": "refund"})
        assert resp.status_code == 201, resp.get_json()
        assert api.post(f"/returns/{resp.get_json()['id']}/receive", {}).status_code == 200

    def test_stage_hooks_delivered_again_change_nothing(self, hookshop_app, hookshop_api, hookshop_orders,
                                                        hookshop_run_jobs):
        from datetime import timedelta

        from sqlalchemy import select, update

        from engine.db import db, transaction, utcnow
        from engine.retry_queue import TASKS

        assert self.plugin_name, "set plugin_name to your plugin's entry-point name"
        self.life(hookshop_api, hookshop_orders)
        hookshop_run_jobs()
        first = self.observe(hookshop_app)
        with hookshop_app.app_context():
            with transaction():  # as after a crash between the plugin's work and the outbox's bookkeeping
                for task in db.session.execute(select(TASKS.c.id, TASKS.c.payload).where(TASKS.c.kind == "stage_hook")):
                    db.session.execute(update(TASKS).where(TASKS.c.id == task.id).values(
                        status="pending", leased_until=None, payload={**task.payload, "done": []},
                        next_attempt_at=utcnow() - timedelta(seconds=1)))
            db.session.remove()
        assert hookshop_run_jobs(utcnow() + timedelta(seconds=1)) > 0
        assert self.observe(hookshop_app) == first
