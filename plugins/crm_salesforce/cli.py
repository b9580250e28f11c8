"""``hookshop crm ...``: sync (backfill, resumable), pull (VIP flags from Salesforce), status."""

from __future__ import annotations

import sys
from datetime import date

import click
from flask.cli import with_appcontext


def _date(_ctx, _param, value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.group("crm")
def crm():
    """Customers and orders mirrored to Salesforce (crm_salesforce)."""


@crm.command("sync")
@click.option("--since", required=True, callback=_date, help="customers and orders changed since, YYYY-MM-DD")
@click.option("--restart", is_flag=True, help="start over instead of resuming after the last page done")
@click.option("--progress/--no-progress", default=True, help="show a progress bar (on standard error)")
@with_appcontext
def sync_command(since, restart, progress):
    """Backfill: push every customer and order changed since a date, 200 records per call; resumable."""
    from . import backfill
    from .sync import SyncDeferred

    checkpoint, left = backfill.plan(since, restart)
    if checkpoint.get("done"):
        click.echo(f"the backfill since {since} is done; --restart runs it again")
        return
    if checkpoint.get("after_id"):
        click.echo(f"resuming after {checkpoint['kind']} {checkpoint['after_id']}: {left} records left")
    try:
        if progress:
            with click.progressbar(length=left, label=f"syncing {left} records", file=sys.stderr,
                                   show_pos=True) as bar:
                result = backfill.backfill(since, restart=restart, progress=bar.update)
        else:
            result = backfill.backfill(since, restart=restart)
    except SyncDeferred as exc:
        click.echo(f"stopped: {exc}. Run the same command again to resume.", err=True)
        sys.exit(1)
    click.echo(f"{result['records']} records in {result['calls']} calls: {result['synced']} synced, "
               f"{result['error']} refused (hookshop crm status, GET /api/v1/crm/salesforce/sync?status=error)")


@crm.command("pull")
@with_appcontext
def pull_command():
    """Pull Contacts' VIP flags changed in Salesforce since the last pull into the customer profiles."""
    from . import backfill
    from .client import Retryable

    try:
        result = backfill.pull()
    except Retryable as exc:
        click.echo(f"Salesforce could not be read: {exc}. Nothing changed; run again later.", err=True)
        sys.exit(1)
    except ValueError as exc:  # the mapping leaves the Contact's vip field out
        raise click.UsageError(str(exc)) from None
    click.echo(f"{result['contacts']} contacts read, {result['changed']} customer profiles changed"
               + (f", {result['unknown']} not hookshop's" if result["unknown"] else ""))


@crm.command("status")
@click.option("--limits/--no-limits", default=True, help="ask Salesforce for the API requests left today")
@with_appcontext
def status_command(limits):
    """The sync status per state, the last errors and (optionally) the org's API requests left."""
    from sqlalchemy import select

    from engine.plugin_api import db

    from . import sync
    from .client import Retryable
    from .models import SyncRecord

    counts = sync.counts()
    click.echo("records: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for row in db.session.execute(select(SyncRecord).where(SyncRecord.status == "error")
                                  .order_by(SyncRecord.id.desc()).limit(10)).scalars():
        click.echo(f"  error {row.kind} {row.hookshop_id}: {row.last_error}")
    if limits:
        try:
            daily = sync.connection().limits().get("DailyApiRequests") or {}
            click.echo(f"API requests left today: {daily.get('Remaining')} of {daily.get('Max')}")
        except Retryable as exc:
            click.echo(f"the limits could not be read: {exc}")
