"""Receipts: a gap-free number per year, the receipt's data (for the customer's e-mail) and its PDF.

The number is taken from a counter row per year, locked (``SELECT ... FOR UPDATE`` on PostgreSQL; the
write transaction is ``BEGIN IMMEDIATE`` on SQLite) and incremented in the same transaction that
inserts the receipt and books the sale: a rolled back confirmation gives its number back, so the
numbers of a year are 1, 2, 3, ... with no gap and no repeat, however many confirmations run at once.
"""

from __future__ import annotations

import io
from datetime import datetime

from sqlalchemy import select, update

from engine.plugin_api import NotFound, amount_text, as_utc, db, format_money, insert_if_absent

from .composition import line_rate
from .models import OrderBooks, Receipt, ReceiptCounter
from .settings import current


def receipt_of_order(order_id: int) -> Receipt | None:
    return db.session.execute(select(Receipt).where(Receipt.order_id == order_id)).scalar_one_or_none()


def get_receipt(receipt_id: int) -> Receipt:
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None:
        raise NotFound(f"no receipt with id {receipt_id}")
    return receipt


def next_number(year: int) -> int:
    """The next number of ``year``'s sequence, taken under the counter row's lock (call inside a transaction)."""
    # one statement: the UPDATE locks the year's row until commit, so the next confirmation waits here
    bump = update(ReceiptCounter).where(ReceiptCounter.year == year).values(last=ReceiptCounter.last + 1) \
        .returning(ReceiptCounter.last).execution_options(synchronize_session=False)
    seq = db.session.execute(bump).scalar()
    if seq is None:  # the year's first receipt
        insert_if_absent(ReceiptCounter, {"year": year, "last": 0}, ["year"])
        seq = db.session.execute(bump).scalar_one()
    return seq


def issue(order, books: OrderBooks, issued_at: datetime) -> Receipt:
    """The order's receipt, numbered on first call (inside the confirmation's transaction)."""
    existing = receipt_of_order(order.id)
    if existing is not None:
        return existing
    settings = current()
    issued_at = as_utc(issued_at)
    year = issued_at.year
    seq = next_number(year)
    number = f"{settings.receipt_prefix}{year}-{seq:06d}"
    receipt = Receipt(order_id=order.id, year=year, seq=seq, number=number, issued_at=issued_at,
                      currency=order.currency, total=order.total,
                      data=receipt_data(order, books, number, issued_at, settings.seller))
    db.session.add(receipt)
    db.session.flush()
    return receipt


def receipt_data(order, books: OrderBooks, number: str, issued_at: datetime, seller: list[str]) -> dict:
    """What the customer's receipt shows: lines, the tax per rate, totals and the payment."""
    settings = current()
    tax: dict[str, dict] = {}
    for role, rate, amount in books.composition:
        row = tax.setdefault(rate, {"rate": rate, "net": 0, "tax": 0, "gross": 0})
        row["tax" if role == "vat" else "net"] += amount
        row["gross"] += amount
    tax_rows = sorted(tax.values(), key=lambda r: -float(r["rate"]))
    captured = [p for p in order.payments if p.status in ("paid", "partially_refunded", "refunded")]
    return {
        "number": number,
        "issued_at": issued_at.isoformat(),
        "seller": list(seller),
        "order": {"id": order.id, "number": order.number, "channel": order.channel,
                  "placed_at": as_utc(order.created_at).isoformat() if order.created_at else None},
        "customer": {"name": order.customer_name, "email": order.email, "address": dict(order.shipping_address or {})},
        "currency": order.currency,
        "lines": [{"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": line.unit_price,
                   "total": line.unit_price * line.quantity, "tax_rate": line_rate(order, settings, line.sku)}
                  for line in order.lines],
        "tax": tax_rows,
        "totals": {"subtotal": order.subtotal, "discount": order.discount_total, "shipping": order.shipping_total,
                   "net": sum(r["net"] for r in tax_rows), "tax": sum(r["tax"] for r in tax_rows),
                   "total": order.total},
        "payment": {"status": order.payment_status, "paid": sum(p.amount for p in captured),
                    "due": order.total - sum(p.amount for p in captured),
                    "payments": [{"provider": p.provider, "reference": p.reference, "amount": p.amount}
                                 for p in captured]},
    }


