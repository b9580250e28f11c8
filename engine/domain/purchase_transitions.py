"""A purchase order's state machine: its transition table (the pattern of ``engine/domain/transitions.py``).

``receive`` has two possible results: ``partially_received`` while some line has not arrived in full,
``received`` once every line has (received + damaged >= ordered). A partially received order may
receive again or be closed (what never came stays recorded as short); a received one is closed.
Only a draft's lines can be changed; only a draft or an ordered purchase order (nothing received yet)
can be cancelled.
"""

from __future__ import annotations

from engine.errors import Conflict

DRAFT, ORDERED, PARTIALLY_RECEIVED, RECEIVED = "draft", "ordered", "partially_received", "received"
CLOSED, CANCELLED = "closed", "cancelled"
STATUSES = (DRAFT, ORDERED, PARTIALLY_RECEIVED, RECEIVED, CLOSED, CANCELLED)
OPEN = (DRAFT, ORDERED, PARTIALLY_RECEIVED)  # still expecting goods

# (from status, action) -> the statuses after it
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    (DRAFT, "edit"): (DRAFT,),
    (DRAFT, "order"): (ORDERED,),
    (ORDERED, "receive"): (PARTIALLY_RECEIVED, RECEIVED),
    (PARTIALLY_RECEIVED, "receive"): (PARTIALLY_RECEIVED, RECEIVED),
    (PARTIALLY_RECEIVED, "close"): (CLOSED,),
    (RECEIVED, "close"): (CLOSED,),
    (DRAFT, "cancel"): (CANCELLED,),
    (ORDERED, "cancel"): (CANCELLED,),
}
ACTIONS = ("edit", "order", "receive", "close", "cancel")


class IllegalPurchaseTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, number: str, status: str, action: str, allowed: list[str]):
        allowed_text = ", ".join(allowed) if allowed else f"none (a {status} purchase order is final)"
        verb = "change the lines of" if action == "edit" else action
        super().__init__(f"cannot {verb} purchase order {number}: it is {status}; allowed next actions: "
                         f"{allowed_text}", errors={"status": [status], "allowed_actions": allowed})
        self.allowed = allowed


def allowed_actions(status: str) -> list[str]:
    return [action for action in ACTIONS if (status, action) in TRANSITIONS]


def check(number: str, status: str, action: str) -> tuple[str, ...]:
    """The possible statuses after ``action``, or a 409 naming the allowed actions."""
    targets = TRANSITIONS.get((status, action))
    if targets is None:
        raise IllegalPurchaseTransition(number, status, action, allowed_actions(status))
    return targets
