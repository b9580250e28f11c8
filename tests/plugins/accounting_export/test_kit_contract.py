"""accounting_export against the kit's contracts: the beancount exporter (checked by beancount's own
loader) and the journal's stage hooks (both databases)."""

import pytest
from sqlalchemy import text

from engine.testing.contracts import ExporterContract, StageHookContract

from .helpers import beancount_errors


class TestBeancountExporter(ExporterContract):
    @pytest.fixture
    def exporter(self):
        from plugins.accounting_export.exporters import EXPORTERS

        return EXPORTERS["beancount"]

    def load(self, text):
        assert beancount_errors(text) == []


class TestJournal(StageHookContract):
    plugin_name = "accounting_export"

    def observe(self, app):
        from engine.db import db

        with app.app_context():
            entries = db.session.execute(text("SELECT kind, order_id, source_key FROM accounting_export_entries "
                                              "ORDER BY id")).all()
            postings = db.session.execute(text("SELECT count(*) FROM accounting_export_postings")).scalar_one()
            db.session.remove()
        assert entries  # the life was booked
        return [tuple(row) for row in entries], postings
