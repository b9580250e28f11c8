"""Orders: placement and the transitions of the table in ``engine.domain.transitions``.

Each public function is one transaction. Calls to outside services (payment
providers, carriers) happen outside the transaction; the result is then
applied in a short transaction that re-checks the order's status under a lock.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import false, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from engine import signals
from engine.db import as_utc, db, is_postgres, page_by_id, transaction, utcnow
from engine.domain import addresses, locales
from engine.domain import flags as flag_rules
from engine.domain import transitions as tx
from engine.domain.money import MAX_AMOUNT
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Customer, Order, OrderFlag, OrderLine, Product
from engine.plugins import registry
from engine.services import coupons, customers, stock


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


def _customer_errors(customer: dict, lenient: bool, needs_address: bool = True) -> tuple[dict, list[str]]:
    """The customer's field errors, and (``lenient``: a channel order, which is never refused for
    what it lacks) the review flags that take their place. A channel order with nothing to ship
    (``needs_address`` False: a gift card sent by e-mail) needs no address."""
    errors, flags = {}, []
    if not (customer.get("name") or "").strip():
        errors["name"] = ["required"]
    if not (customer.get("email") or "").strip():
        if lenient:
            flags.append(flag_rules.NO_EMAIL)
        else:
            errors["email"] = ["required"]
    address = customer.get("shipping_address")
    address_errors = addresses.address_errors(address) if needs_address else {}
    if address_errors:
        if lenient:
            flags.append(flag_rules.REVIEW_ADDRESS)
        else:
            errors["shipping_address"] = address_errors
    return errors, flags


def _lock_customer(condition) -> Customer | None:
    """The customer row, locked: two orders of one customer at once update its statistics in turn. A profile
    merged into another (a tombstone) leads to its survivor (following a chain of merges), locked too: its
    orders go there."""
    customer = db.session.execute(select(Customer).where(*condition).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one_or_none()
    if customer is not None and customer.merged_into_id is not None:
        return _lock_customer((Customer.id == customer.merged_into_id,))
    return customer


def _insert_customer(customer: Customer) -> bool:
    """Add a new customer; False when a concurrent first order of the same e-mail (or channel customer)
    inserted it first."""
    if not is_postgres():  # SQLite: writers are serialized, the insert cannot race
        db.session.add(customer)
        return True
    if customer.email is not None:
        return _insert_customer_by_email(customer)
    try:
        with db.session.begin_nested():  # a savepoint: the unique e-mail conflict does not end the transaction
            db.session.add(customer)
    except IntegrityError:
        return False
    return True


def _insert_customer_by_email(customer: Customer) -> bool:
    """PostgreSQL: ``INSERT ... ON CONFLICT (email) DO NOTHING RETURNING id``, one round trip instead of a
    savepoint around the ORM's insert; the object then stands for the new row (persistent, every column
    set, no SELECT)."""
    now = utcnow()
    customer.created_at = customer.updated_at = now
    table = Customer.__table__
    values = {}
    for prop in Customer.__mapper__.column_attrs:
        if prop.key == "id":
            continue
        if prop.key not in customer.__dict__:
            setattr(customer, prop.key, None)
        values[prop.columns[0].key] = customer.__dict__[prop.key]
    new_id = db.session.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=["email"])
                                .returning(table.c.id)).scalar_one_or_none()
    if new_id is None:
        return False
    customer.id = new_id
    make_transient_to_detached(customer)
    db.session.add(customer)
    return True


def _upsert_customer(data: dict, currency: str, channel: str, billing: dict | None) -> tuple[Customer, int]:
    """The buyer's profile: by e-mail; without one, by the channel's customer id; without either, a new
    profile. The buyer's name is the profile's name (the recipient's is on the shipping address)."""
    email = (data.get("email") or "").strip().lower() or None
    channel_customer_id = str(data["channel_customer_id"]) if data.get("channel_customer_id") else None
    if email:
        condition = (Customer.email == email,)
    elif channel_customer_id:
        condition = (Customer.channel == channel, Customer.channel_customer_id == channel_customer_id)
    else:
        condition = None
    customer = _lock_customer(condition) if condition else None
    address = billing or data.get("shipping_address")
    if customer is None:
        customer = Customer(email=email, name=data["name"].strip(), phone=data.get("phone"),
                            addresses=[address] if address else [], preferences=dict(data.get("preferences") or {}),
                            order_count=0, total_spent=0, spent_by_currency={}, currency=currency, vip=False,
                            orders_by_currency={}, tax_id_checked=False, billing_address=billing,
                            channel=channel if not email and channel_customer_id else None,
                            channel_customer_id=channel_customer_id if not email else None)
        if condition is None or _insert_customer(customer):
            if condition is None:
                db.session.add(customer)
            return customer, 0
        customer = _lock_customer(condition)
    previous = customer.order_count
    customer.name = data["name"].strip()
    if data.get("phone"):
        customer.phone = data["phone"]
    if address and address not in (customer.addresses or []):
        customer.addresses = [address, *(customer.addresses or [])][:10]
    if billing and not customer.billing_address:  # the first billing address given is the profile's default
        customer.billing_address = billing
    if data.get("preferences"):
        customer.preferences = {**(customer.preferences or {}), **data["preferences"]}
    return customer, previous


def vip_threshold(currency: str) -> int:
    """The amount spent (minor units of ``currency``) that makes a customer vip; 0: none.

    ``VIP_THRESHOLDS`` maps currencies to amounts (``{"EUR": 100000, "JPY": 15000000}``); a currency it
    does not name has no threshold. Without it, ``VIP_THRESHOLD`` applies to every currency."""
    thresholds = current_app.config.get("VIP_THRESHOLDS")
    if thresholds:
        return int(thresholds.get(currency.upper()) or 0)
    return int(current_app.config.get("VIP_THRESHOLD") or 0)


def _non_stock_lines(data: dict) -> list[dict]:
    lines = []
    for item in data.get("non_stock_lines") or []:
        quantity = int(item.get("quantity") or 1)
        unit_price = int(item.get("unit_price") or 0)
        lines.append({"kind": item.get("kind") or "custom", "title": str(item.get("title") or item.get("kind")
                                                                           or "line")[:200],
                      "sku": item.get("sku"), "quantity": quantity, "unit_price": unit_price,
                      "total": quantity * unit_price, "requires_shipping": bool(item.get("requires_shipping"))})
    return lines


def _check_amount(amount: int, currency: str) -> None:
    """An order's subtotal and total stay within MAX_AMOUNT (the API's bound on money): else a 422."""
    if amount > MAX_AMOUNT:
        raise ValidationFailed(f"the order's total ({amount} {currency} minor units) is more than an order may "
                               f"reach ({MAX_AMOUNT})",
                               errors={"lines": [f"the lines add up to more than {MAX_AMOUNT} minor units"]})


def _gift_lines_allowed(data: dict) -> bool:
    """Zero-priced thank-you lines (``gift: true``) go with other lines, or on a gift order or a replacement."""
    lines = data.get("lines") or []
    if not any(line.get("gift") for line in lines):
        return True
    paid_lines = [line for line in lines if not line.get("gift")] + list(data.get("non_stock_lines") or [])
    return bool(paid_lines) or bool(data.get("gift")) or data.get("replacement_for") is not None


def find_channel_order(channel: str, external_id) -> Order | None:
    """The order a channel already sent with this external id, if any."""
    return db.session.execute(select(Order).where(
        Order.channel == channel, Order.external_id == str(external_id))).scalar_one_or_none()


def place_order(data: dict) -> tuple[Order, bool]:
    """Place an order: validate, upsert the customer, reserve stock, total, flag, record.

    ``data`` is the validated body of ``POST /orders`` (plus optional
    ``unit_price`` per line for channel orders, ``replacement_for``,
    ``payment_status`` ``paid`` for orders paid on a marketplace, and what a
    channel charged besides its lines: ``shipping_total``, ``discount_total``
    (its own discounts, added to a coupon's), ``tax_total`` (tax charged on
    top of the prices), and a ``note`` for the timeline).
    Returns ``(order, created)``; an order with the same (channel,
    external_id) is returned as it is with ``created`` False.
    """
    reg = registry()
    channel = data.get("channel") or "api"
    provider = data.get("payment_provider") or "manual"
    lenient = bool(data.get("incomplete_ok"))
    errors: dict = {}
    if provider not in reg.providers:
        errors["payment_provider"] = [f"unknown payment provider {provider!r}; known: {', '.join(sorted(reg.providers))}"]
    extra_lines = _non_stock_lines(data)
    if not data.get("lines") and not extra_lines:
        errors["lines"] = ["an order needs at least one line"]
    needs_address = not lenient or tx.fulfilment(len(data.get("lines") or []), extra_lines) != tx.DIGITAL
    customer_errors, review_flags = _customer_errors(data.get("customer") or {}, lenient, needs_address)
    if customer_errors:
        errors["customer"] = customer_errors
    if errors:
        raise ValidationFailed("the order is not valid", errors=errors)

    with transaction():
        external_id = data.get("external_id")
        if external_id is not None:
            existing = find_channel_order(channel, external_id)
            if existing is not None:
                return existing, False
        skus = {line["sku"] for line in data["lines"]}
        products = {p.sku: p for p in db.session.execute(select(Product).where(Product.sku.in_(skus))).scalars()}
        line_errors = {}
        archived = []
        # an archived product is no longer sold; a replacement (an exchange) still sends what was bought
        replacing = data.get("replacement_for") is not None
        for index, line in enumerate(data["lines"]):
            if line["sku"] not in products:
                line_errors[str(index)] = {"sku": [f"unknown sku {line['sku']!r}"]}
            elif products[line["sku"]].archived_at is not None and not replacing:
                line_errors[str(index)] = {"sku": [f"{line['sku']} is archived: it can no longer be ordered"]}
                archived.append(line["sku"])
            elif line["quantity"] <= 0:
                line_errors[str(index)] = {"quantity": ["must be at least 1"]}
            elif line.get("gift") and line.get("unit_price"):
                line_errors[str(index)] = {"unit_price": ["a gift line is free: its unit_price is 0"]}
        if not line_errors and not _gift_lines_allowed(data):
            line_errors = {str(i): {"gift": ["a thank-you gift goes with an order of other lines, or on a gift "
                                             "order (gift: true)"]} for i, ln in enumerate(data["lines"]) if ln.get("gift")}
        if line_errors:
            if len(archived) == len(line_errors):
                raise ValidationFailed(f"archived products cannot be ordered: {', '.join(archived)}",
                                       errors={"lines": line_errors}, code="product_archived")
            raise ValidationFailed("the order has invalid lines", errors={"lines": line_errors})
        currencies = {products[line["sku"]].currency for line in data["lines"]}
        if not currencies:  # only non-stock lines: the channel's currency
            if not data.get("currency"):
                raise ValidationFailed("an order of non-stock lines only needs its currency",
                                       errors={"currency": ["required"]})
            currencies = {str(data["currency"]).upper()}
        if len(currencies) > 1:
            raise ValidationFailed("all lines must share one currency",
                                   errors={"lines": [f"mixed currencies: {', '.join(sorted(currencies))}"]})
        currency = currencies.pop()

        lines = [OrderLine(product_id=products[ln["sku"]].id, sku=ln["sku"], name=products[ln["sku"]].name,
                           quantity=ln["quantity"],
                           unit_price=0 if ln.get("gift") else
                           ln["unit_price"] if ln.get("unit_price") is not None else products[ln["sku"]].price,
                           gift=bool(ln.get("gift")), backordered=0, picked_quantity=0, returned_quantity=0, serials=[])
                 for ln in data["lines"]]
        subtotal = sum(line.unit_price * line.quantity for line in lines) + sum(x["total"] for x in extra_lines)
        _check_amount(subtotal, currency)
        by_id = {p.id: p for p in products.values()}
        levels = stock.lock_levels(list(by_id))
        before = stock.available_by_product(levels)
        # an exchange's replacement is promised: what stock cannot give now is backordered (on hold), never
        # a refused receipt of the return
        allocations, short = stock.allocate(lines, by_id, levels, allow_short=replacing)

        shipping_total = int(data.get("shipping_total") or 0)
        customer, previous_orders = _upsert_customer(data["customer"], currency, channel, data.get("billing_address"))
        # lock order: stock levels, the customer (above), then the coupon (counted under its lock)
        applied = coupons.apply_locked(data.get("coupon"), customer=customer, currency=currency, subtotal=subtotal,
                                       identified=bool(customer.email or customer.channel_customer_id),
                                       shipping_total=shipping_total)
        category = applied.category if applied else None
        discount = min(subtotal, (applied.discount if applied else 0) + int(data.get("discount_total") or 0))
        discount += applied.shipping_discount if applied else 0
        tax_total = int(data.get("tax_total") or 0)
        prices_include_tax = bool(data.get("prices_include_tax"))
        tax_status = data.get("tax_status") or ("not_given" if not tax_total else
                                                "inclusive" if prices_include_tax else "exclusive")
        lines_total = subtotal - discount + shipping_total + (0 if prices_include_tax else tax_total)
        channel_total = data.get("channel_total")
        total = lines_total if channel_total is None else int(channel_total)
        if total != lines_total:
            review_flags.append(flag_rules.REVIEW_TOTALS)
        _check_amount(total, currency)
        is_vip = customers.vip_at_placement(customer, currency, total)
        replacement_for = data.get("replacement_for")
        order = Order(
            status=tx.PLACED, payment_status="unpaid", payment_provider=provider, channel=channel,
            external_id=str(external_id) if external_id is not None else None, customer=customer,
            email=customer.email, customer_name=data["customer"]["name"].strip(),
            phone=data["customer"].get("phone"), shipping_address=data["customer"].get("shipping_address"),
            billing_address=data.get("billing_address"), non_stock_lines=extra_lines,
            tax_lines=list(data.get("tax_lines") or []), prices_include_tax=prices_include_tax, tax_status=tax_status,
            presentment_currency=data.get("presentment_currency"), presentment_totals=data.get("presentment_totals"),
            currency=currency, subtotal=subtotal, discount_total=discount, shipping_total=shipping_total,
            tax_total=tax_total, total=total, paid_total=0, refunded_total=0, coupon=data.get("coupon"),
            gift=bool(data.get("gift")), replacement_for_id=replacement_for,
            locale=locales.lenient(data.get("locale")),
            lines=lines, events=[], payments=[], shipments=[],
        )
        order.flags = flag_rules.core_flags(previous_orders=previous_orders, is_vip=is_vip, gift=order.gift,
                                            coupon_category=category, replacement=replacement_for is not None)
        order.flags = flag_rules.merge(order.flags, [review_flags, *reg.pm.hook.order_flags(order=order,
                                                                                           customer=customer)])
        db.session.add(order)
        db.session.flush()
        set_committed_value(order, "refunds", [])  # a new order has none: its answer needs no SELECT
        coupons.record_use(applied, order)
        stock.reserve(order, allocations)
        stage(order, "order_placed", f"order {order.number} placed on channel {channel}",
              total=total, currency=currency, flags=order.flags)
        if data.get("note"):
            note(order, "customer_note", str(data["note"])[:2000])
        if total != lines_total:
            note(order, "totals_differ", f"the channel charged {total} {currency} minor units; the lines add up to "
                 f"{lines_total}: the channel's total is kept, review it", channel_total=total, lines_total=lines_total)
        if flag_rules.REVIEW_ADDRESS in review_flags:
            problems = addresses.address_errors(order.shipping_address) if order.shipping_address else {}
            note(order, "address_review", "no shipping address was sent" if not order.shipping_address else
                 "the shipping address is incomplete: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in problems.items()),
                 errors=problems)
        if short:
            parts = []
            for index, missing in short.items():
                lines[index].backordered = missing
                parts.append(f"{lines[index].sku} x{missing}")
                stock.draft_purchase_order(by_id[lines[index].product_id], missing,
                                           f"backorder for order {order.number}")
            hold_locked(order, "backorder: " + ", ".join(parts))
        stock.check_low_stock(list(by_id.values()), before, levels)
        if data.get("payment_status") == "paid" or total == 0:
            from engine.services import payments

            payments.record_paid_locked(order, provider, total, data.get("payment_reference"),
                                        note_text="paid on the channel" if total else "nothing to pay")
    return order, True


def _clean_address(address: dict, previous: dict | None) -> dict:
    """The address as stored: empty fields left out; the recipient's name kept when none is given."""
    clean = {k: v.strip() if isinstance(v, str) else v for k, v in address.items()}
    clean = {k: v for k, v in clean.items() if v not in (None, "")}
    if "name" not in clean and (previous or {}).get("name"):
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


def list_query(*, status=None, channel=None, flag=None, customer=None, ids=None, customers=None, min_id=None,
               max_id=None, created_from=None, created_to=None):
    """The statement of ``list_orders`` (newest first) and the id column its pages are keyed on.

    Every filter is a condition in SQL, and each has an index whose walk newest first serves a page:
    ``order_flags (flag, order_id)``, ``orders (status, id)``, ``(channel, id)``, ``(customer_id, id)``.
    ``ids`` and ``customers`` (what a search found, see ``search_ids``) and ``min_id``/``max_id`` (a date
    range as a range of the primary key, see ``id_range``) are conditions on the key itself;
    ``created_from`` / ``created_to`` keep the exact times within that range.
    """
    stmt = select(Order)
    key = Order.id
    if flag:
        # from the flag's index entries, newest first, to each order by its primary key
        stmt = stmt.join(OrderFlag, OrderFlag.order_id == Order.id).where(OrderFlag.flag == flag)
        key = OrderFlag.order_id
    if status:
        stmt = stmt.where(Order.status == status)
    if channel:
        stmt = stmt.where(Order.channel == channel)
    if customer:
        stmt = stmt.where(Order.customer_id == customer)
    if ids is not None or customers is not None:  # a search: the orders it found, or its customers' orders
        found = ([key.in_(sorted(ids))] if ids else []) + ([Order.customer_id.in_(customers)] if customers else [])
        stmt = stmt.where(or_(*found) if found else false())
    if min_id is not None:
        stmt = stmt.where(key >= min_id)
    if max_id is not None:
        stmt = stmt.where(key < max_id)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    return stmt.order_by(key.desc()), key


LIST_RELATIONS = ("lines", "payments", "shipments", "flag_rows")


def list_orders(*, status=None, channel=None, flag=None, customer=None, limit=50, cursor=None, search=None,
                created_from=None, created_to=None, relations=LIST_RELATIONS) -> tuple[list, int | None]:
    """Newest first; ``cursor`` is the last id of the previous page. A page costs the same statements
    (the page, then one per loaded relationship) at 1k or 1M orders.

    ``search``: an order number, an e-mail, a serial number or a tracking number, matched exactly through
    their indexes (``search_ids``); ``created_from`` / ``created_to`` (aware datetimes, the end excluded):
    a date range, turned into a range of ids first (``id_range``) so the page still walks the primary key."""
    ids, customers = search_ids(search) if search else (None, None)
    min_id, max_id = id_range(created_from, created_to) if created_from or created_to else (None, None)
    stmt, key = list_query(status=status, channel=channel, flag=flag, customer=customer, ids=ids, customers=customers,
                           min_id=min_id,
                           max_id=max_id, created_from=created_from, created_to=created_to)
    stmt = stmt.options(*(selectinload(getattr(Order, name)) for name in relations))
    return page_by_id(stmt, key, limit, cursor)


def search_ids(term: str) -> tuple[set[int], list[int]]:
    """What ``term`` names exactly, as (order ids, customer ids): an order number, a serial number of a unit
    the order holds or held, a shipment's tracking number (order ids: a few), or an e-mail (the customer
    profile with that e-mail: its orders are listed through ``orders (customer_id, id)``, however many).
    Each is one indexed look-up: orders' primary key, serial_units.serial then serial_events by unit,
    shipments.tracking_number, customers.email (a merged profile's e-mail leads to its survivor)."""
    from engine.models import SerialEvent, SerialUnit, Shipment
    from engine.models.orders import ORDER_NUMBER_OFFSET

    term = (term or "").strip()
    found: set[int] = set()
    if not term or len(term) > 254:
        return found, []
    if "@" in term:
        profile = db.session.execute(select(Customer.id, Customer.merged_into_id).where(
            Customer.email == term.lower())).one_or_none()
        for _ in range(10):  # a profile merged into another: its orders are the survivor's (a chain of merges)
            if profile is None or profile.merged_into_id is None:
                break
            profile = db.session.execute(select(Customer.id, Customer.merged_into_id).where(
                Customer.id == profile.merged_into_id)).one_or_none()
        return found, [profile.id] if profile is not None else []
    number = term.lstrip("#")
    if number.isdigit() and int(number) > ORDER_NUMBER_OFFSET:
        found.update(db.session.execute(select(Order.id).where(
            Order.id == int(number) - ORDER_NUMBER_OFFSET)).scalars())
    units = select(SerialUnit.id).where(SerialUnit.serial == term).scalar_subquery()
    found.update(db.session.execute(select(SerialEvent.order_id).distinct().where(
        SerialEvent.unit_id.in_(units), SerialEvent.order_id.is_not(None))).scalars())
    found.update(db.session.execute(select(Shipment.order_id).where(Shipment.tracking_number == term)).scalars())
    return found, []


# how far an order's created_at may run behind a newer id (two placements at once: each takes its time
# before its INSERT takes the id); the id range of a date filter is widened by this much
ID_CLOCK_SLACK = timedelta(minutes=1)


def id_range(created_from=None, created_to=None) -> tuple[int | None, int | None]:
    """A date range as a range of ids (``min_id <= id < max_id``, None: open): ids grow with created_at, so
    a bisection on the primary key finds the bounds in about 20 point look-ups at a million orders, and the
    list walks that part of the key only (no index on created_at needed). Widened by ``ID_CLOCK_SLACK``;
    the exact times stay a condition of the list."""
    # two scalar subqueries: SQLite reads min() or max() from the index only when each is alone
    lowest, highest = db.session.execute(select(select(func.min(Order.id)).scalar_subquery(),
                                                select(func.max(Order.id)).scalar_subquery())).one()
    if lowest is None:
        return None, None
    low = _first_id_from(created_from - ID_CLOCK_SLACK, lowest, highest) if created_from else None
    high = _first_id_from(created_to + ID_CLOCK_SLACK, lowest, highest) if created_to else None
    return low, high


def _first_id_from(moment, lowest: int, highest: int) -> int:
    """The smallest id whose order was created at ``moment`` or later (one past the last id when none)."""
    lo, hi = lowest, highest + 1

    def from_here(position: int) -> bool:  # the first order at or after ``position`` is at ``moment`` or later
        row = db.session.execute(select(Order.created_at).where(Order.id >= position).order_by(Order.id)
                                 .limit(1)).scalar_one_or_none()
        return row is None or as_utc(row) >= moment

    while lo < hi:
        mid = (lo + hi) // 2
        if from_here(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


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
            stock.allocate_backorders(db.session.get(Product, product_id))
        stage(order, "order_cancelled", f"cancelled{': ' + reason if reason else ''}; {released} units released, "
              f"payment {settled}", reason=reason, payment=settled, released=released)
        if coupons.release_locked(order):  # after the customer (locked by its statistics): the coupon
            note(order, "coupon_released", f"coupon {order.coupon} given back", coupon=order.coupon)
    return order
