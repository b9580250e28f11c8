"""Fixtures of the accounting_export tests.

This folder is a package (it has ``__init__.py``): a plain ``conftest.py`` here would replace the root
``conftest`` module that every test imports helpers from (``from conftest import place``).
"""

from __future__ import annotations

import pytest

TAX = {"ACCOUNTING_TAX_RATES": {"BOOK-*": "7", "GIFT-CARD": "0"}}


@pytest.fixture
def app_config():
    """BOOK-* at 7 % VAT and GIFT-CARD at 0 %; everything else at the default 19 %."""
    return dict(TAX)


@pytest.fixture
def shop(api):
    """Products with a unit cost (MUG 11.90, BOOK-TALE 20.00 at 7 %, CAP), stock received."""
    from conftest import product, receive

    product(api, "MUG", price=1190, unit_cost=400)
    product(api, "BOOK-TALE", price=2000, unit_cost=900)
    product(api, "CAP", price=1500, unit_cost=600)
    receive(api, "MUG", 50)
    receive(api, "BOOK-TALE", 50)
    receive(api, "CAP", 50)
    return api
