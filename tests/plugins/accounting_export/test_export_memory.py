"""The journal export streams: five times the postings do not raise its peak Python heap.

Journal entries are bulk-inserted as ``bench/export_journal.py`` inserts them (its row generator, with
the balance triggers active); both sizes are above the export's batch (5,000 rows), so a streaming
export holds the same amount at either size and one that collects the range holds five times more.
The figure is the ``tracemalloc`` peak during ``exporter.export`` into a sink that keeps nothing.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from engine.db import db

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from export_journal import ENTRY_SQL, POSTING_SQL, _rows  # noqa: E402 - the benchmark's data

MAX_GROWTH = 1_000_000  # bytes of peak heap the export may gain from 12,000 to 60,000 postings


class Sink:
    """A file that counts what is written to it and keeps nothing."""

    def __init__(self):
        self.size = 0

    def write(self, text):
        self.size += len(text)
        return len(text)


def _journal(postings: int) -> list[tuple]:
    return list(_rows(postings))


def _insert(app, part: list[tuple]) -> None:
    """Entries are immutable (a trigger): the larger journal is the smaller one plus more entries."""
    with app.app_context():
        conn = db.session.connection()
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        lines = [line for _, rows in part for line in rows]
        conn.exec_driver_sql(POSTING_SQL.format(p=mark), lines)  # postings first, as the benchmark does
        conn.exec_driver_sql(ENTRY_SQL.format(p=mark), [entry for entry, _ in part])
        db.session.commit()


def _peak(app, fmt: str) -> tuple[int, int]:
    from plugins.accounting_export import exporters

    with app.app_context():
        sink = Sink()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            exporters.EXPORTERS[fmt].export(None, None, sink)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        db.session.remove()
    return peak, sink.size


@pytest.mark.parametrize("fmt", ["csv", "beancount"])
def test_the_export_peak_does_not_grow_with_the_range(app, fmt):
    journal = _journal(60_000)
    cut = next(i for i in range(len(journal)) if sum(len(r) for _, r in journal[:i]) >= 12_000)
    _insert(app, journal[:cut])
    _peak(app, fmt)  # caches warm (compiled statements, the account list)
    small, small_size = _peak(app, fmt)
    _insert(app, journal[cut:])
    large, large_size = _peak(app, fmt)
    print(f"\n{fmt}: peak heap {small / 1e6:.2f} MB for 12,000 postings, {large / 1e6:.2f} MB for 60,000")
    assert large_size > 4 * small_size  # really five times the output
    assert large - small < MAX_GROWTH, f"the export's peak grew by {large - small} bytes"
