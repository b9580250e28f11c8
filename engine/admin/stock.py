"""Stock (warehouse, issue #11): products with their levels per location, a product's page (levels, recent
movements, serial units, reorder rules, labels) and its forms: receive (a quantity or scanned serials),
transfer, adjust. Locations and cycle counts are in stock_counts.py, purchase orders in stock_purchasing.py.

Every form calls the service the REST API calls (engine/services), with the input checked by the API's own
marshmallow schema: the admin changes stock exactly as ``POST /stock/receipts``, ``/stock/transfers`` and
``/stock/adjustments`` would. A refused change (a domain error) is shown on the page with its 4xx status and
changes nothing."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engine.admin import live
from engine.admin.blueprint import bp
from engine.admin.menu import entry
from engine.admin.permissions import require
from engine.admin.stock_forms import all_locations, codes, number, refuse, staff_name, text, validated
from engine.api import schemas as api_schemas
from engine.api import stock_ops
from engine.api.locations import TransferIn
from engine.api.purchasing_schemas import ReorderRulesIn
from engine.db import db
from engine.errors import DomainError, NotFound
from engine.models import Location, Product, ReorderRule, StockLevel, StockMovement
from engine.models.stock import ADJUSTMENT_REASONS, SERIAL_STATUSES
from engine.services import adjustments, catalog, labels, locations, purchasing, reorder, stock
from engine.services import serials as serial_units

PAGE = 50
MOVEMENTS = 25
SERIALS_SHOWN = 100

REASON_LABELS = {"count_correction": _l("Count correction"), "damage": _l("Damage"), "loss": _l("Loss"),
                 "found": _l("Found units")}
SERIAL_LABELS = {"in_stock": _l("In stock"), "reserved": _l("Reserved"), "picked": _l("Picked"),
                 "shipped": _l("Shipped"), "returned": _l("Returned"), "quarantined": _l("Quarantined"),
                 "scrapped": _l("Scrapped")}
MOVEMENT_LABELS = {"receipt": _l("Receipt"), "shipment": _l("Shipment"), "return": _l("Return"),
                   "adjustment": _l("Adjustment"), "transfer": _l("Transfer")}
KIND_LABELS = {"warehouse": _l("Warehouse"), "bin": _l("Bin"), "receiving": _l("Receiving"),
               "quarantine": _l("Quarantine"), "staging": _l("Staging")}


@bp.app_template_global("stock_label")
def stock_label(kind: str, value: str) -> str:
    """The translated name of a reason, serial status, movement kind or location kind."""
    table = {"reason": REASON_LABELS, "serial": SERIAL_LABELS, "movement": MOVEMENT_LABELS,
             "kind": KIND_LABELS}[kind]
    return str(table.get(value, value))


# --------------------------------------------------------------------------- the stock list


def levels_of(product_ids: list[int]) -> dict[int, list[dict]]:
    """Each product's levels per location (path order), for display."""
    out: dict[int, list[dict]] = {pid: [] for pid in product_ids}
    if not product_ids:
        return out
    rows = db.session.execute(
        select(StockLevel, Location).join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.product_id.in_(product_ids)).order_by(Location.code)).all()
    for level, location in rows:
        out[level.product_id].append({"location": location.code, "location_id": location.id, "kind": location.kind,
                                      "pickable": location.pickable, "on_hand": level.on_hand,
                                      "reserved": level.reserved, "available": level.available})
    return out


def low_rules(product: Product, levels: list[dict], rules: list[ReorderRule]) -> list[dict]:
    """The reorder rules of the product that are at or below their point now (what marks it low)."""
    wide = [r for r in rules if r.location_id is None]
    if not wide and (product.reorder_point or 0) > 0:  # the product-wide rule, not stored yet
        rules = [*rules, ReorderRule(product_id=product.id, location_id=None)]
    low = []
    for rule in rules:
        point, _quantity = reorder.point_of(rule, product)
        if point <= 0:
            continue
        available = sum(lv["available"] for lv in levels
                        if rule.location_id is None or lv["location_id"] == rule.location_id)
        if available <= point:
            low.append({"location": rule.location.code if rule.location_id and rule.location else None,
                        "point": point, "available": available})
    return low


