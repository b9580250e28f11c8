"""Estimated delivery in business days: weekends and the public holidays of one country skipped."""

from __future__ import annotations

import functools
import logging
from datetime import date, timedelta

import holidays as holidays_lib

log = logging.getLogger("hookshop.carrier_generic")


@functools.lru_cache(maxsize=1024)
def public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of ``country`` (and ``subdivision``) in ``year``; empty when unknown."""
    try:
        return frozenset(holidays_lib.country_holidays(country, subdiv=subdivision, years=year).keys())
    except (NotImplementedError, KeyError, ValueError) as exc:
        log.info("no public holidays known for %s %s: %s (weekends only)", country, subdivision or "", exc)
        return frozenset()


def is_business_day(day: date, country: str | None = None, subdivision: str | None = None,
                    weekend: tuple[int, ...] = (5, 6)) -> bool:
    if day.weekday() in weekend:
        return False
    return not (country and day in public_holidays(country, subdivision, day.year))


def add_business_days(start: date, days: int, country: str | None = None, subdivision: str | None = None,
                      weekend: tuple[int, ...] = (5, 6)) -> date:
    """The day ``days`` business days after ``start`` (0: ``start`` itself, or the next business day
    when ``start`` is not one)."""
    current = start
    if days <= 0:
        while not is_business_day(current, country, subdivision, weekend):
            current += timedelta(days=1)
        return current
    while days > 0:
        current += timedelta(days=1)
        if is_business_day(current, country, subdivision, weekend):
            days -= 1
    return current


def calendar_for(carrier, address: dict) -> tuple[str | None, str | None]:
    """The (country, subdivision) whose holidays count for a carrier config and an address."""
    if carrier.holidays == "none":
        return None, None
    if carrier.holidays == "destination":
        country = str((address or {}).get("country") or "").strip().upper() or None
        return country, None
    return carrier.holidays, carrier.holidays_subdivision
