"""Orders: placement and the transitions of the table in ``engine.domain.transitions``.

Each public function is one transaction. Calls to outside services (payment
providers, carriers) happen outside the transaction; the result is then
applied in a short transaction that re-checks the order's status under a lock.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from engine import signals
from engine.db import as_utc, db, transaction, utcnow
from engine.domain import addresses
from engine.domain import flags as flag_rules
from engine.domain import transitions as tx
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Order, Product
from engine.services import coupons, stock


def get_order(order_id: int, *, lock: bool = False, full: bool = False) -> Order:
    stmt = select(Order).where(Order.id == order_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    if full:
        stmt = stmt.options(selectinload(Order.lines), selectinload(Order.events), selectinload(Order.payments),
                            selectinload(Order.refunds), selectinload(Order.shipments),
                            joinedload(Order.flag_rows))  # a few short rows: joined to the order's own SELECT
    order = db.session.execute(stmt).unique().scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order with id {order_id}")
    return order


# how long a claim (see ``claim``) holds the order when its process never settles it (a crash)
CLAIM_LEASE = timedelta(minutes=5)


def claim(order_id: int, action: str, check=None) -> tuple[Order, str]:
    """Claim the order for ``action`` before an outside call (payment provider, carrier) made with no
    lock held; returns the order and the claim's token for ``end_claim_locked``.

    Under the order's lock: ``action`` must be allowed now (409 ``illegal_transition``) and no other
    claimed action may be under way (409 ``order_busy``); ``check(order)`` runs under the same lock
    and may refuse too (e.g. nothing is due). So pay, ship and cancel exclude each other, and two of
    one kind are one decision: the second sees the first's claim, or its result.
    """
    with transaction():
        order = get_order(order_id, lock=True)
        tx.check(order.status, action, order.held_from,
                 order.fulfilment if action in tx.ROUTED_ACTIONS else tx.GOODS)
        now = utcnow()
        if order.claim and order.claim_expires_at and as_utc(order.claim_expires_at) > now:
            raise Conflict(f"order {order.number} is busy: another request is running '{order.claim}' with an "
                           "outside service; try again in a moment", code="order_busy",
                           errors={"status": [order.status], "busy_with": [order.claim]})
        if check is not None:
            check(order)
        token = secrets.token_hex(8)
        order.claim, order.claim_token, order.claim_expires_at = action, token, now + CLAIM_LEASE
    return order, token


def end_claim_locked(order: Order, token: str | None) -> bool:
    """End the claim with ``token`` on the locked order; False when it is not held by that token
    (it expired and another request claimed the order since)."""
    if token is None or order.claim_token != token:
        return False
    order.claim = order.claim_token = order.claim_expires_at = None
    return True


def release_claim(order_id: int, token: str) -> None:
    """Give a claim up after its outside call failed: the order is as it was."""
    db.session.rollback()
    with transaction():
        end_claim_locked(get_order(order_id, lock=True), token)


def stage(order: Order, hook: str, message: str, **payload) -> None:
    """Record that ``order`` reached a stage: timeline, outbox (the stage hook), statistics."""
    signals.stage_reached.send(order, hook=hook, payload=payload, message=message)


def note(order: Order, kind: str, message: str, **data) -> None:
    """A timeline entry that fires no hook."""
    signals.timeline.send(order, kind=kind, message=message, data=data)


def move(order: Order, action: str, to: str | None = None) -> str:
    """Apply ``action`` to the order's status through the transition table."""
    # only the actions the tables disagree on look at the lines (cancel, hold, pay: no extra query
    # inside their locked transactions)
    kind = order.fulfilment if action in tx.ROUTED_ACTIONS else tx.GOODS
    targets = tx.check(order.status, action, order.held_from, kind)
    new = to if to is not None else targets[0]
    if new not in targets:
        raise AssertionError(f"{action} cannot lead to {new}")
    if action == "hold":
        order.held_from = order.status
    elif action in ("release", "cancel"):
        order.held_from, order.hold_reason = None, None
    elif action == "pay" and order.status == tx.ON_HOLD:
        order.held_from = tx.PAID
    order.status = new
    return new


def find_channel_order(channel: str, external_id) -> Order | None:
    """The order a channel already sent with this external id, if any."""
    return db.session.execute(select(Order).where(
        Order.channel == channel, Order.external_id == str(external_id))).scalar_one_or_none()


def _clean_address(address: dict, previous: dict | None) -> dict:
    """The address as stored: empty fields left out; the recipient's name kept when none is given."""
    clean = {k: v.strip() if isinstance(v, str) else v for k, v in address.items()}
    clean = {k: v for k, v in clean.items() if v not in (None, "")}
    if "name" not in clean and previous and previous.get("name"):
        clean["name"] = previous["name"]
    return clean


