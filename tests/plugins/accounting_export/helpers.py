"""Helpers of the accounting_export tests: walking orders through the stages, reading the books."""

from __future__ import annotations

import io
from collections import defaultdict

from sqlalchemy import func, select

from engine import outbox
from engine.db import as_utc, db
from plugins.accounting_export import exporters
from plugins.accounting_export.models import JournalEntry, Posting

STEPS = ("pay", "pick", "confirm", "pack", "ship", "deliver")


def scans(order: dict) -> list[str]:
    return [line["sku"] for line in order["lines"] for _ in range(line["quantity"])]


def walk(api, order: dict | int, to: str = "shipped") -> dict:
    """Move an order (placed) through pay, pick, confirm, pack, ship, deliver up to status ``to``."""
    if isinstance(order, int):
        order = api.get(f"/orders/{order}").get_json()
    target = {"paid": "pay", "picked": "pick", "confirmed": "confirm", "packed": "pack", "shipped": "ship",
              "delivered": "deliver", "completed": "deliver"}[to]
    for step in STEPS:
        body = {}
        if step in ("pick", "pack"):
            body = {"scans": scans(order)}
        elif step == "ship":
            body = {"carrier": "generic", "service": "standard"}
        resp = api.post(f"/orders/{order['id']}/{step}", body)
        assert resp.status_code == 200, (step, resp.get_json())
        order = resp.get_json()
        if step == target:
            return order
    return order


def entries(order_id: int | None = None, kind: str | None = None) -> list[dict]:
    """Entries (oldest first) with their postings, as plain dicts (call inside an app context)."""
    stmt = select(JournalEntry).order_by(JournalEntry.id)
    if order_id is not None:
        stmt = stmt.where(JournalEntry.order_id == order_id)
    if kind is not None:
        stmt = stmt.where(JournalEntry.kind == kind)
    found = list(db.session.execute(stmt).scalars())
    lines = defaultdict(list)
    for p in db.session.execute(select(Posting).where(Posting.entry_id.in_([e.id for e in found]))
                                .order_by(Posting.entry_id, Posting.line_no)).scalars():
        lines[p.entry_id].append({"account": p.account, "role": p.role, "amount": p.amount, "currency": p.currency,
                                  "tax_rate": p.tax_rate, "sku": p.sku, "quantity": p.quantity})
    return [{"id": e.id, "kind": e.kind, "order_id": e.order_id, "event_id": e.event_id, "source_key": e.source_key,
             "postings": lines[e.id]} for e in found]


def by_account(postings: list[dict]) -> dict[tuple[str, str | None], int]:
    """(account, tax rate) -> summed amount."""
    totals: dict = defaultdict(int)
    for p in postings:
        totals[(p["account"], p["tax_rate"])] += p["amount"]
    return {k: v for k, v in totals.items() if v}


def order_balances(order_id: int) -> dict[str, int]:
    """account -> the order's net amount on it (zero accounts left out)."""
    rows = db.session.execute(select(Posting.account, func.sum(Posting.amount))
                              .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                              .where(JournalEntry.order_id == order_id).group_by(Posting.account)).all()
    return {account: int(total) for account, total in rows if int(total)}


def check_books() -> dict[str, int]:
    """Every entry balances per currency and the trial balance is zero per currency; returns counts."""
    unbalanced = db.session.execute(select(Posting.entry_id, Posting.currency, func.sum(Posting.amount))
                                    .group_by(Posting.entry_id, Posting.currency)
                                    .having(func.sum(Posting.amount) != 0)).all()
    assert not unbalanced, unbalanced
    short = db.session.execute(select(Posting.entry_id).group_by(Posting.entry_id)
                               .having(func.count() < 2)).all()
    assert not short, short
    totals = db.session.execute(select(Posting.currency, func.sum(Posting.amount)).group_by(Posting.currency)).all()
    assert all(int(total) == 0 for _, total in totals), totals
    orphans = db.session.execute(select(func.count()).select_from(Posting).outerjoin(
        JournalEntry, JournalEntry.id == Posting.entry_id).where(JournalEntry.id.is_(None))).scalar_one()
    assert orphans == 0
    return {"entries": db.session.execute(select(func.count()).select_from(JournalEntry)).scalar_one(),
            "postings": db.session.execute(select(func.count()).select_from(Posting)).scalar_one()}


def export_text(fmt: str, since=None, until=None) -> str:
    fh = io.StringIO()
    exporters.EXPORTERS[fmt].export(since, until, fh)
    return fh.getvalue()


def beancount_errors(text: str) -> list[str]:
    from beancount import loader

    _entries, errors, _options = loader.load_string(text)
    return [f"{getattr(e, 'source', {}).get('lineno') if getattr(e, 'source', None) else '?'}: {e.message}"
            for e in errors]


def event_of(order_id: int, hook: str) -> dict:
    """The stage event (as a stage hook receives it) of an order."""
    for ev in outbox.events(hook=hook):
        if (ev.payload or {}).get("order_id") == order_id:
            return {"id": ev.id, "hook": ev.hook, "created_at": as_utc(ev.created_at).isoformat(),
                    "payload": ev.payload}
    raise AssertionError(f"no {hook} event for order {order_id}")
