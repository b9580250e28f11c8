"""Secrets and personal data stay out of logs: masking rules, SQL statements without their values, a whole
order's life with every log record captured, and a home page that names no database or Redis URL."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest
from conftest import ApiClient, make_app, new_key, product, receive
from flask import Blueprint
from sqlalchemy import text as sa_text
from sqlalchemy.exc import IntegrityError
from standardwebhooks import Webhook

from engine import hookimpl
from engine.db import db
from engine.domain.privacy import mask_email, mask_url, redact_text, redact_values, redacted_traceback
from engine.models import Customer

EMAIL = "Zoe.Private@Example.com"
PHONE = "+49 30 5550199"
STREET = "Geheimweg 7"
CHANNEL_SECRET = "whsec_" + "c2VjcmV0LWNoYW5uZWwta2V5LWZvci1sb2dzLXRlc3Q="
CARD = "4111 1111 1111 1111"


@pytest.fixture
def app_config():
    """A webhook subscription may point at a loopback port nobody listens on."""
    return {"CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": "127.0.0.0/8", "CHANNEL_WEBHOOK_TIMEOUT": 2}


# ----------------------------------------------------------------- the masking rules


def test_mask_email_keeps_the_first_letter_and_the_domain():
    assert mask_email("ann@example.com") == "a***@example.com"
    assert mask_email(EMAIL) == "Z***@Example.com"
    assert mask_email("not an address") == mask_email(None) == mask_email("@x") == "***"


def test_mask_url_drops_credentials_and_the_query():
    assert mask_url("https://user:pw@hooks.example:8443/in/abc?token=s3cr3t#x") == "https://hooks.example:8443/in/abc"
    assert mask_url("http://erp.example.com/hookshop") == "http://erp.example.com/hookshop"


def test_redact_text_masks_addresses_cards_tokens_and_secrets():
    text = (f"mail to {EMAIL} failed; card {CARD}; Authorization: Bearer hs_abcDEF123456789; "
            f"secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw; stripe sk_test_51Habc123; "
            "sig v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=; GET https://x.example/cb?api_key=123&u=ann")
    out = redact_text(text)
    for secret in (EMAIL, "4111", "hs_abcDEF", "whsec_MfKQ", "sk_test_51H", "K5oZfzN95", "api_key=123"):
        assert secret not in out, (secret, out)
    assert "Z***@Example.com" in out and "https://x.example/cb?[redacted]" in out
    assert redact_text("order 1001: 3 x MUG, 12.90 EUR, tracking HS000000017XX") == \
        "order 1001: 3 x MUG, 12.90 EUR, tracking HS000000017XX"  # nothing else is touched
    assert redact_values({"customer": {"email": [f"{EMAIL} is taken"]}, "n": 3}) == {
        "customer": {"email": ["Z***@Example.com is taken"]}, "n": 3}


def test_a_redacted_traceback_masks_the_exception_message():
    try:
        raise RuntimeError(f"SMTP refused {EMAIL}")
    except RuntimeError as exc:
        text = redacted_traceback(exc)
    assert "Traceback" in text and "RuntimeError: SMTP refused Z***@Example.com" in text and EMAIL not in text


# ----------------------------------------------------------------- SQL errors and statements


def test_statement_errors_never_carry_their_bound_values(app):
    with app.app_context():
        assert db.engine.hide_parameters is True
        for _ in range(2):
            db.session.add(Customer(email=EMAIL.lower(), name="Zoe Private", phone=PHONE, addresses=[{"line1": STREET}]))
            try:
                db.session.commit()
            except IntegrityError as exc:
                db.session.rollback()
                text = str(exc)
                assert "SQL parameters hidden due to hide_parameters=True" in text, text
                assert PHONE not in text and STREET not in text and "Zoe Private" not in text, text
                assert EMAIL.lower() not in redact_text(text)  # PostgreSQL's DETAIL may name the key: logs mask it
                break
        else:
            pytest.fail("the second customer with the same e-mail was stored")


class Broken:
    """A plugin route that fails inside the database: its 500 is logged, without the values.

    (A unique-key refusal would be a 409 ``conflict``, see ``handle_integrity_error``: this is an error
    the API does not map. On PostgreSQL the database's own message quotes the value it could not read.)"""

    @hookimpl
    def register_blueprints(self):
        bp = Blueprint("broken", __name__)

        @bp.get("/broken")
        def broken():
            params = {"email": EMAIL.lower(), "name": "Zoe Private", "phone": PHONE}
            if db.engine.dialect.name == "postgresql":
                db.session.execute(sa_text("SELECT id FROM customers WHERE id = CAST(:email AS BIGINT) "
                                           "AND name = :name AND phone = :phone"), params)
            else:
                db.session.execute(sa_text("INSERT INTO customers (email, name, phone, no_such_column) "
                                           "VALUES (:email, :name, :phone, 1)"), params)
            return "unreachable"

        return [bp]


def test_an_unhandled_database_error_is_logged_without_personal_data(database, tmp_path, request, caplog):
    app = make_app(database, tmp_path, request, EXTRA_PLUGINS=[("broken", Broken())], TESTING=False,
                   PROPAGATE_EXCEPTIONS=False)
    with caplog.at_level(logging.INFO):
        assert app.test_client().get("/broken").status_code == 500
    [record] = [r for r in caplog.records if r.getMessage().startswith("Exception on /broken")]
    text = logging.Formatter().format(record)
    assert re.search(r"(DataError|OperationalError)", text) and "hidden due to hide_parameters" in text, text
    for secret in (EMAIL.lower(), PHONE, "Zoe Private"):
        assert secret not in text, (secret, text)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Mailer:
    """A stage hook that fails with the customer's address in its message (as an SMTP error would)."""

    @hookimpl
    def order_placed(self, order):
        raise RuntimeError(f"550 mailbox unavailable: {order.email}")


def test_a_failing_stage_hook_is_logged_and_kept_without_the_address(database, tmp_path, request, caplog):
    from engine import outbox

    app = make_app(database, tmp_path, request, EXTRA_PLUGINS=[("mailer", Mailer())])
    api = ApiClient(app.test_client(), new_key(app))
    product(api, "MUG")
    receive(api, "MUG", 1)
    with caplog.at_level(logging.INFO):
        resp = api.post("/orders", {"customer": {"email": EMAIL, "name": "Zoe", "shipping_address": {
            "line1": STREET, "city": "Berlin", "postal_code": "10115", "country": "DE"}},
            "lines": [{"sku": "MUG", "quantity": 1}]})
        assert resp.status_code == 201, resp.get_json()
    text = _all_log_text(caplog.records)
    assert "plugin mailer failed on order_placed" in text and "550 mailbox unavailable: z***@example.com" in text
    with app.app_context():
        [error] = [e.last_error for e in outbox.events(hook="order_placed")]
        db.session.remove()
        db.engine.dispose()
    assert "mailbox unavailable: z***@example.com" in error  # `hookshop outbox` shows it
    assert EMAIL.lower() not in text.lower() and EMAIL.lower() not in error.lower()


# ----------------------------------------------------------------- a whole order's life, every record captured


def _all_log_text(records) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in records)


