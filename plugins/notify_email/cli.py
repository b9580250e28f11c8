"""``hookshop notifications list|retry``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .models import STATUSES


@click.group("notifications")
def notifications():
    """The e-mails of notify_email: list them, retry the failed ones."""


@notifications.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="only messages with this status")
@click.option("--order", "order_id", type=int, help="only the messages of this order id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@with_appcontext
def list_command(status, order_id, limit):
    """The newest messages: id, status, attempts, template, language, recipient, last error."""
    from .api import list_messages

    items, _ = list_messages(order=order_id, status=status, limit=limit)
    if not items:
        click.echo("no messages")
    for m in items:
        click.echo(f"#{m.id:<6} {m.status:<7} {m.attempts:>2}x {m.template:<17} {m.language:<3} {m.recipient}"
                   + (f"  order {m.order_id}" if m.order_id else "")
                   + (f"  [{m.last_error.splitlines()[0][:120]}]" if m.last_error and m.status != "sent" else ""))


@notifications.command("retry")
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--dead/--no-dead", default=True, show_default=True, help="dead messages too, not only failed ones")
@with_appcontext
def retry_command(message_ids, dead):
    """Send failed (and dead) messages again now: all of them, or the ids given."""
    from .sending import retry, send_due

    count = retry(list(message_ids) or None, dead=dead)
    sent = send_due() if count else 0
    click.echo(f"{count} messages due again, {sent} tried now")
