"""Fast hand-written serialisers for responses (the schemas in ``schemas.py``
document the same shapes; tests check they agree)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.db import as_utc
from engine.domain.customers import averages
from engine.domain.transitions import allowed_actions


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def product(p) -> dict:
    return {"id": p.id, "sku": p.sku, "name": p.name, "price": p.price, "currency": p.currency,
            "barcode": p.barcode, "track_serials": p.track_serials, "allow_backorder": p.allow_backorder,
            "reorder_point": p.reorder_point, "reorder_quantity": p.reorder_quantity,
            "weight_grams": p.weight_grams, "unit_cost": p.unit_cost, "archived": p.archived_at is not None,
            "archived_at": _iso(p.archived_at), "created_at": _iso(p.created_at)}


def order(o, *, detail: bool = True) -> dict:
    """The order as the API shows it; a list page (``detail=False``) leaves out the timeline and refunds."""
    data = {
        "id": o.id,
        "number": o.number,
        "status": o.status,
        "allowed_actions": allowed_actions(o.status, o.held_from, o.fulfilment),
        "held_from": o.held_from,
        "hold_reason": o.hold_reason,
        "payment_status": o.payment_status,
        "payment_provider": o.payment_provider,
        "channel": o.channel,
        "external_id": o.external_id,
        "flags": list(o.flags or []),
        "gift": o.gift,
        "locale": o.locale,
        "coupon": o.coupon,
        "lines": [{"id": ln.id, "sku": ln.sku, "name": ln.name, "quantity": ln.quantity, "unit_price": ln.unit_price,
                   "total": ln.unit_price * ln.quantity, "backordered": ln.backordered,
                   "picked_quantity": ln.picked_quantity, "returned_quantity": ln.returned_quantity,
                   "gift": bool(ln.gift), "serials": list(ln.serials or [])} for ln in o.lines],
        "totals": {"currency": o.currency, "subtotal": o.subtotal, "discount": o.discount_total,
                   "shipping": o.shipping_total, "tax": o.tax_total, "total": o.total, "paid": o.paid_total,
                   "refunded": o.refunded_total},
        "customer": {"id": o.customer_id, "email": o.email, "name": o.customer_name, "phone": o.phone},
        "shipping_address": o.shipping_address,
        "billing_address": o.billing_address,
        "non_stock_lines": list(o.non_stock_lines or []),
        "tax": {"status": o.tax_status, "prices_include_tax": o.prices_include_tax, "lines": list(o.tax_lines or [])},
        # what the buyer was charged in their own currency (the order's totals when it is the shop's)
        "presentment": ({"currency": o.presentment_currency, **(o.presentment_totals or {})}
                        if o.presentment_currency else
                        {"currency": o.currency, "subtotal": o.subtotal, "discount": o.discount_total,
                         "shipping": o.shipping_total, "tax": o.tax_total, "total": o.total}),
        "payments": [{"id": p.id, "provider": p.provider, "amount": p.amount, "currency": p.currency,
                      "status": p.status, "reference": p.reference, "refunded_amount": p.refunded_amount,
                      "fee": p.fee, "client_secret": (p.data or {}).get("client_secret"),
                      "created_at": _iso(p.created_at)} for p in o.payments],
        "shipments": [shipment(s) for s in o.shipments],
        "replacement_for": o.replacement_for_id,
        "created_at": _iso(o.created_at),
        "updated_at": _iso(o.updated_at),
    }
    if detail:
        data["refunds"] = [{"id": r.id, "payment_id": r.payment_id, "amount": r.amount, "status": r.status,
                            "reference": r.reference, "reason": r.reason, "return_id": r.return_id,
                            "created_at": _iso(r.created_at)} for r in o.refunds]
        data["events"] = [{"kind": e.kind, "message": e.message, "data": e.data or {}, "at": _iso(e.created_at)}
                          for e in o.events]
    return data


def shipment(s) -> dict:
    return {"id": s.id, "carrier": s.carrier, "service": s.service, "tracking_number": s.tracking_number,
            "tracking_url": s.tracking_url,
            "estimated_delivery": s.estimated_delivery.isoformat() if s.estimated_delivery else None,
            "status": s.status, "price": s.price, "label_url": f"/api/v1/shipments/{s.id}/label.pdf"}


def order_return(r) -> dict:
    from engine.domain.return_transitions import allowed_actions as return_actions

    return {"id": r.id, "order_id": r.order_id, "status": r.status, "allowed_actions": return_actions(r.status),
            "source": r.source, "reason": r.reason, "resolution": r.resolution, "lines": r.lines,
            "received_lines": r.received_lines, "rejection_reason": r.rejection_reason,
            "refund_amount": r.refund_amount, "replacement_order_id": r.replacement_order_id,
            "created_at": _iso(r.created_at), "approved_at": _iso(r.approved_at), "rejected_at": _iso(r.rejected_at),
            "received_at": _iso(r.received_at), "resolved_at": _iso(r.resolved_at)}


def customer_return(r, order_number: str) -> dict:
    """What the customer who asked sees of the return: no amounts, no staff notes."""
    return {"id": r.id, "order_number": order_number, "status": r.status, "resolution": r.resolution,
            "lines": r.lines, "created_at": _iso(r.created_at)}


def customer_summary(c) -> dict:
    """The profile without its history and preferred services (a list page)."""
    spent, orders = dict(c.spent_by_currency or {}), dict(c.orders_by_currency or {})
    return {"id": c.id, "email": c.email, "name": c.name, "phone": c.phone, "company": c.company,
            "tax_id": c.tax_id, "tax_id_checked": bool(c.tax_id_checked), "locale": c.locale,
            "addresses": c.addresses or [], "billing_address": c.billing_address, "notes": c.notes,
            "preferences": c.preferences or {}, "order_count": c.order_count, "total_spent": c.total_spent,
            "total_spent_by_currency": spent, "orders_by_currency": orders,
            "average_by_currency": averages(spent, orders), "currency": c.currency, "vip": c.is_vip,
            "vip_by_staff": c.vip_by_staff, "first_order_at": _iso(c.first_order_at),
            "last_order_at": _iso(c.last_order_at), "channel": c.channel, "channel_customer_id": c.channel_customer_id,
            "merged_into": c.merged_into_id, "merged_at": _iso(c.merged_at), "created_at": _iso(c.created_at)}


def customer(c, history: Sequence, preferred: dict | None = None) -> dict:
    data = customer_summary(c)
    data["history"] = [{"id": o.id, "number": o.number, "status": o.status, "total": o.total, "currency": o.currency,
                        "flags": list(o.flags or []), "created_at": _iso(o.created_at)} for o in history]
    preferred = preferred or {}
    data["preferred_payment_provider"] = preferred.get("payment_provider")
    data["preferred_delivery_service"] = preferred.get("delivery_service")
    return data


def coupon(c) -> dict:
    return {"code": c.code, "kind": c.kind, "value": c.value, "currency": c.currency, "category": c.category,
            "valid_from": _iso(c.valid_from), "valid_until": _iso(c.valid_until), "usage_limit": c.usage_limit,
            "per_customer_limit": c.per_customer_limit, "used_count": c.used_count,
            "remaining": None if c.usage_limit is None else max(0, c.usage_limit - c.used_count),
            "active": c.active, "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at)}


def rate(r) -> dict:
    return {"carrier": r.carrier, "service": r.service, "price": r.price, "currency": r.currency,
            "estimated_delivery": r.estimated_delivery.isoformat() if r.estimated_delivery else None}
