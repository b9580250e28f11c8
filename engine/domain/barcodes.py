"""Product barcodes: GS1 numbers (GTIN) are checked with their check digit; other codes pass.

A barcode of ASCII digits only is a GTIN — EAN-8 (8 digits), UPC-A (12), EAN-13 (13) or GTIN-14
(14) — and must have one of those lengths and a correct check digit (python-stdnum's ``ean``
module, which knows the GS1 mod-10 rule for all four). Anything else the shop prints itself on a
Code128 label (``MUG-0042``, ``A1B2C3``) is allowed when it is printable ASCII with no space at either
end: Code128 has no check digit of its own to verify here (the symbol's checksum lives in the bars).
"""

from __future__ import annotations

import re

from stdnum import ean
from stdnum.exceptions import InvalidChecksum, ValidationError

GTIN_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13", 14: "GTIN-14"}
# printable ASCII (what Code128 carries and a scanner types), no space at either end
PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_DIGITS = re.compile(r"[0-9]+")
_PRINTABLE = re.compile(PATTERN)


def barcode_problem(barcode: str) -> str | None:
    """Why ``barcode`` cannot be a product's barcode, or None when it can."""
    if not _PRINTABLE.fullmatch(barcode):
        return "printable ASCII characters only, no space at either end"
    if not _DIGITS.fullmatch(barcode):
        return None  # a Code128 string of the shop's own
    kind = GTIN_LENGTHS.get(len(barcode))
    if kind is None:
        return (f"a barcode of digits only is a GTIN of 8 (EAN-8), 12 (UPC-A), 13 (EAN-13) or 14 (GTIN-14) "
                f"digits, not {len(barcode)}")
    try:
        ean.validate(barcode)
    except InvalidChecksum:
        return f"not a valid {kind}: the check digit is wrong (expected {ean.calc_check_digit(barcode[:-1])})"
    except ValidationError as exc:  # not reached for 8-14 ASCII digits; kept so a stdnum change is a 422
        return f"not a valid {kind}: {exc}"
    return None


def gtin_forms(code: str) -> list[str]:
    """The ways a scanned GTIN may be stored: a UPC-A read as EAN-13 gets a leading 0, a GTIN-14 from a
    carton two, so the scan is compared as every valid 8/12/13/14-digit form of the same number. A code
    that is not a GTIN with a correct check digit has no other forms (just itself)."""
    code = code.strip()
    if not _DIGITS.fullmatch(code) or len(code) not in GTIN_LENGTHS or barcode_problem(code):
        return [code]
    core = code.lstrip("0")
    forms = {code}
    for length in GTIN_LENGTHS:
        if len(core) <= length:
            forms.add(core.rjust(length, "0"))
    return sorted(forms)
