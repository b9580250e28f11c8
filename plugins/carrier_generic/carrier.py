"""A carrier driven by configuration: rates by zone and weight band, tracking numbers with a
check digit, ETAs in business days (weekends and public holidays skipped), 4x6 labels, the
signed tracking webhook and, optionally, shipments created through the carrier's JSON API.

``GenericCarrier()`` is the built-in ``generic`` carrier; ``GenericCarrier(config)`` any carrier
of the carriers file. This class is the model for carrier plugins: copy it and keep the same
members (see the README).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from flask import current_app
from sqlalchemy import select

from engine.plugin_api import Carrier, Order, Product, Rate, ShipmentInfo, ValidationFailed, db
from plugins.carrier_generic import http_api, numbers, schedule, tracking
from plugins.carrier_generic.config import CarrierConfig, Zone, builtin_carrier

# kept for code written against the first version of this module
from plugins.carrier_generic.numbers import check_digit  # noqa: F401
from plugins.carrier_generic.schedule import add_business_days  # noqa: F401
from plugins.carrier_generic.settings import SETTINGS

log = logging.getLogger("hookshop.carrier_generic")


@dataclass(frozen=True)
class Quote:
    service: str
    zone: str
    price: int  # the customer's price: the band's, or 0 above the free-shipping threshold
    list_price: int  # the band's price: what the shop pays the carrier
    estimated_delivery: date
    weight_grams: int


class GenericCarrier(Carrier):
    """A carrier of the carriers file (the built-in ``generic`` when no config is given)."""

    # the shipping day; a method so that tests (and subclasses) can move it
    today = staticmethod(date.today)

    def __init__(self, config: CarrierConfig | None = None):
        self.config = config or builtin_carrier()
        self.name = self.config.name
        self.services = list(self.config.services)

    def __repr__(self) -> str:
        return f"<GenericCarrier {self.name} {self.services}{' via ' + self.config.api.url if self.config.api else ''}>"

    # ------------------------------------------------------------------ rates

    def weight(self, order) -> int:
        """The parcel's weight in grams: the sum of ``weight_grams x quantity`` over the lines."""
        quantities: dict[int, int] = {}
        for line in order.lines:
            quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
        if not quantities:
            return 0
        rows = db.session.execute(select(Product.id, Product.weight_grams).where(Product.id.in_(quantities)))
        return sum((grams or 0) * quantities[pid] for pid, grams in rows)

    def zone(self, address: dict) -> Zone | None:
        return self.config.zone_for(address or {})

    def estimate(self, service: str, zone: str, address: dict, start: date | None = None) -> date:
        """The estimated delivery: the service's transit days for the zone, in business days."""
        svc = self.config.services[service]
        days = svc.per_zone(svc.transit_days, zone)
        country, subdivision = schedule.calendar_for(self.config, address)
        return schedule.add_business_days(start or self.today(), days, country, subdivision, self.config.weekend)

    def quote(self, order, service: str, *, weight: int | None = None, zone: Zone | None = None) -> Quote | None:
        """The price and ETA of ``service`` for the order, or None when the service does not take it
        (no rate for the zone, or heavier than the last band)."""
        zone = zone or self.zone(order.shipping_address)
        if zone is None:
            return None
        svc = self.config.services[service]
        bands = svc.per_zone(svc.rates, zone.name)
        if not bands:
            return None
        grams = self.weight(order) if weight is None else weight
        band = next((b for b in bands if b.max_grams is None or grams <= b.max_grams), None)
        if band is None:
            return None
        threshold = svc.per_zone(svc.free_over, zone.name)
        goods = order.subtotal - order.discount_total
        price = 0 if threshold is not None and goods >= threshold else band.price
        return Quote(service, zone.name, price, band.price,
                     self.estimate(service, zone.name, order.shipping_address), grams)

    def rates(self, order) -> list[Rate]:
        if self.config.currency and order.currency != self.config.currency:
            return []
        zone = self.zone(order.shipping_address)
        if zone is None:
            return []
        grams = self.weight(order)
        rates = []
        for service in self.services:
            q = self.quote(order, service, weight=grams, zone=zone)
            if q is not None:
                rates.append(Rate(self.name, service, q.price, order.currency, q.estimated_delivery))
        return rates

    # ------------------------------------------------------------------ shipments

    def sender(self) -> dict:
        return self.config.sender or {"name": "hookshop"}

    def tracking_url(self, tracking_number: str) -> str:
        number = quote(tracking_number, safe="")
        if self.config.tracking.url:
            return self.config.tracking.url.replace("{tracking_number}", number).replace("{carrier}", self.name)
        # the configured public base, never the request's Host header (a client could forge it and
        # have the customer's tracking link point elsewhere); unset: a path relative to the shop
        base = current_app.config.get("PUBLIC_URL") or ""
        return f"{str(base).rstrip('/')}/tracking/{self.name}/{number}"

    def _checked_quote(self, order, service: str) -> Quote:
        address = order.shipping_address or {}
        if self.config.currency and order.currency != self.config.currency:
            raise ValidationFailed(f"carrier {self.name} charges in {self.config.currency}, the order is in "
                                   f"{order.currency}", errors={"carrier": [f"takes {self.config.currency} orders"]})
        zone = self.zone(address)
        if zone is None:
            where = " ".join(str(p) for p in (address.get("country"), address.get("postal_code")) if p)
            raise ValidationFailed(f"carrier {self.name} does not deliver to {where}",
                                   errors={"carrier": [f"no zone of {self.name} covers {where}"]})
        q = self.quote(order, service, zone=zone)
        if q is None:
            grams = self.weight(order)
            raise ValidationFailed(f"carrier {self.name} has no {service} rate for {grams} g to zone {zone.name}",
                                   errors={"service": [f"{service} does not take {grams} g to zone {zone.name}"]})
        return q

    def _context(self, order, service: str, q: Quote) -> dict:
        address = dict(order.shipping_address or {})
        return {
            "order_id": order.id, "order_number": order.number, "carrier": self.name, "service": service,
            "weight_grams": q.weight_grams, "currency": order.currency, "price": q.list_price,
            "goods_value": order.subtotal - order.discount_total, "zone": q.zone,
            "estimated_delivery": q.estimated_delivery.isoformat(), "ship_date": self.today().isoformat(),
            "email": order.email, "phone": order.phone,
            "recipient": {"name": order.customer_name, **address, "email": order.email, "phone": order.phone},
            "sender": self.sender(), "idempotency_key": f"hookshop-{self.name}-{order.id}-{service}",
        }

    def create_shipment(self, order, service: str) -> ShipmentInfo:
        """A tracking number, the ETA, the tracking link, the 4x6 label and the price the shop pays.
        With an ``api`` in the config the carrier's API creates the shipment (and may give the number,
        ETA, label and price)."""
        q = self._checked_quote(order, service)
        data = {"zone": q.zone, "weight_grams": q.weight_grams, "rate_price": q.price,
                "free_shipping": q.price == 0 and q.list_price > 0, "ship_date": self.today().isoformat()}
        # the shipment's price is what the shop pays: the band's price, even when the customer ships free
        eta, price, label_pdf, url = q.estimated_delivery, q.list_price, None, None
        if self.config.api:
            answer = http_api.create(self.config.api, self._context(order, service, q))
            number = answer["tracking_number"]
            eta = answer["estimated_delivery"] or eta
            price = answer["price"] if answer["price"] is not None else price
            label_pdf, url = answer["label_pdf"], answer["tracking_url"]
            data.update(mode="http", carrier_shipment_id=answer["shipment_id"])
        else:
            number = numbers.new_tracking_number(self.config, service)
            data.update(mode="local")
        if label_pdf is None:
            label_pdf = self._label(order, service, number, eta, q.weight_grams, q.zone, self.today())
        return ShipmentInfo(tracking_number=number, estimated_delivery=eta,
                            tracking_url=url or self.tracking_url(number), label_pdf=label_pdf, price=price,
                            data=data)

    def _label(self, order, service, number, eta, grams, zone, ship_date) -> bytes:
        from plugins.carrier_generic import labels  # reportlab is imported on first use

        return labels.shipping_label(
            carrier_label=self.config.label, service=service, tracking_number=number, sender=self.sender(),
            recipient=order.shipping_address or {}, recipient_name=(order.shipping_address or {}).get("name") or order.customer_name, order_number=order.number,
            weight_grams=grams, ship_date=ship_date, estimated_delivery=eta, zone=zone, phone=order.phone)

    def label(self, shipment) -> bytes:
        """The label made again from the shipment and its order (when none was stored)."""
        order = db.session.get(Order, shipment.order_id)
        info = shipment.data or {}
        grams = info.get("weight_grams")
        ship_date = date.fromisoformat(info["ship_date"]) if info.get("ship_date") else shipment.created_at.date()
        return self._label(order, shipment.service, shipment.tracking_number, shipment.estimated_delivery,
                           self.weight(order) if grams is None else grams, info.get("zone"), ship_date)

    def cancel_shipment(self, shipment) -> bool:
        """Cancel at the carrier (HTTP mode with ``cancel_url``); without an API there is nothing to
        call: the tracking number is simply never used. True when the carrier was told."""
        api = self.config.api
        if not api or not api.cancel_url:
            return False
        order = db.session.get(Order, shipment.order_id)
        context = {"tracking_number": shipment.tracking_number, "shipment_id": shipment.id,
                   "carrier_shipment_id": (shipment.data or {}).get("carrier_shipment_id") or "",
                   "order_id": shipment.order_id, "order_number": order.number if order else "",
                   "idempotency_key": f"hookshop-{self.name}-{shipment.order_id}-{shipment.service}"}
        http_api.cancel(api, context)
        return True

    # ------------------------------------------------------------------ tracking

    def tracking_secret(self) -> str | None:
        return self.config.tracking.secret or SETTINGS.get("TRACKING_SECRET")

    def parse_tracking_event(self, request) -> tracking.Event:
        """Verify the Standard Webhooks signature on the raw body, then parse the event.
        Raises ``tracking.Rejected`` (401 signature, 400 broken JSON, 422 invalid event)."""
        raw = request.get_data(cache=True)
        webhook_id = tracking.verify(self.tracking_secret(), request.headers, raw)
        return tracking.parse(raw, webhook_id)

    def handle_tracking(self, request):
        try:
            event = self.parse_tracking_event(request)
        except tracking.Rejected as exc:
            if exc.status == 401:
                log.warning("tracking event for %s refused: %s", self.name, exc.message)
            return exc.body, exc.status
        return tracking.apply(self.name, event)
