"""PDFs made with reportlab: the 4x6 inch shipping label and the packing slip."""

from __future__ import annotations

import contextvars
import io
import os
from dataclasses import dataclass
from datetime import date

from reportlab.graphics.barcode import code128
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, inch
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from engine.plugin_api import format_money

LABEL_SIZE = (4 * inch, 6 * inch)  # 288 x 432 points
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts",
             "/Library/Fonts", "C:\\Windows\\Fonts")
_fonts: dict = {}
_face: contextvars.ContextVar = contextvars.ContextVar("carrier_generic_fonts", default=("Helvetica", "Helvetica-Bold"))


def unicode_fonts() -> tuple[str, str]:
    """(regular, bold) for text beyond Latin-1: DejaVu Sans when installed, else Helvetica."""
    if not _fonts:
        regular, bold = "Helvetica", "Helvetica-Bold"
        for folder in FONT_DIRS:
            plain, heavy = os.path.join(folder, "DejaVuSans.ttf"), os.path.join(folder, "DejaVuSans-Bold.ttf")
            if os.path.exists(plain) and os.path.exists(heavy):
                try:
                    pdfmetrics.registerFont(TTFont("HSDejaVu", plain))
                    pdfmetrics.registerFont(TTFont("HSDejaVu-Bold", heavy))
                    pdfmetrics.registerFontFamily("HSDejaVu", normal="HSDejaVu", bold="HSDejaVu-Bold",
                                                  italic="HSDejaVu", boldItalic="HSDejaVu-Bold")
                    regular, bold = "HSDejaVu", "HSDejaVu-Bold"
                except Exception:  # noqa: BLE001 - a broken font file: keep Helvetica
                    pass
                break
        _fonts.update(regular=regular, bold=bold)
    return _fonts["regular"], _fonts["bold"]


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def use_fonts(*values) -> tuple[str, str]:
    """Choose the fonts of one document: Helvetica (built into every PDF reader, so the file stays a
    few KB) when all its text is Latin-1, else embedded DejaVu Sans subsets."""
    try:
        for text in _strings(values):
            text.encode("latin-1")
        face = ("Helvetica", "Helvetica-Bold")
    except UnicodeEncodeError:
        face = unicode_fonts()
    _face.set(face)
    return face


def _text(value) -> str:
    text = " ".join(str(value or "").split())
    if _face.get()[0] == "Helvetica":  # the standard fonts know Latin-1 only
        text = text.encode("latin-1", "replace").decode("latin-1")
    return text


def address_lines(address: dict, name: str | None = None) -> list[str]:
    """An address as printed: name, company, street lines, postal code + city, region, country."""
    address = address or {}
    lines = [name or address.get("name"), address.get("company"), address.get("line1"), address.get("line2"),
             " ".join(p for p in (address.get("postal_code"), address.get("city")) if p),
             address.get("region"), address.get("country")]
    return [_text(line) for line in lines if line and str(line).strip()]


def _fit(c: canvas.Canvas, text: str, font: str, size: float, width: float) -> float:
    """The largest font size up to ``size`` at which ``text`` fits in ``width``."""
    while size > 5 and c.stringWidth(text, font, size) > width:
        size -= 0.5
    return size


@dataclass(frozen=True)
class _Pen:
    """What drawing one label needs: its canvas, its size and margin, its two fonts."""

    c: canvas.Canvas
    width: float
    height: float
    margin: float
    regular: str
    bold: str

    @property
    def inner(self) -> float:
        return self.width - 2 * self.margin

    @property
    def right(self) -> float:
        return self.width - self.margin

    def rule(self, y: float, thickness: float) -> None:
        self.c.setLineWidth(thickness)
        self.c.line(self.margin, y, self.width - self.margin, y)


