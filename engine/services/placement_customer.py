"""Placement's customer: the buyer's profile found (by e-mail, else by the channel's customer id) and locked,
or inserted (PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING``, racing first orders of one e-mail end on one
profile). Part of ``engine.services.placement.place_order``'s transaction, after the stock levels' locks.
"""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from engine.db import db, is_postgres, utcnow
from engine.models import Customer


@functools.cache
def _customer_locked_by(key: str):
    """The locking SELECT of a customer by ``email``, by ``channel`` customer id or by ``id``; built once per
    process (statements on the placement path are not rebuilt per request: no cache key computed again)."""
    condition = {"email": (Customer.email == bindparam("email"),),
                 "channel": (Customer.channel == bindparam("channel"),
                             Customer.channel_customer_id == bindparam("channel_customer_id")),
                 "id": (Customer.id == bindparam("id"),)}[key]
    return select(Customer).where(*condition).with_for_update().execution_options(populate_existing=True)


def _lock_customer(condition: dict) -> Customer | None:
    """The customer row, locked: two orders of one customer at once update its statistics in turn. A profile
    merged into another (a tombstone) leads to its survivor (following a chain of merges), locked too: its
    orders go there. ``condition``: ``{"email": ...}``, ``{"channel": ..., "channel_customer_id": ...}`` or
    ``{"id": ...}``."""
    key = "email" if "email" in condition else "channel" if "channel" in condition else "id"
    customer = db.session.execute(_customer_locked_by(key), condition).scalar_one_or_none()
    if customer is not None and customer.merged_into_id is not None:
        return _lock_customer({"id": customer.merged_into_id})
    return customer


def _insert_customer(customer: Customer) -> bool:
    """Add a new customer; False when a concurrent first order of the same e-mail (or channel customer)
    inserted it first."""
    if not is_postgres():  # SQLite: writers are serialized, the insert cannot race
        db.session.add(customer)
        return True
    if customer.email is not None:
        return _insert_customer_by_email(customer)
    try:
        with db.session.begin_nested():  # a savepoint: the unique e-mail conflict does not end the transaction
            db.session.add(customer)
    except IntegrityError:
        return False
    return True


@functools.cache
def _insert_new_email():
    table = Customer.__table__
    return pg_insert(table).on_conflict_do_nothing(index_elements=["email"]).returning(table.c.id)


def _insert_customer_by_email(customer: Customer) -> bool:
    """PostgreSQL: ``INSERT ... ON CONFLICT (email) DO NOTHING RETURNING id``, one round trip instead of a
    savepoint around the ORM's insert; the object then stands for the new row (persistent, every column
    set, no SELECT)."""
    now = utcnow()
    customer.created_at = customer.updated_at = now
    values = {}
    for prop in Customer.__mapper__.column_attrs:
        if prop.key == "id":
            continue
        if prop.key not in customer.__dict__:
            setattr(customer, prop.key, None)
        values[prop.columns[0].key] = customer.__dict__[prop.key]
    new_id = db.session.execute(_insert_new_email(), values).scalar_one_or_none()
    if new_id is None:
        return False
    customer.id = new_id
    make_transient_to_detached(customer)
    db.session.add(customer)
    return True


def upsert_customer(data: dict, currency: str, channel: str, billing: dict | None) -> tuple[Customer, int]:
    """The buyer's profile: by e-mail; without one, by the channel's customer id; without either, a new
    profile. The buyer's name is the profile's name (the recipient's is on the shipping address)."""
    email = (data.get("email") or "").strip().lower() or None
    condition: dict | None
    channel_customer_id = str(data["channel_customer_id"]) if data.get("channel_customer_id") else None
    if email:
        condition = {"email": email}
    elif channel_customer_id:
        condition = {"channel": channel, "channel_customer_id": channel_customer_id}
    else:
        condition = None
    customer = _lock_customer(condition) if condition else None
    address = billing or data.get("shipping_address")
    if customer is None:
        customer = Customer(email=email, name=data["name"].strip(), phone=data.get("phone"),
                            addresses=[address] if address else [], preferences=dict(data.get("preferences") or {}),
                            order_count=0, total_spent=0, spent_by_currency={}, currency=currency, vip=False,
                            orders_by_currency={}, tax_id_checked=False, billing_address=billing,
                            channel=channel if not email and channel_customer_id else None,
                            channel_customer_id=channel_customer_id if not email else None)
        if condition is None:  # nothing to find it by again: a new profile
            db.session.add(customer)
            return customer, 0
        if _insert_customer(customer):
            return customer, 0
        found = _lock_customer(condition)
        # the concurrent first order inserted it: it is there, under our lock now
        assert found is not None, "a customer row lost to a conflicting insert is readable after it"
        customer = found
    previous = customer.order_count
    customer.name = data["name"].strip()
    if data.get("phone"):
        customer.phone = data["phone"]
    if address and address not in (customer.addresses or []):
        customer.addresses = [address, *(customer.addresses or [])][:10]
    if billing and not customer.billing_address:  # the first billing address given is the profile's default
        customer.billing_address = billing
    if data.get("preferences"):
        customer.preferences = {**(customer.preferences or {}), **data["preferences"]}
    return customer, previous
