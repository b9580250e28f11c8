"""Suppliers, purchase orders and receiving, reorder rules, low-stock alerts (issue #11)."""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask import request
from flask.views import MethodView

from engine.api import Blueprint, idempotent
from engine.api import purchasing_schemas as s
from engine.db import as_utc
from engine.domain.purchase_transitions import allowed_actions
from engine.errors import ValidationFailed
from engine.services import purchasing, receiving, reorder

blp = Blueprint("purchasing", __name__, url_prefix="/api/v1", description="Suppliers, purchase orders, reorder rules")


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def supplier_out(x) -> dict:
    return {"id": x.id, "name": x.name, "email": x.email, "phone": x.phone, "currency": x.currency,
            "lead_time_days": x.lead_time_days, "notes": x.notes, "created_at": _iso(x.created_at)}


def purchase_order_out(po) -> dict:
    expected = None
    if po.ordered_at is not None and po.supplier is not None:
        expected = po.ordered_at + timedelta(days=po.supplier.lead_time_days or 0)
    return {"id": po.id, "number": po.number, "status": po.status, "allowed_actions": allowed_actions(po.status),
            "supplier_id": po.supplier_id, "supplier_name": po.supplier.name if po.supplier else None,
            "reason": po.reason, "notes": po.notes,
            "lines": [{"id": ln.id, "sku": ln.product.sku, "name": ln.product.name, "quantity": ln.quantity,
                       "received": ln.received, "damaged": ln.damaged, "short": ln.short, "over": ln.over,
                       "unit_cost": ln.unit_cost} for ln in po.lines],
            "created_at": _iso(po.created_at), "ordered_at": _iso(po.ordered_at), "expected_at": _iso(expected),
            "received_at": _iso(po.received_at), "closed_at": _iso(po.closed_at)}


def rules_out(product, rules) -> dict:
    items = []
    for rule in rules:
        point, quantity = reorder.point_of(rule, product)
        items.append({"id": rule.id, "location": rule.location.code if rule.location else None,
                      "reorder_point": point, "reorder_quantity": quantity, "max_level": rule.max_level,
                      "supplier_id": rule.supplier_id, "lead_time_days": rule.lead_time_days,
                      "state": rule.state or "above", "crossed_at": _iso(rule.crossed_at)})
    return {"sku": product.sku, "rules": items}


def alert_out(a) -> dict:
    return {"id": a.id, "sku": a.product.sku, "location": a.location.code if a.location else None,
            "available": a.available, "reorder_point": a.reorder_point, "recipients": list(a.recipients or []),
            "purchase_order_id": a.purchase_order_id, "created_at": _iso(a.created_at)}


def _page(items, next_cursor, out) -> dict:
    return {"items": [out(x) for x in items], "next_cursor": str(next_cursor) if next_cursor else None}


def _need_body() -> None:
    if not (request.is_json and request.get_data(cache=True)):  # webargs would read no body as {}
        raise ValidationFailed("send the fields to change as a JSON object (Content-Type: application/json)",
                               errors={"_body": ["a JSON object is required"]})


def _cursor(query) -> int | None:
    return int(query["cursor"]) if query.get("cursor") else None


# --------------------------------------------------------------------------- suppliers


