"""``hookshop stock ...``: the warehouse from the command line (receive, transfer, adjust, count, labels,
reconcile). Each command calls the same service the REST API calls, in one transaction; long work shows a
progress bar on standard error, and errors say what to do next."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext


@click.group("stock")
def stock_group():
    """Warehouse work: receive, transfer, adjust, count, labels, reconcile."""


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
