"""The order's state machine: the one place the transition table lives.

Each entry maps (status, action) to the status after it. ``pick`` has two
possible results (``picking`` while units are missing, ``picked`` once every
unit is scanned); ``release`` returns to the status the order was held from;
``pay`` on an order held from ``placed`` records the payment and keeps the
order on hold, to be released to ``paid``.
"""

from __future__ import annotations

from engine.errors import IllegalTransition

PLACED, PAID, ON_HOLD = "placed", "paid", "on_hold"
PICKING, PICKED, CONFIRMED = "picking", "picked", "confirmed"
PACKED, SHIPPED, DELIVERED, COMPLETED, CANCELLED = "packed", "shipped", "delivered", "completed", "cancelled"

STATUSES = (PLACED, PAID, ON_HOLD, PICKING, PICKED, CONFIRMED, PACKED, SHIPPED, DELIVERED, COMPLETED, CANCELLED)
HELD_FROM = "<held from>"

# (from status, action) -> status after it
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    (PLACED, "pay"): (PAID,),
    (ON_HOLD, "pay"): (ON_HOLD,),  # only when held from placed: release then goes to paid
    (PLACED, "hold"): (ON_HOLD,),
    (PAID, "hold"): (ON_HOLD,),
    (ON_HOLD, "release"): (HELD_FROM,),
    (PAID, "pick"): (PICKING, PICKED),
    (PICKING, "pick"): (PICKING, PICKED),
    (PICKED, "confirm"): (CONFIRMED,),
    (CONFIRMED, "pack"): (PACKED,),
    (PACKED, "ship"): (SHIPPED,),
    (SHIPPED, "deliver"): (DELIVERED,),
    (DELIVERED, "complete"): (COMPLETED,),
}
CANCELLABLE = (PLACED, PAID, ON_HOLD, PICKING, PICKED, CONFIRMED, PACKED)
for _status in CANCELLABLE:
    TRANSITIONS[(_status, "cancel")] = (CANCELLED,)

ACTIONS = ("pay", "hold", "release", "pick", "confirm", "pack", "ship", "deliver", "complete", "cancel")

# What the warehouse does with an order depends on its lines (its ``fulfilment``):
# ``goods``: stock lines to pick and pack (the table above);
# ``unstocked``: only non-stock lines (gift cards, fees, custom lines without a sku), one of which needs
#   shipping: nothing to pick or pack, so ``paid`` -> confirm -> ``confirmed`` -> ship -> ``shipped``;
# ``digital``: only non-stock lines and none needs shipping (a gift card sent by e-mail): nothing to pick,
#   pack or ship, so ``paid`` -> confirm -> ``confirmed`` -> deliver -> ``delivered`` (handed over).
GOODS, UNSTOCKED, DIGITAL = "goods", "unstocked", "digital"
_WAREHOUSE_STEPS = ((PAID, "pick"), (PICKING, "pick"), (CONFIRMED, "pack"))
TABLES: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {GOODS: TRANSITIONS}
for _kind, _extra in ((UNSTOCKED, {(CONFIRMED, "ship"): (SHIPPED,)}), (DIGITAL, {(CONFIRMED, "deliver"): (DELIVERED,)})):
    TABLES[_kind] = {**{k: v for k, v in TRANSITIONS.items() if k not in _WAREHOUSE_STEPS},
                     (PAID, "confirm"): (CONFIRMED,), **_extra}


# the actions whose targets differ between the tables (the others: the same in every table)
ROUTED_ACTIONS = frozenset(action for kind in (UNSTOCKED, DIGITAL) for (_, action) in
                           set(TABLES[kind]).symmetric_difference(TRANSITIONS))


def fulfilment(stock_lines: int, non_stock_lines: list[dict] | None) -> str:
    """``goods``, ``unstocked`` or ``digital`` (see TABLES) for an order with this many stock lines."""
    if stock_lines:
        return GOODS
    return UNSTOCKED if any(x.get("requires_shipping") for x in non_stock_lines or []) else DIGITAL


def allowed_actions(status: str, held_from: str | None = None, kind: str = GOODS) -> list[str]:
    """The actions that may follow ``status``, in the table's order."""
    table = TABLES[kind]
    return [
        action
        for action in ACTIONS
        if (status, action) in table and not (action == "pay" and status == ON_HOLD and held_from != PLACED)
    ]


def check(status: str, action: str, held_from: str | None = None, kind: str = GOODS) -> tuple[str, ...]:
    """The possible statuses after ``action``, or IllegalTransition naming the allowed actions."""
    targets = TABLES[kind].get((status, action))
    if targets is None or action not in allowed_actions(status, held_from, kind):
        raise IllegalTransition(status, action, allowed_actions(status, held_from, kind))
    if targets == (HELD_FROM,):
        return (held_from or PLACED,)
    return targets


def is_open(status: str) -> bool:
    """True while the order still holds stock reservations."""
    return status in CANCELLABLE