def shipping_label(*, carrier_label: str, service: str, tracking_number: str, sender: dict | None,
                   recipient: dict, recipient_name: str, order_number: str, weight_grams: int,
                   ship_date: date, estimated_delivery: date | None, zone: str | None = None,
                   phone: str | None = None) -> bytes:
    """A 4x6 inch label: carrier and service, both addresses, a Code128 barcode of the tracking number
    (also printed as text), the order number, the weight and the dates."""
    regular, bold = use_fonts(carrier_label, service, sender, recipient, recipient_name, phone)
    buffer = io.BytesIO()
    width, height = LABEL_SIZE
    c = canvas.Canvas(buffer, pagesize=LABEL_SIZE, invariant=1)
    c.setTitle(f"Label {tracking_number}")
    c.setAuthor("hookshop carrier_generic")
    pen = _Pen(c, width, height, 0.15 * inch, regular, bold)
    y = _label_header(pen, carrier_label, service)
    y = _label_sender(pen, y, sender)
    y = _label_recipient(pen, y, recipient, recipient_name, phone)
    facts = [(f"Order {order_number}", f"Weight {weight_grams / 1000:.2f} kg"),
             (f"Shipped {ship_date.isoformat()}",
              f"Expected {estimated_delivery.isoformat()}" if estimated_delivery else "")]
    if zone:
        facts.append((f"Zone {zone}", ""))
    _label_facts(pen, y, facts)
    _label_barcode(pen, tracking_number)
    c.showPage()
    c.save()
    return buffer.getvalue()


def _label_header(pen: _Pen, carrier_label: str, service: str) -> float:
    """Carrier and service, then a rule; returns where the next part starts."""
    c, y = pen.c, pen.height - pen.margin - 20
    c.setFont(pen.bold, _fit(c, _text(carrier_label).upper(), pen.bold, 18, pen.inner * 0.62))
    c.drawString(pen.margin, y, _text(carrier_label).upper())
    c.setFont(pen.bold, 14)
    c.drawRightString(pen.right, y, _text(service).upper())
    y -= 10
    pen.rule(y, 1.5)
    return y


def _label_sender(pen: _Pen, y: float, sender: dict | None) -> float:
    """FROM and the sender's address, then a thin rule."""
    c = pen.c
    y -= 11
    c.setFont(pen.bold, 7)
    c.drawString(pen.margin, y, "FROM")
    c.setFont(pen.regular, 8)
    for line in address_lines(sender or {"name": "hookshop"}):
        y -= 9.5
        c.drawString(pen.margin, y, line[:70])
    y -= 7
    pen.rule(y, 0.75)
    return y


def _label_recipient(pen: _Pen, y: float, recipient: dict, recipient_name: str, phone: str | None) -> float:
    """SHIP TO and the recipient's address, large (its name and country bold), the phone, then a rule."""
    c = pen.c
    y -= 14
    c.setFont(pen.bold, 9)
    c.drawString(pen.margin, y, "SHIP TO")
    lines = address_lines(recipient, recipient_name)
    for index, line in enumerate(lines):
        size: float = 14 if index == 0 else 12
        font = pen.bold if index == 0 or index == len(lines) - 1 else pen.regular
        size = _fit(c, line, font, size, pen.inner)
        y -= size + 4
        c.setFont(font, size)
        c.drawString(pen.margin, y, line)
    if phone:
        y -= 13
        c.setFont(pen.regular, 9)
        c.drawString(pen.margin, y, _text(f"Phone {phone}"))
    y -= 9
    pen.rule(y, 1.5)
    return y


def _label_facts(pen: _Pen, y: float, facts: list[tuple[str, str]]) -> float:
    """The shipment's facts, two a line (left and right)."""
    pen.c.setFont(pen.regular, 9)
    for left, right in facts:
        y -= 12
        pen.c.drawString(pen.margin, y, _text(left))
        pen.c.drawRightString(pen.right, y, _text(right))
    return y


def _label_barcode(pen: _Pen, tracking_number: str) -> None:
    """The barcode at the foot, as wide as the label allows, with the number printed below it."""
    bar_height = 0.9 * inch
    bar_width = 1.2
    barcode = code128.Code128(tracking_number, barHeight=bar_height, barWidth=bar_width, humanReadable=False,
                              quiet=True)
    while barcode.width > pen.inner and bar_width > 0.5:
        bar_width -= 0.05
        barcode = code128.Code128(tracking_number, barHeight=bar_height, barWidth=bar_width, humanReadable=False,
                                  quiet=True)
    base = pen.margin + 26
    barcode.drawOn(pen.c, (pen.width - barcode.width) / 2, base)
    pen.c.setFont(pen.bold, _fit(pen.c, tracking_number, pen.bold, 14, pen.inner))
    pen.c.drawCentredString(pen.width / 2, pen.margin + 8, tracking_number)