def rules_of(product_ids: list[int]) -> dict[int, list[ReorderRule]]:
    out: dict[int, list[ReorderRule]] = {pid: [] for pid in product_ids}
    if product_ids:
        for rule in db.session.execute(select(ReorderRule).where(ReorderRule.product_id.in_(product_ids))
                                       .order_by(ReorderRule.id)).scalars():
            out[rule.product_id].append(rule)
    return out


def stock_rows(products: list[Product]) -> list[dict]:
    ids = [p.id for p in products]
    levels, rules = levels_of(ids), rules_of(ids)
    rows = []
    for product in products:
        own = levels[product.id]
        rows.append({"product": product, "levels": own, "low": low_rules(product, own, rules[product.id]),
                     "on_hand": sum(lv["on_hand"] for lv in own), "reserved": sum(lv["reserved"] for lv in own),
                     "available": sum(lv["available"] for lv in own)})
    return rows


def _cursor_arg() -> int | None:
    value = request.args.get("cursor", "")
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else None


@bp.route("/stock")
@require("stock.view")
def stock_list():
    """Products with their stock per location; search by sku, name or barcode; low stock marked."""
    q = (request.args.get("q") or "").strip()[:catalog.SEARCH_MAX_LENGTH] or None
    archived = request.args.get("archived") == "1"
    products, next_cursor = catalog.list_products(q=q, archived=archived, limit=PAGE, cursor=_cursor_arg())
    return render_template("admin/stock.html", rows=stock_rows(products), q=q or "", archived=archived,
                           next_cursor=next_cursor)


# --------------------------------------------------------------------------- a product's page


def movements_of(product: Product) -> list[tuple[StockMovement, str]]:
    return list(db.session.execute(
        select(StockMovement, Location.code).join(Location, Location.id == StockMovement.location_id)
        .where(StockMovement.product_id == product.id).order_by(StockMovement.id.desc()).limit(MOVEMENTS)).all())


def product_context(sku: str) -> dict:
    product = catalog.get_product(sku)  # 404 when unknown
    own = levels_of([product.id])[product.id]
    _product, rules = reorder.get_rules(sku)
    status = request.args.get("serials") if request.args.get("serials") in SERIAL_STATUSES else None
    serial_rows: list = []
    more_serials = None
    if product.track_serials:
        serial_rows, more_serials = serial_units.list_serials(sku, status, SERIALS_SHOWN, _cursor_arg())
    suppliers, _next = purchasing.list_suppliers(limit=200)
    rule_rows = []
    for rule in rules:
        point, quantity = reorder.point_of(rule, product)
        available = sum(lv["available"] for lv in own if rule.location_id is None
                        or lv["location_id"] == rule.location_id)
        rule_rows.append({"location": rule.location.code if rule.location_id and rule.location else "",
                          "reorder_point": point, "reorder_quantity": quantity, "max_level": rule.max_level,
                          "supplier_id": rule.supplier_id, "lead_time_days": rule.lead_time_days,
                          "state": "below" if 0 < point and available <= point else "above"})  # as it is now
    return {"product": product, "levels": own, "summary": stock.stock_summary(product),
            "low": low_rules(product, own, [r for r in rules if r.id is not None]),
            "movements": movements_of(product), "serials": serial_rows, "serial_status": status,
            "more_serials": more_serials, "rules": rule_rows, "suppliers": suppliers,
            "locations": all_locations(), "reasons": ADJUSTMENT_REASONS, "serial_statuses": SERIAL_STATUSES}


def product_page(sku: str, status: int = 200, form=None):
    try:
        context = product_context(sku)
    except NotFound as exc:
        abort(404, description=exc.message)
    return render_template("admin/stock_product.html", form=form or {}, live_token=live.change_token(),
                           live_poll=live.POLL, **context), status


@bp.route("/stock/<code_path:sku>")
@require("stock.view")
def stock_product(sku: str):
    """A product's stock: levels per location (live), movements, serial units, reorder rules, labels."""
    if request.args.get("part") == "levels":
        try:
            product = catalog.get_product(sku)
        except NotFound as exc:
            abort(404, description=exc.message)
        return live.region("admin/_stock_levels.html", lambda: {
            "levels": levels_of([product.id])[product.id], "summary": stock.stock_summary(product)}, product=product)
    return product_page(sku)


