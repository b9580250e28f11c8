"""What the notify_email tests share: a real SMTP server (aiosmtpd) on a spare loopback port, the
plugin's settings pointing at it, and an order walked through its life."""

from __future__ import annotations

import email
import socket
from email import policy

from aiosmtpd.controller import Controller
from conftest import order_body, product, receive


class Inbox:
    """aiosmtpd's handler: every message the server accepted, parsed."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        mail = email.message_from_bytes(envelope.content, policy=policy.default)
        mail["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(mail)
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    def subjects(self, address: str | None = None) -> list[str]:
        return [str(m["Subject"]) for m in (self.to(address) if address else self.messages)]


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """An aiosmtpd server that can be stopped and started again on the same port (the server is down)."""

    def __init__(self, port: int):
        self.port = port
        self.inbox = Inbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def settings(port: int, **extra) -> dict:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TLS": "off",
            "MAIL_FROM": "Test Shop <shop@example.com>", "SHOP_NAME": "Test Shop",
            "SUPPORT_EMAIL": "help@example.com", "PUBLIC_URL": "https://shop.example.com",
            "MAIL_RETRY_DELAYS": [30, 60], "FOLLOWUP_AFTER": "P7D", **extra}


def body(mail, kind: str = "plain") -> str:
    part = mail.get_body((kind,))
    return part.get_content() if part is not None else ""


def attachments(mail) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in mail.iter_attachments()}


def stocked_shop(api):
    product(api, "MUG", price=1250)
    receive(api, "MUG", 10)


def place(api, email_address="ann@example.com", **extra):
    resp = api.post("/orders", order_body([("MUG", 2)], email=email_address, **extra))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def walk_to_delivered(api, order_id: int) -> dict:
    """pay, pick, confirm, pack, ship (generic standard), deliver; answers the shipped order."""
    for path, payload in (("pay", None), ("pick", {"scans": ["MUG", "MUG"]}), ("confirm", None),
                          ("pack", {"scans": ["MUG", "MUG"]}), ("ship", {"carrier": "generic", "service": "standard"})):
        resp = api.post(f"/orders/{order_id}/{path}", payload)
        assert resp.status_code == 200, (path, resp.get_json())
    shipped = resp.get_json()
    assert api.post(f"/orders/{order_id}/deliver").get_json()["status"] == "delivered"
    return shipped
