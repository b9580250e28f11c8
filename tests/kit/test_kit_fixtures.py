"""The kit's own fixtures, used as a plugin author would (both databases)."""

from datetime import timedelta

import pytest


def test_the_order_factory_and_the_hook_recorder(hookshop_orders, hook_recorder):
    order = hookshop_orders.advance(hookshop_orders.place([("MUG", 2)]), "delivered")
    assert order["status"] in ("delivered", "completed")
    assert hook_recorder.hooks()[:8] == ["order_placed", "order_paid", "order_picked", "order_confirmed",
                                         "order_packed", "order_shipped", "order_delivered", "order_completed"]
    [shipped] = hook_recorder.of("order_shipped")
    assert shipped["order"]["id"] == order["id"] and shipped["shipment"]["tracking_number"]
    assert shipped["event"]["payload"]["order_id"] == order["id"]
    hook_recorder.clear()
    assert hook_recorder.calls == []


def test_run_jobs_retries_a_hook_that_failed(hookshop_orders, hook_recorder, hookshop_run_jobs):
    from engine.db import utcnow

    hook_recorder.fail["order_placed"] = 1
    order = hookshop_orders.place()
    assert len(hook_recorder.of("order_placed")) == 1  # the first attempt raised; the order stands
    assert hookshop_run_jobs() == 0  # not due yet: the first retry waits OUTBOX_RETRY_DELAYS[0]
    assert hookshop_run_jobs(utcnow() + timedelta(hours=1)) == 1
    assert [c["order"]["id"] for c in hook_recorder.of("order_placed")] == [order["id"]] * 2


def test_the_frozen_clock(hookshop_clock, hookshop_orders, hookshop_api):
    from engine.db import utcnow

    start = hookshop_clock.now
    assert utcnow() == start
    first = hookshop_orders.place()
    hookshop_clock.advance(3600)
    second = hookshop_orders.place()
    assert utcnow() == start + timedelta(hours=1)
    assert first["created_at"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    assert second["created_at"].startswith((start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))


class TestOnlyTheNamedPlugins:
    @pytest.fixture
    def hookshop_only(self):
        return ["carrier_generic"]

    def test_the_others_are_not_loaded(self, hookshop_api):
        plugins = {p["name"]: p for p in hookshop_api.get("/plugins").get_json()}
        assert plugins["carrier_generic"]["enabled"] and plugins["hook_recorder"]["enabled"]
        for name in ("channel_webhook", "accounting_export", "notify_email"):
            assert plugins[name]["enabled"] is False and "ALLOWED" in plugins[name]["reason"]
