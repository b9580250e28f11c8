"""Orders: the list (filters, exact search, keyset pages, flag badges) and an order's page (timeline,
customer, lines with serials and bins, payments, shipments, returns, notes, flags, and the buttons of the
transitions the table and the user's role allow). Both are live regions.

Every state change calls a service (engine/services); a domain error is shown on the order's page with its
status (an illegal transition: 409, nothing changed)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from engine.admin import live
from engine.admin.blueprint import bp
from engine.admin.menu import entry
from engine.admin.permissions import ORDER_ACTIONS, order_actions, require
from engine.db import db
from engine.domain import flags as flag_rules
from engine.domain import transitions as tx
from engine.errors import DomainError, NotFound, ValidationFailed
from engine.models import Customer, Location, Order, OrderEvent, Return, SerialUnit
from engine.services import locations, order_list, orders, payments

PAGE = 50
LIST_FLAGS = (flag_rules.VIP, flag_rules.GIFT, flag_rules.REPEAT, flag_rules.REPLACEMENT, flag_rules.REVIEW_ADDRESS,
              flag_rules.REVIEW_TOTALS, flag_rules.NO_EMAIL)
BADGES = (flag_rules.VIP, flag_rules.GIFT, flag_rules.REPEAT, flag_rules.REPLACEMENT)
# the actions done on another screen (the scanner screens and shipping): shown as links there
SCREENS = {"pick": ("admin_ui.pick_order", "/admin/pick/{}"), "pack": ("admin_ui.pack_order", "/admin/pack/{}"),
           "ship": ("admin_ui.ship_order", "/admin/ship/{}")}
# the actions this screen posts, each to /admin/orders/<id>/<action> with the action's own permission
POSTED = ("pay", "hold", "release", "confirm", "deliver", "complete", "cancel")
DONE = {"pay": _l("Payment recorded."), "hold": _l("Order put on hold."), "release": _l("Order released."),
        "confirm": _l("Order confirmed."), "deliver": _l("Delivery recorded."), "complete": _l("Order completed."),
        "cancel": _l("Order cancelled.")}
ACTION_LABELS = {"pay": _l("Record payment"), "hold": _l("Hold"), "release": _l("Release"), "pick": _l("Pick"),
                 "confirm": _l("Confirm"), "pack": _l("Pack"), "ship": _l("Ship"), "deliver": _l("Mark delivered"),
                 "complete": _l("Complete"), "cancel": _l("Cancel order")}
FLAG_LABELS = {"vip": _l("VIP"), "gift": _l("Gift"), "repeat": _l("Repeat"), "replacement": _l("Replacement")}

entry(_l("Orders"), "admin_ui.orders_list", "orders.view", 10)


@bp.app_template_global("flag_label")
def flag_label(flag: str) -> str:
    return str(FLAG_LABELS.get(flag, flag))


@bp.app_template_global("action_label")
def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


# ---------------------------------------------------------------- the list


def _day(value: str | None, field: str, errors: list[str]) -> datetime | None:
    """A YYYY-MM-DD of the form as the start of that day in the shop's time zone."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(_("%(field)s is not a date (YYYY-MM-DD).", field=field))
        return None
    zone = get_timezone()
    start = datetime.combine(day, time.min)
    # pytz zones (Flask-Babel's) place a naive time with localize (tzinfo= would take the zone's first offset)
    return zone.localize(start) if hasattr(zone, "localize") else start.replace(tzinfo=zone)


def list_filters() -> tuple[dict, list[str]]:
    """The list's filters from the query string (unknown values are refused with a message, not a 500)."""
    args, errors = request.args, []
    status = args.get("status") or None
    if status and status not in tx.STATUSES:
        errors.append(_("Unknown status %(status)s.", status=status))
        status = None
    customer = args.get("customer") or None
    if customer and not customer.isdigit():
        errors.append(_("Unknown customer %(customer)s.", customer=customer))
        customer = None
    start = _day(args.get("from"), _("From"), errors)
    end = _day(args.get("to"), _("To"), errors)
    cursor = args.get("cursor")
    filters = {"status": status, "channel": (args.get("channel") or "").strip() or None,
               "flag": (args.get("flag") or "").strip() or None, "customer": int(customer) if customer else None,
               "search": (args.get("q") or "").strip() or None, "created_from": start,
               "created_to": end + timedelta(days=1) if end else None,
               "cursor": int(cursor) if cursor and cursor.isdigit() else None}
    return filters, errors


