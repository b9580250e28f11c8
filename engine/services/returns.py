"""Stage 5: returns (RMA), each step an action of ``engine.domain.return_transitions``.

``open_return`` (shipped, delivered or completed orders; lines, serials checked against what the order
shipped) -> ``return_requested``; a return opened by staff is approved in the same transaction unless
``RETURNS_REQUIRE_APPROVAL`` (-> ``return_approved``); a customer's request (``request_return``, from the
public page) waits for ``approve_return`` or ``reject_return`` (-> ``return_rejected``). Receiving and
resolving are in ``engine.services.return_receipts``.

Lock order (docs/design-decisions.md, "Money and stock under one lock"): the order, then the return,
then the serial units. Serial units of an approved return are ``returned`` (on their way back); a
rejection gives them back to the customer (``shipped``).
"""

from __future__ import annotations

import hmac
from collections import Counter

from flask import current_app
from sqlalchemy import select

from engine.db import db, transaction, utcnow
from engine.domain import return_transitions as rma
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Order, Return, SerialUnit
from engine.models.orders import ORDER_NUMBER_OFFSET
from engine.services import orders as order_service
from engine.services import serials as serial_history

RETURNABLE = ("shipped", "delivered", "completed")
NOT_FOUND_MESSAGE = "we could not find an order with that number and e-mail"


def get_return(return_id: int) -> Return:
    order_return = db.session.get(Return, return_id)
    if order_return is None:
        raise NotFound(f"no return with id {return_id}")
    return order_return


