"""Tracking numbers: a prefix, a sequence and a check digit (UPU S10 or Luhn)."""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from engine.plugin_api import db, transaction
from plugins.carrier_generic.models import TrackingSequence

S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
S10 = re.compile(r"^([A-Z]{2})(\d{8})(\d)([A-Z]{2})$")


def check_digit(digits: str) -> int:
    """The UPU S10 check digit of 8 digits (weights 8 6 4 2 3 5 9 7, modulus 11)."""
    total = sum(int(d) * w for d, w in zip(digits, S10_WEIGHTS, strict=True))
    digit = 11 - total % 11
    return {10: 0, 11: 5}.get(digit, digit)


def luhn_digit(digits: str) -> int:
    """The Luhn (mod 10) check digit to append to ``digits``."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:  # doubled: every second digit from the right, starting next to the check digit
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return (10 - total % 10) % 10


def s10(prefix: str, serial: int, country: str) -> str:
    """``prefix`` (2 letters) + 8-digit serial + check digit + ``country`` (2 letters)."""
    if not 0 <= serial < 10**8:
        raise ValueError(f"an S10 serial has 8 digits; {serial} does not fit (change the tracking prefix)")
    digits = f"{serial:08d}"
    return f"{prefix}{digits}{check_digit(digits)}{country}"


def luhn(prefix: str, serial: int, digits: int) -> str:
    """``prefix`` + the serial on ``digits`` digits + its Luhn check digit."""
    if not 0 <= serial < 10**digits:
        raise ValueError(f"serial {serial} does not fit in {digits} digits")
    body = f"{serial:0{digits}d}"
    return f"{prefix}{body}{luhn_digit(body)}"


def is_valid_s10(number: str) -> bool:
    match = S10.match(number or "")
    return match is not None and check_digit(match.group(2)) == int(match.group(3))


def is_valid_luhn(number: str, prefix: str = "") -> bool:
    body = (number or "")[len(prefix):]
    return number.startswith(prefix) and body.isdigit() and len(body) >= 2 and \
        luhn_digit(body[:-1]) == int(body[-1])


def next_serial(key: str, start: int = 1) -> int:
    """The next value of the sequence ``key`` (its own short transaction: two shipments never share one)."""
    with transaction():
        insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
        db.session.execute(insert(TrackingSequence).values(key=key, value=start - 1)
                           .on_conflict_do_nothing(index_elements=["key"]))
        value = db.session.execute(update(TrackingSequence).where(TrackingSequence.key == key)
                                   .values(value=TrackingSequence.value + 1)
                                   .returning(TrackingSequence.value)).scalar_one()
        if value < start:  # the configured start moved forward
            db.session.execute(update(TrackingSequence).where(TrackingSequence.key == key).values(value=start))
            value = start
    return value


def new_tracking_number(carrier, service: str) -> str:
    """The next tracking number of a carrier config for ``service``."""
    t = carrier.tracking
    prefix = carrier.services[service].tracking_prefix or t.prefix
    serial = next_serial(f"{carrier.name}:{t.format}:{prefix}", t.start)
    if t.format == "s10":
        return s10(prefix, serial, t.country)
    return luhn(prefix, serial, t.digits)
