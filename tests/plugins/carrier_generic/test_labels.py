"""The 4x6 label (text extraction, and the barcode scanned for real) and the packing slip."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from conftest import service_missing
from sqlalchemy import update

from engine.db import db
from engine.models import Shipment
from plugins.carrier_generic.labels import unicode_fonts

from .conftest import address, pdf_text, place_to, ship, shop

SENDER = """
[sender]
name = "Example Shop GmbH"
line1 = "Shop Street 1"
postal_code = "20095"
city = "Hamburg"
country = "DE"
"""


@pytest.fixture
def database():
    """SQLite only: PDF rendering do not depend on the database (test_tracking and test_numbers_and_eta
    ship on both)."""
    return "sqlite"


@pytest.fixture
def app_config(tmp_path):
    path = tmp_path / "carriers.toml"
    path.write_text(SENDER)
    return {"CARRIER_GENERIC_CONFIG": str(path)}


def scan_barcodes(pdf: bytes, tmp_path) -> list[str]:
    """Render the PDF at 200 dpi (pdftoppm) and read its barcodes (zbarimg)."""
    if not (shutil.which("pdftoppm") and shutil.which("zbarimg")):
        service_missing("pdftoppm and zbarimg are not installed (apt-get install poppler-utils zbar-tools)")
    (tmp_path / "label.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "200", "-singlefile", str(tmp_path / "label.pdf"),
                    str(tmp_path / "label")], check=True, timeout=30)
    out = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "label.png")], capture_output=True, text=True,
                         timeout=30)
    return out.stdout.split()


def test_the_label_has_the_barcode_both_addresses_weight_and_order_number(api, app, tmp_path):
    from pypdf import PdfReader

    shop(api)
    order = place_to(api, [("MUG", 2), ("BOOK", 1)], to=address(line1="Hauptstraße 5", city="Berlin"))
    shipped = ship(api, order["id"], "generic", "express")
    shipment = shipped["shipments"][0]
    resp = api.get(shipment["label_url"].removeprefix("/api/v1"))
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    page = PdfReader(io.BytesIO(resp.data)).pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == (288.0, 432.0)  # 4 x 6 inches
    text = pdf_text(resp.data)
    for expected in (shipment["tracking_number"], f"Order {shipped['number']}", "Weight 1.70 kg", "EXPRESS",
                     "Ann Example", "Hauptstraße 5", "10115 Berlin", "Example Shop GmbH", "Shop Street 1",
                     "20095 Hamburg", f"Expected {shipment['estimated_delivery']}"):
        assert expected in text, (expected, text)
    assert scan_barcodes(resp.data, tmp_path) == [shipment["tracking_number"]]


def test_a_missing_label_is_made_again_on_demand(api, app):
    shop(api)
    shipment = ship(api, place_to(api, [("LAMP", 1)])["id"])["shipments"][0]
    with app.app_context():  # a shipment made before labels were stored
        db.session.execute(update(Shipment).where(Shipment.id == shipment["id"]).values(label_pdf=None))
        db.session.commit()
    resp = api.get(f"/shipments/{shipment['id']}/label.pdf")
    assert resp.status_code == 200
    text = pdf_text(resp.data)
    assert shipment["tracking_number"] in text and "Weight 2.50 kg" in text
    assert api.get("/shipments/999999/label.pdf").status_code == 404


def test_addresses_in_other_scripts(api):
    if unicode_fonts()[0] == "Helvetica":
        pytest.skip("DejaVu Sans is not installed: labels use Helvetica (Latin-1)")
    shop(api)
    order = place_to(api, [("MUG", 1)], to=address("PL", "90-926", "Łódź", "ul. Żeromskiego 116"))
    shipment = ship(api, order["id"])["shipments"][0]
    text = pdf_text(api.get(f"/shipments/{shipment['id']}/label.pdf").data)
    assert "90-926 Łódź" in text and "ul. Żeromskiego 116" in text


def test_the_packing_slip_shows_prices_except_on_gifts(api, app):
    shop(api)
    order = place_to(api, [("MUG", 2), ("BOOK", 1)])
    resp = api.get(f"/orders/{order['id']}/packing-slip.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    text = pdf_text(resp.data)
    for expected in (f"order {order['number']}", "MUG", "BOOK", "12.90 EUR", "25.80 EUR", "49.80 EUR",
                     "Ann Example", "Example Shop GmbH", "3 units"):
        assert expected in text, (expected, text)

    gift = place_to(api, [("MUG", 2), ("BOOK", 1)], gift=True, email="giver@example.com")
    assert "gift" in gift["flags"]
    text = pdf_text(api.get(f"/orders/{gift['id']}/packing-slip.pdf").data)
    assert "MUG" in text and "BOOK" in text and "A gift for you" in text
    assert "EUR" not in text and "12.90" not in text and "Total" not in text

    shipped = ship(api, order["id"])
    text = pdf_text(api.get(f"/orders/{order['id']}/packing-slip.pdf").data)
    assert shipped["shipments"][0]["tracking_number"] in text
    assert api.get("/orders/999999/packing-slip.pdf").status_code == 404
    assert app.test_client().get(f"/api/v1/orders/{order['id']}/packing-slip.pdf").status_code == 401