def lock_return(return_id: int) -> Return:
    """The return's row under lock (take the order's lock first)."""
    return db.session.execute(select(Return).where(Return.id == return_id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()


def needs_approval(order_return: Return) -> bool:
    """A customer's request always waits for staff; staff's own returns only with RETURNS_REQUIRE_APPROVAL."""
    return order_return.source == "customer" or bool(current_app.config.get("RETURNS_REQUIRE_APPROVAL"))


def _earlier_returns(order: Order) -> tuple[Counter, set[str]]:
    """Units of the order on their way back per sku (open returns), and every serial of a return not rejected."""
    pending: Counter = Counter()
    serials: set[str] = set()
    for earlier in db.session.execute(select(Return).where(Return.order_id == order.id,
                                                           Return.status != rma.REJECTED)).scalars():
        for item in earlier.lines:
            if earlier.status in rma.OPEN:
                pending[item["sku"]] += item["quantity"]
            serials.update(item.get("serials") or [])
    return pending, serials


def returnable_lines(order: Order) -> list[dict]:
    """What may still be returned of each line: ``sku``, ``name``, ``quantity`` and the ``serials`` left."""
    pending, taken = _earlier_returns(order)
    result = []
    for line in order.lines:
        left = line.quantity - line.returned_quantity - pending[line.sku]
        serials = [s for s in line.serials or [] if s not in taken]
        result.append({"line_id": line.id, "sku": line.sku, "name": line.name, "quantity": max(left, 0),
                       "serials": serials if line.serials else [], "tracked": bool(line.serials)})
    return result


def _check_lines(order: Order, lines: list[dict]) -> None:
    """422 for lines that do not fit what was shipped, 409 naming serials already in another return.

    The order must be locked; its serial units are locked last (lock order)."""
    by_sku = {line.sku: line for line in order.lines}
    pending, seen_serials = _earlier_returns(order)
    errors: dict = {}
    again: dict[str, list[str]] = {}
    asked: Counter = Counter()
    asked_serials: Counter = Counter(s for item in lines for s in item.get("serials") or [])
    for index, item in enumerate(lines):
        line = by_sku.get(item["sku"])
        if line is None:
            errors[str(index)] = {"sku": [f"{item['sku']} is not on order {order.number}"]}
            continue
        asked[item["sku"]] += item["quantity"]
        returnable = line.quantity - line.returned_quantity - pending[item["sku"]]
        serials = item.get("serials") or []
        if serials and any(s in seen_serials for s in serials) and all(s in (line.serials or []) for s in serials):
            # (the 409 comes first: these units are counted on the other return, so the quantity is short too)
            again[str(index)] = [s for s in serials if s in seen_serials]
            continue
        if asked[item["sku"]] > returnable:
            errors[str(index)] = {"quantity": [f"at most {max(returnable, 0)} returnable"
                                               + (f" ({pending[item['sku']]} in open returns)"
                                                  if pending[item["sku"]] else "")]}
        bad = [s for s in serials if s not in (line.serials or [])]
        twice = sorted({s for s in serials if asked_serials[s] > 1})
        if bad:
            errors[str(index)] = {"serials": [f"not shipped on order {order.number}: {', '.join(bad)}"]}
        elif twice:
            errors[str(index)] = {"serials": [f"given twice: {', '.join(twice)}"]}
        elif line.serials and len(serials) != item["quantity"]:
            errors[str(index)] = {"serials": [f"{line.sku} is serial-tracked: give the serial of each returned "
                                              f"unit ({item['quantity']})"]}
        elif serials and not line.serials:
            errors[str(index)] = {"serials": [f"{line.sku} was shipped without serials"]}
    if errors:
        raise ValidationFailed("the return is not valid", errors={"lines": errors})
    units = _lock_units(order, lines)
    for index, item in enumerate(lines):
        line = by_sku[item["sku"]]
        gone = [s for s in item.get("serials") or [] if str(index) not in again and
                (units.get((line.product_id, s)) is None or units[(line.product_id, s)].status != "shipped"
                 or units[(line.product_id, s)].line_id != line.id)]
        if gone:  # back in stock already (received, or restocked by hand) or sold again since
            again[str(index)] = gone
    if again:
        named = sorted({s for serials in again.values() for s in serials})
        raise Conflict(f"serials already returned on another return: {', '.join(named)}",
                       errors={"lines": {index: {"serials": [f"already returned: {', '.join(serials)}"]}
                                         for index, serials in again.items()}}, code="serial_already_returned")


def _lock_units(order: Order, lines: list[dict]) -> dict[tuple[int, str], SerialUnit]:
    by_sku = {line.sku: line for line in order.lines}
    wanted = {(by_sku[i["sku"]].product_id, s) for i in lines for s in i.get("serials") or []}
    if not wanted:
        return {}
    rows = db.session.execute(select(SerialUnit).where(
        SerialUnit.product_id.in_({p for p, _ in wanted}), SerialUnit.serial.in_({s for _, s in wanted}))
        .order_by(SerialUnit.id).with_for_update()).scalars()
    return {(u.product_id, u.serial): u for u in rows if (u.product_id, u.serial) in wanted}


def set_unit_status(order: Order, order_return: Return, status: str) -> None:
    """Every serial unit of the return's lines to ``status`` (locked last, in id order)."""
    units = _lock_units(order, order_return.lines)
    for unit in units.values():
        unit.status = status
    serial_history.log_rows([{"unit_id": u.id, "kind": "returned" if status == "returned" else "return_cancelled",
                              "status": status, "order_id": order.id, "location_id": u.location_id,
                              "reference": f"return {order_return.id} of order {order.number}"}
                             for u in units.values()])


def open_return(order_id: int, lines: list[dict], reason: str, resolution: str, *, source: str = "staff",
                verify=None) -> Return:
    """Open a return on a shipped order (one transaction under the order's lock); ``verify(order)`` runs
    under that lock first (the customer's e-mail check)."""
    if not lines:
        raise ValidationFailed("the return is not valid", errors={"lines": ["return at least one line"]})
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        if verify is not None:
            verify(order)
        if order.status not in RETURNABLE:
            raise Conflict(f"only shipped, delivered or completed orders can be returned; this one is {order.status}",
                           code="not_returnable")
        _check_lines(order, lines)
        order_return = Return(order_id=order.id, status=rma.REQUESTED, reason=reason, resolution=resolution,
                              source=source, refund_amount=0,
                              lines=[{"sku": i["sku"], "quantity": i["quantity"], "serials": i.get("serials") or []}
                                     for i in lines])
        db.session.add(order_return)
        db.session.flush()
        order_service.stage(order, "return_requested", f"return {order_return.id} requested by {source} "
                            f"({resolution}): {reason}", return_id=order_return.id, resolution=resolution,
                            source=source)
        if not needs_approval(order_return):
            approve_locked(order, order_return, "opened by staff: approved at once")
    return order_return


def approve_locked(order: Order, order_return: Return, why: str = "", *, units: bool = True) -> None:
    """Approve the locked return: its serial units are ``returned`` (on their way back); ``units`` False
    when the caller sets them itself later in the transaction (receiving: serial units come last)."""
    order_return.status = rma.check(order_return.id, order_return.status, "approve")[0]
    order_return.approved_at = utcnow()
    if units:
        set_unit_status(order, order_return, "returned")
    order_service.stage(order, "return_approved", f"return {order_return.id} approved" + (f": {why}" if why else ""),
                        return_id=order_return.id, resolution=order_return.resolution)


def approve_return(return_id: int) -> Return:
    order_return = get_return(return_id)
    with transaction():
        order = order_service.get_order(order_return.order_id, lock=True)
        order_return = lock_return(return_id)
        approve_locked(order, order_return)
    return order_return


def reject_return(return_id: int, reason: str) -> Return:
    """Reject a requested return, or an approved one whose parcel never came: its units stay the customer's."""
    order_return = get_return(return_id)
    with transaction():
        order = order_service.get_order(order_return.order_id, lock=True)
        order_return = lock_return(return_id)
        was = order_return.status
        order_return.status = rma.check(return_id, was, "reject")[0]
        order_return.rejection_reason, order_return.rejected_at = reason, utcnow()
        if was == rma.APPROVED:
            set_unit_status(order, order_return, "shipped")
        order_service.stage(order, "return_rejected", f"return {return_id} rejected: {reason}",
                            return_id=return_id, reason=reason)
    return order_return


# ------------------------------------------------------------------ the customer's own request


def _order_id_of(number: str) -> int | None:
    number = (number or "").strip()
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    order_id = int(number) - ORDER_NUMBER_OFFSET
    return order_id if order_id > 0 else None


def _same_email(given: str, stored: str | None) -> bool:
    """Constant-time comparison of the lower-cased, trimmed addresses (a missing one never matches)."""
    left = (given or "").strip().lower().encode()
    right = (stored or "").strip().lower().encode() if stored else b"\x00no e-mail"
    return hmac.compare_digest(left, right) and stored is not None


def _pair_check(email: str):
    def verify(order: Order) -> None:
        if not _same_email(email, order.email):
            raise NotFound(NOT_FOUND_MESSAGE, code="order_not_found")
    return verify


def find_customer_order(number: str, email: str) -> Order:
    """The order whose number and e-mail both match, or one 404 that never says which part was wrong."""
    order_id = _order_id_of(number)
    order = db.session.get(Order, order_id) if order_id is not None else None
    if not _same_email(email, order.email if order is not None else None) or order is None:
        raise NotFound(NOT_FOUND_MESSAGE, code="order_not_found")
    return order


def request_return(number: str, email: str, lines: list[dict], reason: str, resolution: str) -> Return:
    """A customer's return request: opened ``requested`` once the order number and e-mail match."""
    order_id = find_customer_order(number, email).id
    # the pair is checked again under the order's lock, in the transaction that opens the return
    return open_return(order_id, lines, reason, resolution, source="customer", verify=_pair_check(email))
