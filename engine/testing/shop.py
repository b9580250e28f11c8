"""The kit's order factory, job runner and frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ADDRESS = {"line1": "1 Test Road", "city": "Berlin", "postal_code": "10115", "country": "DE"}

# the actions that take an order one stage further, and the status each leaves it in
STAGES = (("pay", "paid"), ("pick", "picked"), ("confirm", "confirmed"), ("pack", "packed"),
          ("ship", "shipped"), ("deliver", "delivered"))


class OrderFactory:
    """Orders through the REST API, as a channel or the admin would place them."""

    def __init__(self, api, carrier: str = "generic", service: str = "standard"):
        self.api, self.carrier, self.service = api, carrier, service
        self.products: set[str] = set()

    def product(self, sku: str, price: int = 1000, stock: int = 100, currency: str = "EUR", **fields) -> None:
        """Create ``sku`` (``price`` minor units of ``currency``) with ``stock`` units on hand, once."""
        if sku in self.products:
            return
        resp = self.api.post("/products", {"sku": sku, "name": sku.title(), "price": price, "currency": currency,
                                           "weight_grams": 500, **fields})
        assert resp.status_code in (201, 409), resp.get_json()
        if stock:
            resp = self.api.post("/stock/receipts", {"sku": sku, "quantity": stock})
            assert resp.status_code in (200, 201), resp.get_json()
        self.products.add(sku)

    def place(self, lines=(("MUG", 1),), *, email: str = "kit@example.com", expect: int = 201, headers=None,
              **body) -> dict:
        """Place an order of ``lines`` [(sku, quantity)]; missing products are created with stock."""
        for sku, _ in lines:
            self.product(sku)
        payload = {"customer": {"email": email, "name": "Kit Tester", "shipping_address": dict(ADDRESS)},
                   "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines], **body}
        resp = self.api.post("/orders", payload, headers=headers)
        assert resp.status_code == expect, resp.get_json()
        return resp.get_json()

    def advance(self, order: dict, until: str = "shipped", carrier: str | None = None) -> dict:
        """Take ``order`` through pay, pick, confirm, pack, ship, deliver up to the status ``until``."""
        if until not in dict((status, action) for action, status in STAGES):
            raise ValueError(f"until must be one of {[status for _, status in STAGES]}")
        scans = [line["sku"] for line in order["lines"] for _ in range(line["quantity"])]
        current = order
        for action, status in STAGES:
            if current["status"] in (status, *self._after(status)):
                continue
            body = {"pick": {"scans": scans}, "pack": {"scans": scans},
                    "ship": {"carrier": carrier or self.carrier, "service": self.service}}.get(action, {})
            resp = self.api.post(f"/orders/{order['id']}/{action}", body)
            assert resp.status_code == 200, (action, resp.get_json())
            current = resp.get_json()
            if status == until:
                break
        return current

    @staticmethod
    def _after(status: str) -> list[str]:
        names = [s for _, s in STAGES]
        return names[names.index(status) + 1:] + ["completed"]


def run_jobs(app, now: datetime | None = None) -> int:
    """What ``hookshop worker``'s sweeper does, once, at ``now``: deliver due outbox events, complete due
    follow-ups, run every plugin's ``periodic_tasks``; then wait for the delivery thread. Returns the
    number of outbox events delivered."""
    from engine import jobs
    from engine.db import db

    jobs.drain(app)
    with app.app_context():
        delivered = jobs.relay_due(now)
        jobs.complete_due_followups(now)
        jobs.run_periodic_tasks(now)
        db.session.remove()
    jobs.drain(app)
    return delivered


class Clock:
    """A frozen clock for the whole process (time-machine): ``datetime.now``, ``date.today`` and
    ``time.time`` answer ``now`` until ``advance`` moves it."""

    def __init__(self, start: datetime | None = None):
        try:
            import time_machine
        except ImportError as exc:  # pragma: no cover - the dev extra has it
            raise RuntimeError("the frozen clock needs time-machine: pip install time-machine") from exc
        self.now = start or datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
        self._traveller: time_machine.travel | None = time_machine.travel(self.now, tick=False)
        self._coordinates = self._traveller.start()

    def advance(self, by) -> datetime:
        """Move the clock forward by ``by`` seconds (or a ``timedelta``); returns the new ``now``."""
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        self._coordinates.shift(delta)
        self.now += delta
        return self.now

    def stop(self) -> None:
        if self._traveller is not None:
            self._traveller.stop()
            self._traveller = None
