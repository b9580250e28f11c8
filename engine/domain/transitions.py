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


def allowed_actions(status: str, held_from: str | None = None) -> list[str]:
    """The actions that may follow ``status``, in the table's order."""
    return [
        action
        for action in ACTIONS
        if (status, action) in TRANSITIONS and not (action == "pay" and status == ON_HOLD and held_from != PLACED)
    ]


def check(status: str, action: str, held_from: str | None = None) -> tuple[str, ...]:
    """The possible statuses after ``action``, or IllegalTransition naming the allowed actions."""
    targets = TRANSITIONS.get((status, action))
    if targets is None or action not in allowed_actions(status, held_from):
        raise IllegalTransition(status, action, allowed_actions(status, held_from))
    if targets == (HELD_FROM,):
        return (held_from or PLACED,)
    return targets


def is_open(status: str) -> bool:
    """True while the order still holds stock reservations."""
    return status in CANCELLABLE
