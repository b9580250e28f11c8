"""Concurrent requests: no oversell, one effect per Idempotency-Key, invariants under a mix.

Each thread sends its requests through its own test client; every request runs
in its own app context, hence its own session and database connection.
PostgreSQL serializes stock changes with row locks, SQLite with ``BEGIN
IMMEDIATE`` and a busy timeout: both run every test. A ``threading.Barrier``
releases the threads together.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from conftest import ApiClient, new_key, order_body, place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select

from engine.db import db
from engine.models import Customer, IdempotencyRecord, Order, Reservation


@pytest.fixture
def app_config():
    # enough connections for every thread at once (SQLite keeps its own connect_args)
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 40, "max_overflow": 10, "pool_timeout": 60}}


def together(app, key, jobs):
    """Run ``jobs`` (functions taking an ApiClient) in one thread each, released at once by a barrier."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    failures: list = []

    def run(index, job):
        client = ApiClient(app.test_client(), key)
        try:
            barrier.wait(timeout=60)
            results[index] = job(client)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    if failures:
        raise failures[0]
    return results


def answer(resp):
    return resp.status_code, resp.get_json()


def test_no_oversell_of_the_last_units(api, app):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)

    def buy(i):
        return lambda client: answer(client.post("/orders", order_body([("MUG", 1)], email=f"c{i}@example.com")))

    results = together(app, api.key, [buy(i) for i in range(32)])
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 5, 409: 27}, [body for status, body in results if status not in (201, 409)]
    assert {body["code"] for status, body in results if status == 409} == {"insufficient_stock"}
    assert all("MUG" in body["message"] for status, body in results if status == 409)
    assert stock_of(api, "MUG")["on_hand"] == 5
    assert stock_of(api, "MUG")["reserved"] == 5 and stock_of(api, "MUG")["available"] == 0
    placed = sorted(body["id"] for status, body in results if status == 201)
    with app.app_context():
        check_stock_invariants()
        assert sorted(db.session.execute(select(Order.id)).scalars()) == placed
        per_order = dict(db.session.execute(select(Reservation.order_id, func.sum(Reservation.quantity))
                                            .where(Reservation.status == "open").group_by(Reservation.order_id)).all())
        assert per_order == dict.fromkeys(placed, 1)
        db.session.rollback()


def test_one_idempotency_key_one_order(api, app):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 50)
    body = order_body([("MUG", 3)], email="twin@example.com")

    def replay(client):
        return answer(client.post("/orders", body, headers={"Idempotency-Key": "order-4711"}))

    results = together(app, api.key, [replay] * 20)
    assert {status for status, _ in results} == {201}, results
    assert len({body["id"] for _, body in results}) == 1
    assert all(body == results[0][1] for _, body in results)
    assert stock_of(api, "MUG")["reserved"] == 3
    with app.app_context():
        check_stock_invariants()
        assert db.session.execute(select(func.count(Order.id))).scalar() == 1
        assert db.session.execute(select(func.count(Reservation.id))).scalar() == 1
        assert db.session.execute(select(func.count(IdempotencyRecord.id))).scalar() == 1
        assert db.session.execute(select(Customer.order_count)).scalar_one() == 1
        db.session.rollback()

    # the same key with another body is a conflict, also under contention, and creates nothing
    other = order_body([("MUG", 4)], email="twin@example.com")
    results = together(app, api.key, [lambda c: answer(c.post("/orders", other,
                                                               headers={"Idempotency-Key": "order-4711"}))] * 8)
    assert {(status, body["code"]) for status, body in results} == {(409, "idempotency_conflict")}
    assert stock_of(api, "MUG")["reserved"] == 3


