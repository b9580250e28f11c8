"""``hookshop stock ...``: the warehouse from the command line (receive, transfer, adjust, count, labels,
reconcile). Each command calls the same service the REST API calls, in one transaction; long work shows a
progress bar on standard error, and errors say what to do next."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("stock")
def stock_group():
    """Warehouse work: receive, transfer, adjust, count, labels, reconcile."""


@stock_group.command("transfer")
@click.argument("sku")
@click.option("--from", "source", required=True, help="the location path the units leave, e.g. MAIN/A-01-3")
@click.option("--to", "destination", required=True, help="the location path they go to, e.g. MAIN/QUARANTINE")
@click.option("--quantity", type=click.IntRange(1, 1_000_000), help="units to move (untracked products)")
@click.option("--serials", help="comma separated serials (serial-tracked products)")
@click.option("--serials-file", type=click.File("r"), help="a file of serials, one a line ('-' reads stdin)")
@click.option("--reference", help="a note kept with the transfer, e.g. a ticket number")
@with_appcontext
def transfer_command(sku, source, destination, quantity, serials, serials_file, reference):
    """Move units of SKU from one location to another (POST /stock/transfers)."""
    from engine.errors import DomainError
    from engine.services import locations

    listed = [s.strip() for s in (serials or "").split(",") if s.strip()]
    if serials_file is not None:
        listed += [line.strip() for line in serials_file if line.strip()]
    if quantity is None and not listed:
        raise click.UsageError("give --quantity N, or --serials S1,S2 / --serials-file F for a serial-tracked product")
    try:
        moved = locations.transfer(sku, source=source, destination=destination, quantity=quantity,
                                   serials=listed or None, reference=reference)
    except DomainError as exc:
        details = "; ".join(f"{name}: {', '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                            for name, msgs in (exc.errors or {}).items())
        raise click.ClickException(exc.message + (f" ({details})" if details else "")) from exc
    click.echo(f"transfer {moved['id']}: {moved['quantity']} x {moved['sku']} from {moved['from']} to {moved['to']}")