def list_context() -> dict:
    filters, errors = list_filters()
    cursor = filters.pop("cursor")
    rows, next_cursor = order_list.list_orders(**filters, limit=PAGE, cursor=cursor, relations=("flag_rows",))
    # the filters carried into the page's links; url_for's own options (``_scheme``, ``_anchor``, ...) are
    # never taken from the query string
    query = {k: v for k, v in request.args.items() if k not in ("cursor", "since") and not k.startswith("_") and v}
    customer = db.session.get(Customer, filters["customer"]) if filters["customer"] else None
    here = {**query, **({"cursor": cursor} if cursor else {})}
    return {"rows": rows, "next_cursor": next_cursor, "cursor": cursor, "query": query, "errors": errors,
            "live_url": url_for("admin_ui.orders_live", _external=False, **here),
            "newest_url": url_for("admin_ui.orders_list", _external=False, **query),
            "next_url": url_for("admin_ui.orders_list", _external=False, **query, cursor=next_cursor)
            if next_cursor else None,
            "statuses": tx.STATUSES, "list_flags": LIST_FLAGS, "badges": BADGES, "args": request.args,
            "customer": customer}


@bp.route("/orders")
@require("orders.view")
def orders_list():
    """The orders, newest first (live)."""
    return live.region("admin/orders.html", list_context)


@bp.route("/orders/live")
@require("orders.view")
def orders_live():
    return live.region("admin/_orders_live.html", list_context)


# ---------------------------------------------------------------- one order


def order_token(order_id: int) -> str:
    """The order's own change token: its newest timeline entry (every status change, payment, shipment,
    note and flag writes one) and its last update; the detail page re-renders only when this order changes."""
    row = db.session.execute(select(
        select(func.max(OrderEvent.id)).where(OrderEvent.order_id == order_id).scalar_subquery(),
        select(Order.updated_at).where(Order.id == order_id).scalar_subquery())).one()
    return f"{row[0] or 0}-{row[1].timestamp() if row[1] else 0}"


def _link(action: str, order_id: int) -> str:
    endpoint, path = SCREENS[action]
    if endpoint in current_app.view_functions:
        return url_for(endpoint, order_id=order_id)
    return path.format(order_id)


def _lines(order) -> list[dict]:
    """Each line with its serial units (status, where they are) and the pick list's bins for its sku."""
    stops: dict[str, list] = {}
    for stop in locations.pick_list(order.id)["stops"]:
        stops.setdefault(stop.sku, []).append(stop)
    units: dict[int | None, list] = {}  # by line id (never None: the query asks for these lines)
    line_ids = [line.id for line in order.lines]
    if line_ids:
        for line_id, serial, status, code in db.session.execute(
                select(SerialUnit.line_id, SerialUnit.serial, SerialUnit.status, Location.code)
                .join(Location, Location.id == SerialUnit.location_id)
                .where(SerialUnit.line_id.in_(line_ids)).order_by(SerialUnit.id)).all():
            units.setdefault(line_id, []).append({"serial": serial, "status": status, "location": code})
    out = []
    for line in order.lines:
        linked = units.get(line.id, [])
        known = {u["serial"] for u in linked}
        serials = linked + [{"serial": s, "status": None, "location": None} for s in line.serials or []
                            if s not in known]
        out.append({"line": line, "serials": serials, "stops": stops.get(line.sku, [])})
    return out


