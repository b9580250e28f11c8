"""The ship screens of pick, pack and ship (engine/admin/pickpack.py): ``/admin/ship``, the packed orders;
``/admin/ship/<id>``: the carriers' rates, the shipment, the tracking number, the label and the documents of the
``order_documents`` hook for ``order_shipped`` (the packing slip)."""

from __future__ import annotations

import json
import re

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _

from engine.admin.blueprint import bp
from engine.admin.permissions import require
from engine.admin.pickpack import _can_do, _order, _queue_region
from engine.db import db
from engine.errors import DomainError, NotFound
from engine.models import Order, Shipment
from engine.plugins import registry
from engine.services import shipping


@bp.route("/ship")
@require("warehouse.ship")
def ship_queue():
    return _queue_region("ship", "admin/pickpack_queue.html")


@bp.route("/ship/live")
@require("warehouse.ship")
def ship_queue_live():
    return _queue_region("ship", "admin/_pickpack_queue_live.html")


def _safe(filename: str) -> str:
    """A file name for Content-Disposition: letters, digits, dot, dash and underscore only."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:120] or "document"


def _rate_value(rate) -> str:
    return json.dumps([rate.carrier, rate.service])


def _documents(order: Order) -> list[tuple[str, str, bytes]]:
    """The documents the plugins give for the ``order_shipped`` message (the packing slip), through the
    core's ``order_documents`` contract hook; a plugin that fails gives none."""
    found: list[object] = []
    for impl in reversed(registry().pm.hook.order_documents.get_hookimpls()):
        args = {"order": order, "kind": "order_shipped"}
        try:
            given = impl.function(**{name: args[name] for name in impl.argnames})
            found.extend(given if isinstance(given, list | tuple) else [])
        except Exception:  # noqa: BLE001 - one broken plugin hides only its own documents
            db.session.rollback()
    return [(d[0], d[1], d[2]) for d in found if isinstance(d, tuple | list) and len(d) >= 3]


def _ship_page(order_id: int, status: int = 200, chosen: str | None = None):
    order = _order(order_id)
    rates, rates_error = [], None
    can_ship = _can_do(order, "ship")
    if can_ship:
        try:
            rates = shipping.rates_for(order_id)
        except DomainError as exc:
            rates_error = exc.message
    shipments = [{"shipment": s, "estimated": format_date(s.estimated_delivery, "medium")
                  if s.estimated_delivery else None} for s in order.shipments]
    documents = [name for name, _type, _data in _documents(order)] if order.shipments else []
    return render_template("admin/pickpack_ship.html", order=order, rates=rates, rates_error=rates_error,
                           can_ship=can_ship, shipments=shipments, documents=documents, rate_value=_rate_value,
                           chosen=chosen, format_date=format_date), status


@bp.route("/ship/<int:order_id>")
@require("warehouse.ship")
def ship_order(order_id: int):
    return _ship_page(order_id)


@bp.route("/ship/<int:order_id>", methods=["POST"])
@require("warehouse.ship")
def ship_create(order_id: int):
    """Create the shipment with the chosen rate's carrier and service."""
    raw = request.form.get("rate") or ""
    try:
        carrier, service = json.loads(raw)
        if not (isinstance(carrier, str) and isinstance(service, str)):
            raise ValueError
    except (ValueError, TypeError):
        _order(order_id)
        flash(_("Choose a rate first."), "error")
        return _ship_page(order_id, 422)
    try:
        order = shipping.ship_order(order_id, carrier, service)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _ship_page(order_id, exc.status, chosen=raw)
    tracking = order.shipments[-1].tracking_number if order.shipments else ""
    flash(_("Order %(number)s shipped: tracking number %(tracking)s.", number=order.number, tracking=tracking))
    return redirect(url_for("admin_ui.ship_order", order_id=order_id), 303)


@bp.route("/shipments/<int:shipment_id>/label.pdf")
@require("warehouse.ship")
def shipment_label(shipment_id: int):
    """The shipment's label, from the carrier that made it (the same service as the API's label)."""
    try:
        pdf = shipping.label_pdf(shipment_id)
    except NotFound:
        abort(404)
    shipment = db.session.get_one(Shipment, shipment_id)  # label_pdf found it
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="label-{_safe(shipment.tracking_number or str(shipment_id))}.pdf"'})


@bp.route("/ship/<int:order_id>/documents/<string(maxlength=200):filename>")
@require("warehouse.ship")
def ship_document(order_id: int, filename: str):
    """A document of the shipped order (the packing slip), made by its plugin through ``order_documents``."""
    order = _order(order_id)
    for name, content_type, data in _documents(order) if order.shipments else []:
        if name == filename:
            return Response(data, mimetype=content_type or "application/octet-stream",
                            headers={"Content-Disposition": f'inline; filename="{_safe(name)}"'})
    abort(404)
