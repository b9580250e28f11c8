"""The outbound toolkit (engine.outbound): the SSRF guard refuses every non-public address form (literal
and resolved, IPv6 forms carrying an IPv4 address included) and cannot be bypassed by a redirect or a
second DNS answer; it connects for real only to a loopback server that a setting allows. Standard
Webhooks headers verify with the ``standardwebhooks`` package, through a rotation, and a tampered body or
an old timestamp is refused. Retries never sleep inside a web request. The accounting sync's requests
carry Standard Webhooks headers that the package verifies."""

from __future__ import annotations

import base64
import ipaddress
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from flask import Flask
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine import outbound
from engine.outbound import (
    Client,
    SignatureRefused,
    TargetRefused,
    addresses,
    new_secret,
    sign_headers,
    verify,
)

REFUSED = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.8.9.10", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.251", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",          # IPv4-mapped
    "::ffff:0:127.0.0.1", "::ffff:0:192.168.0.1",                              # IPv4-translated
    "64:ff9b::127.0.0.1", "64:ff9b::10.1.2.3", "64:ff9b::169.254.169.254",   # NAT64
    "64:ff9b:1::7f00:1",                                                       # local-use NAT64
    "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::",                   # 6to4
    "::127.0.0.1", "::10.0.0.1", "::169.254.169.254",                          # IPv4-compatible
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::93.184.215.14",
          "2002:5db8:d70e::1", "::ffff:93.184.215.14"]


def url_of(address: str, port: int = 80, path: str = "/hook") -> str:
    ip = ipaddress.ip_address(address)
    return f"http://{f'[{ip}]' if ip.version == 6 else ip}:{port}{path}"


