"""Exports of the journal over a date range: CSV, beancount, ledger/hledger and a Xero-style CSV.

Every exporter streams: the postings are read with a server-side cursor (``yield_per``) in date order,
grouped into entries one at a time and written out, so memory stays flat however long the range.
An exporter is an object with ``format`` and ``export(since, until, fh, progress=None)`` (the
``register_exporters`` contract); ``chunks(since, until)`` yields the same text piece by piece (the API
streams it).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import String, func, select, type_coerce

from engine.plugin_api import Exporter as ExporterContract
from engine.plugin_api import amount_text, db, exponent, is_postgres

from .models import JournalEntry, Posting
from .settings import current

BATCH = 5000


@dataclass(slots=True)
class Entry:
    id: int
    date: date
    day: str  # the date as YYYY-MM-DD
    kind: str
    order_number: str | None
    channel: str | None
    payee: str | None
    description: str
    uid: str


def _range(stmt, since: date | None, until: date | None):
    if since is not None:
        stmt = stmt.where(JournalEntry.booking_date >= since)
    if until is not None:
        stmt = stmt.where(JournalEntry.booking_date <= until)
    return stmt


def count_postings(since: date | None = None, until: date | None = None) -> int:
    stmt = select(func.count()).select_from(Posting).join(JournalEntry, JournalEntry.id == Posting.entry_id)
    return db.session.execute(_range(stmt, since, until)).scalar_one()


def accounts_used(since: date | None = None, until: date | None = None) -> list[tuple[str, date, list[str]]]:
    """``(account, first date, currencies)`` of the accounts the range uses, by name."""
    stmt = _range(select(Posting.account, Posting.currency, func.min(JournalEntry.booking_date))
                  .join(JournalEntry, JournalEntry.id == Posting.entry_id), since, until) \
        .group_by(Posting.account, Posting.currency)
    found: dict[str, list] = {}
    for account, currency, first in db.session.execute(stmt):
        item = found.setdefault(account, [first, set()])
        item[0] = min(item[0], first)
        item[1].add(currency)
    return [(account, first, sorted(curs)) for account, (first, curs) in sorted(found.items())]


def iter_rows(since: date | None = None, until: date | None = None, batch: int = BATCH) -> Iterator[list[tuple]]:
    """Batches of posting rows in date order: ``(entry id, date text, kind, order number, channel, payee,
    description, uid, line_no, account, role, amount, currency, tax_rate, sku, quantity, memo)``.

    Streams with a server-side cursor (``stream_results``, ``yield_per``): one batch in memory at a time.
    The date is read as text where the database stores it so (SQLite), saving a parse per row."""
    day = type_coerce(JournalEntry.booking_date, String) if not is_postgres() else JournalEntry.booking_date
    stmt = _range(select(JournalEntry.id, day, JournalEntry.kind, JournalEntry.order_number, JournalEntry.channel,
                         JournalEntry.payee, JournalEntry.description, JournalEntry.uid, Posting.line_no,
                         Posting.account, Posting.role, Posting.amount, Posting.currency, Posting.tax_rate,
                         Posting.sku, Posting.quantity, Posting.memo)
                  .join(Posting, Posting.entry_id == JournalEntry.id), since, until) \
        .order_by(JournalEntry.booking_date, JournalEntry.id, Posting.line_no)
    result = db.session.connection().execute(stmt.execution_options(stream_results=True, yield_per=batch))
    try:
        for part in result.partitions(batch):
            yield [tuple(row) for row in part]
    finally:
        result.close()


def iter_entries(since: date | None = None, until: date | None = None,
                 batch: int = BATCH) -> Iterator[tuple[Entry, list[tuple]]]:
    """``(entry, postings)`` in date order; postings are ``(line_no, account, role, amount, currency,
    tax_rate, sku, quantity, memo)``; memory holds one batch of rows at a time."""
    current: Entry | None = None
    postings: list[tuple] = []
    for rows in iter_rows(since, until, batch):
        for row in rows:
            if current is None or row[0] != current.id:
                if current is not None:
                    yield current, postings
                day = row[1] if isinstance(row[1], date) else date.fromisoformat(row[1])
                current = Entry(row[0], day, day.isoformat(), row[2], row[3], row[4], row[5], row[6], row[7])
                postings = []
            postings.append(row[8:])
    if current is not None:
        yield current, postings


class Amounts:
    """``amount_text`` with the currency's exponent looked up once per currency."""

    def __init__(self):
        self.exponents: dict[str, int] = {}

    def __call__(self, amount: int, currency: str) -> str:
        exp = self.exponents.get(currency)
        if exp is None:
            exp = self.exponents[currency] = exponent(currency)
        if exp == 2:
            units, minor = divmod(abs(amount), 100)
            return f"{'-' if amount < 0 else ''}{units}.{minor:02d}"
        return amount_text(amount, currency)