def detail_context(order_id: int) -> dict:
    try:
        order = orders.get_order(order_id, full=True)
    except NotFound:
        abort(404)
    customer = db.session.get(Customer, order.customer_id)
    allowed = tx.allowed_actions(order.status, order.held_from, order.fulfilment)
    actions = order_actions(current_user.role, allowed)
    if order.payment_provider != "manual":  # a provider's payment starts at the provider, not here
        actions = [a for a in actions if a != "pay"]
    events = sorted(order.events, key=lambda e: e.id, reverse=True)
    returns = db.session.execute(select(Return).where(Return.order_id == order.id).order_by(Return.id)).scalars().all()
    return {"order": order, "customer": customer, "actions": actions, "posted": POSTED,
            "links": {a: _link(a, order.id) for a in actions if a in SCREENS}, "events": events,
            "notes": [e for e in events if e.kind == "note"], "lines": _lines(order), "returns": returns,
            "badges": BADGES, "flags": order.flags, "staff_flags": [f for f in order.flags if orders.staff_may_flag(f)],
            "due": order.total - order.paid_total}


def _render_detail(template: str, order_id: int, status: int = 200):
    token = order_token(order_id)
    if status == 200 and request.args.get("since") == token:
        return "", 204
    return render_template(template, live_token=token, live_poll=live.POLL, **detail_context(order_id)), status


@bp.route("/orders/<int:order_id>")
@require("orders.view")
def order_detail(order_id: int):
    """One order (live: status, buttons and timeline follow changes made anywhere)."""
    return _render_detail("admin/order_detail.html", order_id)


@bp.route("/orders/<int:order_id>/live")
@require("orders.view")
def order_live(order_id: int):
    return _render_detail("admin/_order_live.html", order_id)


def _refused(order_id: int, exc: DomainError):
    """A refused change: the order's page again with the reason, under the error's status (never a 500)."""
    flash(exc.message, "error")
    return _render_detail("admin/order_detail.html", order_id, exc.status)  # no such order: a 404


def _do(action: str, order_id: int):
    form = request.form
    reason = (form.get("reason") or "").strip()
    if action == "hold" and not reason:
        return _refused(order_id, ValidationFailed(_("Give a reason to put the order on hold."),
                                                   errors={"reason": ["required"]}))
    if len(reason) > 200:
        return _refused(order_id, ValidationFailed(_("The reason is at most 200 characters."),
                                                   errors={"reason": ["too long"]}))
    try:
        if action == "pay":
            payments.pay_order(order_id, reference=(form.get("reference") or "").strip()[:200] or None)
        elif action == "hold":
            orders.hold_order(order_id, reason)
        elif action == "release":
            orders.release_order(order_id)
        elif action == "confirm":
            orders.confirm_order(order_id)
        elif action == "deliver":
            orders.deliver_order(order_id, source="staff")
        elif action == "complete":
            orders.complete_order(order_id)
        elif action == "cancel":
            orders.cancel_order(order_id, reason)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        return _refused(order_id, exc)
    flash(str(DONE[action]))
    return redirect(url_for("admin_ui.order_detail", order_id=order_id), 303)


def _transition_route(action: str) -> None:
    """``POST /admin/orders/<id>/<action>``, refused (403) without the action's permission (ORDER_ACTIONS)."""

    def view(order_id: int):
        return _do(action, order_id)

    view.__name__ = view.__qualname__ = f"order_{action}"
    view.__doc__ = f"The order's {action} transition (the service decides whether it is allowed: 409 if not)."
    bp.route(f"/orders/<int:order_id>/{action}", methods=["POST"], endpoint=f"order_{action}")(
        require(ORDER_ACTIONS[action])(view))


for _action in POSTED:
    _transition_route(_action)


@bp.route("/orders/<int:order_id>/notes", methods=["POST"])
@require("orders.notes")
def order_note(order_id: int):
    """A staff note on the order's timeline."""
    try:
        orders.add_staff_note(order_id, request.form.get("text", ""), current_user.email)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        return _refused(order_id, exc)
    flash(_("Note added."))
    return redirect(url_for("admin_ui.order_detail", order_id=order_id), 303)


@bp.route("/orders/<int:order_id>/flags", methods=["POST"])
@require("orders.flags")
def order_flag(order_id: int):
    """Set or clear a staff flag (vip, review:*)."""
    present = request.form.get("set") == "1"
    try:
        orders.set_order_flag(order_id, request.form.get("flag", ""), present, current_user.email)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        return _refused(order_id, exc)
    flash(_("Flag set.") if present else _("Flag cleared."))
    return redirect(url_for("admin_ui.order_detail", order_id=order_id), 303)