def _after_change(sku: str | None, exc: DomainError):
    """The page a refused form is shown on again: the product's, else the stock list."""
    refuse(exc)
    if sku:
        try:
            catalog.get_product(sku)
        except NotFound:
            sku = None
    if sku:
        return product_page(sku, exc.status, request.form)
    products, next_cursor = catalog.list_products(limit=PAGE)
    return render_template("admin/stock.html", rows=stock_rows(products), q="", archived=False,
                           next_cursor=next_cursor), exc.status


def _done(sku: str, message: str):
    flash(message)
    return redirect(url_for("admin_ui.stock_product", sku=sku), 303)


@bp.route("/stock/receive", methods=["POST"])
@require("stock.change")
def stock_receive():
    """Receive stock as ``POST /stock/receipts``: a quantity, or one serial per unit (typed or scanned)."""
    sku = text("sku")
    try:
        serials = codes(request.form.get("serials-0"))
        quantity = number("quantity", label=_("Quantity"))
        data = {"sku": sku or "", "quantity": quantity if quantity is not None else len(serials)}
        if serials:
            data["serials"] = serials
        for name in ("location", "reference"):
            if text(name):
                data[name] = text(name)
        data = validated(api_schemas.StockReceiptIn, data)
        summary = stock.receive_stock(data["sku"], data["quantity"], data.get("location"), data.get("serials"),
                                      data.get("reference"))
    except DomainError as exc:
        return _after_change(sku, exc)
    return _done(summary["sku"], _("Received %(n)s of %(sku)s: %(available)s available.", n=data["quantity"],
                                   sku=summary["sku"], available=summary["available"]))


@bp.route("/stock/serial-scan", methods=["POST"])
@require("stock.change")
def stock_serial_scan():
    """One scanned serial added to a receipt's list (htmx): checked, nothing is stored until the form is sent."""
    from engine.admin import stock_purchasing

    code = (request.form.get("code") or "").strip()
    box, sku = 0, text("sku")
    if request.form.get("po"):
        po, line = request.form.get("po", ""), request.form.get("line", "")
        box, sku = stock_purchasing.scan_line(int(po) if po.isdecimal() and len(po) < 19 else None,
                                              int(line) if line.isdecimal() and len(line) < 7 else None)
    serials = codes(request.form.get(f"serials-{box}"))
    product = db.session.execute(select(Product).where(Product.sku == (sku or ""))).scalar_one_or_none()
    if product is None:
        problem, status = _("Unknown product %(sku)s.", sku=sku or "?"), 422
    elif not code:
        problem, status = _("Scan a serial."), 422
    elif not product.track_serials:
        problem, status = _("%(sku)s does not track serials: give a quantity.", sku=product.sku), 422
    elif len(code) > 128:
        problem, status = _("A serial has at most 128 characters."), 422
    elif code in serials:
        problem, status = _("%(serial)s is already on this list.", serial=code), 409
    elif serial_units.known_serials(product.id, [code]):
        problem, status = _("%(serial)s is already known for %(sku)s.", serial=code, sku=product.sku), 409
    else:
        problem, status = None, 200
        serials.append(code)
    message = problem or _("%(serial)s added (%(n)s on the list).", serial=code, n=len(serials))
    return render_template("admin/_stock_serial_scan.html", ok=problem is None, message=message, box=box,
                           serials=serials), status


@bp.route("/stock/transfer", methods=["POST"])
@require("stock.change")
def stock_transfer():
    """Move units between two locations as ``POST /stock/transfers``."""
    sku = text("sku")
    try:
        data = {"sku": sku or "", "from": text("from") or "", "to": text("to") or ""}
        quantity, serials = number("quantity", label=_("Quantity")), codes(request.form.get("serials"))
        if quantity is not None:
            data["quantity"] = quantity
        if serials:
            data["serials"] = serials
        if text("reference"):
            data["reference"] = text("reference")
        data = validated(TransferIn, data)
        moved = locations.transfer(data["sku"], source=data["source"], destination=data["destination"],
                                   quantity=data.get("quantity"), serials=data.get("serials"),
                                   reference=data.get("reference"))
    except DomainError as exc:
        return _after_change(sku, exc)
    return _done(moved["sku"], _("Moved %(n)s of %(sku)s from %(source)s to %(target)s.", n=moved["quantity"],
                                 sku=moved["sku"], source=moved["from"], target=moved["to"]))


