"""Code128 label sheets: the barcode values are read back from the rendered pages (pdftoppm + zbarimg)."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from conftest import product, receive, service_missing
from pypdf import PdfReader


@pytest.fixture
def database():
    """SQLite only: rendering does not depend on the database (the look-ups run on both in test_serials)."""
    return "sqlite"


def read_barcodes(pdf: bytes, tmp_path, page: int = 1) -> list[str]:
    """Render one page at 300 dpi and read every barcode on it, in zbarimg's order."""
    if not (shutil.which("pdftoppm") and shutil.which("zbarimg")):
        service_missing("pdftoppm and zbarimg are not installed (apt-get install poppler-utils zbar-tools)")
    (tmp_path / "sheet.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "300", "-f", str(page), "-l", str(page), "-singlefile",
                    str(tmp_path / "sheet.pdf"), str(tmp_path / "sheet")], check=True, timeout=60)
    out = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Scode128.enable", str(tmp_path / "sheet.png")],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.split()


def pdf(api, path) -> bytes:
    resp = api.get(path)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf", resp.get_data()[:200]
    return resp.data


def test_one_label_per_serial_in_stock_read_back(api, app, tmp_path):
    product(api, "PHONE", price=59900, track_serials=True)
    serials = [f"PHONE-2026{n:06d}X" for n in range(1, 31)]
    receive(api, "PHONE", 30, serials=serials)
    sheet = pdf(api, "/products/PHONE/labels.pdf?serials=in_stock")
    assert len(PdfReader(io.BytesIO(sheet)).pages) == 2  # 24 labels a page
    assert sorted(read_barcodes(sheet, tmp_path)) == sorted(serials[:24])
    assert sorted(read_barcodes(sheet, tmp_path, page=2)) == sorted(serials[24:])


def test_product_label_copies_serial_label_and_bin_labels(api, app, tmp_path):
    product(api, "MUG", price=1290, barcode="4006381333948")
    product(api, "CAP", price=1500)
    receive(api, "MUG", 1, location="MAIN/A-01-1")
    receive(api, "MUG", 1, location="MAIN/A-01-2")
    receive(api, "MUG", 1, location="MAIN/B-01-1")
    copies = pdf(api, "/products/MUG/labels.pdf?copies=3")
    assert set(read_barcodes(copies, tmp_path)) == {"4006381333948"}  # (zbarimg reports equal symbols once)
    assert PdfReader(io.BytesIO(copies)).pages[0].extract_text().count("4006381333948") == 3
    assert read_barcodes(pdf(api, "/products/CAP/labels.pdf"), tmp_path) == ["CAP"]  # no barcode: the sku
    assert sorted(read_barcodes(pdf(api, "/locations/labels.pdf?prefix=MAIN/A"), tmp_path)) == [
        "MAIN/A-01-1", "MAIN/A-01-2"]
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 2, serials=["SN-0001-LONG-SERIAL-NUMBER-42", "LOT/7"])
    assert read_barcodes(pdf(api, "/serials/SN-0001-LONG-SERIAL-NUMBER-42/label.pdf"), tmp_path) == [
        "SN-0001-LONG-SERIAL-NUMBER-42"]
    assert read_barcodes(pdf(api, "/serials/LOT/7/label.pdf"), tmp_path) == ["LOT/7"]
    assert api.get("/serials/LOT/7").get_json()["serial"] == "LOT/7"


def test_label_errors(api, app):
    product(api, "MUG", price=1290)
    product(api, "PHONE", price=59900, track_serials=True)
    assert api.get("/products/NOPE/labels.pdf").status_code == 404
    assert api.get("/products/MUG/labels.pdf?serials=in_stock").status_code == 422
    assert api.get("/products/PHONE/labels.pdf?serials=in_stock").get_json()["code"] == "no_labels"
    assert api.get("/products/MUG/labels.pdf?copies=0").status_code == 422
    assert api.get("/locations/labels.pdf?prefix=ZZZ").status_code == 404
    assert api.get("/locations/labels.pdf").status_code == 422


def test_hookshop_stock_labels_writes_the_sheet(api, app, tmp_path):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 3, serials=["SN-A", "SN-B", "SN-C"])
    out = tmp_path / "phones.pdf"
    result = app.test_cli_runner().invoke(args=["stock", "labels", "--sku", "PHONE", "--serials", "--output",
                                                str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 3 labels on 1 page" in result.output
    assert sorted(read_barcodes(out.read_bytes(), tmp_path)) == ["SN-A", "SN-B", "SN-C"]
    result = app.test_cli_runner().invoke(args=["stock", "labels", "--output", str(out)])
    assert result.exit_code == 2 and "--sku" in result.output
    result = app.test_cli_runner().invoke(args=["stock", "labels", "--sku", "NOPE", "--output", str(out)])
    assert result.exit_code == 1 and "no product with sku 'NOPE'" in result.output