def _text(value: str | None) -> str:
    """A string safe inside double quotes on one line."""
    return (value or "").replace("\\", "/").replace('"', "'").replace("\n", " ").replace("\r", " ")


class _Batch:
    """Collects the text of several entries and hands it out in pieces of about ``size`` postings."""

    def __init__(self, progress, size: int = 2000):
        self.progress, self.size, self.count = progress, size, 0
        self.parts: list[str] = []

    def add(self, text: str, postings: int) -> str | None:
        self.parts.append(text)
        self.count += postings
        return self.flush() if self.count >= self.size else None

    def flush(self) -> str:
        text, count = "".join(self.parts), self.count
        self.parts, self.count = [], 0
        if self.progress and count:
            self.progress(count)
        return text


class Exporter(ExporterContract):
    format = ""
    extension = "txt"
    content_type = "text/plain; charset=utf-8"

    def chunks(self, since: date | None = None, until: date | None = None,
               progress: Callable[[int], None] | None = None) -> Iterator[str]:
        raise NotImplementedError

    def export(self, since: date | None, until: date | None, fh, progress: Callable[[int], None] | None = None):
        """Write the journal between ``since`` and ``until`` (inclusive dates, None = open) to ``fh``."""
        count = 0
        for chunk in self.chunks(since, until, progress):
            fh.write(chunk)
            count += 1
        return count


class CsvExporter(Exporter):
    """One row per posting; debit and credit in separate columns, in the currency's decimals."""

    format = "csv"
    extension = "csv"
    content_type = "text/csv; charset=utf-8"
    HEADER = ["entry_id", "date", "kind", "order", "channel", "description", "line", "account", "role", "debit",
              "credit", "currency", "tax_rate", "sku", "quantity", "memo", "entry_uid"]

    def chunks(self, since=None, until=None, progress=None):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.HEADER)
        yield buffer.getvalue()
        money = Amounts()
        for rows in iter_rows(since, until):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(
                (eid, day if isinstance(day, str) else day.isoformat(), kind, number or "", channel or "", desc,
                 line_no, account, role, money(amount, cur) if amount > 0 else "",
                 money(-amount, cur) if amount < 0 else "", cur, rate or "", sku or "",
                 "" if qty is None else qty, memo or "", uid)
                for eid, day, kind, number, channel, _payee, desc, uid, line_no, account, role, amount, cur, rate,
                sku, qty, memo in rows)
            yield buffer.getvalue()
            if progress:
                progress(len(rows))


class BeancountExporter(Exporter):
    """A beancount 3 file: ``open`` directives for the accounts used, one transaction per entry (the order
    as a link, the kind as a tag), and, when the export starts at the beginning of the books, balance
    assertions of every account at the end, so ``bean-check`` verifies the totals too."""

    format = "beancount"
    extension = "beancount"

    def chunks(self, since=None, until=None, progress=None):
        accounts = accounts_used(since, until)
        currencies = sorted({c for _, _, curs in accounts for c in curs})
        head = [f";; hookshop journal ({since or 'start'} .. {until or 'today'}), exported by accounting_export",
                'option "title" "hookshop journal"']
        head += [f'option "operating_currency" "{cur}"' for cur in currencies]
        head.append("")
        head += [f"{first.isoformat()} open {account} {','.join(curs)}" for account, first, curs in accounts]
        yield "\n".join(head) + "\n\n"
        totals: dict[tuple[str, str], int] = defaultdict(int)
        last: date | None = None
        money = Amounts()
        batch = _Batch(progress)
        for entry, postings in iter_entries(since, until):
            last = entry.date
            payee = f'"{_text(entry.payee)}" ' if entry.payee else ""
            tags = f" #{entry.kind}" + (f" ^order-{entry.order_number}" if entry.order_number else "")
            out = [f'{entry.day} * {payee}"{_text(entry.description)}"{tags}',
                   f'  entry: "{entry.id}"', f'  uid: "{entry.uid}"']
            if entry.channel:
                out.append(f'  channel: "{_text(entry.channel)}"')
            for _line_no, account, _role, amount, currency, _tax_rate, sku, quantity, _memo in postings:
                out.append(f"  {account}  {money(amount, currency)} {currency}")
                if sku:
                    out.append(f'    sku: "{_text(sku)}"')
                    if quantity is not None:
                        out.append(f"    quantity: {quantity}")
                totals[(account, currency)] += amount
            text = batch.add("\n".join(out) + "\n\n", len(postings))
            if text:
                yield text
        yield batch.flush()
        if since is None and last is not None:
            # balances are checked at the start of a day: the day after the last entry (or the range)
            when = (max(last, until) if until else last) + timedelta(days=1)
            lines = [f"{when.isoformat()} balance {account}  {amount_text(total, currency)} {currency}"
                     for (account, currency), total in sorted(totals.items())]
            yield ";; balances at the end of the export\n" + "\n".join(lines) + "\n"


