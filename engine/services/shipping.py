"""Stage 4, second half: rates, shipping with a carrier, labels, tracking updates."""

from __future__ import annotations

import logging

from engine.contracts import Rate, ShipmentInfo
from engine.db import db, transaction
from engine.domain import flags
from engine.domain import transitions as tx
from engine.domain.privacy import redact_text
from engine.errors import Conflict, DomainError, NotFound, ProviderUnavailable, ValidationFailed
from engine.models import Shipment
from engine.plugins import registry
from engine.services import orders as order_service
from engine.services import stock

log = logging.getLogger("hookshop.shipping")
__all__ = ["Rate", "ShipmentInfo"]  # the contract's values, kept importable from here


def carrier(name: str, field_name: str = "carrier"):
    carriers = registry().carriers
    if name not in carriers:
        known = ", ".join(sorted(carriers)) or "none enabled"
        raise ValidationFailed(f"unknown carrier {name!r}", errors={field_name: [f"unknown carrier; known: {known}"]})
    return carriers[name]


def check_deliverable(order) -> None:
    """An order flagged ``review:address`` (or without an address) cannot be rated nor shipped: 409."""
    if flags.REVIEW_ADDRESS in order.flags or not order.shipping_address:
        raise Conflict(f"order {order.number} has no deliverable shipping address (flag {flags.REVIEW_ADDRESS}): "
                       f"give it one (POST /api/v1/orders/{order.id}/address), then ask for rates or ship it",
                       code="address_required",
                       errors={"shipping_address": ["missing or not deliverable; set it before shipping"]})


def rates_for(order_id: int) -> list[Rate]:
    order = order_service.get_order(order_id)
    check_deliverable(order)
    rates: list[Rate] = []
    for name in sorted(registry().carriers):
        try:
            rates.extend(registry().carriers[name].rates(order))
        except Exception as exc:  # one broken carrier does not hide the others
            log.warning("carrier %s gave no rates: %s", name, redact_text(exc))
    return sorted(rates, key=lambda r: (r.price, r.carrier, r.service))


def ship_order(order_id: int, carrier_name: str, service: str):
    """packed -> shipped: the carrier creates the shipment; reservations become shipment movements.

    The order is claimed for ``ship`` while the carrier is called (no lock held), so a cancel
    meanwhile is a 409 ``order_busy``: an order is never both shipped and cancelled."""
    order = order_service.get_order(order_id)
    tx.check(order.status, "ship", order.held_from, order.fulfilment)
    chosen = carrier(carrier_name)
    if service not in chosen.services:
        raise ValidationFailed(f"carrier {carrier_name} has no service {service!r}",
                               errors={"service": [f"one of: {', '.join(chosen.services)}"]})
    check_deliverable(order)
    order, token = order_service.claim(order_id, "ship", check=check_deliverable)  # again, under the lock
    try:
        info = chosen.create_shipment(order, service)
    except DomainError:
        order_service.release_claim(order_id, token)
        raise
    except Exception as exc:
        db.session.rollback()
        with transaction():
            order = order_service.get_order(order_id, lock=True)
            order_service.end_claim_locked(order, token)
            order_service.note(order, "shipment_error", f"{carrier_name}: {exc}", carrier=carrier_name)
        raise ProviderUnavailable(f"carrier {carrier_name} could not create the shipment: {exc}; "
                                  "the order stays packed, try again") from exc
    except BaseException:
        order_service.release_claim(order_id, token)
        raise
    product_ids = [line.product_id for line in order.lines]
    with transaction():
        # the engine's lock order: stock levels, then the order (docs/design-decisions.md)
        stock.lock_levels(product_ids)
        order = order_service.get_order(order_id, lock=True)
        orphaned = not order_service.end_claim_locked(order, token)
        if orphaned:  # the claim expired and another request took the order: record nothing but a note
            order_service.note(order, "shipment_orphaned",
                               f"{carrier_name} created shipment {info.tracking_number}, but the order was claimed "
                               "by another request meanwhile: void the label at the carrier",
                               carrier=carrier_name, tracking_number=info.tracking_number)
        else:
            _record_shipment(order, carrier_name, service, info)
    if orphaned:
        raise Conflict(f"order {order.number} was claimed by another request while the carrier created the "
                       f"shipment; shipment {info.tracking_number} was not recorded", code="order_busy")
    return order


def _record_shipment(order, carrier_name: str, service: str, info: ShipmentInfo) -> None:
    order_service.move(order, "ship")
    shipment = Shipment(order_id=order.id, carrier=carrier_name, service=service,
                        tracking_number=info.tracking_number, tracking_url=info.tracking_url,
                        estimated_delivery=info.estimated_delivery, price=info.price, status="shipped",
                        label_pdf=info.label_pdf, data=info.data)
    db.session.add(shipment)
    order.shipments.append(shipment)
    stock.ship_out(order)
    db.session.flush()
    order_service.stage(order, "order_shipped",
                        f"shipped with {carrier_name} {service}, tracking {info.tracking_number}"
                        + (f", expected {info.estimated_delivery.isoformat()}" if info.estimated_delivery else ""),
                        shipment_id=shipment.id, tracking_number=info.tracking_number,
                        estimated_delivery=info.estimated_delivery.isoformat() if info.estimated_delivery else None)


def label_pdf(shipment_id: int) -> bytes:
    shipment = db.session.get(Shipment, shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment with id {shipment_id}")
    if shipment.label_pdf:
        return shipment.label_pdf
    label = getattr(registry().carriers.get(shipment.carrier), "label", None)  # optional (contracts.OPTIONAL)
    if label is None:
        raise NotFound(f"carrier {shipment.carrier} made no label for shipment {shipment_id}")
    return label(shipment)
