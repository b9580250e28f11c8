"""Adjustments racing placements, receipts and count posts on one product (many threads, both databases):
on_hand stays the ledger's sum, reserved the open reservations, never below reserved; the reconciliation
finds nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import order_body, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select
from test_concurrency import answer, together

from engine.db import db
from engine.models import StockMovement
from engine.services import reconciliation

ROUNDS = 2


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_adjustments_race_placements_and_receipts(app, api, round_):
    product(api, "MUG")
    receive(api, "MUG", 10)

    def buy(i):
        return lambda c: answer(c.post("/orders", order_body([("MUG", 1)], email=f"c{i}@example.com")))

    def lose(i):
        return lambda c: answer(c.post("/stock/adjustments", {"sku": "MUG", "quantity": -1, "reason": "loss",
                                                             "staff": f"s{i}"}))

    def find(i):
        return lambda c: answer(c.post("/stock/adjustments", {"sku": "MUG", "quantity": 1, "reason": "found",
                                                             "staff": f"s{i}"}))

    def get(i):
        return lambda c: answer(c.post("/stock/receipts", {"sku": "MUG", "quantity": 1}))

    jobs = [buy(i) for i in range(8)] + [lose(i) for i in range(8)] + [find(i) for i in range(2)] + \
        [get(i) for i in range(2)]
    results = together(app, api.key, jobs)
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {201, 409}, [body for status, body in results if status not in (201, 409)]
    codes = {body["code"] for status, body in results if status == 409}
    assert codes <= {"insufficient_stock", "below_reserved"}, codes
    placed = sum(1 for status, _ in results[:8] if status == 201)
    lost = sum(1 for status, _ in results[8:16] if status == 201)
    # 14 units at most came in (10 + 2 found + 2 received): what was sold and lost fits in them
    assert placed + lost <= 14 and placed + lost >= 10
    stock = stock_of(api, "MUG")
    assert stock["on_hand"] == 14 - lost and stock["reserved"] == placed and stock["available"] >= 0
    with app.app_context():
        check_stock_invariants()
        assert db.session.execute(select(func.count(StockMovement.id)).where(
            StockMovement.kind == "adjustment")).scalar() == lost + 2
        db.session.rollback()
        assert reconciliation.reconcile()["ok"] is True


def test_count_posts_race_adjustments(app, api):
    """Two counts cannot be open at once; a post racing adjustments of the same product keeps the ledger."""
    product(api, "MUG")
    receive(api, "MUG", 6)
    count = api.post("/stock/counts", {"location": "MAIN", "staff": "cy"}).get_json()
    assert api.post(f"/stock/counts/{count['id']}/scans", {"lines": [{"sku": "MUG", "counted": 4}]}).status_code == 200

    def post_count(c):
        return answer(c.post(f"/stock/counts/{count['id']}/post", {"staff": "cy"}))

    def lose(c):
        return answer(c.post("/stock/adjustments", {"sku": "MUG", "quantity": -1, "reason": "loss", "staff": "ann"}))

    def reopen(c):
        return answer(c.post("/stock/counts", {"location": "MAIN", "staff": "bo"}))

    results = together(app, api.key, [post_count, post_count, lose, lose, reopen])
    posts = [status for status, _ in results[:2]]
    assert sorted(posts) == [200, 409]  # one post; the other finds it posted
    assert all(status == 201 for status, _ in results[2:4])
    # counted 4 is the truth when posted: the losses before it are absorbed, those after it count
    assert 2 <= stock_of(api, "MUG")["on_hand"] <= 4
    assert results[4][0] in (201, 409)
    with app.app_context():
        check_stock_invariants()
        assert reconciliation.reconcile()["ok"] is True
