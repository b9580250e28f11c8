"""``hookshop purchase-orders list|receive``: purchase orders from the command line, through the services
the REST API calls (one transaction each)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from engine.domain.purchase_transitions import STATUSES
from engine.errors import DomainError


@click.group("purchase-orders")
def purchase_orders_group():
    """Purchase orders: list them, receive goods."""


def _find(reference: str):
    from engine.errors import NotFound
    from engine.services import purchasing

    po = purchasing.find_by_number(reference.upper())
    if po is None and reference.isdigit():
        po = purchasing.get_purchase_order(int(reference))
    if po is None:
        raise NotFound(f"no purchase order {reference!r} (give its number, PO-000123, or its id)")
    return po


@purchase_orders_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="only this status")
@click.option("--supplier", "supplier_id", type=int, help="only this supplier's (id)")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON, as GET /purchase-orders answers")
@with_appcontext
def list_command(status, supplier_id, limit, as_json):
    """The newest purchase orders, one a line: number, status, supplier, lines (received/ordered)."""
    from engine.api.purchasing import purchase_order_out
    from engine.services import purchasing

    items, _ = purchasing.list_purchase_orders(status=status, supplier_id=supplier_id, limit=limit)
    if as_json:
        click.echo(json.dumps([purchase_order_out(po) for po in items], indent=2))
        return
    if not items:
        click.echo("no purchase orders")
    for po in items:
        lines = ", ".join(f"{ln.product.sku} {ln.received}/{ln.quantity}" for ln in po.lines) or "no lines"
        click.echo(f"{po.number}  {po.status:<18}  {po.supplier.name if po.supplier else '-':<20}  {lines}")


def _parse_line(text: str) -> dict:
    """``SKU=QTY`` or ``SKU=QTY+DAMAGED``."""
    sku, _, amounts = text.partition("=")
    good, _, damaged = amounts.partition("+")
    if not sku or not good.isdigit() or (damaged and not damaged.isdigit()):
        raise click.BadParameter(f"{text!r}: write SKU=QUANTITY or SKU=QUANTITY+DAMAGED, e.g. MUG=10+2")
    return {"sku": sku, "quantity": int(good), "damaged": int(damaged or 0)}


@purchase_orders_group.command("receive")
@click.argument("reference")
@click.option("--line", "lines", multiple=True, metavar="SKU=QTY[+DAMAGED]", help="units of a line (repeat)")
@click.option("--serials", "serial_file", type=click.File(), metavar="FILE",
              help="scanned serials, 'SKU SERIAL' one a line ('-': standard input)")
@click.option("--location", help="where the good units go (default MAIN)")
@click.option("--reference", "note", help="e.g. the delivery note's number")
@with_appcontext
def receive_command(reference, lines, serial_file, location, note):
    """Receive goods on purchase order REFERENCE (PO-000123 or its id) in one transaction."""
    from engine.services import receiving

    items: dict[str, dict] = {}
    for text in lines:
        item = _parse_line(text)
        items[item["sku"]] = item
    if serial_file is not None:
        for number, row in enumerate(serial_file, 1):
            parts = row.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise click.BadParameter(f"line {number}: write 'SKU SERIAL'", param_hint="--serials")
            entry = items.setdefault(parts[0], {"sku": parts[0], "damaged": 0})
            entry.setdefault("serials", []).append(parts[1])
    for entry in items.values():
        if "serials" in entry and "quantity" not in entry:
            entry["quantity"] = len(entry["serials"])
    if not items:
        raise click.UsageError("nothing to receive: give --line SKU=QTY or --serials FILE")
    data = {"lines": list(items.values())}
    data.update({k: v for k, v in (("location", location), ("reference", note)) if v})
    try:
        po = receiving.receive(_find(reference).id, data)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} ({exc.code})") from None
    click.echo(f"{po.number} is {po.status}")
    for ln in po.lines:
        click.echo(f"  {ln.product.sku}: {ln.received} received, {ln.damaged} damaged of {ln.quantity} ordered"
                   f" (short {ln.short}, over {ln.over})")
