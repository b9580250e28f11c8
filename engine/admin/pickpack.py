"""Pick, pack and ship: the warehouse screens, built for a barcode scanner (a scanner types the code and
Enter into the focused ``Scan`` input; admin.js queues the scans and sends them one by one).

- ``/admin/pick``: the orders to pick (paid or picking, oldest first) and those picked, waiting for their
  confirmation; ``/admin/pick/<id>``: the pick list in walk order (location, sku, units, serials held) and
  the scan box. Each scan is one call of ``warehouse.pick_order`` (one scan = one transaction).
- ``/admin/pack``: the confirmed orders; ``/admin/pack/<id>``: every picked unit scanned again into the
  parcel. The scans are verified one by one with ``warehouse.check_pack`` (it writes nothing) and kept in
  the page (hidden inputs); the Pack button sends them all to ``warehouse.pack_order``, which checks them
  again and packs.
- ``/admin/ship``: the packed orders; ``/admin/ship/<id>``: the carriers' rates (``shipping.rates_for``,
  through the ``register_carriers`` contract hook), the shipment (``shipping.ship_order``), the tracking
  number, the label (``shipping.label_pdf``) and the documents of the ``order_documents`` hook for
  ``order_shipped`` (the packing slip). Those screens are in ``pickpack_ship.py``.

A scan answers a fragment (``#scan-state``) with ``.scan-feedback.ok`` or ``.scan-feedback.error`` and the
service's own status (200, or the domain error's 4xx); the header ``X-Scan-Feedback`` marks a fragment
that pickpack.js swaps in although its status is an error (htmx swaps no 4xx on its own). Without htmx
(no JavaScript) the same POST answers the whole page."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from engine.admin import live
from engine.admin.blueprint import bp
from engine.admin.menu import entry
from engine.admin.permissions import can, require
from engine.db import db
from engine.domain import transitions as tx
from engine.errors import DomainError, NotFound, ValidationFailed
from engine.models import Order, Product
from engine.services import locations, orders, warehouse

QUEUE_LIMIT = 200  # orders a queue shows (the oldest first: those are the ones to do)
MAX_CODE = 128  # the API's limit of a scan

entry(_l("Pick"), "admin_ui.pick_queue", "warehouse.pick", 20)
entry(_l("Pack"), "admin_ui.pack_queue", "warehouse.pack", 25)
entry(_l("Ship"), "admin_ui.ship_queue", "warehouse.ship", 30)


# ---------------------------------------------------------------- shared


@dataclass
class Feedback:
    ok: bool
    message: str


def _order(order_id: int) -> Order:
    try:
        return orders.get_order(order_id, full=True)
    except NotFound:
        abort(404)


def _queue(statuses: tuple[str, ...], kinds: tuple[str, ...] = (tx.GOODS,), newest: bool = False) -> list[Order]:
    stmt = (select(Order).where(Order.status.in_(statuses))
            .options(selectinload(Order.lines), selectinload(Order.flag_rows), selectinload(Order.shipments))
            .order_by(*((Order.updated_at.desc(), Order.id.desc()) if newest else (Order.created_at, Order.id)))
            .limit(QUEUE_LIMIT))
    return [o for o in db.session.execute(stmt).scalars() if o.fulfilment in kinds]


def _can_do(order: Order, action: str) -> bool:
    return action in tx.allowed_actions(order.status, order.held_from, order.fulfilment)


def _domain_message(exc: DomainError) -> str:
    """The service's most specific sentence: a scan's own error when there is one."""
    scans = exc.errors.get("scans") if isinstance(exc, ValidationFailed) else None
    if isinstance(scans, dict) and scans:
        first = scans[sorted(scans, key=int)[0]]
        return first[0] if isinstance(first, list) else str(first)
    return exc.message


def _code() -> str:
    return (request.form.get("code") or "").strip()


def _namer(order: Order):
    """``name(code)`` -> (the label to show, its sku) for a scan of ``order``: a serial first, else a sku or
    barcode of one of its products."""
    serials = {serial: line.sku for line in order.lines for serial in (line.serials or [])}
    products = list(db.session.execute(select(Product).where(
        Product.id.in_([line.product_id for line in order.lines]))).scalars())

    def name(code: str) -> tuple[str, str | None]:
        if code in serials:
            return code, serials[code]
        for product in products:
            if code in (product.sku, product.barcode):
                return (product.sku if code == product.sku else f"{product.sku} ({code})"), product.sku
        return code, None

    return name


def _scan_answer(template: str, feedback: Feedback | None, status: int, **context):
    """A scan's answer: the ``#scan-state`` fragment for htmx, the whole page otherwise."""
    if request.headers.get("HX-Request"):
        body = render_template(template, feedback=feedback, **context)
        headers = {"X-Scan-Feedback": "ok" if feedback is None or feedback.ok else "error"}
        return body, status, headers
    return None


def _too_long(code: str) -> Feedback | None:
    if len(code) > MAX_CODE:
        return Feedback(False, _("This code is longer than %(n)s characters: not a code of this shop.", n=MAX_CODE))
    return None


