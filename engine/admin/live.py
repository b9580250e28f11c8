"""One live picture: pages poll (htmx, every 2 s) for their live regions with the change token they were
rendered at; the server answers 204 (nothing to swap) while the token is the same, else the region again.

The token is read from the database, never from process memory, so a change made through the API, a
webhook, a worker or another server process shows in every browser: the newest order event (every status
change, note, payment and flag writes one), the newest order and the newest stock movement. Three
primary-key maxima: as cheap at a million orders as at ten."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import func, select

from engine.db import db
from engine.models import Order, OrderEvent, StockMovement

POLL = "every 2s"  # the hx-trigger of a live region


def change_token() -> str:
    row = db.session.execute(select(
        select(func.max(OrderEvent.id)).scalar_subquery(), select(func.max(Order.id)).scalar_subquery(),
        select(func.max(StockMovement.id)).scalar_subquery())).one()
    return "-".join(str(v or 0) for v in row)


def region(template: str, build, **context):
    """Render a live region, or 204 when the poll's ``since`` token is still current. ``build()`` returns
    the region's context: it runs only when the region is rendered, so an unchanged poll costs the token's
    query alone (``context``: values that cost nothing)."""
    token = change_token()
    if request.args.get("since") == token:
        return "", 204
    return render_template(template, live_token=token, live_poll=POLL, **context, **build())