def packing_slip(order, *, sender: dict | None, shipments=()) -> bytes:
    """An A4 packing slip: addresses, the lines with their serials and, unless the order is a gift, prices."""
    recipient_name = (order.shipping_address or {}).get("name") or order.customer_name
    regular, bold = use_fonts(order.shipping_address, recipient_name, sender,
                              [(line.sku, line.name, line.serials) for line in order.lines],
                              [(s.carrier, s.service, s.tracking_number) for s in shipments])
    styles = _slip_styles(regular, bold)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=f"Packing slip {order.number}", author="hookshop",
                            invariant=1)
    gift = bool(order.gift or "gift" in (order.flags or []))
    story = [Paragraph(_text(f"Packing slip - order {order.number}"), styles["Title"])]
    if gift:
        story.append(Paragraph("A gift for you. Prices are not shown.", styles["Heading3"]))
    created = order.created_at.date().isoformat() if order.created_at else ""
    facts = f"Order date {created}"
    for shipment in shipments:
        facts += " &middot; " + _escape(f"{shipment.carrier} {shipment.service}, tracking {shipment.tracking_number}")
    story += [Paragraph(facts, styles["Normal"]), Spacer(1, 6 * mm)]

    def block(title, lines):
        return [Paragraph(f"<b>{title}</b>", styles["Normal"])] + [Paragraph(_escape(line), styles["Normal"])
                                                                   for line in lines]

    addresses = Table([[block("Ship to", address_lines(order.shipping_address or {}, recipient_name)),
                        block("From", address_lines(sender or {"name": "hookshop"}))]],
                      colWidths=[doc.width / 2] * 2)
    addresses.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [addresses, Spacer(1, 8 * mm)]
    story += [_slip_lines(order, gift, styles, doc.width, regular, bold), Spacer(1, 10 * mm)]
    units = sum(line.quantity for line in order.lines)
    story.append(Paragraph(f"{units} unit{'s' if units != 1 else ''} in this parcel. Questions about your order? "
                           f"Reply to the e-mail you received and quote order {order.number}.", styles["Normal"]))
    doc.build(story)
    return buffer.getvalue()


def _slip_styles(regular: str, bold: str):
    """reportlab's sample styles in the document's two fonts."""
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        if hasattr(style, "fontName"):
            style.fontName = bold if "Bold" in style.fontName or style.name.startswith("Heading") \
                or style.name == "Title" else regular
    return styles


def _slip_lines(order, gift: bool, styles, width: float, regular: str, bold: str) -> Table:
    """The table of the order's lines (serials under each), with prices and totals unless it is a gift."""
    header = ["SKU", "Item", "Qty"] + ([] if gift else ["Unit price", "Total"])
    rows: list[list] = [header]
    for line in order.lines:
        name = _escape(line.name) + ("".join(f"<br/><font size=8>serial {_escape(s)}</font>"
                                             for s in (line.serials or [])))
        row = [_text(line.sku), Paragraph(name, styles["Normal"]), str(line.quantity)]
        if not gift:
            row += [format_money(line.unit_price, order.currency), format_money(line.unit_price * line.quantity, order.currency)]
        rows.append(row)
    if not gift:
        rows.append(["", "Subtotal", "", "", format_money(order.subtotal, order.currency)])
        if order.discount_total:
            rows.append(["", "Discount", "", "", format_money(-order.discount_total, order.currency)])
        if order.shipping_total:
            rows.append(["", "Shipping", "", "", format_money(order.shipping_total, order.currency)])
        rows.append(["", "Total", "", "", format_money(order.total, order.currency)])
    widths = [30 * mm, None, 14 * mm] + ([] if gift else [28 * mm, 28 * mm])
    fixed = sum(w for w in widths if w)
    widths = [w or width - fixed for w in widths]
    table = Table(rows, colWidths=widths, repeatRows=1)
    style = [("FONT", (0, 0), (-1, 0), bold), ("FONT", (0, 1), (-1, -1), regular),
             ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("ALIGN", (2, 0), (-1, -1), "RIGHT")]
    if not gift:
        first_total = len(order.lines) + 1
        style += [("LINEABOVE", (0, first_total), (-1, first_total), 0.5, colors.grey),
                  ("FONT", (0, len(rows) - 1), (-1, len(rows) - 1), bold)]
    table.setStyle(TableStyle(style))
    return table


def _escape(text) -> str:
    return _text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