# ---------------------------------------------------------------- pick


@dataclass
class Section:
    """One list of a queue page: its orders (each a link to ``endpoint``), what it says when empty."""

    orders: list
    endpoint: str
    empty: str
    title: str | None = None


def _oldest(found: list[Order]) -> list[Order]:
    return sorted(found, key=lambda o: (o.created_at, o.id))


def _pick_sections() -> list[Section]:
    waiting = _queue((tx.PICKED,)) + _queue((tx.PAID,), kinds=(tx.UNSTOCKED, tx.DIGITAL))
    return [Section(_queue((tx.PAID, tx.PICKING)), "admin_ui.pick_order", _("Nothing to pick.")),
            Section(_oldest(waiting), "admin_ui.pick_order", _("Nothing waiting for confirmation."),
                    _("Picked, waiting for confirmation"))]


def _pack_sections() -> list[Section]:
    return [Section(_queue((tx.CONFIRMED,)), "admin_ui.pack_order", _("Nothing to pack."))]


def _ship_sections() -> list[Section]:
    to_ship = _queue((tx.PACKED,)) + _queue((tx.CONFIRMED,), kinds=(tx.UNSTOCKED,))
    shipped = _queue((tx.SHIPPED,), kinds=(tx.GOODS, tx.UNSTOCKED), newest=True)[:20]
    return [Section(_oldest(to_ship), "admin_ui.ship_order", _("Nothing to ship.")),
            Section(shipped, "admin_ui.ship_order", _("Nothing shipped yet."), _("Shipped recently"))]


QUEUES = {
    "pick": (_l("Orders to pick"), _l("Paid orders, oldest first. Open one and scan its units."), _pick_sections),
    "pack": (_l("Orders to pack"), _l("Confirmed orders, oldest first. Scan every picked unit again into the "
                                      "parcel."), _pack_sections),
    "ship": (_l("Orders to ship"), _l("Packed orders, oldest first. Choose a rate, create the shipment, print "
                                      "the label."), _ship_sections),
}


def _queue_region(kind: str, template: str):
    """A queue page, or its live region (polled: a queue fills as orders reach the stage)."""
    title, intro, sections = QUEUES[kind]
    return live.region(template, lambda: {"sections": sections()}, title=title, intro=intro,
                       live_url=url_for(f"admin_ui.{kind}_queue_live"))


@bp.route("/pick")
@require("warehouse.pick")
def pick_queue():
    """The orders to pick, oldest first, and the picked ones waiting for their confirmation."""
    return _queue_region("pick", "admin/pickpack_queue.html")


@bp.route("/pick/live")
@require("warehouse.pick")
def pick_queue_live():
    return _queue_region("pick", "admin/_pickpack_queue_live.html")


def _pick_context(order_id: int) -> dict:
    order = _order(order_id)
    pick_list = locations.pick_list(order_id)
    skus = {stop.sku for stop in pick_list["stops"]}
    tracked = set(db.session.execute(select(Product.sku).where(Product.sku.in_(skus), Product.track_serials))
                  .scalars()) if skus else set()
    picked_serials: dict[str, list[str]] = {}
    for line in order.lines:
        picked_serials.setdefault(line.sku, []).extend(line.serials or [])
    units = sum(line.quantity for line in order.lines)
    picked = sum(line.picked_quantity for line in order.lines)
    backordered = sum(line.backordered for line in order.lines)
    return {"order": order, "stops": pick_list["stops"], "tracked": tracked, "picked_serials": picked_serials,
            "units": units, "picked": picked, "backordered": backordered,
            "can_scan": _can_do(order, "pick") and not backordered, "can_confirm": _can_do(order, "confirm")}


def _pick_page(order_id: int, feedback: Feedback | None = None, status: int = 200):
    return render_template("admin/pickpack_pick.html", feedback=feedback, **_pick_context(order_id)), status


@bp.route("/pick/<int:order_id>")
@require("warehouse.pick")
def pick_order(order_id: int):
    return _pick_page(order_id)


@bp.route("/pick/<int:order_id>/scan", methods=["POST"])
@require("warehouse.pick")
def pick_scan(order_id: int):
    """One scan into the order: a serial (serial-tracked products) or a barcode or sku (one per unit)."""
    code = _code()
    feedback, status = _too_long(code), 422
    if feedback is None:
        try:
            warehouse.pick_order(order_id, [code] if code else [])
        except DomainError as exc:
            db.session.rollback()
            feedback, status = Feedback(False, _domain_message(exc)), exc.status
        else:
            order = orders.get_order(order_id)
            label, sku = _namer(order)(code)
            lines = [line for line in order.lines if line.sku == sku]
            feedback, status = Feedback(True, _("%(what)s picked, %(n)s of %(total)s", what=label,
                                                n=sum(ln.picked_quantity for ln in lines),
                                                total=sum(ln.quantity for ln in lines))), 200
    if status == 404:
        abort(404)
    answer = _scan_answer("admin/_pickpack_pick_state.html", feedback, status, **_pick_context(order_id))
    return answer or _pick_page(order_id, feedback, status)


