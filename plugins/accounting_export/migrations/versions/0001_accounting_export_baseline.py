"""The plugin's tables as its models defined them when migrations began, and the journal's rules.

The rules are triggers (SQLite and PostgreSQL variants; see plugins/accounting_export/models.py for what
they guarantee): posted entries are balanced and immutable. They live here, not in the models: the
migrations are the one source of the schema.

A database made before migrations (``hookshop init`` ran ``create_all``, whose listeners created the
same triggers) has exactly these tables: ``hookshop init`` stamps this revision there instead of
running it (``created_before_migrations``).

A later revision that alters ``accounting_export_entries`` or ``accounting_export_postings`` with
``op.batch_alter_table`` must drop the rules first and create them again after: on SQLite batch mode
copies the table into a new one and drops the old one, taking its triggers with it (and SQLite refuses
to rename the copy while a trigger names a table that is missing). On PostgreSQL the two calls are
harmless. The revision reaches these helpers through Alembic, inside ``upgrade()``::

    from alembic import context, op

    def upgrade():
        rules = context.script.get_revision("0001_accounting_export_baseline").module
        rules.drop_journal_rules()
        with op.batch_alter_table("accounting_export_postings") as batch_op:
            ...
        rules.create_journal_rules()

If a later revision changes a rule, it drops and creates its own version the same way (this file keeps
the rules as they were at this revision).

Revision ID: 0001_accounting_export_baseline
Create Date: 2026-12-01 17:22:18.187716
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_accounting_export_baseline"
down_revision = None
branch_labels = ("accounting_export",)
depends_on = "0001_core_baseline"

# tables a database made by create_all before migrations already has: `hookshop init` adopts it
created_before_migrations = (
    "accounting_export_cost_gaps",
    "accounting_export_entries",
    "accounting_export_order_books",
    "accounting_export_receipt_counters",
    "accounting_export_receipts",
    "accounting_export_state",
    "accounting_export_postings",
    "accounting_export_sync",
)

# the engine's JSONType (engine/db.py) as it was at this revision
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

ENTRIES = "accounting_export_entries"
POSTINGS = "accounting_export_postings"

IMMUTABLE = "posted journal entries are immutable: post a reversing entry instead"

SQLITE_RULES = [
    f"""CREATE TRIGGER IF NOT EXISTS {ENTRIES}_balanced BEFORE INSERT ON {ENTRIES}
BEGIN
  SELECT RAISE(ABORT, 'journal entry refused: it needs at least two postings, inserted before the entry')
  WHERE (SELECT count(*) FROM {POSTINGS} WHERE entry_id = NEW.id) < 2;
  SELECT RAISE(ABORT, 'journal entry refused: its postings do not sum to zero in every currency')
  WHERE EXISTS (SELECT 1 FROM {POSTINGS} WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0);
END""",
    f"""CREATE TRIGGER IF NOT EXISTS {POSTINGS}_closed BEFORE INSERT ON {POSTINGS}
BEGIN
  SELECT RAISE(ABORT, 'posting refused: its journal entry is already posted ({IMMUTABLE})')
  WHERE EXISTS (SELECT 1 FROM {ENTRIES} WHERE id = NEW.entry_id);
END""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} ON {table}
BEGIN
  SELECT RAISE(ABORT, '{IMMUTABLE}');
END"""
        for table in (ENTRIES, POSTINGS)
        for action in ("UPDATE", "DELETE")
    ),
]

# the function bodies use RAISE ... '%' placeholders: DDL() treats '%' as formatting, hence '%%'
POSTGRESQL_RULES = [
    f"""CREATE OR REPLACE FUNCTION {ENTRIES}_check() RETURNS trigger AS $$
DECLARE
  eid integer;
  n integer;
  bad record;
