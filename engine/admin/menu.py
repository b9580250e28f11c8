"""The admin's navigation: each screen module adds its entry with ``entry()``; a user sees the entries
their role allows, in ``position`` order. Labels are lazy (translated per request)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l

from engine.admin.blueprint import bp
from engine.admin.permissions import can


@dataclass(frozen=True)
class Entry:
    label: object
    endpoint: str
    permission: str
    position: int


ENTRIES: list[Entry] = []


def entry(label, endpoint: str, permission: str, position: int) -> None:
    if all(e.endpoint != endpoint for e in ENTRIES):
        ENTRIES.append(Entry(label, endpoint, permission, position))
        ENTRIES.sort(key=lambda e: e.position)


@bp.app_template_global("admin_menu")
def admin_menu() -> list[Entry]:
    # the plugins' screens (hook admin_screens) belong to one app: plugin_screens.init_app keeps them there
    entries = sorted([*ENTRIES, *current_app.extensions.get("hookshop_admin_menu", ())], key=lambda e: e.position)
    return [e for e in entries if can(e.permission)]


ROLE_LABELS = {"owner": _l("Owner"), "accounting": _l("Accounting"), "warehouse": _l("Warehouse"),
               "customer_service": _l("Customer service")}
STATUS_LABELS = {"placed": _l("Placed"), "paid": _l("Paid"), "on_hold": _l("On hold"), "picking": _l("Picking"),
                 "picked": _l("Picked"), "confirmed": _l("Confirmed"), "packed": _l("Packed"),
                 "shipped": _l("Shipped"), "delivered": _l("Delivered"), "completed": _l("Completed"),
                 "cancelled": _l("Cancelled")}


@bp.app_template_global("role_label")
def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


@bp.app_template_global("status_label")
def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


entry(_l("Dashboard"), "admin_ui.dashboard", "dashboard.view", 0)
entry(_l("Staff"), "admin_ui.staff_users", "staff.manage", 900)
