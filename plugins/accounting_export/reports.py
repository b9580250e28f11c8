"""Reports over the journal: trial balance, sales by channel and month, tax per rate, inventory valuation.

Each report is a dict ready for JSON (amounts in minor units, with their currency) and has a text
rendering for the CLI (``render``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import func, select

from engine.plugin_api import (
    MOVEMENT_ADJUSTMENT,
    MOVEMENT_RECEIPT,
    Product,
    StockLevel,
    StockMovement,
    amount_text,
    db,
    is_postgres,
)

from .models import CostGap, JournalEntry, Posting
from .settings import REVENUE_ROLES


def _range(stmt, since: date | None, until: date | None):
    if since is not None:
        stmt = stmt.where(JournalEntry.booking_date >= since)
    if until is not None:
        stmt = stmt.where(JournalEntry.booking_date <= until)
    return stmt


def trial_balance(since: date | None = None, until: date | None = None) -> dict:
    """Debits, credits and balance per account and currency; the balances of each currency sum to zero."""
    stmt = _range(select(Posting.account, Posting.role, Posting.currency,
                         func.sum(func.abs(Posting.amount) + Posting.amount) / 2,
                         func.sum(func.abs(Posting.amount) - Posting.amount) / 2, func.sum(Posting.amount))
                  .join(JournalEntry, JournalEntry.id == Posting.entry_id), since, until) \
        .group_by(Posting.account, Posting.role, Posting.currency).order_by(Posting.account, Posting.currency)
    rows = []
    totals: dict[str, dict] = {}
    by_account: dict[tuple[str, str], dict] = {}
    for account, role, currency, debit, credit, balance in db.session.execute(stmt):
        key = (account, currency)
        if key in by_account:  # one account used by two roles: one row
            row = by_account[key]
            row["debit"] += int(debit)
            row["credit"] += int(credit)
            row["balance"] += int(balance)
        else:
            row = by_account[key] = {"account": account, "role": role, "currency": currency, "debit": int(debit),
                                     "credit": int(credit), "balance": int(balance)}
            rows.append(row)
        total = totals.setdefault(currency, {"currency": currency, "debit": 0, "credit": 0, "balance": 0})
        total["debit"] += int(debit)
        total["credit"] += int(credit)
        total["balance"] += int(balance)
    return {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "accounts": rows, "totals": sorted(totals.values(), key=lambda t: t["currency"]),
            "balanced": all(t["balance"] == 0 for t in totals.values())}


def _month(column):
    return func.to_char(column, "YYYY-MM") if is_postgres() else func.strftime("%Y-%m", column)


def _year_range(year: int | None) -> tuple[date | None, date | None]:
    return (date(year, 1, 1), date(year, 12, 31)) if year else (None, None)


def sales_by_channel(year: int | None = None, since: date | None = None, until: date | None = None) -> dict:
    """Revenue per channel and month (credit notes and cancellations in the month they were booked)."""
    if year:
        since, until = _year_range(year)
    month = _month(JournalEntry.booking_date)
    stmt = _range(select(JournalEntry.channel, month, Posting.currency, Posting.role, func.sum(Posting.amount))
                  .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                  .where(Posting.role.in_((*REVENUE_ROLES, "vat")), JournalEntry.order_id.is_not(None)),
                  since, until).group_by(JournalEntry.channel, month, Posting.currency, Posting.role)
    rows: dict[tuple, dict] = {}
    for channel, mon, currency, role, amount in db.session.execute(stmt):
        row = rows.setdefault((channel or "", mon, currency), {
            "channel": channel or "", "month": mon, "currency": currency, "sales": 0, "shipping": 0,
            "discounts": 0, "refunds": 0, "net_revenue": 0, "tax": 0, "orders": 0})
        amount = int(amount)
        if role == "vat":
            row["tax"] -= amount
            continue
        row[role] += -amount if role in ("sales", "shipping") else amount
        row["net_revenue"] -= amount
    counts = _range(select(JournalEntry.channel, month, func.count()).where(JournalEntry.kind == "sale"),
                    since, until).group_by(JournalEntry.channel, month)
    for channel, mon, n in db.session.execute(counts):
        for key, row in rows.items():
            if key[0] == (channel or "") and key[1] == mon:
                row["orders"] = int(n)
    for row in rows.values():
        row["gross"] = row["net_revenue"] + row["tax"]
    return {"year": year, "since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "rows": sorted(rows.values(), key=lambda r: (r["month"], r["channel"], r["currency"]))}


def tax_summary(year: int | None = None, since: date | None = None, until: date | None = None) -> dict:
    """Per currency and VAT rate: the taxable net (revenue at that rate) and the VAT, for the year-end."""
    if year:
        since, until = _year_range(year)
    stmt = _range(select(Posting.currency, Posting.tax_rate, Posting.role, func.sum(Posting.amount))
                  .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                  .where(Posting.role.in_((*REVENUE_ROLES, "vat")), Posting.tax_rate.is_not(None)),
                  since, until).group_by(Posting.currency, Posting.tax_rate, Posting.role)
    rows: dict[tuple, dict] = {}
    for currency, rate, role, amount in db.session.execute(stmt):
        row = rows.setdefault((currency, rate), {"currency": currency, "rate": rate, "net": 0, "tax": 0, "gross": 0})
        row["tax" if role == "vat" else "net"] -= int(amount)
        row["gross"] -= int(amount)
    ordered = sorted(rows.values(), key=lambda r: (r["currency"], -float(r["rate"])))
    totals: dict[str, dict] = {}
    for row in ordered:
        total = totals.setdefault(row["currency"], {"currency": row["currency"], "net": 0, "tax": 0, "gross": 0})
        for key in ("net", "tax", "gross"):
            total[key] += row[key]
    return {"year": year, "since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "rates": ordered, "totals": list(totals.values())}


def inventory_valuation() -> dict:
    """Stock on hand at the products' unit cost, against the inventory account, per product.

    ``difference`` = valuation - account. It is zero when every movement was posted at the cost still on
    the product; a new receipt cost (the product's cost changes, booked units keep theirs), cost gaps
    (units moved without a cost) and stock receipts not posted yet explain the rest."""
    on_hand = dict(db.session.execute(select(StockLevel.product_id, func.sum(StockLevel.on_hand))
                                      .group_by(StockLevel.product_id)).all())
    booked = {(sku, currency): (int(qty or 0), int(amount or 0)) for sku, currency, qty, amount in db.session.execute(
        select(Posting.sku, Posting.currency, func.sum(Posting.quantity), func.sum(Posting.amount))
        .where(Posting.role == "inventory", Posting.sku.is_not(None)).group_by(Posting.sku, Posting.currency))}
    gaps: dict[str, int] = defaultdict(int)
    for sku, quantity in db.session.execute(select(CostGap.sku, func.sum(CostGap.quantity)).group_by(CostGap.sku)):
        gaps[sku] += int(quantity)
    # every receipt (or adjustment) becomes one entry, or one cost gap when its product had no cost
    movements = db.session.execute(select(func.count()).select_from(StockMovement).where(
        StockMovement.kind.in_((MOVEMENT_RECEIPT, MOVEMENT_ADJUSTMENT)), StockMovement.quantity != 0)).scalar_one()
    posted = db.session.execute(select(func.count()).select_from(JournalEntry).where(
        JournalEntry.kind.in_(("stock_receipt", "stock_adjustment")))).scalar_one()
    gapped = db.session.execute(select(func.count()).select_from(CostGap).where(
        CostGap.kind.in_(("stock_receipt", "stock_adjustment")))).scalar_one()
    unposted = max(0, movements - posted - gapped)
    products = []
    totals: dict[str, dict] = {}
    for product in db.session.execute(select(Product).order_by(Product.sku)).scalars():
        qty = int(on_hand.get(product.id) or 0)
        account_qty, account_value = booked.get((product.sku, product.currency), (0, 0))
        if not qty and not account_qty and not account_value and not gaps.get(product.sku):
            continue
        valuation = qty * product.unit_cost if product.unit_cost is not None else None
        products.append({"sku": product.sku, "currency": product.currency, "on_hand": qty,
                         "unit_cost": product.unit_cost, "valuation": valuation, "account_quantity": account_qty,
                         "account_value": account_value,
                         "difference": (valuation or 0) - account_value,
                         "unvalued_units": gaps.get(product.sku, 0)})
        total = totals.setdefault(product.currency, {"currency": product.currency, "valuation": 0, "account": 0,
                                                     "difference": 0})
        total["valuation"] += valuation or 0
        total["account"] += account_value
        total["difference"] += (valuation or 0) - account_value
    account_balance = {currency: int(amount) for currency, amount in db.session.execute(
        select(Posting.currency, func.sum(Posting.amount)).where(Posting.role == "inventory")
        .group_by(Posting.currency))}
    for currency, total in totals.items():
        total["account_balance"] = account_balance.get(currency, 0)
    return {"products": products, "totals": sorted(totals.values(), key=lambda t: t["currency"]),
            "unposted_stock_movements": int(unposted),
            "products_without_cost": [p["sku"] for p in products if p["unit_cost"] is None and p["on_hand"]],
            "reconciled": all(t["difference"] == 0 for t in totals.values()) and not unposted}


# --------------------------------------------------------------------------- text


def _table(headers: list[str], rows: list[list]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).rjust(w) if isinstance(c, str) and c[:1] in "-0123456789" and i else
                               str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


def render(name: str, report: dict) -> str:
    def m(amount, currency):
        return amount_text(amount, currency) if amount is not None else "-"

    if name == "trial-balance":
        rows = [[r["account"], r["currency"], m(r["debit"], r["currency"]), m(r["credit"], r["currency"]),
                 m(r["balance"], r["currency"])] for r in report["accounts"]]
        rows += [["TOTAL", t["currency"], m(t["debit"], t["currency"]), m(t["credit"], t["currency"]),
                  m(t["balance"], t["currency"])] for t in report["totals"]]
        return _table(["account", "cur", "debit", "credit", "balance"], rows) + \
            f"\n{'balanced' if report['balanced'] else 'NOT BALANCED'}"
    if name == "sales":
        rows = [[r["month"], r["channel"], r["currency"], str(r["orders"]), m(r["sales"], r["currency"]),
                 m(r["shipping"], r["currency"]), m(r["discounts"], r["currency"]), m(r["refunds"], r["currency"]),
                 m(r["net_revenue"], r["currency"]), m(r["tax"], r["currency"]), m(r["gross"], r["currency"])]
                for r in report["rows"]]
        return _table(["month", "channel", "cur", "orders", "sales", "shipping", "discounts", "refunds", "net",
                       "tax", "gross"], rows)
    if name == "tax":
        rows = [[r["currency"], f"{r['rate']} %", m(r["net"], r["currency"]), m(r["tax"], r["currency"]),
                 m(r["gross"], r["currency"])] for r in report["rates"]]
        rows += [[t["currency"], "TOTAL", m(t["net"], t["currency"]), m(t["tax"], t["currency"]),
                  m(t["gross"], t["currency"])] for t in report["totals"]]
        return _table(["cur", "rate", "net", "tax", "gross"], rows)
    if name == "inventory":
        rows = [[p["sku"], p["currency"], str(p["on_hand"]), m(p["unit_cost"], p["currency"]),
                 m(p["valuation"], p["currency"]), str(p["account_quantity"]), m(p["account_value"], p["currency"]),
                 m(p["difference"], p["currency"]), str(p["unvalued_units"])] for p in report["products"]]
        rows += [["TOTAL", t["currency"], "", "", m(t["valuation"], t["currency"]), "", m(t["account"], t["currency"]),
                  m(t["difference"], t["currency"]), ""] for t in report["totals"]]
        text = _table(["sku", "cur", "on hand", "unit cost", "valuation", "booked qty", "account", "difference",
                       "unvalued"], rows)
        if report["unposted_stock_movements"]:
            text += f"\n{report['unposted_stock_movements']} stock receipts are not posted yet (the sweeper posts them)"
        if report["products_without_cost"]:
            text += "\nno unit cost: " + ", ".join(report["products_without_cost"])
        return text + f"\n{'reconciled' if report['reconciled'] else 'NOT reconciled'}"
    raise ValueError(name)