@bp.route("/pick/<int:order_id>/confirm", methods=["POST"])
@require("warehouse.pick")
def pick_confirm(order_id: int):
    """Confirm a picked order (stage 3), then on to packing."""
    try:
        order = orders.confirm_order(order_id)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _pick_page(order_id, status=exc.status)
    flash(_("Order %(number)s confirmed.", number=order.number))
    if order.fulfilment == tx.GOODS and can("warehouse.pack"):
        return redirect(url_for("admin_ui.pack_order", order_id=order_id), 303)
    if order.fulfilment == tx.UNSTOCKED and can("warehouse.ship"):
        return redirect(url_for("admin_ui.ship_order", order_id=order_id), 303)
    return redirect(url_for("admin_ui.pick_queue"), 303)


# ---------------------------------------------------------------- pack


@bp.route("/pack")
@require("warehouse.pack")
def pack_queue():
    return _queue_region("pack", "admin/pickpack_queue.html")


@bp.route("/pack/live")
@require("warehouse.pack")
def pack_queue_live():
    return _queue_region("pack", "admin/_pickpack_queue_live.html")


def _pack_context(order_id: int, verified: list[str]) -> dict:
    order = _order(order_id)
    tracked = set(db.session.execute(select(Product.sku).where(
        Product.id.in_([line.product_id for line in order.lines]), Product.track_serials)).scalars())
    expected = sum(line.picked_quantity for line in order.lines)
    missing: list[str] = []
    if _can_do(order, "pack"):
        _, missing = warehouse.check_pack(order_id, verified)
    name = _namer(order)
    in_parcel = Counter(name(code)[1] for code in verified)
    return {"order": order, "tracked": tracked, "verified": verified, "expected": expected, "missing": missing,
            "in_parcel": in_parcel,
            "can_scan": _can_do(order, "pack"), "complete": _can_do(order, "pack") and not missing}


def _pack_page(order_id: int, verified: list[str], feedback: Feedback | None = None, status: int = 200):
    return render_template("admin/pickpack_pack.html", feedback=feedback, **_pack_context(order_id, verified)), status


@bp.route("/pack/<int:order_id>")
@require("warehouse.pack")
def pack_order(order_id: int):
    return _pack_page(order_id, [])


@bp.route("/pack/<int:order_id>/scan", methods=["POST"])
@require("warehouse.pack")
def pack_scan(order_id: int):
    """Verify one unit into the parcel: nothing is written until the Pack button; the scans verified so far
    come back with each scan (``verified``)."""
    code = _code()
    verified = [v for v in request.form.getlist("verified") if v][:10000]
    feedback, status = _too_long(code), 422
    if feedback is None and not code:
        feedback = Feedback(False, _("Scan a unit: the code was empty."))
    if feedback is None:
        try:
            errors, _missing = warehouse.check_pack(order_id, [*verified, code])
        except DomainError as exc:
            feedback, status = Feedback(False, exc.message), exc.status
        else:
            mine = errors.get(str(len(verified)))
            if mine:
                feedback = Feedback(False, mine[0])
            elif errors:  # the order changed under the scans verified so far: start again
                verified = []
                feedback = Feedback(False, _("The order changed since these units were verified: scan them "
                                             "again. (%(why)s)", why=next(iter(errors.values()))[0]))
                status = 409
            else:
                verified.append(code)
                order = orders.get_order(order_id)
                name = _namer(order)
                label, sku = name(code)
                lines = [line for line in order.lines if line.sku == sku]
                done = sum(1 for v in verified if name(v)[1] == sku)
                feedback, status = Feedback(True, _("%(what)s in the parcel, %(n)s of %(total)s", what=label,
                                                    n=done, total=sum(ln.picked_quantity for ln in lines))), 200
    if status == 404:
        abort(404)
    answer = _scan_answer("admin/_pickpack_pack_state.html", feedback, status, **_pack_context(order_id, verified))
    return answer or _pack_page(order_id, verified, feedback, status)


@bp.route("/pack/<int:order_id>", methods=["POST"])
@require("warehouse.pack")
def pack_confirm(order_id: int):
    """Pack: the verified scans go to the service, which checks them again against the picked units."""
    verified = [v for v in request.form.getlist("verified") if v][:10000]
    try:
        order = warehouse.pack_order(order_id, verified)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        missing = exc.errors.get("missing") if isinstance(exc.errors, dict) else None
        flash(_domain_message(exc) + (f" ({', '.join(missing)})" if missing else ""), "error")
        return _pack_page(order_id, [], status=exc.status)
    flash(_("Order %(number)s packed.", number=order.number))
    if can("warehouse.ship"):
        return redirect(url_for("admin_ui.ship_order", order_id=order_id), 303)
    return redirect(url_for("admin_ui.pack_queue"), 303)