BEGIN
  IF TG_TABLE_NAME = '{ENTRIES}' THEN eid := NEW.id; ELSE eid := NEW.entry_id; END IF;
  IF NOT EXISTS (SELECT 1 FROM {ENTRIES} WHERE id = eid) THEN
    RAISE EXCEPTION 'journal entry %% has postings but was never posted', eid USING ERRCODE = '23514';
  END IF;
  SELECT count(*) INTO n FROM {POSTINGS} WHERE entry_id = eid;
  IF n < 2 THEN
    RAISE EXCEPTION 'journal entry %% refused: it has %% postings, it needs at least two', eid, n
      USING ERRCODE = '23514';
  END IF;
  SELECT currency, sum(amount) AS total INTO bad FROM {POSTINGS} WHERE entry_id = eid
    GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry %% refused: its postings do not balance in %% (off by %% minor units)',
      eid, bad.currency, bad.total USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION {POSTINGS}_closed() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM {ENTRIES} WHERE id = NEW.entry_id) THEN
    RAISE EXCEPTION 'posting refused: journal entry %% is already posted ({IMMUTABLE})', NEW.entry_id
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION {ENTRIES}_immutable() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '{IMMUTABLE}' USING ERRCODE = '23514';
END $$ LANGUAGE plpgsql""",
    f"""CREATE CONSTRAINT TRIGGER {ENTRIES}_balanced AFTER INSERT ON {ENTRIES}
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {ENTRIES}_check()""",
    f"""CREATE CONSTRAINT TRIGGER {POSTINGS}_balanced AFTER INSERT ON {POSTINGS}
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {ENTRIES}_check()""",
    f"""CREATE TRIGGER {POSTINGS}_closed BEFORE INSERT ON {POSTINGS}
  FOR EACH ROW EXECUTE FUNCTION {POSTINGS}_closed()""",
    *(
        f"""CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {ENTRIES}_immutable()"""
        for table in (ENTRIES, POSTINGS)
    ),
]

SQLITE_TRIGGERS = (
    f"{ENTRIES}_balanced",
    f"{POSTINGS}_closed",
    *(f"{table}_no_{action}" for table in (ENTRIES, POSTINGS) for action in ("update", "delete")),
)
POSTGRESQL_TRIGGERS = (
    (ENTRIES, f"{ENTRIES}_balanced"),
    (POSTINGS, f"{POSTINGS}_balanced"),
    (POSTINGS, f"{POSTINGS}_closed"),
    (ENTRIES, f"{ENTRIES}_immutable"),
    (POSTINGS, f"{POSTINGS}_immutable"),
)
POSTGRESQL_FUNCTIONS = (f"{ENTRIES}_check", f"{POSTINGS}_closed", f"{ENTRIES}_immutable")


def create_journal_rules():
    """Create the triggers that keep posted journal entries balanced and immutable."""
    on_postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_RULES if on_postgresql else SQLITE_RULES:
        op.execute(sa.DDL(statement))


def drop_journal_rules():
    """Drop those triggers (and, on PostgreSQL, their functions)."""
    if op.get_bind().dialect.name == "postgresql":
        for table, trigger in POSTGRESQL_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in POSTGRESQL_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")


def upgrade():
    op.create_table(
        "accounting_export_cost_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounting_export_cost_gaps")),
        sa.UniqueConstraint("source_key", "sku", name=op.f("uq_accounting_export_cost_gaps_source_key")),
    )
    op.create_table(
        "accounting_export_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("order_number", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("booking_date", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("payee", sa.String(length=200), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounting_export_entries")),
        sa.UniqueConstraint(
            "event_id", "kind", "order_id", name="uq_accounting_export_entries_event_kind_order"
        ),
        sa.UniqueConstraint("source_key", name=op.f("uq_accounting_export_entries_source_key")),
        sa.UniqueConstraint("uid", name=op.f("uq_accounting_export_entries_uid")),
    )
    op.create_index(
        "ix_accounting_export_entries_date_id",
        "accounting_export_entries",
        ["booking_date", "id"],
        unique=False,
    )
    op.create_index(
        "ix_accounting_export_entries_kind_source",
        "accounting_export_entries",
        ["kind", "source_id"],
        unique=False,
    )
    op.create_index(
        "ix_accounting_export_entries_order", "accounting_export_entries", ["order_id", "id"], unique=False
    )
    op.create_table(
        "accounting_export_order_books",
        sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("composition", JSON, nullable=False),
        sa.Column("credited", sa.BigInteger(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_accounting_export_order_books")),
    )
    op.create_table(
        "accounting_export_receipt_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_accounting_export_receipt_counters")),
    )
    op.create_table(
        "accounting_export_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounting_export_receipts")),
        sa.UniqueConstraint("number", name=op.f("uq_accounting_export_receipts_number")),
        sa.UniqueConstraint("order_id", name=op.f("uq_accounting_export_receipts_order_id")),
        sa.UniqueConstraint("year", "seq", name=op.f("uq_accounting_export_receipts_year")),
    )
    op.create_table(
        "accounting_export_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_accounting_export_state")),
    )
    op.create_table(
        "accounting_export_postings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.String(length=16), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("memo", sa.String(length=200), nullable=True),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_accounting_export_postings_amount_not_zero")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["accounting_export_entries.id"],
            name=op.f("fk_accounting_export_postings_entry_id_accounting_export_entries"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounting_export_postings")),
        sa.UniqueConstraint("entry_id", "line_no", name=op.f("uq_accounting_export_postings_entry_id")),
    )
    op.create_index(
        "ix_accounting_export_postings_account",
        "accounting_export_postings",
        ["account", "currency"],
        unique=False,
    )
    op.create_table(
        "accounting_export_sync",
        sa.Column("entry_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["accounting_export_entries.id"],
            name=op.f("fk_accounting_export_sync_entry_id_accounting_export_entries"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_accounting_export_sync")),
    )
    op.create_index(
        "ix_accounting_export_sync_due", "accounting_export_sync", ["status", "next_attempt_at"], unique=False
    )
    create_journal_rules()


def downgrade():
    drop_journal_rules()
    op.drop_table("accounting_export_sync")
    op.drop_table("accounting_export_postings")
    op.drop_table("accounting_export_state")
    op.drop_table("accounting_export_receipts")
    op.drop_table("accounting_export_receipt_counters")
    op.drop_table("accounting_export_order_books")
    op.drop_table("accounting_export_entries")
    op.drop_table("accounting_export_cost_gaps")