@blp.route("/suppliers")
class Suppliers(MethodView):
    @blp.arguments(s.PageQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=s.SupplierPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List suppliers"""
        return _page(*purchasing.list_suppliers(query["limit"], _cursor(query)), supplier_out)

    @blp.arguments(s.SupplierIn)
    @blp.alt_response(201, schema=s.SupplierOut, success=True, description="the supplier")
    @blp.alt_response(409, schema="Error", description="duplicate_supplier (the name is taken)")
    @idempotent
    def post(self, data):
        """Create a supplier"""
        return supplier_out(purchasing.create_supplier(data)), 201


@blp.route("/suppliers/<int:supplier_id>")
class SupplierItem(MethodView):
    @blp.alt_response(200, schema=s.SupplierOut, success=True, description="the supplier")
    @blp.alt_response(404, schema="Error", description="no such supplier")
    def get(self, supplier_id):
        """Get a supplier"""
        return supplier_out(purchasing.get_supplier(supplier_id))

    @blp.arguments(s.SupplierPatch)
    @blp.alt_response(200, schema=s.SupplierOut, success=True, description="the changed supplier")
    @blp.alt_response(404, schema="Error", description="no such supplier")
    @blp.alt_response(409, schema="Error", description="duplicate_supplier (the name is taken)")
    def patch(self, changes, supplier_id):
        """Change a supplier"""
        _need_body()
        return supplier_out(purchasing.update_supplier(supplier_id, changes))


# --------------------------------------------------------------------------- purchase orders


@blp.route("/purchase-orders")
class PurchaseOrders(MethodView):
    @blp.arguments(s.PurchaseOrderQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=s.PurchaseOrderPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List purchase orders (filter by status, supplier)"""
        return _page(*purchasing.list_purchase_orders(status=query.get("status"), supplier_id=query.get("supplier_id"),
                                                      limit=query["limit"], cursor=_cursor(query)), purchase_order_out)

    @blp.arguments(s.PurchaseOrderIn)
    @blp.alt_response(201, schema=s.PurchaseOrderOut, success=True, description="the draft purchase order")
    @blp.alt_response(409, schema="Error", description="draft_exists (the supplier has an open draft: add to it)")
    @blp.alt_response(422, schema="Error", description="validation_error (unknown sku or supplier, a repeated sku)")
    @idempotent
    def post(self, data):
        """Draft a purchase order"""
        return purchase_order_out(purchasing.create_purchase_order(data)), 201


@blp.route("/purchase-orders/<int:po_id>")
class PurchaseOrderItem(MethodView):
    @blp.alt_response(200, schema=s.PurchaseOrderOut, success=True, description="the purchase order")
    @blp.alt_response(404, schema="Error", description="no such purchase order")
    def get(self, po_id):
        """Get a purchase order"""
        return purchase_order_out(purchasing.get_purchase_order(po_id))

    @blp.arguments(s.PurchaseOrderPatch)
    @blp.alt_response(200, schema=s.PurchaseOrderOut, success=True, description="the changed draft")
    @blp.alt_response(404, schema="Error", description="no such purchase order")
    @blp.alt_response(409, schema="Error", description="illegal_transition (only a draft can change), draft_exists")
    @blp.alt_response(422, schema="Error", description="validation_error (unknown sku or supplier)")
    def patch(self, changes, po_id):
        """Change a draft's lines (by sku; quantity 0 removes one), supplier or notes"""
        _need_body()
        return purchase_order_out(purchasing.update_purchase_order(po_id, changes))


def _action(action: str, doc: str):
    def view(po_id):
        return purchase_order_out(purchasing.act(po_id, action))

    view.__name__ = f"purchase_order_{action}"
    view.__doc__ = doc
    view = blp.alt_response(409, schema="Error", description="illegal_transition: the status does not allow it "
                            "(the message names the allowed actions); nothing changed")(view)
    view = blp.alt_response(404, schema="Error", description="no such purchase order")(view)
    if action == "order":
        view = blp.alt_response(422, schema="Error", description="the draft has no lines")(view)
    view = blp.alt_response(200, schema=s.PurchaseOrderOut, success=True, description="the purchase order")(view)
    blp.route(f"/purchase-orders/<int:po_id>/{action}", methods=["POST"])(view)


_action("order", "Order a draft from its supplier (draft -> ordered)")
_action("close", "Close a received or partially received purchase order (what never came stays short)")
_action("cancel", "Cancel a draft or an ordered purchase order that received nothing")


@blp.route("/purchase-orders/<int:po_id>/receive", methods=["POST"])
@blp.arguments(s.ReceiveIn)
@blp.alt_response(200, schema=s.PurchaseOrderOut, success=True, description="the purchase order after the receipt")
@blp.alt_response(404, schema="Error", description="no such purchase order")
@blp.alt_response(409, schema="Error", description="illegal_transition (not ordered or partially received), "
                  "serial_exists (a serial is already known)")
@blp.alt_response(422, schema="Error", description="validation_error (a sku not on the purchase order, serials "
                  "not one per unit, nothing received), product_archived")
@idempotent
def purchase_order_receive(data, po_id):
    """Receive goods: per line a quantity or scanned serials, and damaged units (recorded, not put on hand)"""
    return purchase_order_out(receiving.receive(po_id, data))


# --------------------------------------------------------------------------- reorder rules and alerts


@blp.route("/products/<string(maxlength=64):sku>/reorder-rules")
class ReorderRules(MethodView):
    @blp.alt_response(200, schema=s.ReorderRulesOut, success=True, description="the product's rules")
    @blp.alt_response(404, schema="Error", description="no such product")
    def get(self, sku):
        """The product's reorder rules (location null: all locations together)"""
        return rules_out(*reorder.get_rules(sku))

    @blp.arguments(s.ReorderRulesIn)
    @blp.alt_response(200, schema=s.ReorderRulesOut, success=True, description="the product's rules")
    @blp.alt_response(404, schema="Error", description="no such product")
    @blp.alt_response(422, schema="Error", description="validation_error (unknown location or supplier, two rules "
                      "for one location, reorder_quantity and max_level both, max_level not above the point)")
    def put(self, data, sku):
        """Replace the product's reorder rules (the location-null rule is the product's reorder_point and
        reorder_quantity)"""
        return rules_out(*reorder.put_rules(sku, data["rules"]))


@blp.route("/stock/alerts")
class StockAlerts(MethodView):
    @blp.arguments(s.StockAlertQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=s.StockAlertPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """Low-stock alerts: one per crossing of a reorder rule, with who must be told"""
        return _page(*reorder.list_alerts(sku=query.get("sku"), limit=query["limit"], cursor=_cursor(query)),
                     alert_out)