def receipt_out(receipt: Receipt) -> dict:
    return {"id": receipt.id, "number": receipt.number, "year": receipt.year, "order_id": receipt.order_id,
            "issued_at": as_utc(receipt.issued_at).isoformat(), "currency": receipt.currency,
            "total": receipt.total, "pdf_url": f"/api/v1/accounting/receipts/{receipt.id}/receipt.pdf",
            "data": receipt.data}


def receipt_text(receipt: Receipt) -> str:
    """A plain-text rendering (for an e-mail body)."""
    data = receipt.data
    cur = data["currency"]
    out = [*data.get("seller", []), "", f"Receipt {data['number']}", f"Order {data['order']['number']}, "
           f"{data['issued_at'][:10]}", f"{data['customer']['name']} <{data['customer']['email']}>", ""]
    for line in data["lines"]:
        out.append(f"{line['quantity']} x {line['name']} ({line['sku']})  {amount_text(line['total'], cur)}"
                   + (f" [VAT {line['tax_rate']}%]" if line["tax_rate"] is not None else ""))
    totals = data["totals"]
    if totals["discount"]:
        out.append(f"Discount  -{amount_text(totals['discount'], cur)}")
    if totals["shipping"]:
        out.append(f"Shipping  {amount_text(totals['shipping'], cur)}")
    out.append(f"Total  {format_money(totals['total'], cur)}")
    for row in data["tax"]:
        out.append(f"  VAT {row['rate']}%: {amount_text(row['tax'], cur)} on net {amount_text(row['net'], cur)}")
    pay = data["payment"]
    out.append(f"Paid {format_money(pay['paid'], cur)}" + (f", due {format_money(pay['due'], cur)}" if pay["due"] else ""))
    return "\n".join(out) + "\n"


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a one-page A4 PDF (reportlab)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    data = receipt.data
    cur = data["currency"]
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=f"Receipt {data['number']}", author="hookshop")

    def p(text, style="Normal"):
        return Paragraph(_escape(text), styles[style])

    story = [p(line) for line in data.get("seller", [])]
    story += [Spacer(1, 6 * mm), p(f"Receipt {data['number']}", "Title"),
              p(f"Order {data['order']['number']} - issued {data['issued_at'][:10]}"),
              p(f"{data['customer']['name']} <{data['customer']['email']}>"),
              Spacer(1, 5 * mm)]
    rows = [["Qty", "Item", "SKU", "VAT", "Unit", "Total"]]
    for line in data["lines"]:
        rows.append([str(line["quantity"]), line["name"], line["sku"], f"{line['tax_rate']} %" if line["tax_rate"] is not None else "",
                     amount_text(line["unit_price"], cur), amount_text(line["total"], cur)])
    totals = data["totals"]
    if totals["discount"]:
        rows.append(["", "Discount", "", "", "", "-" + amount_text(totals["discount"], cur)])
    if totals["shipping"]:
        rows.append(["", "Shipping", "", "", "", amount_text(totals["shipping"], cur)])
    rows.append(["", "Total", "", "", "", format_money(totals["total"], cur)])
    table = Table(rows, colWidths=[12 * mm, 62 * mm, 32 * mm, 16 * mm, 24 * mm, 24 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
        ("ALIGN", (3, 0), (-1, -1), "RIGHT"), ("FONTSIZE", (0, 0), (-1, -1), 9)]))
    story += [table, Spacer(1, 5 * mm)]
    tax_rows = [["VAT rate", "Net", "VAT", "Gross"]]
    for row in data["tax"]:
        tax_rows.append([f"{row['rate']} %", amount_text(row["net"], cur), amount_text(row["tax"], cur),
                         amount_text(row["gross"], cur)])
    tax_table = Table(tax_rows, colWidths=[30 * mm, 30 * mm, 30 * mm, 30 * mm])
    tax_table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 9),
                                   ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                                   ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black)]))
    story += [tax_table, Spacer(1, 5 * mm)]
    pay = data["payment"]
    paid = ", ".join(f"{x['provider']} {amount_text(x['amount'], cur)}" + (f" ({x['reference']})" if x["reference"]
                                                                             else "") for x in pay["payments"])
    story.append(p(f"Paid: {format_money(pay['paid'], cur)}" + (f" - {paid}" if paid else "")
                   + (f". Still due: {format_money(pay['due'], cur)}" if pay["due"] else "")))
    story.append(p("Prices include VAT."))
    doc.build(story)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
