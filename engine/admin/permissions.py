"""The admin's permission matrix: which role may do what. docs/admin.md prints this table; every admin route
names one permission with ``@require`` and the blueprint refuses (403) a route that names none, so a new
screen cannot forget its check.

Roles: ``owner`` (everything), ``accounting`` (journal, exports, receipts, refunds view), ``warehouse``
(receive, pick, pack, ship, stock, purchase orders), ``customer_service`` (customers, returns, refunds,
notes, flags). Order transitions: each action of the transition table (engine/domain/transitions.py) needs
the permission ``ORDER_ACTIONS`` names; the buttons an order page shows are the actions the table allows
from the order's status and the user's role allows."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

OWNER, ACCOUNTING, WAREHOUSE, CUSTOMER_SERVICE = "owner", "accounting", "warehouse", "customer_service"
ROLES = (OWNER, ACCOUNTING, WAREHOUSE, CUSTOMER_SERVICE)
EVERYONE = frozenset(ROLES)

# permission -> the roles that have it (owner has every permission)
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.view": EVERYONE,
    "orders.view": EVERYONE,
    "orders.notes": frozenset({CUSTOMER_SERVICE, WAREHOUSE}),  # staff notes on an order
    "orders.flags": frozenset({CUSTOMER_SERVICE}),  # VIP, review flags set by staff
    "orders.payment": frozenset({ACCOUNTING}),  # record a manual payment (pay)
    "orders.hold": frozenset({CUSTOMER_SERVICE}),  # hold and release
    "orders.cancel": frozenset({CUSTOMER_SERVICE}),
    "warehouse.pick": frozenset({WAREHOUSE}),  # pick and confirm
    "warehouse.pack": frozenset({WAREHOUSE}),
    "warehouse.ship": frozenset({WAREHOUSE}),  # shipments, labels, packing slips, delivered, completed
    "stock.view": frozenset({WAREHOUSE, ACCOUNTING}),
    "stock.change": frozenset({WAREHOUSE}),  # receive, transfer, adjust, count, reorder rules
    "purchasing.view": frozenset({WAREHOUSE, ACCOUNTING}),
    "purchasing.change": frozenset({WAREHOUSE}),
    "customers.view": frozenset({CUSTOMER_SERVICE, ACCOUNTING}),
    "customers.change": frozenset({CUSTOMER_SERVICE}),  # profile, VIP, merge
    "returns.view": frozenset({CUSTOMER_SERVICE, WAREHOUSE, ACCOUNTING}),
    "returns.change": frozenset({CUSTOMER_SERVICE}),  # open, approve, reject, resolve
    "returns.receive": frozenset({WAREHOUSE}),  # the parcel arrives at the warehouse
    "refunds.view": frozenset({CUSTOMER_SERVICE, ACCOUNTING}),
    "refunds.create": frozenset({CUSTOMER_SERVICE}),
    "accounting.view": frozenset({ACCOUNTING}),  # journal, receipts, exports
    "notifications.view": frozenset({CUSTOMER_SERVICE}),
    "plugins.view": frozenset(),
    "webhooks.view": frozenset(),
    "webhooks.change": frozenset(),
    "tasks.view": frozenset(),  # the retry queue
    "tasks.requeue": frozenset(),
    "staff.manage": frozenset(),
}

# the transition table's actions -> the permission each needs
ORDER_ACTIONS = {"pay": "orders.payment", "hold": "orders.hold", "release": "orders.hold",
                 "pick": "warehouse.pick", "confirm": "warehouse.pick", "pack": "warehouse.pack",
                 "ship": "warehouse.ship", "deliver": "warehouse.ship", "complete": "warehouse.ship",
                 "cancel": "orders.cancel"}

PUBLIC = {"admin_ui.login", "admin_ui.static"}  # the only admin endpoints without a permission


def allowed(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown admin permission {permission!r}")
    return role == OWNER or role in PERMISSIONS[permission]


def can(permission: str) -> bool:
    """Whether the logged-in user has ``permission`` (templates: ``{% if can('stock.change') %}``)."""
    return bool(getattr(current_user, "is_authenticated", False)) and allowed(current_user.role, permission)


def order_actions(role: str, actions: list[str]) -> list[str]:
    """Of the actions the transition table allows, those ``role`` may take (in the table's order)."""
    return [a for a in actions if allowed(role, ORDER_ACTIONS[a])]


def require(permission: str):
    """Declare the permission of an admin view (put it under ``@bp.route``). The check itself runs in the
    blueprint's ``before_request``, before any argument is parsed; this wrapper checks again."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown admin permission {permission!r}")

    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        checked.admin_permission = permission
        return checked

    return decorate


def matrix_markdown() -> str:
    """The matrix as the Markdown table docs/admin.md prints (a test keeps the two the same)."""
    rows = ["| permission | " + " | ".join(ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    for permission in PERMISSIONS:
        rows.append(f"| `{permission}` | " + " | ".join("✔" if allowed(r, permission) else "" for r in ROLES) + " |")
    return "\n".join(rows) + "\n"