@bp.route("/stock/adjust", methods=["POST"])
@require("stock.change")
def stock_adjust():
    """An adjustment as ``POST /stock/adjustments``; the staff member is the logged-in user."""
    sku = text("sku")
    try:
        data = {"sku": sku or "", "reason": text("reason") or "", "staff": staff_name()}
        quantity, serials = number("quantity", label=_("Quantity")), codes(request.form.get("serials"))
        if quantity is not None:
            data["quantity"] = quantity
        if serials:
            data["serials"] = serials
        for name in ("location", "note"):
            if text(name):
                data[name] = text(name)
        data = validated(stock_ops.AdjustmentIn, data)
        done = adjustments.adjust_stock(data["sku"], reason=data["reason"], staff=data["staff"],
                                        quantity=data.get("quantity"), serials=data.get("serials"),
                                        location=data.get("location"), note=data.get("note"))
    except DomainError as exc:
        return _after_change(sku, exc)
    return _done(done["sku"], _("Adjusted %(sku)s by %(n)s at %(location)s (%(reason)s).", sku=done["sku"],
                                n=done["quantity"], location=done["location"],
                                reason=stock_label("reason", done["reason"])))


@bp.route("/stock/rules", methods=["POST"])
@require("stock.change")
def stock_rules():
    """Replace the product's reorder rules as ``PUT /products/{sku}/reorder-rules`` (one row per rule; a row
    without a reorder point, or marked for removal, is left out)."""
    sku = text("sku")
    form = request.form
    try:
        items = []
        fields = ("location", "reorder_point", "reorder_quantity", "max_level", "supplier_id", "lead_time_days")
        columns = {name: form.getlist(name) for name in fields}
        removed = set(form.getlist("remove"))
        for index in range(len(columns["reorder_point"])):
            row = {name: (values[index].strip() if index < len(values) else "") for name, values in columns.items()}
            if str(index) in removed or not row["reorder_point"]:
                continue
            item = {"location": row["location"] or None}
            for name in fields[1:]:
                value = number(name, row, label=name)
                if value is not None:
                    item[name] = value
            items.append(item)
        data = validated(ReorderRulesIn, {"rules": items})
        reorder.put_rules(sku or "", data["rules"])
    except DomainError as exc:
        return _after_change(sku, exc)
    return _done(sku, _("Reorder rules of %(sku)s saved.", sku=sku))


# --------------------------------------------------------------------------- label sheets


def _pdf(rows, name: str):
    return labels.sheet(rows), 200, {"Content-Type": "application/pdf",
                                     "Content-Disposition": f'inline; filename="{name}"'}


@bp.route("/labels/products.pdf")
@require("stock.view")
def stock_product_labels():
    """A product's label sheet (its barcode or sku ``copies`` times), or one label per serial unit in stock."""
    sku = request.args.get("sku", "")
    copies = request.args.get("copies", "1")
    copies = min(int(copies), 1000) if re.fullmatch(r"[0-9]{1,4}", copies) and int(copies) > 0 else 1
    try:
        rows = labels.product_labels(sku, serials=request.args.get("serials") == "in_stock", copies=copies)
    except DomainError as exc:
        abort(exc.status, description=exc.message)
    return _pdf(rows, "labels.pdf")


@bp.route("/labels/locations.pdf")
@require("stock.view")
def stock_location_labels():
    """Bin labels: one per location whose path starts with ``prefix``."""
    try:
        rows = labels.location_labels(request.args.get("prefix", "")[:64])
    except DomainError as exc:
        abort(exc.status, description=exc.message)
    return _pdf(rows, "locations.pdf")


entry(_l("Stock"), "admin_ui.stock_list", "stock.view", 40)
