"""Fixtures of the channel_webhook tests (helpers are in ``support.py``).

This folder is a package (it has ``__init__.py``): a plain ``conftest.py`` here would replace the root
``conftest`` module that tests import builders from (``from conftest import place``).
"""

from __future__ import annotations

import pytest

from .support import LOOPBACK, Receiver


@pytest.fixture
def app_config():
    """Outbound webhooks may reach loopback receivers (production refuses private addresses)."""
    return {"CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": LOOPBACK, "CHANNEL_WEBHOOK_TIMEOUT": 5}


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.stop()