def _signed(secret: str, body: bytes) -> dict:
    msg_id = "msg_privacy_1"
    at = datetime.now(UTC)
    return {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode())}


def test_an_orders_whole_life_logs_no_email_api_key_or_secret(api, app, caplog):
    caplog.set_level(logging.DEBUG, logger="hookshop")
    caplog.set_level(logging.INFO)  # the root: every library's warnings and info
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement, as an operator might log them
    writer_key = new_key(app, scopes=("read", "write"), name="till")
    writer = ApiClient(app.test_client(), writer_key)
    product(api, "MUG", price=1290, barcode="4006381333948")
    receive(api, "MUG", 10)
    channel = api.post("/channels", {"name": "site", "format": "generic", "secret": CHANNEL_SECRET})
    assert channel.status_code == 201, channel.get_json()
    sub = api.post("/webhooks/subscriptions", {"url": "http://127.0.0.1:9/hook?token=tok_in_the_url",
                                               "events": ["order_shipped"]})
    assert sub.status_code == 201, sub.get_json()
    sub_secret = sub.get_json()["secret"]

    # placed over the API, then every stage to shipped
    body = {"customer": {"email": EMAIL, "name": "Zoe Private", "phone": PHONE,
                         "shipping_address": {"line1": STREET, "city": "Berlin", "postal_code": "10115",
                                              "country": "DE"}},
            "lines": [{"sku": "MUG", "quantity": 2}]}
    placed = writer.post("/orders", body, headers={"Idempotency-Key": "privacy-1"})
    assert placed.status_code == 201, placed.get_json()
    oid = placed.get_json()["id"]
    for step, payload in (("pay", None), ("pick", {"scans": ["MUG", "MUG"]}), ("confirm", None),
                          ("pack", {"scans": ["MUG", "4006381333948"]}),
                          ("ship", {"carrier": "generic", "service": "standard"})):
        resp = writer.post(f"/orders/{oid}/{step}", payload)
        assert resp.status_code == 200, (step, resp.get_json())
    assert resp.get_json()["status"] == "shipped"
    assert writer.get(f"/orders?customer={placed.get_json()['customer']['id']}").status_code == 200
    assert writer.post("/orders", {**body, "lines": [{"sku": "NOPE", "quantity": 1}]}).status_code == 422

    # a channel order signed with the channel's secret, and a refused one whose errors quote the e-mail
    order = {"external_id": "W-1", "customer": {"email": EMAIL, "name": "Zoe Private", "phone": PHONE,
                                                "shipping_address": body["customer"]["shipping_address"]},
             "lines": [{"sku": "MUG", "quantity": 1}], "note": f"my card is {CARD}"}
    raw = json.dumps(order).encode()
    assert app.test_client().post("/api/v1/channels/site/orders", data=raw,
                                  headers=_signed(CHANNEL_SECRET, raw)).status_code == 201
    refused = json.dumps({**order, "external_id": "W-2", "lines": [{"sku": EMAIL, "quantity": 1}]}).encode()
    headers = {**_signed(CHANNEL_SECRET, refused), "webhook-id": "msg_privacy_2"}
    headers["webhook-signature"] = Webhook(CHANNEL_SECRET).sign("msg_privacy_2", datetime.fromtimestamp(
        int(headers["webhook-timestamp"]), UTC), refused.decode())
    assert app.test_client().post("/api/v1/channels/site/orders", data=refused, headers=headers).status_code == 422
    wrong = app.test_client().post("/api/v1/channels/site/orders", data=raw, headers=_signed("whsec_" + "A" * 32, raw))
    assert wrong.status_code == 401

    text = _all_log_text(caplog.records)
    assert "refused delivery" in text and "z***@example.com" in text.lower()  # logged, masked
    assert "hidden due to hide_parameters" in text  # the statements were logged, without their values
    secrets = [EMAIL, EMAIL.lower(), "Zoe.Private", "zoe.private", api.key, writer_key, CHANNEL_SECRET,
               CHANNEL_SECRET.removeprefix("whsec_"), sub_secret, sub_secret.removeprefix("whsec_"),
               "tok_in_the_url", PHONE, STREET, CARD, CARD.replace(" ", "")]
    for secret in secrets:
        assert secret not in text, (secret, [r.getMessage() for r in caplog.records if secret in r.getMessage()])
    assert not re.search(r"Bearer\s+hs_", text)


# ----------------------------------------------------------------- the home page


def test_the_home_page_names_no_database_or_redis_url(database, tmp_path, request):
    redis_url = "redis://:hunter2@cache.internal:6379/3"
    app = make_app(database, tmp_path, request, REDIS_URL=redis_url)
    page = app.test_client().get("/").get_data(as_text=True)
    with app.app_context():
        url = db.engine.url
        db.session.remove()
        db.engine.dispose()
    assert ("PostgreSQL" if database == "postgresql" else "SQLite") in page and "rq (Redis)" in page
    for leak in (url.render_as_string(hide_password=True), url.render_as_string(hide_password=False),
                 str(url.database), "sqlite://", "postgresql", "127.0.0.1", str(tmp_path), redis_url,
                 "cache.internal", "hunter2", "redis://"):
        assert leak not in page, leak
