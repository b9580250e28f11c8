"""``hookshop accounting ...``: export, report, sync, accounts."""

from __future__ import annotations

import inspect
import json
import sys
from datetime import date

import click
from flask.cli import with_appcontext

from engine.plugin_api import transaction


def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.group("accounting")
def accounting():
    """The double-entry journal: exports, reports, cloud sync (accounting_export)."""


@accounting.command("export")
@click.option("--format", "fmt", required=True, help="beancount, csv, ledger or xero (or a plugin's exporter)")
@click.option("--since", callback=_date, help="first booking date, YYYY-MM-DD (inclusive)")
@click.option("--until", callback=_date, help="last booking date, YYYY-MM-DD (inclusive)")
@click.option("--output", "-o", required=True, help="the file to write ('-' for standard output)")
@click.option("--progress/--no-progress", default=None, help="show a progress bar (default: when writing a file)")
@with_appcontext
def export_command(fmt, since, until, output, progress):
    """Export the journal over a date range, streamed (constant memory)."""
    from engine.plugin_api import registry

    from . import exporters

    available = {**exporters.EXPORTERS, **registry().exporters}
    if fmt not in available:
        raise click.BadParameter(f"unknown format {fmt!r}; one of: {', '.join(sorted(available))}",
                                 param_hint="--format")
    if since and until and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    exporter = available[fmt]
    total = exporters.count_postings(since, until)
    show = progress if progress is not None else output != "-"
    fh = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        if show and "progress" in inspect.signature(exporter.export).parameters:
            with click.progressbar(length=total, label=f"exporting {total} postings", file=sys.stderr,
                                   show_pos=True) as bar:
                exporter.export(since, until, fh, progress=bar.update)
        else:  # another plugin's exporter may not report progress
            exporter.export(since, until, fh)
    finally:
        if fh is not sys.stdout:
            fh.close()
    if output != "-":
        click.echo(f"{total} postings written to {output} ({fmt})")


REPORTS = ("trial-balance", "sales", "tax", "inventory")


@accounting.command("report")
@click.argument("name", type=click.Choice(REPORTS))
@click.option("--since", callback=_date, help="first booking date (trial-balance, sales, tax)")
@click.option("--until", callback=_date, help="last booking date (trial-balance, sales, tax)")
@click.option("--year", type=int, help="a calendar year (sales, tax)")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@with_appcontext
def report_command(name, since, until, year, as_json):
    """Print a report: trial-balance, sales (by channel and month), tax (per rate), inventory."""
    from . import reports

    if name == "trial-balance":
        data = reports.trial_balance(since, until)
    elif name == "sales":
        data = reports.sales_by_channel(year, since, until)
    elif name == "tax":
        data = reports.tax_summary(year, since, until)
    else:
        data = reports.inventory_valuation()
    click.echo(json.dumps(data, indent=2) if as_json else reports.render(name, data))


@accounting.command("sync")
@click.option("--retry-failed", is_flag=True, help="queue the entries whose retries ran out again first")
@with_appcontext
def sync_command(retry_failed):
    """Post pending stock receipts and push due entries to the sync endpoint once."""
    from . import stock_postings, sync

    if retry_failed:
        click.echo(f"{sync.retry_failed()} failed entries queued again")
    with transaction():
        handled = stock_postings.book_stock_movements()
    if handled:
        click.echo(f"{handled} stock movements posted")
    result = sync.push_due()
    state = sync.status()
    if not result["enabled"]:
        click.echo(f"sync is off: {state['reason']}")
    else:
        click.echo(f"{result['synced']} entries synced in {result['batches']} batches"
                   + (f"; the endpoint failed: {state['last_error']}" if result["failed_batches"] else ""))
    click.echo("status: " + ", ".join(f"{k} {v}" for k, v in state["counts"].items()))


@accounting.command("accounts")
@with_appcontext
def accounts_command():
    """Show the chart of accounts and the VAT rates."""
    from .settings import current, rate_key

    settings = current()
    for role, account in settings.accounts.items():
        click.echo(f"{role:24} {account}")
    click.echo(f"VAT: default {rate_key(settings.default_rate)} %, shipping {rate_key(settings.shipping_rate)} %"
               + "".join(f", {p} {rate_key(r)} %" for p, r in settings.rate_overrides))
