"""The signed tracking webhook: events on the timeline once, delivery and the follow-up, replays,
events out of order, bad signatures and bad bodies (nothing changes)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ApiClient, make_app, new_key
from sqlalchemy import func, select

from engine import hookimpl, jobs
from engine.db import db
from engine.models import InboxRecord
from plugins.carrier_generic.models import TrackingEvent
from plugins.carrier_generic.tracking import sign

from .conftest import OTHER_SECRET, SECRET, kinds, place_to, post_event, ship, shop


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def order_delivered(self, order, event):
        self.calls.append(("order_delivered", order.id, event["payload"]["source"], event["payload"]["occurred_at"]))

    @hookimpl
    def order_completed(self, order, event):
        self.calls.append(("order_completed", order.id))


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def app_config(recorder):
    return {"CARRIER_GENERIC_TRACKING_SECRET": SECRET, "FOLLOWUP_DAYS": 2, "EXTRA_PLUGINS": [("rec", recorder)],
            "PUBLIC_URL": "https://shop.example.com/"}


def at(hours: float) -> str:
    return (datetime(2026, 11, 2, 8, 0, tzinfo=UTC) + timedelta(hours=hours)).isoformat()


@pytest.fixture
def shipped(api):
    shop(api)
    order = ship(api, place_to(api, [("MUG", 1)])["id"])
    return order["id"], order["shipments"][0]


def event(shipment, status, hours, location=None):
    body = {"tracking_number": shipment["tracking_number"], "status": status, "occurred_at": at(hours)}
    if location is not None:
        body["location"] = location
    return body


def counts(app):
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(TrackingEvent)),
                db.session.scalar(select(func.count()).select_from(InboxRecord)))


def test_events_go_on_the_timeline_and_delivery_starts_the_follow_up(api, app, shipped, recorder):
    oid, shipment = shipped
    client = app.test_client()
    for status, hours, where in (("in_transit", 1, "Leipzig hub"), ("exception", 5, "Leipzig hub"),
                                 ("out_for_delivery", 20, "Berlin"), ("delivered", 26, "Berlin")):
        resp = post_event(client, event(shipment, status, hours, where))
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["late"] is False and resp.get_json()["duplicate"] is False
    order = api.get(f"/orders/{oid}").get_json()
    assert order["status"] == "delivered"
    assert kinds(order)[-5:] == ["order_shipped", "tracking_in_transit", "tracking_exception",
                                 "tracking_out_for_delivery", "order_delivered"]
    note = order["events"][-4]
    assert note["message"] == (f"generic: in transit at Leipzig hub, 2026-11-02 09:00 UTC "
                               f"(tracking {shipment['tracking_number']})")
    assert note["data"]["location"] == "Leipzig hub" and note["data"]["status"] == "in_transit"
    delivered = order["events"][-1]
    assert delivered["message"] == "delivered (reported by generic)"
    assert delivered["data"] == {"source": "generic", "occurred_at": "2026-11-03T10:00:00+00:00"}
    assert recorder.calls == [("order_delivered", oid, "generic", "2026-11-03T10:00:00+00:00")]
    assert order["shipments"][0]["status"] == "delivered"

    # the follow-up: FOLLOWUP_DAYS after delivery the order is completed
    with app.app_context():
        jobs.complete_due_followups()
        assert api.get(f"/orders/{oid}").get_json()["status"] == "delivered"
        jobs.complete_due_followups(datetime.now(UTC) + timedelta(days=2, minutes=1))
    assert api.get(f"/orders/{oid}").get_json()["status"] == "completed"
    assert recorder.calls[-1] == ("order_completed", oid)

    # the shipment's tracking, by the API and on the public tracking page
    tracking = api.get(f"/shipments/{shipment['id']}/tracking").get_json()
    assert tracking["status"] == "delivered"
    assert [(e["status"], e["location"]) for e in tracking["events"]] == [
        ("in_transit", "Leipzig hub"), ("exception", "Leipzig hub"), ("out_for_delivery", "Berlin"),
        ("delivered", "Berlin")]
    assert shipment["tracking_url"] == f"https://shop.example.com/tracking/generic/{shipment['tracking_number']}"
    page = client.get(shipment["tracking_url"].removeprefix("https://shop.example.com"))
    assert page.status_code == 200 and "delivered" in page.get_data(as_text=True)
    assert "Leipzig hub" in page.get_data(as_text=True) and "Sample Street" not in page.get_data(as_text=True)
    assert client.get("/tracking/generic/HS999999999XX").status_code == 404


def test_a_replayed_delivery_and_a_repeated_event_appear_once(api, app, shipped, recorder):
    oid, shipment = shipped
    client = app.test_client()
    body = event(shipment, "in_transit", 1, "Hub")
    first = post_event(client, body, webhook_id="msg_1")
    assert first.status_code == 200 and first.get_json()["duplicate"] is False
    replay = post_event(client, body, webhook_id="msg_1")  # the same delivery again
    assert replay.status_code == 200 and replay.get_json() == {"received": True, "duplicate": True}
    again = post_event(client, body, webhook_id="msg_2")  # the same event, a new delivery id
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    delivered = event(shipment, "delivered", 30)
    for webhook_id in ("msg_3", "msg_3", "msg_4"):
        assert post_event(client, delivered, webhook_id=webhook_id).status_code == 200
    order = api.get(f"/orders/{oid}").get_json()
    assert kinds(order).count("tracking_in_transit") == 1 and kinds(order).count("order_delivered") == 1
    assert [c[0] for c in recorder.calls] == ["order_delivered"]
    assert counts(app) == (2, 4)  # two events; msg_1..msg_4 each recorded once


def test_concurrent_copies_of_one_delivery_have_one_effect(api, app, shipped):
    oid, shipment = shipped
    body = json.dumps(event(shipment, "out_for_delivery", 3)).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "webhook-id": "msg_same", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(SECRET, "msg_same", timestamp, body)}
    answers, start = [], threading.Barrier(4)

    def send():
        client = app.test_client()
        start.wait()
        answers.append(client.post("/api/v1/carriers/generic/tracking", data=body, headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 4
    assert kinds(api.get(f"/orders/{oid}").get_json()).count("tracking_out_for_delivery") == 1
    assert counts(app) == (1, 1)


def test_events_out_of_order_are_recorded_but_never_move_the_order_back(api, app, shipped, recorder):
    oid, shipment = shipped
    client = app.test_client()
    assert post_event(client, event(shipment, "delivered", 30, "Berlin")).get_json()["order_status"] == "delivered"
    late = post_event(client, event(shipment, "in_transit", 2, "Hub"))
    assert late.status_code == 200 and late.get_json()["late"] is True
    assert late.get_json()["order_status"] == "delivered"
    assert post_event(client, event(shipment, "out_for_delivery", 20)).get_json()["late"] is True
    order = api.get(f"/orders/{oid}").get_json()
    assert order["status"] == "delivered"
    assert kinds(order)[-3:] == ["order_delivered", "tracking_in_transit", "tracking_out_for_delivery"]
    assert order["events"][-1]["message"].endswith("reported after a later event, so it changes nothing")
    assert order["events"][-1]["data"]["late"] is True
    # the tracking view orders them by when they happened; the status is the latest one
    tracking = api.get(f"/shipments/{shipment['id']}/tracking").get_json()
    assert [(e["status"], e["late"]) for e in tracking["events"]] == [
        ("in_transit", True), ("out_for_delivery", True), ("delivered", False)]
    assert tracking["status"] == "delivered"
    assert [c[0] for c in recorder.calls] == ["order_delivered"]

    # a delivery reported after staff delivered the order is a note, not an error
    other = ship(api, place_to(api, [("MUG", 1)])["id"])
    assert api.post(f"/orders/{other['id']}/deliver").status_code == 200
    resp = post_event(client, event(other["shipments"][0], "delivered", 5))
    assert resp.status_code == 200 and resp.get_json()["order_status"] == "delivered"
    last = api.get(f"/orders/{other['id']}").get_json()["events"][-1]
    assert last["kind"] == "tracking_delivered" and last["message"].endswith("the order is already delivered")


def _bad_deliveries(shipment):
    body = json.dumps(event(shipment, "delivered", 30)).encode()
    now = int(time.time())

    def headers(secret=SECRET, webhook_id="msg_bad", timestamp=now, signed=body):
        return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, webhook_id, timestamp, signed)}

    yield "wrong secret", body, headers(secret=OTHER_SECRET)
    yield "another body", body, headers(signed=body.replace(b"delivered", b"in_transit"))
    yield "another id", body, {**headers(), "webhook-id": "msg_other"}
    yield "too old", body, headers(timestamp=now - 301)
    yield "too far ahead", body, headers(timestamp=now + 301)
    yield "no signature", body, {k: v for k, v in headers().items() if k != "webhook-signature"}
    yield "no id", body, {k: v for k, v in headers().items() if k != "webhook-id"}
    yield "no timestamp", body, {k: v for k, v in headers().items() if k != "webhook-timestamp"}
    yield "not base64", body, {**headers(), "webhook-signature": "v1,not*base64"}
    yield "unknown version", body, {**headers(), "webhook-signature": headers()["webhook-signature"].replace("v1,",
                                                                                                        "v2,")}
    yield "timestamp not a number", body, {**headers(), "webhook-timestamp": "yesterday"}
    yield "no headers", body, {}


def test_bad_signatures_are_refused_and_change_nothing(api, app, shipped, recorder):
    oid, shipment = shipped
    client = app.test_client()
    before = api.get(f"/orders/{oid}").get_json()
    for why, body, headers in _bad_deliveries(shipment):
        resp = client.post("/api/v1/carriers/generic/tracking", data=body,
                           headers={"Content-Type": "application/json", **headers})
        assert resp.status_code == 401, why
        assert resp.get_json()["code"] == "unauthorized" and resp.get_json()["message"], why
    assert api.get(f"/orders/{oid}").get_json() == before
    assert counts(app) == (0, 0) and recorder.calls == []
    # none of them used up the delivery id: the genuine delivery is processed
    assert post_event(client, event(shipment, "delivered", 30), webhook_id="msg_bad").get_json()["duplicate"] is False
    assert api.get(f"/orders/{oid}").get_json()["status"] == "delivered"


def test_bad_bodies_are_refused_and_change_nothing(api, app, shipped):
    oid, shipment = shipped
    client = app.test_client()
    number = shipment["tracking_number"]
    cases = [
        (400, "invalid_json", b'{"tracking_number": '),
        (422, "validation_error", json.dumps({"tracking_number": number, "status": "lost", "occurred_at": at(1)})),
        (422, "validation_error", json.dumps({"tracking_number": number, "status": "in_transit"})),
        (422, "validation_error", json.dumps({"tracking_number": number, "status": "in_transit",
                                              "occurred_at": "tomorrow"})),
        (422, "validation_error", json.dumps({"tracking_number": number, "status": "in_transit",
                                              "occurred_at": at(1), "colour": "red"})),
        (422, "validation_error", json.dumps([1, 2])),
        (422, "validation_error", json.dumps({"tracking_number": number, "status": "in_transit",
                                              "occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})),
        (404, "not_found", json.dumps({"tracking_number": "HS000000000XX", "status": "in_transit",
                                       "occurred_at": at(1)})),
    ]
    before = api.get(f"/orders/{oid}").get_json()
    for status, code, raw in cases:
        raw = raw if isinstance(raw, bytes) else raw.encode()
        resp = post_event(client, None, raw=raw, webhook_id="msg_body")
        assert resp.status_code == status, (raw, resp.get_json())
        assert resp.get_json()["code"] == code and set(resp.get_json()) == {"code", "message", "errors"}
    errors = post_event(client, None, raw=cases[1][2].encode(), webhook_id="msg_body").get_json()["errors"]
    assert "status" in errors
    assert api.get(f"/orders/{oid}").get_json() == before and counts(app) == (0, 0)
    # another carrier of the plugin does not know the generic tracking number either
    assert post_event(client, event(shipment, "in_transit", 1), carrier="nope").status_code == 404


def test_a_forged_host_header_never_reaches_the_tracking_link(api, app):
    """The link the customer gets is built on HOOKSHOP_PUBLIC_URL, whatever Host the shipping request named."""
    shop(api)
    oid = place_to(api, [("MUG", 1)])["id"]
    resp = api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"},
                    headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert resp.status_code == 200, resp.get_json()
    [shipment] = resp.get_json()["shipments"]
    assert shipment["tracking_url"] == f"https://shop.example.com/tracking/generic/{shipment['tracking_number']}"
    tracking = api.get(f"/shipments/{shipment['id']}/tracking", headers={"Host": "evil.example"}).get_json()
    assert tracking["tracking_url"] == shipment["tracking_url"]
    assert "evil.example" not in json.dumps(api.get(f"/orders/{oid}").get_json())


def test_without_a_public_url_the_tracking_link_is_a_relative_path(database, tmp_path, request):
    app = make_app(database, tmp_path, request, PUBLIC_URL=None)
    api = ApiClient(app.test_client(), new_key(app))
    shop(api)
    oid = place_to(api, [("MUG", 1)])["id"]
    resp = api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"},
                    headers={"Host": "evil.example"})
    [shipment] = resp.get_json()["shipments"]
    assert shipment["tracking_url"] == f"/tracking/generic/{shipment['tracking_number']}"
    assert app.test_client().get(shipment["tracking_url"]).status_code == 200


@pytest.mark.parametrize("value", ["shop.example.com", "ftp://shop.example.com", "https://u:p@shop.example.com",
                                   "https://shop.example.com/?x=1", "https://"])
def test_a_public_url_that_is_not_an_absolute_http_url_stops_the_start(database, tmp_path, request, value):
    with pytest.raises(ValueError, match="HOOKSHOP_PUBLIC_URL must be an absolute http"):
        make_app(database, tmp_path, request, PUBLIC_URL=value)


def test_without_a_secret_every_event_is_refused_but_shipping_works(database, tmp_path, request):
    app = make_app(database, tmp_path, request)
    api = ApiClient(app.test_client(), new_key(app))
    assert {p["name"]: p["enabled"] for p in api.get("/plugins").get_json()}["carrier_generic"] is True
    shop(api)
    order = ship(api, place_to(api, [("MUG", 1)])["id"])
    resp = post_event(app.test_client(), event(order["shipments"][0], "delivered", 30))
    assert resp.status_code == 401
    assert "HOOKSHOP_CARRIER_GENERIC_TRACKING_SECRET is not set" in resp.get_json()["message"]
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "shipped"
    assert counts(app) == (0, 0)


def test_with_follow_ups_off_a_delivery_completes_the_order(database, tmp_path, request):
    app = make_app(database, tmp_path, request, CARRIER_GENERIC_TRACKING_SECRET=SECRET)
    api = ApiClient(app.test_client(), new_key(app))
    shop(api)
    order = ship(api, place_to(api, [("MUG", 1)])["id"])
    assert post_event(app.test_client(), event(order["shipments"][0], "delivered", 30)).status_code == 200
    order = api.get(f"/orders/{order['id']}").get_json()
    assert order["status"] == "completed" and kinds(order)[-2:] == ["order_delivered", "order_completed"]
