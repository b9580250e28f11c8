"""A return's (RMA's) state machine: the one place its transition table lives.

``requested`` -> approve -> ``approved`` -> receive -> ``received`` -> resolve -> ``resolved``;
``requested`` or ``approved`` -> reject -> ``rejected`` (final). ``resolved`` is final too: its
``resolution`` says how (``refund``: the refunds are on the order; ``exchange``: the replacement order).

``receive`` may lead straight to ``resolved`` (an exchange's replacement is placed in the receiving
transaction; a refund of nothing is resolved at once); a refund made with the provider resolves the
return when it settles. ``resolve`` retries a refund that failed at the provider.
"""

from __future__ import annotations

from engine.errors import Conflict

REQUESTED, APPROVED, REJECTED, RECEIVED, RESOLVED = "requested", "approved", "rejected", "received", "resolved"
STATUSES = (REQUESTED, APPROVED, REJECTED, RECEIVED, RESOLVED)
RESOLUTIONS = ("refund", "exchange")
# who opened the return: customer service through the API, or the customer (the public request page)
SOURCES = ("staff", "customer")
# the statuses whose units are still on their way back (they count against what may be returned)
OPEN = (REQUESTED, APPROVED)

ACTIONS = ("approve", "reject", "receive", "resolve")
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    (REQUESTED, "approve"): (APPROVED,),
    (REQUESTED, "reject"): (REJECTED,),
    (APPROVED, "reject"): (REJECTED,),  # the parcel never came: the units are the customer's again
    (APPROVED, "receive"): (RECEIVED, RESOLVED),
    (RECEIVED, "resolve"): (RESOLVED,),
}


class IllegalReturnTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, return_id: int, status: str, action: str, allowed: list[str]):
        allowed_text = ", ".join(allowed) if allowed else "none (the return is final)"
        super().__init__(f"cannot {action} return {return_id}: it is {status}; allowed next actions: {allowed_text}",
                         errors={"status": [status], "allowed_actions": allowed})
        self.allowed = allowed


def allowed_actions(status: str) -> list[str]:
    """The actions that may follow ``status``, in the table's order."""
    return [action for action in ACTIONS if (status, action) in TRANSITIONS]


def check(return_id: int, status: str, action: str) -> tuple[str, ...]:
    """The possible statuses after ``action``, or a 409 naming the allowed actions."""
    targets = TRANSITIONS.get((status, action))
    if targets is None:
        raise IllegalReturnTransition(return_id, status, action, allowed_actions(status))
    return targets


def migrated_status(old: str) -> str:
    """The status of a return stored before the RMA table (requested, received, refunded, exchanged)."""
    return {"refunded": RESOLVED, "exchanged": RESOLVED}.get(old, old)