class LedgerExporter(Exporter):
    """A ledger-cli / hledger journal: ``account`` declarations, then one transaction per entry."""

    format = "ledger"
    extension = "journal"

    def chunks(self, since=None, until=None, progress=None):
        accounts = accounts_used(since, until)
        head = [f"; hookshop journal ({since or 'start'} .. {until or 'today'}), exported by accounting_export", ""]
        head += [f"account {account}" for account, _, _ in accounts]
        yield "\n".join(head) + "\n\n"
        batch = _Batch(progress)
        money = Amounts()
        for entry, postings in iter_entries(since, until):
            desc = _text(entry.description).replace(";", ",")
            out = [f"{entry.day} * ({entry.id}) {desc}",
                   f"    ; entry: {entry.id}, uid: {entry.uid}, kind: {entry.kind}"
                   + (f", order: {entry.order_number}" if entry.order_number else "")
                   + (f", payee: {_text(entry.payee)}" if entry.payee else "")]
            for _line_no, account, _role, amount, currency, _tax_rate, sku, quantity, _memo in postings:
                note = f"  ; sku: {sku}, quantity: {quantity}" if sku else ""
                out.append(f"    {account}  {money(amount, currency)} {currency}{note}")
            text = batch.add("\n".join(out) + "\n\n", len(postings))
            if text:
                yield text
        yield batch.flush()


class XeroExporter(Exporter):
    """Xero's manual journal import (CSV): one row per line, lines of a journal share narration and date;
    debits positive, credits negative. Account codes come from ``HOOKSHOP_ACCOUNTING_XERO_CODES``
    (account name or role -> code), with a Xero-like default chart; tax is already split out, so every
    line carries the configured no-tax type."""

    format = "xero"
    extension = "csv"
    content_type = "text/csv; charset=utf-8"
    HEADER = ["*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount", "TrackingName1",
              "TrackingOption1"]

    def chunks(self, since=None, until=None, progress=None):
        settings = current()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.HEADER)
        money = Amounts()
        count = 0
        for entry, postings in iter_entries(since, until):
            narration = f"{entry.description} [hookshop {entry.id}]"
            day = entry.date.strftime(settings.xero_date_format)
            for _line_no, account, role, amount, currency, _tax_rate, sku, quantity, memo in postings:
                description = account + (f" {sku} x{quantity}" if sku else "") + (f" ({memo})" if memo and not sku
                                                                                    else "")
                writer.writerow([narration, day, description, settings.xero_code(account, role),
                                 settings.xero_tax_type, money(amount, currency),
                                 "Channel" if entry.channel else "", entry.channel or ""])
            count += len(postings)
            if count >= 2000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                if progress:
                    progress(count)
                count = 0
        yield buffer.getvalue()
        if progress and count:
            progress(count)


EXPORTERS: dict[str, Exporter] = {e.format: e for e in (CsvExporter(), BeancountExporter(), LedgerExporter(),
                                                          XeroExporter())}


def buffered(chunks: Iterator[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Join small chunks into pieces of about ``size`` bytes (for an HTTP stream)."""
    parts: list[str] = []
    length = 0
    for chunk in chunks:
        parts.append(chunk)
        length += len(chunk)
        if length >= size:
            yield "".join(parts).encode()
            parts, length = [], 0
    if parts:
        yield "".join(parts).encode()
