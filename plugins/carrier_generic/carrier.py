"""The built-in ``generic`` carrier: rates by weight band, tracking numbers with
a check digit, estimated delivery in business days (weekends skipped)."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from engine.services.shipping import Rate, ShipmentInfo

# (max weight in grams, price in minor units) per service; the last band has no upper limit
DEFAULT_RATES = {
    "standard": [(1000, 490), (5000, 690), (20000, 1290), (None, 2490)],
    "express": [(1000, 990), (5000, 1390), (20000, 2290), (None, 3990)],
}
TRANSIT_DAYS = {"standard": 3, "express": 1}


def add_business_days(start: date, days: int) -> date:
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def check_digit(digits: str) -> int:
    """The UPU S10 check digit of 8 digits (weights 8 6 4 2 3 5 9 7)."""
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    digit = 11 - total % 11
    return {10: 0, 11: 5}.get(digit, digit)


def tracking_number(prefix: str = "HS", country: str = "XX") -> str:
    """An S10-shaped number: 2 letters, 8 digits, check digit, 2-letter country."""
    serial = f"{secrets.randbelow(10**8):08d}"
    return f"{prefix}{serial}{check_digit(serial)}{country}"


class GenericCarrier:
    name = "generic"
    services = ["standard", "express"]

    def _weight(self, order) -> int:
        from engine.db import db
        from engine.models import Product

        ids = {line.product_id: line.quantity for line in order.lines}
        products = db.session.query(Product).filter(Product.id.in_(ids)).all()
        return sum(p.weight_grams * ids[p.id] for p in products)

    def _price(self, service: str, grams: int) -> int:
        for limit, price in DEFAULT_RATES[service]:
            if limit is None or grams <= limit:
                return price
        raise AssertionError("the last band has no limit")

    def rates(self, order) -> list[Rate]:
        grams = self._weight(order)
        today = date.today()
        return [Rate(self.name, service, self._price(service, grams), order.currency,
                     add_business_days(today, TRANSIT_DAYS[service])) for service in self.services]

    def create_shipment(self, order, service: str) -> ShipmentInfo:
        number = tracking_number(country=(order.shipping_address or {}).get("country", "XX")[:2].upper())
        return ShipmentInfo(tracking_number=number,
                            estimated_delivery=add_business_days(date.today(), TRANSIT_DAYS[service]),
                            price=self._price(service, self._weight(order)))
