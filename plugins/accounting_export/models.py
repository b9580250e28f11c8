"""The plugin's tables (``hookshop init`` creates them through the plugin's migrations, its branch
``accounting_export`` in ``migrations/versions``; the plugin module imports this one).

The journal:

* ``accounting_export_entries``: one row per journal entry (its date, kind, order, description and the
  ``source_key`` that makes posting idempotent: the same stage event never posts twice).
* ``accounting_export_postings``: the entry's lines: account, signed amount in minor units (debit
  positive, credit negative), currency, and the role of the account in the chart.

Posted entries are **immutable and balanced**, and the database enforces it, not only this code:

* postings are inserted first, the entry row last; inserting the entry checks that it has at least two
  postings and that they sum to zero per currency (a ``BEFORE INSERT`` trigger on both databases; on
  PostgreSQL also a deferred constraint trigger that checks every entry again at commit);
* a posting for an entry that already exists is refused (no line can be added to a posted entry);
* a posting whose entry never arrives fails the commit (a deferred foreign key);
* ``UPDATE`` and ``DELETE`` on both tables are refused: corrections are new entries (reversals).

Those triggers are created by the plugin's baseline migration (``0001_accounting_export_baseline``), which
also says how a later migration that alters these tables keeps them.

Around the journal (mutable bookkeeping, not part of the books):

* ``accounting_export_order_books``: per order, the sale's composition (net, discount, VAT per rate,
  shipping) frozen at first use, what refunds credited so far, and whether the cancellation was booked.
  Its row is locked while an order's entries are posted, so two deliveries never interleave.
* ``accounting_export_sync``: the cloud sync status of each entry.
* ``accounting_export_receipts`` and ``accounting_export_receipt_counters``: receipts and the gap-free
  number sequence per year.
* ``accounting_export_cost_gaps``: goods that moved without a known unit cost (nothing was posted).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.plugin_api import JSONType, Model, utcnow

ENTRIES = "accounting_export_entries"
POSTINGS = "accounting_export_postings"


class JournalEntry(Model):
    __tablename__ = ENTRIES
    __table_args__ = (
        UniqueConstraint("source_key"),
        UniqueConstraint("uid"),
        # the idempotency key of stage hooks: one entry of a kind per (event, order)
        UniqueConstraint("event_id", "kind", "order_id", name="uq_accounting_export_entries_event_kind_order"),
        Index("ix_accounting_export_entries_date_id", "booking_date", "id"),
        Index("ix_accounting_export_entries_order", "order_id", "id"),
        Index("ix_accounting_export_entries_kind_source", "kind", "source_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32))  # the idempotency key sent to the cloud endpoint
    source_key: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[int | None] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column()
    order_number: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column()  # payment id, stock movement id
    booking_date: Mapped[date] = mapped_column(Date)
    channel: Mapped[str | None] = mapped_column(String(64))
    payee: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Posting(Model):
    __tablename__ = POSTINGS
    __table_args__ = (
        UniqueConstraint("entry_id", "line_no"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_accounting_export_postings_account", "account", "currency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # deferred: the postings are inserted before their entry (see the module's docstring)
    entry_id: Mapped[int] = mapped_column(ForeignKey(f"{ENTRIES}.id", deferrable=True, initially="DEFERRED"))
    line_no: Mapped[int] = mapped_column()
    account: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units: debit > 0, credit < 0
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate: Mapped[str | None] = mapped_column(String(16))
    sku: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int | None] = mapped_column()
    memo: Mapped[str | None] = mapped_column(String(200))


class OrderBooks(Model):
    __tablename__ = "accounting_export_order_books"
    order_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    # [[role, tax_rate, amount], ...]: the sale seen from revenue (credits positive); sums to total
    composition: Mapped[list] = mapped_column(JSONType)
    credited: Mapped[int] = mapped_column(BigInteger, default=0)
    cancelled: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SyncState(Model):
    __tablename__ = "accounting_export_sync"
    __table_args__ = (Index("ix_accounting_export_sync_due", "status", "next_attempt_at"),)
    entry_id: Mapped[int] = mapped_column(ForeignKey(f"{ENTRIES}.id", deferrable=True, initially="DEFERRED"),
                                          primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, synced, failed, rejected
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReceiptCounter(Model):
    __tablename__ = "accounting_export_receipt_counters"
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0)


class Receipt(Model):
    __tablename__ = "accounting_export_receipts"
    __table_args__ = (UniqueConstraint("order_id"), UniqueConstraint("year", "seq"), UniqueConstraint("number"))
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column()
    year: Mapped[int] = mapped_column()
    seq: Mapped[int] = mapped_column()
    number: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict] = mapped_column(JSONType)


class State(Model):
    """Small named counters of the plugin (e.g. how far the stock movement ledger was scanned)."""

    __tablename__ = "accounting_export_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CostGap(Model):
    """Units that left or entered stock while their product had no ``unit_cost``: nothing was posted."""

    __tablename__ = "accounting_export_cost_gaps"
    __table_args__ = (UniqueConstraint("source_key", "sku"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # shipment, return, stock_receipt
    order_id: Mapped[int | None] = mapped_column()
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
