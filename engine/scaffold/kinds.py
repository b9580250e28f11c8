"""What differs per kind of plugin: the module with the carrier/provider/channel/exporter/notifier, its hook
implementations, and the kit's contract test for it. Placeholders: ``$name``, ``$Class``, ``$title``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    module: str  # the module beside __init__.py holding the kind's class
    summary: str
    source: str  # that module
    hooks: tuple[str, ...]  # the hookimpls __init__.py has (sorted)
    register: str  # __init__.py's hookimpls besides plugin_setup
    test: str  # tests/test_contract.py
    only: tuple[str, ...] = ()  # bundled plugins its contract test needs loaded besides itself


CARRIER = Kind(
    module="carrier",
    summary="quotes a flat rate, ships with its own tracking numbers and prints a PDF label.",
    source='''"""$title: a carrier (docs/plugins.md, "The carrier protocol")."""

from __future__ import annotations

import io
from datetime import date, timedelta

from reportlab.lib.pagesizes import A6
from reportlab.pdfgen import canvas

from engine.plugin_api import Rate, ShipmentInfo


class $Class:
    name = "$name"
    services = ["standard"]
    price = 490  # minor units of the order's currency

    def rates(self, order):
        return [Rate(self.name, "standard", self.price, order.currency, date.today() + timedelta(days=3))]

    def create_shipment(self, order, service):
        from $name.models import record_once

        tracking_number = f"{self.name.upper()[:4]}-{order.id:08d}"
        record_once("shipment", tracking_number, order.id)
        return ShipmentInfo(tracking_number=tracking_number, estimated_delivery=date.today() + timedelta(days=3),
                            price=self.price, label_pdf=self.label_pdf(order, tracking_number))

    def label_pdf(self, order, tracking_number) -> bytes:
        out = io.BytesIO()
        page = canvas.Canvas(out, pagesize=A6)
        address = order.shipping_address or {}
        lines = [f"{self.name} - {tracking_number}", address.get("name") or order.customer_name or "",
                 address.get("line1", ""), f"{address.get('postal_code', '')} {address.get('city', '')}",
                 address.get("country", "")]
        for index, text in enumerate(lines):
            page.drawString(20, 380 - 18 * index, text)
        page.showPage()
        page.save()
        return out.getvalue()
''',
    hooks=("plugin_setup", "register_carriers"),
    register='''

@hookimpl
def register_carriers():
    return [$module.$Class()]
''',
    test='''"""The kit's carrier contract, run against $title (SQLite and PostgreSQL)."""

import pytest

from engine.testing.contracts import CarrierContract


class Test$Class(CarrierContract):
    @pytest.fixture
    def carrier(self):
        from $name.carrier import $Class

        return $Class()
''',
)

PAYMENT = Kind(
    module="provider",
    summary="takes payment by invoice: the order is paid at once with a reference, refunds are credit notes.",
    source='''"""$title: a payment provider (docs/plugins.md, "The payment provider protocol")."""

from __future__ import annotations

from engine.plugin_api import PaymentOutcome, RefundOutcome


class $Class:
    name = "$name"

    def pay(self, order, payment_method=None, data=None):
        amount = (data or {}).get("amount") or order.total - order.paid_total
        return PaymentOutcome(status="paid", amount=amount, reference=f"{self.name}-{order.id}")

    def refund(self, payment, amount):
        from $name.models import record_once

        reference = f"{self.name}-refund-{payment.id}-{payment.refunded_amount + amount}"
        record_once("refund", reference, payment.order_id)
        return RefundOutcome(amount=amount, reference=reference)

    def void(self, payment):
        return None  # nothing is held
''',
    hooks=("plugin_setup", "register_payment_providers"),
    register='''

@hookimpl
def register_payment_providers():
    return [$module.$Class()]
''',
    test='''"""The kit's payment provider contract, run against $title (SQLite and PostgreSQL)."""

import pytest

from engine.testing.contracts import PaymentProviderContract


class Test$Class(PaymentProviderContract):
    @pytest.fixture
    def provider(self):
        from $name.provider import $Class

        return $Class()
''',
)

CHANNEL = Kind(
    module="channel",
    summary="takes orders from a marketplace's signed webhook (HMAC-SHA256 of the body, hex).",
    source='''"""$title: a sales channel format (docs/plugins.md, "register_channels")."""

from __future__ import annotations

import hashlib
import hmac


