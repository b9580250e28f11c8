"""The reorder flag (issue #14): placement locks the reorder rules only of products that have a rule for a
location (``stock_levels.has_location_rules``) or a product-wide reorder point, and a rule made while a
placement waits on the stock levels is still seen by it (PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from conftest import order_body, place, product, receive
from sqlalchemy import select
from test_reorder_rules import outbox, put_rules
from test_statement_count import counting

from engine.db import db
from engine.models import Product, StockLevel
from engine.services import reorder


def flags(app, sku):
    with app.app_context():
        rows = db.session.execute(select(StockLevel.location_id, StockLevel.has_location_rules)
                                  .join(Product, Product.id == StockLevel.product_id).where(Product.sku == sku)
                                  .order_by(StockLevel.id)).all()
        db.session.rollback()
        return [bool(flag) for _, flag in rows]


def rule_selects(app, api, lines):
    with counting(app) as statements:
        place(api, lines)
    return [s for s in statements if "FROM reorder_rules" in s]


def test_the_flag_follows_the_products_location_rules(api, app):
    product(api, "TEE", price=1500)
    receive(api, "TEE", 10)
    assert flags(app, "TEE") == [False]
    put_rules(api, "TEE", [{"location": "MAIN", "reorder_point": 2, "reorder_quantity": 6}])
    assert flags(app, "TEE") == [True]
    receive(api, "TEE", 4, location="STORE")  # a new level of a product with a location rule is flagged
    assert flags(app, "TEE") == [True, True]
    put_rules(api, "TEE", [{"reorder_point": 3}])  # only the product-wide rule left: the point says it
    assert flags(app, "TEE") == [False, False]
    receive(api, "TEE", 1, location="BACK")
    assert flags(app, "TEE") == [False, False, False]
    put_rules(api, "TEE", [])
    assert flags(app, "TEE") == [False, False, False]


def test_placement_locks_the_rules_only_of_products_that_may_have_some(api, app):
    for sku in ("MUG", "CAP", "TEE"):
        product(api, sku, price=900)
        receive(api, sku, 50)
    assert rule_selects(app, api, [("MUG", 1), ("CAP", 1)]) == []
    put_rules(api, "TEE", [{"location": "MAIN", "reorder_point": 2}])
    assert len(rule_selects(app, api, [("MUG", 1), ("TEE", 1)])) == 1
    assert rule_selects(app, api, [("MUG", 1)]) == []
    assert api.patch("/products/CAP", {"reorder_point": 5}).status_code == 200  # product-wide: the point
    assert len(rule_selects(app, api, [("CAP", 1)])) >= 1


def test_a_location_rule_still_fires_when_the_product_has_no_product_wide_point(api, app):
    product(api, "TEE", price=1500)
    receive(api, "TEE", 10)
    put_rules(api, "TEE", [{"location": "MAIN", "reorder_point": 4, "reorder_quantity": 6}])
    place(api, [("TEE", 7)])
    assert [(e["sku"], e["available"], e["location"]) for e in outbox(app, "stock_low")] == [("TEE", 3, "MAIN")]


def _waiting_on_a_lock(app) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND query ILIKE '%stock_levels%'")).scalar())


def test_a_rule_made_while_a_placement_waits_on_the_levels_is_seen_by_it(api, app, database, monkeypatch):
    if database != "postgresql":
        pytest.skip("SQLite serialises writers: the placement cannot start while the rules are written")
    product(api, "TEE", price=1500)
    receive(api, "TEE", 10)
    original = reorder.get_rules
    ready, waited = threading.Event(), []

    def slow_get_rules(sku):  # put_rules' last step, inside its transaction: the level locks are held
        ready.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _waiting_on_a_lock(app):
            time.sleep(0.05)
        waited.append(time.monotonic() < deadline)
        return original(sku)

    monkeypatch.setattr(reorder, "get_rules", slow_get_rules)
    answers = {}

    def write_rules():
        answers["rules"] = put_rules(api.__class__(app.test_client(), api.key), "TEE",
                                     [{"location": "MAIN", "reorder_point": 4, "reorder_quantity": 6}])

    writer = threading.Thread(target=write_rules, daemon=True)
    writer.start()
    assert ready.wait(30)
    client = api.__class__(app.test_client(), api.key)
    resp = client.post("/orders", order_body([("TEE", 7)]))  # waits for the rules' transaction
    writer.join(30)
    assert resp.status_code == 201, resp.get_json()
    assert waited == [True], "the placement never waited on the stock levels"
    assert "rules" in answers
    assert flags(app, "TEE") == [True]
    assert [(e["sku"], e["available"], e["location"]) for e in outbox(app, "stock_low")] == [("TEE", 3, "MAIN")]