def last_note(order: Order) -> str | None:
    """The order's latest customer note (the timeline's last ``customer_note``)."""
    from engine.models import OrderEvent

    return db.session.execute(select(OrderEvent.message).where(
        OrderEvent.order_id == order.id, OrderEvent.kind == "customer_note")
        .order_by(OrderEvent.id.desc()).limit(1)).scalar_one_or_none()


def change_order_details(order_id: int, changes: dict, *, source: str, lenient: bool = False) -> tuple[Order, list[str]]:
    """Change what may still change before shipping: ``shipping_address`` (with the recipient's
    ``name``), the buyer's ``email`` and ``phone``, the ``note``; returns the order and what changed.

    One transaction under the order's lock; idempotent: a value that is already so changes nothing and
    records nothing. A deliverable address clears ``review:address``, an e-mail clears ``no_email``.
    An address that is not deliverable is a 422 (staff) and changes nothing, or with ``lenient`` (a
    channel's update, never refused for what it lacks) is kept and flagged ``review:address``."""
    address = changes.get("shipping_address")
    problems = addresses.address_errors(address) if address is not None else {}
    if problems and not lenient:
        raise ValidationFailed("the shipping address cannot be delivered to: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in problems.items()), errors=problems)
    with transaction():
        order = get_order(order_id, lock=True)
        if not tx.is_open(order.status):
            raise Conflict(f"order {order.number} is {order.status}: its address and contact details change only "
                           "before it ships", code="order_closed", errors={"status": [order.status]})
        changed: list[str] = []
        flags = order.flags
        if address is not None:
            clean = _clean_address(address, order.shipping_address)
            if order.shipping_address is None or clean != _clean_address(order.shipping_address, None):
                order.shipping_address = clean
                changed.append("shipping_address")
            if problems and flag_rules.REVIEW_ADDRESS not in flags:
                flags.append(flag_rules.REVIEW_ADDRESS)
                note(order, "address_review", "the shipping address is incomplete: " + "; ".join(
                    f"{k}: {', '.join(v)}" for k, v in problems.items()), errors=problems)
            elif not problems and flag_rules.REVIEW_ADDRESS in flags:
                flags.remove(flag_rules.REVIEW_ADDRESS)
        email = (changes.get("email") or "").strip().lower() or None
        if email and email != order.email:
            order.email = email
            changed.append("email")
        if email and flag_rules.NO_EMAIL in flags:
            flags.remove(flag_rules.NO_EMAIL)
        phone = (changes.get("phone") or "").strip() or None
        if phone and phone != order.phone:
            order.phone = phone
            changed.append("phone")
        if flags != order.flags:
            order.flags = flags
        text = (changes.get("note") or "").strip()[:2000]
        if text and text != (last_note(order) or "").strip():
            note(order, "customer_note", text)
            changed.append("note")
        if [c for c in changed if c != "note"]:
            note(order, "details_changed", f"{', '.join(changed)} changed by {source}", fields=changed, source=source)
    return order, changed


def hold_locked(order: Order, reason: str) -> None:
    move(order, "hold")
    order.hold_reason = reason
    stage(order, "order_on_hold", f"on hold: {reason}", reason=reason)


def release_locked(order: Order, why: str) -> None:
    move(order, "release")
    stage(order, "order_released", f"released ({why}); back to {order.status}")


def hold_order(order_id: int, reason: str) -> Order:
    with transaction():
        order = get_order(order_id, lock=True)
        hold_locked(order, reason)
    return order


def release_order(order_id: int) -> Order:
    with transaction():
        order = get_order(order_id, lock=True)
        tx.check(order.status, "release", order.held_from, order.fulfilment)
        missing = [f"{line.sku} x{line.backordered}" for line in order.lines if line.backordered]
        if missing:
            from engine.errors import Conflict

            raise Conflict(f"still backordered: {', '.join(missing)}; receive stock to release it",
                           errors={"lines": missing}, code="still_backordered")
        release_locked(order, "released by staff")
    return order


def confirm_order(order_id: int) -> Order:
    with transaction():
        order = get_order(order_id, lock=True)
        move(order, "confirm")
        stage(order, "order_confirmed", f"order {order.number} confirmed")
    return order


def deliver_order(order_id: int, source: str = "staff", occurred_at: str | None = None) -> Order:
    """shipped -> delivered; completed at once when follow-ups are off (no ``FOLLOWUP_AFTER`` / ``FOLLOWUP_DAYS``)."""
    with transaction():
        order = get_order(order_id, lock=True)
        move(order, "deliver")
        for shipment in order.shipments:
            shipment.status = "delivered"
        stage(order, "order_delivered", f"delivered (reported by {source})", source=source, occurred_at=occurred_at)
        if followup_delay() is None:
            move(order, "complete")
            stage(order, "order_completed", "completed (follow-ups are off)", followup=False)
    return order


def followup_delay():
    """The app's follow-up delay (``FOLLOWUP_AFTER`` or ``FOLLOWUP_DAYS``), or None when follow-ups are off."""
    from engine.config import followup_delay as parse

    return parse(current_app.config)


def complete_order(order_id: int, *, followup: bool = False) -> Order:
    """delivered -> completed. ``followup``: the sweeper completes it because the follow-up delay has
    passed (``order_completed``'s payload says so: that is when the follow-up e-mail goes out)."""
    with transaction():
        order = get_order(order_id, lock=True)
        move(order, "complete")
        stage(order, "order_completed", f"order {order.number} completed" + (" (follow-up due)" if followup else ""),
              followup=followup)
    return order


def add_staff_note(order_id: int, text: str, author: str) -> Order:
    """A staff member's note on the order's timeline (kind ``note``, with its author); fires no hook."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("a note needs some text", errors={"text": ["required"]})
    if len(text) > 2000:
        raise ValidationFailed("a note is at most 2000 characters", errors={"text": ["at most 2000 characters"]})
    with transaction():
        order = get_order(order_id, lock=True)
        note(order, "note", text, author=author)
    return order


# the flags staff set and clear on an order: vip, and review flags (review:<anything>)
STAFF_FLAGS = (flag_rules.VIP,)


def staff_may_flag(flag: str) -> bool:
    return flag in STAFF_FLAGS or (flag.startswith("review:") and 7 < len(flag) <= flag_rules.MAX_LENGTH)


def set_order_flag(order_id: int, flag: str, present: bool, author: str) -> Order:
    """Staff set (``present``) or clear a flag: ``vip`` or a ``review:*`` flag; a timeline entry
    (``flag_set`` / ``flag_cleared``) says who. Idempotent: a flag already so changes nothing."""
    flag = (flag or "").strip()
    if not staff_may_flag(flag):
        raise ValidationFailed(f"staff set and clear only vip and review:* flags, not {flag!r}",
                               errors={"flag": ["vip or review:<reason>"]})
    with transaction():
        order = get_order(order_id, lock=True)
        flags = order.flags
        if present == (flag in flags):
            return order
        order.flags = [*flags, flag] if present else [f for f in flags if f != flag]
        note(order, "flag_set" if present else "flag_cleared",
             f"flag {flag} {'set' if present else 'cleared'} by {author}", flag=flag, author=author)
    return order


def cancel_order(order_id: int, reason: str = "") -> Order:
    """Cancel before shipping: void or refund the payment first (nothing changes if the provider
    fails), then release reservations and picked serials in one transaction.

    The order is claimed for the whole of it, so a ship (or a payment) meanwhile is a 409
    ``order_busy`` and a cancelled order is never shipped, nor a shipped one refunded."""
    from engine.services import payments

    order, token = claim(order_id, "cancel")
    try:
        settled = payments.settle_for_cancel(order_id, reason or "order cancelled")
    except BaseException:
        release_claim(order_id, token)
        raise
    product_ids = [line.product_id for line in order.lines]
    with transaction():
        # the engine's lock order: stock levels, then the order (docs/design-decisions.md)
        stock.lock_levels(product_ids)
        order = get_order(order_id, lock=True)
        if not end_claim_locked(order, token):
            raise Conflict(f"order {order.number} was claimed by another request while its payment was settled; "
                           "look at its timeline and try again", code="order_busy")
        move(order, "cancel")
        if settled == "voided" and order.payment_status in ("authorized", "pending"):
            order.payment_status = "voided"
        released = stock.release(order)
        stock.unpick(order)
        db.session.flush()
        for product_id in sorted(set(product_ids)):  # freed units go to orders waiting on a backorder
            stock.allocate_backorders(db.session.get_one(Product, product_id))
        stage(order, "order_cancelled", f"cancelled{': ' + reason if reason else ''}; {released} units released, "
              f"payment {settled}", reason=reason, payment=settled, released=released)
        if coupons.release_locked(order):  # after the customer (locked by its statistics): the coupon
            note(order, "coupon_released", f"coupon {order.coupon} given back", coupon=order.coupon)
    return order


_MOVED = {"place_order": "engine.services.placement", "list_orders": "engine.services.order_list",
          "list_query": "engine.services.order_list", "search_ids": "engine.services.order_list",
          "id_range": "engine.services.order_list", "vip_threshold": "engine.services.customers"}


def __getattr__(name: str):
    """Placement and the order list have their own modules now; their old names here still work."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
