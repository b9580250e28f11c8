"""The request schemas are built once per view, not per request, and their one instance serves every thread.

``engine.api.Blueprint.arguments`` makes a schema class an instance at decoration: webargs would build one per
request from the class, and each new instance its Nested fields' schemas (5-6 % of a placement's CPU).
"""

from __future__ import annotations

import threading

import marshmallow as ma
import pytest
from conftest import ApiClient, new_key, order_body, place, product, receive


@pytest.fixture
def built(monkeypatch):
    """Every marshmallow Schema built while the test runs (its class name)."""
    names: list[str] = []
    original = ma.Schema.__init__

    def counting_init(self, *args, **kwargs):
        names.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ma.Schema, "__init__", counting_init)
    return names


def test_no_schema_is_built_per_request(api, built):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 50)
    place(api, [("MUG", 1)], email="first@example.com")  # each view's first request builds its Nested schemas
    assert api.get("/orders?status=placed&limit=5").status_code == 200
    built.clear()

    for number in range(3):
        answer = api.post("/orders", order_body([("MUG", 2)], email=f"c{number}@example.com"),
                          headers={"Idempotency-Key": f"k-{number}"})
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json()["lines"][0]["quantity"] == 2
    listing = api.get("/orders?status=placed&limit=5")
    assert listing.status_code == 200 and len(listing.get_json()["items"]) == 4
    bad = api.post("/orders", {"customer": {"email": "x@example.com"}, "lines": [{"sku": "MUG", "quantity": 0}]})
    assert bad.status_code == 422

    assert built == []


def test_one_schema_instance_validates_each_threads_body_on_its_own(app):
    """Threads share the view's schema: each request gets its own answer and its own errors."""
    api = ApiClient(app.test_client(), new_key(app))
    product(api, "MUG", price=1290)
    errors: dict[int, object] = {}

    def post(number: int) -> None:
        client = ApiClient(app.test_client(), api.key)
        for attempt in range(5):
            # quantity 0 and a different unknown field per thread: the 422 names this thread's field only
            body = {**order_body([("MUG", 0)], email=f"t{number}@example.com"), f"unknown_{number}": attempt}
            answer = client.post("/orders", body)
            found = answer.get_json()
            if answer.status_code != 422 or set(found.get("errors") or ()) != {"lines", f"unknown_{number}"}:
                errors[number] = (answer.status_code, found)
                return

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == {}

