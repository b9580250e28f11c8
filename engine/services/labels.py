"""Code128 label sheets (PDF, reportlab): serial units, products and bins.

A sheet is A4 with 3 x 8 labels of 70 x 37 mm (the common "24 per sheet" stock). Each label carries the
Code128 symbol of its value (a serial, a product's barcode or sku, a location code), the value in plain
text under it and a caption (the product or location name). A bar is at least 0.25 mm wide, narrower
only when a long value would not fit the label otherwise; a scanner (and zbarimg on a 300 dpi rendering,
see the tests) reads it back.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from reportlab.graphics.barcode import code128
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from sqlalchemy import select

from engine.db import db
from engine.errors import NotFound, ValidationFailed
from engine.models import Location, Product, SerialUnit

COLUMNS, ROWS = 3, 8
LABEL_W, LABEL_H = A4[0] / COLUMNS, A4[1] / ROWS
MARGIN = 4 * mm
MAX_LABELS = 100_000


def _text(value: str, limit: int = 48) -> str:
    text = " ".join(str(value or "").split())[:limit]
    return text.encode("latin-1", "replace").decode("latin-1")  # the standard fonts know Latin-1


def _draw(pdf: canvas.Canvas, x: float, y: float, value: str, caption: str) -> None:
    room = LABEL_W - 2 * MARGIN
    modules = code128.Code128(value, barWidth=1, quiet=False).width  # the symbol's width in modules
    bar = min(0.33 * mm, room / modules)
    symbol = code128.Code128(value, barHeight=16 * mm, barWidth=bar, humanReadable=False, quiet=False)
    symbol.drawOn(pdf, x + (LABEL_W - symbol.width) / 2, y + LABEL_H - MARGIN - 16 * mm)
    pdf.setFont("Helvetica-Bold", 9)
    pdf.drawCentredString(x + LABEL_W / 2, y + LABEL_H - MARGIN - 16 * mm - 11, _text(value))
    pdf.setFont("Helvetica", 7)
    pdf.drawCentredString(x + LABEL_W / 2, y + MARGIN + 2, _text(caption))


def sheet(labels: Iterable[tuple[str, str]], progress: Callable[[int], None] | None = None) -> bytes:
    """A PDF of ``(value, caption)`` labels, 24 to a page; ``progress(n)`` after every page."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    pdf.setTitle("hookshop labels")
    on_page = 0
    for value, caption in labels:
        if on_page == COLUMNS * ROWS:
            pdf.showPage()
            if progress:
                progress(on_page)
            on_page = 0
        column, row = on_page % COLUMNS, on_page // COLUMNS
        _draw(pdf, column * LABEL_W, A4[1] - (row + 1) * LABEL_H, value, caption)
        on_page += 1
    if progress and on_page:
        progress(on_page)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def product_labels(sku: str, *, serials: bool = False, copies: int = 1) -> list[tuple[str, str]]:
    """The product's label ``copies`` times (its barcode, else its sku), or one label per unit on hand and
    free (``serials``: the in-stock serials, oldest first)."""
    product = db.session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}")
    caption = f"{product.sku} {product.name}"
    if not serials:
        return [(product.barcode or product.sku, caption)] * copies
    if not product.track_serials:
        raise ValidationFailed(f"{sku} does not track serials: print its product label (without serials)",
                               errors={"serials": ["this product does not track serials"]})
    units = db.session.execute(select(SerialUnit.serial).where(
        SerialUnit.product_id == product.id, SerialUnit.status == "in_stock").order_by(SerialUnit.id)
        .limit(MAX_LABELS)).scalars()
    labels = [(serial, caption) for serial in units]
    if not labels:
        raise NotFound(f"{sku} has no serial units in stock", code="no_labels")
    return labels


def serial_labels(serial: str, sku: str | None = None) -> list[tuple[str, str]]:
    from engine.services import serials as serial_units

    unit = serial_units.get_serial(serial, sku)  # 404 unknown, 409 ambiguous without sku
    return [(unit["serial"], unit["sku"])]


def location_labels(prefix: str) -> list[tuple[str, str]]:
    """One label per location whose code starts with ``prefix`` (``MAIN/A`` -> MAIN/A-01-1, ...)."""
    rows = db.session.execute(select(Location.code, Location.name).where(Location.code.startswith(prefix, autoescape=True))
                              .order_by(Location.code).limit(MAX_LABELS)).all()
    if not rows:
        raise NotFound(f"no location code starts with {prefix!r}", code="no_labels")
    return [(code, name if name != code else "") for code, name in rows]
