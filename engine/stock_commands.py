"""``hookshop stock ...``: the warehouse from the command line (receive, transfer, adjust, count, labels,
reconcile). Each command calls the same service the REST API calls, in one transaction; long work shows a
progress bar on standard error, and errors say what to do next."""

from __future__ import annotations

import csv
import functools
import json
import sys

import click
from flask.cli import with_appcontext

from engine.errors import DomainError
from engine.models.stock import ADJUSTMENT_REASONS


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


# ---------------------------------------------------------------- receive, adjust, count, reconcile (issue #11)

def _progress(items=None, label: str = "", length: int | None = None):
    return click.progressbar(items, length=length, label=label, file=sys.stderr)


def _domain_errors(command):
    """A DomainError (a 4xx of the API) becomes a one-line error (exit 1) with the field messages."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            details = "; ".join(f"{field}: {_flat(messages)}" for field, messages in exc.errors.items())
            raise click.ClickException(exc.message + (f" ({details})" if details else "")) from exc

    return wrapper


def _flat(messages) -> str:
    if isinstance(messages, dict):
        return ", ".join(f"{key}: {_flat(value)}" for key, value in messages.items())
    if isinstance(messages, list):
        return ", ".join(_flat(m) for m in messages)
    return str(messages)


def _serials(serials: str | None, serials_file) -> list[str] | None:
    if serials and serials_file:
        raise click.UsageError("give --serials or --serials-file, not both")
    if serials_file:
        return [line.strip() for line in serials_file if line.strip()]
    return [s.strip() for s in serials.split(",") if s.strip()] if serials else None


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@stock_group.command("receive")
@click.argument("sku")
@click.option("--quantity", type=click.IntRange(min=1), help="units (default: the number of serials)")
@click.option("--location", help="default MAIN")
@click.option("--serials", help="comma separated, one per unit")
@click.option("--serials-file", type=click.File(), help="one serial a line")
@click.option("--reference", help="a delivery note, a purchase-order number")
@with_appcontext
@_domain_errors
def receive_command(sku, quantity, location, serials, serials_file, reference):
    """Receive stock of SKU (serial-tracked products: one serial per unit)."""
    from engine.services import stock

    units = _serials(serials, serials_file)
    if quantity is None:
        if not units:
            raise click.UsageError("give --quantity, or the serials received")
        quantity = len(units)
    _echo_json(stock.receive_stock(sku, quantity, location, units, reference))


@stock_group.command("adjust")
@click.argument("sku")
@click.option("--reason", required=True, type=click.Choice(ADJUSTMENT_REASONS))
@click.option("--staff", required=True, help="who adjusts (an e-mail or a name): recorded as given")
@click.option("--quantity", type=int, help="signed: negative takes units away")
@click.option("--location", help="default MAIN")
@click.option("--serials", help="comma separated (serial-tracked products)")
@click.option("--serials-file", type=click.File(), help="one serial a line")
@click.option("--note")
@with_appcontext
@_domain_errors
def adjust_command(sku, reason, staff, quantity, location, serials, serials_file, note):
    """Adjust stock of SKU: count_correction, damage, loss or found."""
    from engine.services import adjustments

    _echo_json(adjustments.adjust_stock(sku, reason=reason, staff=staff, quantity=quantity,
                                        serials=_serials(serials, serials_file), location=location, note=note))


@stock_group.group("count")
def count_group():
    """Cycle counts: open, scan, show, post, cancel."""


@count_group.command("open")
@click.argument("location")
@click.option("--staff", required=True)
@click.option("--sku", "skus", multiple=True, help="count only these products (repeat the option)")
@click.option("--note")
@with_appcontext
@_domain_errors
def count_open_command(location, staff, skus, note):
    """Open a count of LOCATION; prints the count (its id is needed to scan)."""
    from engine.services import counts

    _echo_json(_summary(counts.open_count(location, staff, list(skus) or None, note)))


@count_group.command("scan")
@click.argument("count_id", type=int)
@click.argument("codes", nargs=-1)
@click.option("--file", "scans_file", type=click.File(), help="one scan a line (serial, barcode or sku)")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 10000))
@with_appcontext
@_domain_errors
def count_scan_command(count_id, codes, scans_file, batch):
    """Add scans (CODES and/or a file) to count COUNT_ID, in batches; a refused batch records nothing."""
    from engine.services import counts

    scans = [*codes, *([line.strip() for line in scans_file if line.strip()] if scans_file else [])]
    if not scans:
        raise click.UsageError("give the scanned codes, or --file")
    done = 0
    with _progress(length=len(scans), label=f"count {count_id}") as bar:
        for start in range(0, len(scans), batch):
            part = scans[start:start + batch]
            try:
                result = counts.submit(count_id, part)
            except DomainError as exc:
                if done:
                    exc.message += f" (the first {done} scans were recorded; fix the file and send the rest)"
                raise
            done += len(part)
            bar.update(len(part))
    _echo_json(_summary(result))


@count_group.command("show")
@click.argument("count_id", type=int)
@with_appcontext
@_domain_errors
def count_show_command(count_id):
    """Show count COUNT_ID: expected vs counted per product, serials, movements since it opened."""
    from engine.services import counts

    _echo_json(counts.review(count_id))


@count_group.command("post")
@click.argument("count_id", type=int)
@click.option("--staff", required=True)
@with_appcontext
@_domain_errors
def count_post_command(count_id, staff):
    """Post the differences of count COUNT_ID as count_correction adjustments."""
    from engine.services import counts

    _echo_json(_summary(counts.post_count(count_id, staff)))


@count_group.command("cancel")
@click.argument("count_id", type=int)
@click.option("--staff", required=True)
@with_appcontext
@_domain_errors
def count_cancel_command(count_id, staff):
    """Cancel count COUNT_ID (stock does not change)."""
    from engine.services import counts

    _echo_json(_summary(counts.cancel_count(count_id, staff)))


def _summary(count: dict) -> dict:
    """A count without the lines that agree (a location may hold thousands of products)."""
    return {**count, "lines": [ln for ln in count["lines"] if ln["difference"] or ln.get("posted_difference")]}


@stock_group.command("reconcile")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--output", type=click.File("w"), default="-", help="a file (default: standard output)")
@click.option("--chunk", default=2000, show_default=True, type=click.IntRange(1, 100000),
              help="products per round of queries")
@with_appcontext
def reconcile_command(fmt, output, chunk):
    """Levels vs ledger vs serial units vs open reservations; exits 1 when anything disagrees (for cron)."""
    from engine.services import reconciliation

    totals = reconciliation.Totals()
    with reconciliation.snapshot() as conn, _progress(length=reconciliation.product_count(),
                                                      label="reconciling") as bar:
        rows = reconciliation.walk(conn, chunk, progress=bar.update, totals=totals)
        if fmt == "csv":
            writer = csv.DictWriter(output, fieldnames=reconciliation.FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            output.write('{"differences": [')
            for index, row in enumerate(rows):
                output.write(("," if index else "") + "\n  " + json.dumps(row))
            output.write(f'\n], "products": {totals.products}, "levels": {totals.levels}, '
                         f'"ok": {json.dumps(not totals.differences)}}}\n')
    if totals.differences:
        click.echo(f"{totals.differences} differences in {totals.products} products ({totals.levels} stock levels): "
                   "look at each, then correct the stock with 'hookshop stock adjust' or a count", err=True)
        sys.exit(1)
    click.echo(f"stock agrees: {totals.products} products, {totals.levels} stock levels", err=True)
@stock_group.command("labels")
@click.option("--sku", help="the product's labels (its barcode, or sku)")
@click.option("--serials", is_flag=True, help="with --sku: one label per serial unit in stock")
@click.option("--copies", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="with --sku (no --serials): the product's label this many times")
@click.option("--location-prefix", help="bin labels: every location whose code starts with it (MAIN/A)")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, writable=True),
              help="the PDF file to write")
@with_appcontext
def labels_command(sku, serials, copies, location_prefix, output):
    """Code128 label sheets (PDF, 24 labels per A4 page): a product's, its serials' or bins'."""
    from engine.errors import DomainError
    from engine.services import labels

    if bool(sku) == bool(location_prefix):
        raise click.UsageError("give --sku SKU (with --serials for one label per unit in stock) or "
                               "--location-prefix PREFIX")
    if serials and not sku:
        raise click.UsageError("--serials goes with --sku")
    try:
        rows = labels.product_labels(sku, serials=serials, copies=copies) if sku else \
            labels.location_labels(location_prefix)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    with click.progressbar(length=len(rows), label=f"{len(rows)} labels", file=sys.stderr) as bar:
        pdf = labels.sheet(rows, progress=bar.update)
    with open(output, "wb") as out:
        out.write(pdf)
    pages = (len(rows) + 23) // 24
    click.echo(f"wrote {len(rows)} labels on {pages} page{'' if pages == 1 else 's'} to {output}")
