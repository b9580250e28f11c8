"""The database handle and the one way services open a write transaction.

SQLite: the driver's own transaction handling is turned off and every write
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, no lost
updates, no oversell); reads start a plain deferred ``BEGIN``. WAL mode lets
readers run beside the writer. PostgreSQL: services lock the rows they change
(``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, overload

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, BigInteger, Integer, MetaData, Table, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, registry

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every integer column (ids, money in minor units, quantities) is 64-bit: BIGINT on PostgreSQL; SQLite's
# INTEGER is already 64-bit (and an INTEGER PRIMARY KEY is the rowid), so its schema keeps INTEGER.
BigInt = BigInteger().with_variant(Integer(), "sqlite")
INT64_MAX = 2**63 - 1


class Base(DeclarativeBase):
    """The declarative base of every model, the core's and the plugins': ``Mapped[int]`` is 64-bit."""

    registry = registry(metadata=MetaData(naming_convention=NAMING), type_annotation_map={int: BigInt})


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

# The base class of every table, the core's and the plugins': ``class Order(Model)``. At run time it is
# ``db.Model`` itself (Flask-SQLAlchemy builds that class from a copy of Base with its own mixins: the
# ``query`` property, the bind key, the engine), so the tables, the metadata and its naming convention are
# the same ones. ``db.Model`` is an attribute of an object, which no type checker accepts as a base class:
# to mypy ``Model`` is Base (the typed ``Mapped[...]`` columns) with Flask-SQLAlchemy's Model mixin.
if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskModel

    class Model(_FlaskModel, Base):
        __abstract__ = True
        __table__: ClassVar[Table]  # every model maps a table (DeclarativeBase allows any FROM clause)
else:
    Model = db.Model

JSONType = JSON().with_variant(JSONB(), "postgresql")

_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("hookshop_write_intent", default=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def configure_engine(engine) -> None:
    """Attach the SQLite transaction handling and pragmas (no-op on other databases)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        # SQLite's lower() only knows ASCII: product search (engine/services/catalog.py) uses this one
        dbapi_connection.create_function("hookshop_lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        write = _write_intent.get()
        conn.info["write"] = write
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def buffer_row(model, row: dict) -> None:
    """Queue a row of an append-only table (timeline, outbox) for one multi-row INSERT at commit."""
    db.session().info.setdefault("buffered_rows", {}).setdefault(model, []).append(row)


@event.listens_for(Session, "before_commit")
def _insert_buffered_rows(session) -> None:
    buffered = session.info.pop("buffered_rows", None)
    if not buffered:
        return
    session.flush()  # rows may point at objects inserted in this transaction
    # Core inserts on the tables, not the ORM's bulk insert of the entity: the rows are plain dicts keyed by
    # column (no identity map, no RETURNING of ids nobody reads); about half the CPU per statement
    for model, rows in buffered.items():
        table = model.__table__
        if table.name == "retry_tasks":  # stage-hook events (engine.signals): the outbox
            waiting = [r for r in rows if r["status"] != "done"]
            done = [r for r in rows if r["status"] == "done"]
            if waiting:
                ids = session.execute(_insert_returning_ids(table), waiting).scalars().all()
                session.info.setdefault("outbox", []).extend(
                    (event_id, row["payload"]["hook"], row["payload"]["payload"], row["created_at"], row["key"])
                    for event_id, row in zip(ids, waiting, strict=True))
            if done:
                session.execute(insert_once(table), done)
        else:
            session.execute(insert_once(table), rows)


@functools.cache
def insert_once(table: Table):
    """``INSERT INTO table`` (values as execute's parameters), built once per process: no statement built and
    no cache key computed per call. For the hot paths' plain inserts (the buffered rows, reservations, flags)."""
    return insert(table)


@functools.cache
def _insert_returning_ids(table: Table):
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


@event.listens_for(Session, "after_soft_rollback")
def _drop_buffered_rows(session, _previous) -> None:
    session.info.pop("buffered_rows", None)
    session.info.pop("outbox", None)


def set_write_intent(value: bool = True):
    """Mark the current context as about to write (used by the API for non-GET requests)."""
    return _write_intent.set(value)


def reset_write_intent(token) -> None:
    _write_intent.reset(token)


def is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


@contextmanager
def transaction():
    """One use case = one transaction: commit on success, roll back on error.

    Nested calls join the outer transaction. After the outermost commit the
    outbox events written in it are handed on (to the background delivery
    thread in the embedded mode, to rq in production) and this returns at
    once: no stage hook runs here.
    """
    session = db.session()
    info = session.info
    depth = info.get("tx_depth", 0)
    token = _write_intent.set(True)
    try:
        if depth == 0:
            info.pop("buffered_rows", None)  # rows of a transaction that never committed
            if session.in_transaction():
                conn = session.connection()
                if conn.dialect.name == "sqlite" and not conn.info.get("write"):
                    session.commit()  # end the deferred read transaction: writes start IMMEDIATE
        info["tx_depth"] = depth + 1
        try:
            yield session
        finally:
            info["tx_depth"] = depth
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
            info.pop("outbox", None)
        raise
    finally:
        _write_intent.reset(token)
    if depth == 0:
        pending = info.pop("outbox", None)
        if pending:
            from engine import jobs

            jobs.dispatch_events(list(pending))


def before_outside_call() -> None:
    """End the current transaction before a slow call to an outside service (a
    payment provider, a carrier) so that no lock is held while it runs."""
    session = db.session()
    if session.info.get("tx_depth", 0) == 0 and session.in_transaction():
        session.commit()


def insert_if_absent(model, values: dict, unique: list[str]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` on the unique columns: safe when two
    transactions create the same row at once (read it back with a lock after)."""
    dialect_insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(dialect_insert(model).values(**values).on_conflict_do_nothing(index_elements=unique))


def page_by_id(stmt, id_column, limit: int, cursor: int | None = None) -> tuple[list, int | None]:
    """A newest-first keyset page of ``stmt`` (ordered by id descending): the rows with an id below
    ``cursor``, and the cursor of the next page (None on the last one)."""
    if cursor:
        stmt = stmt.where(id_column < cursor)
    rows = list(db.session.execute(stmt.limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)