class $Class:
    name = "$name"

    def verify(self, request, secrets):
        offered = request.headers.get("X-Signature", "")
        for secret in secrets:
            expected = hmac.new(secret.encode(), request.get_data(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, offered):
                return None
        return "wrong or missing X-Signature"

    def delivery_id(self, request):
        return request.headers.get("X-Delivery-Id")

    def parse(self, request):
        data = request.get_json()
        return {"external_id": str(data["order_id"]),
                "customer": {"email": data["buyer"]["email"], "name": data["buyer"]["name"],
                             "shipping_address": data["ship_to"]},
                "lines": [{"sku": item["sku"], "quantity": item["qty"], "unit_price": item["price"]}
                          for item in data["items"]]}
''',
    hooks=("plugin_setup", "register_channels"),
    register='''

@hookimpl
def register_channels():
    return [$module.$Class()]
''',
    test='''"""The kit's sales channel contract, run against $title (SQLite and PostgreSQL)."""

import hashlib
import hmac

import pytest

from engine.testing.contracts import SalesChannelContract


class Test$Class(SalesChannelContract):
    @pytest.fixture
    def channel_format(self):
        return "$name"

    @pytest.fixture
    def order_payload(self):
        return {"order_id": 4711, "buyer": {"email": "bo@example.com", "name": "Bo"},
                "ship_to": {"line1": "1 Road", "city": "Berlin", "postal_code": "10115", "country": "DE"},
                "items": [{"sku": "KIT-SKU", "qty": 1, "price": 1000}]}

    def sign(self, body, secret):
        return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
                "X-Delivery-Id": "delivery-1"}
''',
    only=("channel_webhook",),
)

EXPORTER = Kind(
    module="exporter",
    summary="exports the orders booked between two dates as CSV (`hookshop accounting export --format $name`).",
    source='''"""$title: an exporter (docs/plugins.md, "register_exporters")."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, time

from engine.plugin_api import Order, db


class $Class:
    format = "$name"

    def export(self, since, until, fh):
        query = db.select(Order).order_by(Order.id)
        if since is not None:
            query = query.where(Order.created_at >= datetime.combine(since, time.min, UTC))
        if until is not None:
            query = query.where(Order.created_at <= datetime.combine(until, time.max, UTC))
        writer = csv.writer(fh)
        writer.writerow(["number", "date", "currency", "total", "status"])
        for order in db.session.execute(query).scalars():
            writer.writerow([order.number, order.created_at.date().isoformat(), order.currency, order.total,
                             order.status])
''',
    hooks=("plugin_setup", "register_exporters"),
    register='''

@hookimpl
def register_exporters():
    return [$module.$Class()]
''',
    test='''"""The kit's exporter contract, run against $title (SQLite and PostgreSQL)."""

import csv
import io

import pytest

from engine.testing.contracts import ExporterContract


class Test$Class(ExporterContract):
    @pytest.fixture
    def exporter(self):
        from $name.exporter import $Class

        return $Class()

    def load(self, text):
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and all(int(row["total"]) > 0 and len(row["currency"]) == 3 for row in rows)
''',
    only=("accounting_export",),
)

NOTIFIER = Kind(
    module="notifier",
    summary="tells another system about shipments and deliveries (here: a log line), once per stage event.",
    source='''"""$title: a notifier on stage hooks. Stage hooks are delivered at least once, after commit: each
call is recorded under its outbox event's id first, so a second delivery does nothing."""

from __future__ import annotations

import logging

log = logging.getLogger("hookshop.$name")


def notify(hook: str, order, event) -> bool:
    from $name.models import record_once

    if not record_once(hook, str(event["id"]), order.id):
        return False  # delivered before
    log.info("%s: order %s is %s", hook, order.number, order.status)
    return True
''',
    hooks=("order_delivered", "order_shipped", "plugin_setup"),
    register='''

@hookimpl
def order_shipped(order, shipment, event):
    notifier.notify("order_shipped", order, event)


@hookimpl
def order_delivered(order, event):
    notifier.notify("order_delivered", order, event)
''',
    test='''"""The kit's stage hook contract, run against $title (SQLite and PostgreSQL)."""

from sqlalchemy import text

from engine.testing.contracts import StageHookContract


class Test$Class(StageHookContract):
    plugin_name = "$name"

    def observe(self, app):
        from engine.plugin_api import db

        with app.app_context():
            rows = db.session.execute(text("SELECT source, key, order_id FROM ${name}_events ORDER BY id")).all()
            db.session.remove()
        assert [row[0] for row in rows] == ["order_shipped", "order_delivered"]
        return [tuple(row) for row in rows]
''',
)

KINDS = {"carrier": CARRIER, "payment": PAYMENT, "channel": CHANNEL, "exporter": EXPORTER, "notifier": NOTIFIER}
