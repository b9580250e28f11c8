"""How many SQL statements a request issues, and that placing orders does not leak memory.

The counts are printed (``pytest -s``) for docs/performance.md. A statement is
one ``cursor.execute`` or one ``executemany`` (SQLAlchemy's
``before_cursor_execute`` fires once for either), the SQLite ``BEGIN
IMMEDIATE`` included; PostgreSQL's implicit ``BEGIN`` is not sent as a
statement by psycopg and so is not counted.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from contextlib import contextmanager

import pytest
from bulk_orders import Spec, insert_orders
from conftest import ApiClient, make_app, new_key, order_body, place, product, receive
from sqlalchemy import event

from engine import hookimpl
from engine.db import db

MAX_PLACEMENT_STATEMENTS = 18
MAX_GROWTH_PER_100_ORDERS = 512_000


@contextmanager
def counting(app, elsewhere: list[str] | None = None):
    """Collect the SQL statements this thread (the request's: the test client runs the app in it)
    sends while the block runs; those of other threads (the delivery thread) go to ``elsewhere``."""
    statements: list[str] = []
    here = threading.get_ident()

    def listener(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split())
        if threading.get_ident() == here:
            statements.append(text)
        elif elsewhere is not None:
            elsewhere.append(text)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def show(label: str, database: str, statements: list[str]) -> None:
    print(f"\n[{database}] {label}: {len(statements)} statements")
    for index, statement in enumerate(statements, 1):
        print(f"  {index:2}. {statement[:160]}")


def _shop(api):
    product(api, "MUG", price=1290, barcode="4006381333948")
    product(api, "CAP", price=1500)
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 1000)
    receive(api, "CAP", 1000)
    receive(api, "PHONE", 3, serials=["P-1", "P-2", "P-3"])


LINES = [("MUG", 2), ("CAP", 1), ("PHONE", 1)]


class Listener:
    """A plugin that listens to order_placed: the delivery thread then really runs."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def order_placed(self, order, event):
        self.seen.append(order.id)


@pytest.mark.parametrize("listening", [False, True], ids=["no-listener", "order_placed-listener"])
def test_placement_statement_count(database, tmp_path, request, listening):
    listener = Listener()
    # with every bundled plugin as installed (channel_webhook and accounting_export listen to stage
    # hooks), plus optionally one more order_placed listener
    # API_KEY_CACHE_SECONDS: the key stays cached however slowly this loaded machine runs the test
    app = make_app(database, tmp_path, request, API_KEY_CACHE_SECONDS=3600,
                   **({"EXTRA_PLUGINS": [("listener", listener)]} if listening else {}))
    try:
        api = ApiClient(app.test_client(), new_key(app))
        _shop(api)
        place(api, [("MUG", 1)], email="old@example.com")  # a returning customer from now on
        relay = "bundled plugins + one more order_placed listener" if listening else "bundled plugins"

        counts = {}
        for label, email, key in (("returning customer", "old@example.com", "k-returning"),
                                  ("new customer", "new@example.com", "k-new")):
            delivery: list[str] = []
            with counting(app, delivery) as statements:  # the client drains: the delivery is counted too
                resp = api.post("/orders", order_body(LINES, email=email, gift=True, coupon="WELCOME10"),
                                headers={"Idempotency-Key": key})
            assert resp.status_code == 201, resp.get_json()
            body = resp.get_json()
            assert [line["sku"] for line in body["lines"]] == ["MUG", "CAP", "PHONE"]
            assert ("repeat" in body["flags"]) == (label == "returning customer")
            # the flags (2 or 3 of them) go into order_flags in one statement
            assert sum(s.startswith("INSERT INTO order_flags") for s in statements) == 1
            show(f"POST /orders, 3 lines, {label}, Idempotency-Key, {relay}", database, statements)
            counts[label] = len(statements)
            # the statements cover the whole request: idempotency record, order, outbox; the API key was
            # looked up by the requests before and is cached (API_KEY_CACHE_SECONDS)
            joined = "\n".join(statements).lower()
            for table in ("idempotency_records", "stock_levels", "customers", "orders", "order_lines",
                          "order_flags", "reservations", "retry_tasks"):
                assert table in joined, f"no statement touched {table}"
            assert "api_keys" not in joined
            # the idempotency record is looked up (a replay) and written once, with its answer
            assert [s.split(" ")[0] for s in statements if "idempotency_records" in s] == ["SELECT", "INSERT"]
            # the stage hooks ran after the request, on the delivery thread: the request wrote their tasks
            # (the outbox) and updated none
            assert not any(s.startswith("UPDATE retry_tasks") for s in statements)
            show("  ... and on the delivery thread", database, delivery)
            assert any(s.startswith("UPDATE retry_tasks") for s in delivery)  # channel_webhook listens
            if listening:
                assert listener.seen[-1] == body["id"]

        with counting(app) as statements:
            replay = api.post("/orders", order_body(LINES, email="new@example.com", gift=True, coupon="WELCOME10"),
                              headers={"Idempotency-Key": "k-new"})
        assert replay.status_code == 201 and replay.get_json()["id"] == body["id"]
        show("POST /orders replayed (same Idempotency-Key)", database, statements)
        assert len(statements) <= 6

        for label, count in counts.items():
            assert count <= MAX_PLACEMENT_STATEMENTS, f"{label}: {count} statements for one placement"
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _many_orders(api, n):
    product(api, "MUG", price=1290)
    product(api, "CAP", price=1500)
    receive(api, "MUG", 1000)
    receive(api, "CAP", 1000)
    ids = []
    for i in range(n):
        ids.append(place(api, [("MUG", 1), ("CAP", 2)], email=f"c{i % 7}@example.com")["id"])
    # give some orders payments and shipments so every relationship of a listed order is loaded
    for oid in ids[-3:]:
        assert api.post(f"/orders/{oid}/pay").status_code == 200
    oid = ids[-1]
    assert api.post(f"/orders/{oid}/pick", {"scans": ["MUG", "CAP", "CAP"]}).status_code == 200
    assert api.post(f"/orders/{oid}/confirm").status_code == 200
    assert api.post(f"/orders/{oid}/pack", {"scans": ["MUG", "CAP", "CAP"]}).status_code == 200
    r = api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"})
    assert r.status_code == 200, r.get_json()
    return ids


def test_listing_has_no_n_plus_one(api, app, database):
    ids = _many_orders(api, 55)
    counts = {}
    for limit in (5, 50):
        with counting(app) as statements:
            resp = api.get(f"/orders?limit={limit}")
        assert resp.status_code == 200
        items = resp.get_json()["items"]
        assert len(items) == limit and items[0]["id"] == ids[-1]
        assert items[0]["shipments"] and items[0]["payments"] and all(len(i["lines"]) == 2 for i in items)
        show(f"GET /orders?limit={limit}", database, statements)
        counts[limit] = len(statements)
    assert counts[50] == counts[5], f"listing grows with the page size: {counts}"
    assert counts[50] <= 8

    with counting(app) as statements:
        resp = api.get(f"/orders?limit=50&cursor={items[-1]['id']}")
    assert resp.status_code == 200 and len(resp.get_json()["items"]) == 5
    assert len(statements) == counts[50]

    with counting(app) as statements:
        resp = api.get(f"/orders/{ids[-1]}")
    body = resp.get_json()
    assert resp.status_code == 200 and body["shipments"] and body["payments"] and len(body["events"]) >= 6
    show("GET /orders/{id} (shipped, with timeline)", database, statements)
    assert len(statements) <= 8


def test_placing_many_orders_does_not_leak(api, app):
    """300 orders: what the last 100 leave allocated stays small.

    Tracing starts after the first 200 (warm caches; tracing every allocation
    makes requests ~4x slower), so the traced memory after 300 is what the last
    100 orders left behind. Keeping every order's ORM object alive costs about
    1.4 MB per 100 orders here, keeping every response body about 0.8 MB; a
    clean run leaves under 100 kB.
    """
    product(api, "MUG", price=1290)
    product(api, "CAP", price=1500)
    receive(api, "MUG", 1000)
    receive(api, "CAP", 1000)

    def place_batch(start, stop):
        for i in range(start, stop):
            resp = api.post("/orders", order_body([("MUG", 1), ("CAP", 2)], email=f"c{i % 25}@example.com"))
            assert resp.status_code == 201, resp.get_json()

    place_batch(0, 200)
    gc.collect()
    tracemalloc.start()
    try:
        after_200, _ = tracemalloc.get_traced_memory()
        place_batch(200, 300)
        gc.collect()
        after_300, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = after_300 - after_200
    print(f"\nmemory left allocated by orders 201-300: {growth / 1e3:.0f} kB")
    assert growth < MAX_GROWTH_PER_100_ORDERS, f"memory grew by {growth} bytes over 100 orders"


LISTINGS = ["flag=gift", "flag=gift&status=paid", "flag=gift&channel=shopify", "status=paid", "channel=shopify",
            "customer={customer}", "", "flag=gift&cursor={deep}"]


def test_listing_statements_do_not_grow_with_the_table(api, app, database):
    """One page of ``GET /orders`` with any filter costs the same statements at 100 and 1,000 orders:
    sparse flags among unflagged orders are found by an index, not by reading orders in batches."""

    def specs(count, start):
        return [Spec(status=("placed", "paid")[i % 4 == 0], channel=("api", "shopify")[i % 3 == 0], customer=i % 2,
                     flags=["gift"] if i % 10 == 0 else []) for i in range(start, start + count)]

    counts = {}
    inserted = 0
    for total in (100, 1000):
        _, customers = insert_orders(app, specs(total - inserted, inserted), customers=2)
        inserted = total
        for listing in LISTINGS:
            query = listing.format(customer=customers[0], deep=total // 2)
            with counting(app) as statements:
                resp = api.get(f"/orders?limit=20&{query}")
            assert resp.status_code == 200, resp.get_json()
            assert resp.get_json()["items"], query
            counts.setdefault(listing, []).append(len(statements))
            if total == 1000 and listing == "flag=gift":
                show("GET /orders?flag=gift&limit=20 at 1,000 orders (100 flagged)", database, statements)
    print(f"\n[{database}] statements per page at 100 and 1,000 orders: {counts}")
    for listing, (small, large) in counts.items():
        assert small == large, f"{listing or 'no filter'}: {small} statements at 100 orders, {large} at 1,000"
        assert large <= 8