class Receiver:
    """A loopback HTTP server that records what it gets; ``answers`` is a script of (status, headers)."""

    def __init__(self, host="127.0.0.1"):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        self.server = make_server(host, 0, self, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": request.get_data()})
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return Response('{"ok": true}', status, headers=headers, mimetype="application/json")(environ,
                                                                                               start_response)

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def fake_dns(monkeypatch, answers: dict[str, list[str]]):
    """``socket.getaddrinfo`` answering ``answers`` for those names (a list: one answer per lookup, the
    last repeated), counting the lookups; other names and literal addresses as usual."""
    real, lookups = socket.getaddrinfo, {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups[host] = lookups.get(host, 0) + 1
        answer = answers[host][min(lookups[host], len(answers[host])) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answer.split(",")]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


# --------------------------------------------------------------------------- the guard's decision


@pytest.mark.parametrize("address", REFUSED)
def test_every_non_public_address_form_is_refused(address):
    ip = ipaddress.ip_address(address)
    assert not outbound.is_public(ip)
    with pytest.raises(TargetRefused, match="private, loopback, link-local or reserved"):
        outbound.check_address(ip, [])


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    ip = ipaddress.ip_address(address)
    assert outbound.is_public(ip)
    outbound.check_address(ip, [])  # no exception: no connection is made to the internet


def test_the_ipv6_forms_are_judged_by_the_ipv4_address_they_carry():
    v4 = ipaddress.ip_address("127.0.0.1")
    for form in ("::ffff:127.0.0.1", "::ffff:0:127.0.0.1", "64:ff9b::127.0.0.1", "2002:7f00:1::", "::127.0.0.1"):
        assert outbound.embedded_ipv4(ipaddress.ip_address(form)) == v4, form
    assert outbound.embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None
    # an allowed IPv4 network allows its IPv6 forms too; a narrower one does not widen
    allowed = outbound.allowed_networks("127.0.0.0/8")
    assert addresses.is_allowed(ipaddress.ip_address("64:ff9b::127.0.0.1"), allowed)
    assert not addresses.is_allowed(ipaddress.ip_address("::ffff:10.0.0.1"), allowed)
    assert outbound.allowed_networks("true") is True and outbound.allowed_networks(None, "") == []
    with pytest.raises(ValueError):
        outbound.allowed_networks("the office")


@pytest.mark.parametrize("address", REFUSED)
def test_a_literal_url_of_each_form_is_refused_before_connecting(address):
    with pytest.raises(TargetRefused):
        Client(timeout=2).send("POST", url_of(address, 9), body=b"{}")


@pytest.mark.parametrize("address", ["127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:a9fe:a9fe::",
                                     "::ffff:0:10.0.0.1", "::10.0.0.1", "fd00::1"])
def test_a_name_resolving_to_a_refused_address_is_refused(monkeypatch, address):
    fake_dns(monkeypatch, {"hooks.example.com": [address], "mixed.example.com": [f"93.184.215.14,{address}"]})
    client = Client(timeout=2)
    for name in ("hooks.example.com", "mixed.example.com"):  # one private answer among public ones is enough
        with pytest.raises(TargetRefused, match=f"{name} resolves to"):
            client.check_url(f"https://{name}/hook")
        with pytest.raises(TargetRefused, match=f"{name} resolves to"):
            client.send("POST", f"https://{name}/hook", body=b"{}")


def test_bad_urls_are_refused():
    client = Client()
    for url in ("ftp://example.com/x", "http:///nohost", "http://user:pw@example.com/x", "http://[::1/x"):
        with pytest.raises(TargetRefused):
            client.send("GET", url)


# --------------------------------------------------------------------------- real connections, loopback only


def test_loopback_is_called_only_when_a_setting_allows_it(receiver):
    with pytest.raises(TargetRefused, match="HOOKSHOP_OUTBOUND_ALLOW_PRIVATE_TARGETS"):
        Client(timeout=2).post(receiver.url + "/hook", body=b"{}")
    assert receiver.requests == []
    answer = Client(timeout=2, allow_private="127.0.0.0/8").post(receiver.url + "/hook", body=b'{"a":1}')
    assert answer.ok and answer.json() == {"ok": True} and receiver.requests[-1]["body"] == b'{"a":1}'
    # the core's setting allows it for every plugin's client
    app = Flask(__name__)
    app.config["OUTBOUND_ALLOW_PRIVATE_TARGETS"] = "127.0.0.1/32, ::1"
    with app.app_context():
        assert Client(timeout=2).post(receiver.url + "/hook", body=b"{}").status_code == 200
    assert len(receiver.requests) == 2


def test_the_connection_goes_to_the_checked_address(monkeypatch, receiver):
    """The name is resolved once, by the guard, and that address is called (the Host header is the name);
    a resolver that turns private on the next lookup is refused then, never connected to."""
    lookups = fake_dns(monkeypatch, {"shop.test": ["127.0.0.1"], "rebind.test": ["93.184.215.14", "127.0.0.1"]})
    answer = Client(timeout=2, allow_private="127.0.0.0/8").post(f"http://shop.test:{receiver.port}/hook", body=b"{}")
    assert answer.ok and lookups["shop.test"] == 1
    assert receiver.requests[-1]["headers"]["Host"] == f"shop.test:{receiver.port}"

    client = Client(timeout=2)
    client.check_url(f"http://rebind.test:{receiver.port}/hook")  # public when the subscription was made
    with pytest.raises(TargetRefused, match="rebind.test resolves to 127.0.0.1"):
        client.post(f"http://rebind.test:{receiver.port}/hook", body=b"{}")
    assert len(receiver.requests) == 1


def test_a_redirect_to_a_private_address_is_not_followed_or_is_refused(receiver):
    other = Receiver("127.0.0.2")  # loopback too, but not allowed below
    try:
        receiver.answers = [(302, {"Location": other.url + "/meta"})] * 3
        only_this_one = Client(timeout=2, allow_private="127.0.0.1/32")
        answer = only_this_one.post(receiver.url + "/hook", body=b"{}")
        assert answer.status_code == 302  # not followed by default
        following = Client(timeout=2, allow_private="127.0.0.1/32", follow_redirects=True)
        with pytest.raises(TargetRefused, match="127.0.0.2"):
            following.send("GET", receiver.url + "/hook")
        receiver.answers = [(307, {"Location": "http://[::ffff:169.254.169.254]/latest/meta-data"})]
        with pytest.raises(TargetRefused, match="169.254.169.254"):
            following.send("GET", receiver.url + "/hook")
        assert other.requests == []
        # the same redirect, its target allowed: followed (so the refusal above was the guard's)
        receiver.answers = [(302, {"Location": other.url + "/meta"})]
        assert Client(timeout=2, allow_private="127.0.0.0/8", follow_redirects=True).send(
            "GET", receiver.url + "/hook").ok
        assert [r["path"] for r in other.requests] == ["/meta"]
    finally:
        other.stop()


def test_retries_back_off_in_a_job_and_never_sleep_in_a_web_request(monkeypatch, receiver):
    import types

    import urllib3.util.retry

    sleeps = []  # urllib3's back-off, recorded instead of slept
    monkeypatch.setattr(urllib3.util.retry, "time", types.SimpleNamespace(sleep=sleeps.append, time=time.time))
    client = Client(timeout=2, guard=False, retries=2, backoff=0.5, idempotent_post=True)
    receiver.answers = [(503, {}), (500, {})]
    answer = client.post(receiver.url + "/x", body=b"{}")
    assert answer.ok and answer.attempts == 3 and sleeps == [0.5, 1.0]  # a background job: back-off

    sleeps.clear()
    receiver.answers = [(503, {"Retry-After": "20"}), (500, {})]
    with Flask(__name__).test_request_context("/"):
        answer = client.post(receiver.url + "/x", body=b"{}")
    assert answer.ok and answer.attempts == 3 and sleeps == []  # a web request: at once, no Retry-After

    # POST without an idempotency key is not retried; and no retries unless asked for
    receiver.answers = [(503, {})]
    assert Client(timeout=2, guard=False, retries=2).post(receiver.url + "/x").status_code == 503
    receiver.answers = [(503, {})]
    assert Client(timeout=2, guard=False).send("GET", receiver.url + "/x").status_code == 503
    assert len(receiver.requests) == 3 + 3 + 1 + 1


def test_no_answer_is_an_outbound_error(receiver):
    receiver.stop()
    with pytest.raises(outbound.OutboundError) as caught:
        Client(timeout=1, guard=False, retries=1, idempotent_post=True).post(receiver.url + "/x", body=b"{}")
    assert caught.value.attempts == 2 and not caught.value.timed_out and "refused" in caught.value.reason.lower()


# --------------------------------------------------------------------------- Standard Webhooks


BODY = b'{"type":"order_paid","data":{"order_id":7}}'


def test_signed_headers_verify_with_the_standardwebhooks_package():
    secret = new_secret()
    headers = sign_headers([secret], BODY, msg_id="msg_1")
    assert Webhook(secret).verify(BODY, headers) == {"type": "order_paid", "data": {"order_id": 7}}
    assert verify([secret], headers, BODY) == "msg_1"
    # and what the package signs, the toolkit verifies
    now = datetime.now(UTC)
    theirs = {"webhook-id": "msg_2", "webhook-timestamp": str(int(now.timestamp())),
              "webhook-signature": Webhook(secret).sign("msg_2", now, BODY.decode())}
    assert verify([secret], theirs, BODY) == "msg_2"


def test_rotation_old_secret_verifies_while_current_and_not_once_removed():
    old, new = new_secret(), new_secret()
    during = sign_headers([new, old], BODY, msg_id="msg_r")
    assert len(during["webhook-signature"].split()) == 2
    assert Webhook(new).verify(BODY, during) and Webhook(old).verify(BODY, during)  # either receiver
    by_old_sender = sign_headers([old], BODY, msg_id="msg_o")
    assert verify([new, old], by_old_sender, BODY) == "msg_o"  # a sender not yet switched
    with pytest.raises(SignatureRefused, match="no valid v1 signature"):
        verify([new], by_old_sender, BODY)  # the old secret removed
    after = sign_headers([new], BODY, msg_id="msg_n")
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, after)


def test_a_tampered_body_an_old_timestamp_or_bad_headers_are_refused():
    secret = new_secret()
    headers = sign_headers([secret], BODY, msg_id="msg_t")
    with pytest.raises(SignatureRefused):
        verify([secret], headers, BODY.replace(b"7", b"8"))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"7", b"8"), headers)
    stale = sign_headers([secret], BODY, msg_id="msg_t", timestamp=int(time.time()) - 301)
    with pytest.raises(SignatureRefused, match="300 seconds"):
        verify([secret], stale, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)
    # a replay cannot refresh the timestamp: the signature covers it
    with pytest.raises(SignatureRefused):
        verify([secret], {**stale, "webhook-timestamp": str(int(time.time()))}, BODY)
    assert verify([secret], stale, BODY, tolerance=600) == "msg_t"  # a wider window, when configured
    for broken in ({}, {**headers, "webhook-signature": "v1"}, {**headers, "webhook-signature": "v1,not*base64"},
                   {**headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,")},
                   {**headers, "webhook-timestamp": "yesterday"}, {**headers, "webhook-id": "msg_other"}):
        with pytest.raises(SignatureRefused):
            verify([secret], broken, BODY)
    with pytest.raises(SignatureRefused, match="UTF-8"):
        verify([secret], headers, b"\xff\xfe")


def test_secrets_are_checked():
    assert len(outbound.secret_key(new_secret())) == 32
    assert outbound.secret_key("whsec_" + base64.b64encode(b"k" * 16).decode()) == b"k" * 16
    for bad in ("whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode(), ""):
        with pytest.raises(ValueError):
            outbound.secret_key(bad)
    assert outbound.secret_key(b"raw key", min_bytes=1) == b"raw key"


# --------------------------------------------------------------------------- the accounting sync


@pytest.mark.parametrize("secret", ["s3cret-sync", "whsec_" + base64.b64encode(b"accounting-sync-test-key!").decode()])
def test_the_accounting_sync_signs_with_standard_webhooks(receiver, secret):
    from plugins.accounting_export import sync
    from plugins.accounting_export.settings import Settings

    settings = Settings()
    settings.sync_url, settings.sync_secret, settings.sync_timeout = receiver.url + "/journal", secret, 2
    body = b'{"entries":[{"idempotency_key":"k1","postings":[]}]}'
    assert sync.send(settings, body) == (True, {"ok": True})
    assert sync.send(settings, body)[0] is True  # the same batch again
    first, second = receiver.requests
    key = secret if secret.startswith("whsec_") else secret.encode()  # a plain secret: its bytes are the key
    assert Webhook(key).verify(first["body"], first["headers"]) == {"entries": [{"idempotency_key": "k1",
                                                                                 "postings": []}]}
    assert "X-Hookshop-Signature" not in first["headers"]
    assert first["headers"]["Webhook-Id"] == second["headers"]["Webhook-Id"]  # one message, sent twice
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another secret").verify(first["body"], first["headers"])


def test_an_unreadable_allow_setting_refuses_rather_than_allows(receiver):
    app = Flask(__name__)
    app.config["OUTBOUND_ALLOW_PRIVATE_TARGETS"] = "the office"
    with app.app_context(), pytest.raises(TargetRefused, match="HOOKSHOP_OUTBOUND_ALLOW_PRIVATE_TARGETS"):
        Client(timeout=2).post(receiver.url + "/hook", body=b"{}")
    assert receiver.requests == []
