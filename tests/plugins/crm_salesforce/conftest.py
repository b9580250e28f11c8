"""Fixtures of the crm_salesforce tests: the kit's app (SQLite and PostgreSQL) with the plugin registered and
a loopback stand-in of Salesforce (``fake_salesforce.FakeSalesforce``) behind the real simple-salesforce
client.

This folder is a package (it has ``__init__.py``): a plain ``conftest.py`` here would replace the root
``conftest`` module that other tests import helpers from.
"""

from __future__ import annotations

import pytest

from plugins.crm_salesforce import client

from .fake_salesforce import FakeSalesforce

WEB_ACCOUNT = "001000000000000WEB"
SETTINGS = {
    "SALESFORCE_INSTANCE_URL": "https://shop.my.salesforce.com",
    "SALESFORCE_USERNAME": "sync@shop.example",
    "SALESFORCE_PASSWORD": "s3cret",
    "SALESFORCE_SECURITY_TOKEN": "TOKEN123",
    "SALESFORCE_DEFAULT_ACCOUNT_ID": WEB_ACCOUNT,
    "OUTBOX_RETRY_DELAYS": [0, 0, 0],
}


@pytest.fixture
def fake(monkeypatch):
    """Salesforce on a loopback port; the plugin's client reaches it instead of the internet."""
    server = FakeSalesforce().start()
    monkeypatch.setattr(client, "new_session", server.session)
    yield server
    server.stop()


@pytest.fixture
def crm_settings():
    """Override in a test module: settings besides (or instead of) ``SETTINGS``."""
    return {}


@pytest.fixture
def hookshop_only():
    # the plugin, discovered through its entry point; the kit's order factory ships with the generic carrier
    return ["carrier_generic", "crm_salesforce"]


@pytest.fixture
def hookshop_settings(crm_settings):
    return {**SETTINGS, **crm_settings}


@pytest.fixture
def shop(hookshop_app, hookshop_api, hookshop_orders, fake):
    """The app, its API client, the order factory and the fake, together."""
    return type("Shop", (), {"app": hookshop_app, "api": hookshop_api, "orders": hookshop_orders, "fake": fake})


def records(app, **where) -> list[dict]:
    """The plugin's sync rows (as dicts), oldest first."""
    from sqlalchemy import select

    from engine.plugin_api import db
    from plugins.crm_salesforce.models import SyncRecord

    with app.app_context():
        stmt = select(SyncRecord).order_by(SyncRecord.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(SyncRecord, name) == value)
        rows = [{c.name: getattr(row, c.name) for c in SyncRecord.__table__.columns}
                for row in db.session.execute(stmt).scalars()]
        db.session.remove()
    return rows