def test_receipts_and_orders_at_once_keep_the_invariants(api, app):
    product(api, "MUG", price=1290)
    product(api, "CAP", price=1500, allow_backorder=True)
    receive(api, "MUG", 2)
    receive(api, "CAP", 1)
    # backordered CAP orders wait for stock; some of them are cancelled while receipts arrive
    waiting = [place(api, [("CAP", 2)], email=f"w{i}@example.com") for i in range(6)]
    assert [o["status"] for o in waiting] == ["on_hold"] * 6

    jobs = []
    for i in range(8):
        jobs.append(lambda c: answer(c.post("/stock/receipts", {"sku": "MUG", "quantity": 1})))
        jobs.append(lambda c, i=i: answer(c.post("/orders", order_body([("MUG", 1)], email=f"m{i}@example.com"))))
        jobs.append(lambda c, i=i: answer(c.post("/orders", order_body([("MUG", 1), ("CAP", 1)],
                                                                       email=f"b{i}@example.com"))))
    for _ in range(4):
        jobs.append(lambda c: answer(c.post("/stock/receipts", {"sku": "CAP", "quantity": 2})))
    for order in waiting[::2]:
        jobs.append(lambda c, oid=order["id"]: answer(c.post(f"/orders/{oid}/cancel", {"reason": "too slow"})))

    results = together(app, api.key, jobs)
    unexpected = [(status, body) for status, body in results
                  if status not in (200, 201) and not (status == 409 and body["code"] == "insufficient_stock")]
    assert not unexpected, unexpected
    mug_orders = sum(1 for status, body in results if status == 201 and "lines" in body
                     and any(line["sku"] == "MUG" for line in body["lines"]))
    mug = stock_of(api, "MUG")
    assert mug["on_hand"] == 2 + 8
    assert mug["reserved"] == mug_orders <= 10
    cap = stock_of(api, "CAP")
    assert cap["on_hand"] == 1 + 4 * 2
    with app.app_context():
        check_stock_invariants()
        cancelled = set(db.session.execute(select(Order.id).where(Order.status == "cancelled")).scalars())
        assert cancelled == {o["id"] for o in waiting[::2]}
        leaked = db.session.execute(select(func.count(Reservation.id)).where(
            Reservation.status == "open", Reservation.order_id.in_(cancelled))).scalar()
        assert leaked == 0, "a cancelled order still holds stock"
        db.session.rollback()
    # every CAP unit ordered is reserved or backordered
    listed = api.get("/orders?limit=500").get_json()["items"]
    open_orders = [o for o in listed if o["status"] not in ("cancelled",)]
    backordered = sum(line["backordered"] for o in open_orders for line in o["lines"] if line["sku"] == "CAP")
    ordered = sum(line["quantity"] for o in open_orders for line in o["lines"] if line["sku"] == "CAP")
    assert cap["reserved"] == ordered - backordered
    held = [o for o in open_orders if o["status"] == "on_hold"]
    assert all(any(line["backordered"] for line in o["lines"]) for o in held), "a served order is still held"


def test_one_new_customer_ordering_twice_at_once(api, app):
    """Two channels deliver orders of the same new customer at the same moment (different products)."""
    skus = [f"SKU-{i}" for i in range(8)]
    for sku in skus:
        product(api, sku, price=1000)
        receive(api, sku, 3)

    def buy(sku):
        return lambda client: answer(client.post("/orders", order_body([(sku, 1)], email="new@example.com")))

    results = together(app, api.key, [buy(sku) for sku in skus])
    assert [status for status, _ in results] == [201] * len(skus), results
    assert len({body["customer"]["id"] for _, body in results}) == 1
    customer = api.get(f"/customers/{results[0][1]['customer']['id']}").get_json()
    assert customer["order_count"] == len(skus)
    assert customer["total_spent"] == 1000 * len(skus)


def test_idempotency_keys_are_scoped_per_api_key(api, app):
    """One Idempotency-Key sent at once under six API keys: six orders."""
    product(api, "MUG")
    receive(api, "MUG", 100)
    keys = [new_key(app, name=f"k{i}") for i in range(6)]
    body = order_body([("MUG", 1)])

    def send(key):
        return lambda c: answer(ApiClient(c.client, key).post("/orders", body, headers={"Idempotency-Key": "same"}))

    results = together(app, api.key, [send(key) for key in keys])
    assert [status for status, _ in results] == [201] * len(keys)
    assert len({body["id"] for _, body in results}) == len(keys), "one order per API key"
    assert stock_of(api, "MUG")["reserved"] == len(keys)


def test_customer_statistics_under_concurrent_cancels_and_orders(api, app):
    """One customer's orders are cancelled while the same customer places others: no lost update."""
    skus = [f"SKU-{i}" for i in range(12)]
    for sku in skus:
        product(api, sku, price=1000)
        receive(api, sku, 5)
    first = [place(api, [(sku, 1)], email="regular@example.com") for sku in skus[:6]]
    customer_id = first[0]["customer"]["id"]

    jobs = [lambda c, oid=o["id"]: answer(c.post(f"/orders/{oid}/cancel", {"reason": "changed mind"}))
            for o in first]
    jobs += [lambda c, sku=sku: answer(c.post("/orders", order_body([(sku, 2)], email="regular@example.com")))
             for sku in skus[6:]]
    results = together(app, api.key, jobs)
    assert sorted(status for status, _ in results) == [200] * 6 + [201] * 6, results
    customer = api.get(f"/customers/{customer_id}").get_json()
    assert (customer["order_count"], customer["total_spent"]) == (6, 6 * 2000)
    with app.app_context():
        check_stock_invariants()
