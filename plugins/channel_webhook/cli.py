"""``hookshop channels ...`` and ``hookshop webhooks ...``."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from engine.plugin_api import DomainError


def _fail(exc: DomainError):
    details = f" {json.dumps(exc.errors)}" if exc.errors else ""
    raise click.ClickException(f"{exc.message}{details}")


def _sku_map(pairs, path):
    sku_map = {}
    if path:
        with open(path, encoding="utf-8") as fh:
            loaded = json.load(fh)
        if not isinstance(loaded, dict):
            raise click.BadParameter("the file must hold a JSON object {channel sku or id: our sku}")
        sku_map.update({str(k): v for k, v in loaded.items()})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: write CHANNEL_SKU_OR_ID=OUR_SKU")
        sku_map[key.strip()] = value.strip()
    return sku_map


# --------------------------------------------------------------------------- channels


@click.group("channels")
def channels_group():
    """Sales channels that push orders through signed webhooks."""


@channels_group.command("add")
@click.argument("name")
@click.option("--format", "fmt", required=True, help="generic, shopify or woocommerce")
@click.option("--secret", help="the signing secret (generic: generated when left out)")
@click.option("--map", "pairs", multiple=True, metavar="CHANNEL_SKU=SKU", help="an entry of the sku map (repeat)")
@click.option("--sku-map-file", type=click.Path(exists=True, dir_okay=False), help="a JSON object of the sku map")
@click.option("--payment-provider", default="manual", show_default=True)
@click.option("--payment-status", type=click.Choice(["auto", "paid", "unpaid"]), default="auto", show_default=True)
@with_appcontext
def add_channel(name, fmt, secret, pairs, sku_map_file, payment_provider, payment_status):
    """Configure a channel; its webhook URL is /api/v1/channels/NAME/orders."""
    from plugins.channel_webhook import channels

    data = {"name": name, "format": fmt, "sku_map": _sku_map(pairs, sku_map_file),
            "payment_provider": payment_provider, "payment_status": payment_status}
    if secret:
        data["secret"] = secret
    try:
        channel, generated = channels.create_channel(data)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"channel {channel.name} ({channel.format}): POST /api/v1/channels/{channel.name}/orders")
    if generated:
        click.echo("signing secret (shown once):")
        click.echo(generated)


@channels_group.command("list")
@with_appcontext
def list_channels():
    """The channels, with their rejected deliveries."""
    from plugins.channel_webhook import channels

    rows = [channels.channel_out(c) for c in channels.list_channels()]
    if not rows:
        click.echo("no channels (add one with 'hookshop channels add')")
    for row in rows:
        click.echo(f"{row['name']:<20} {row['format']:<12} payment {row['payment_provider']}/{row['payment_status']}"
                   f"  sku map {len(row['sku_map'])} entries  rejected deliveries {row['rejected_deliveries']}")


@channels_group.command("rotate-secret")
@click.argument("name")
@click.option("--secret", help="the new secret (generic: generated when left out)")
@click.option("--keep-previous-hours", type=click.IntRange(0, 720), default=24, show_default=True)
@with_appcontext
def rotate_channel_secret(name, secret, keep_previous_hours):
    """Accept a new signing secret; the old one stays valid for a while."""
    from plugins.channel_webhook import channels

    try:
        _channel, generated = channels.rotate_secret(name, secret, keep_previous_hours)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"channel {name}: new secret in use; the previous one is accepted for {keep_previous_hours} h")
    if generated:
        click.echo(generated)


@channels_group.command("reconcile")
@click.argument("name")
@click.argument("export", type=click.File("r", encoding="utf-8-sig"))
@click.option("--id-column", help="the column or key holding the channel's order id (default: id, external_id, "
                                  "order_id, Order ID)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@with_appcontext
def reconcile(name, export, id_column, as_json):
    """List the orders of a channel's export file (CSV or JSON) that never arrived here."""
    from plugins.channel_webhook import channels

    try:
        result = channels.reconcile(name, export.read(), id_column)
    except DomainError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    click.echo(f"{result['exported']} orders in the export, {result['present']} here, "
               f"{len(result['missing'])} missing")
    for item in result["missing"]:
        info = "  ".join(f"{k}={v}" for k, v in item.items() if k not in ("external_id", "last_refusal"))
        refusal = f"  last refusal: {item['last_refusal']}" if item["last_refusal"] else ""
        click.echo(f"missing {item['external_id']}  {info}{refusal}".rstrip())


# --------------------------------------------------------------------------- webhooks


@click.group("webhooks")
def webhooks_group():
    """Outbound webhook subscriptions and their delivery log."""


@webhooks_group.command("subscribe")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True, help="an event (repeat), or * for every event")
@click.option("--description")
@with_appcontext
def subscribe(url, events, description):
    """Subscribe URL to events; prints the signing secret (shown once) as the last line."""
    from plugins.channel_webhook import outbound

    try:
        sub, secret = outbound.create_subscription(url, list(events), description)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"subscription {sub.id}: {sub.url} <- {', '.join(sub.events)}")
    click.echo(secret)


@webhooks_group.command("list")
@with_appcontext
def list_subscriptions():
    """The subscriptions, disabled ones with the reason."""
    from plugins.channel_webhook import outbound

    subs = outbound.list_subscriptions()
    if not subs:
        click.echo("no subscriptions (add one with 'hookshop webhooks subscribe')")
    for sub in subs:
        counts = outbound.counts_by_status(sub.id)
        state = sub.status if sub.status == "active" else f"DISABLED ({sub.disabled_reason})"
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no deliveries"
        click.echo(f"{sub.id:>4}  {sub.url}  [{', '.join(sub.events)}]  {state}  {summary}")


@webhooks_group.command("enable")
@click.argument("subscription_id", type=int)
@with_appcontext
def enable(subscription_id):
    """Enable a disabled subscription again."""
    from plugins.channel_webhook import outbound

    try:
        outbound.update_subscription(subscription_id, {"active": True})
    except DomainError as exc:
        _fail(exc)
    click.echo(f"subscription {subscription_id} is active")


@webhooks_group.command("deliveries")
@click.option("--subscription", type=int)
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "failed", "cancelled"]))
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@with_appcontext
def deliveries(subscription, status, limit):
    """The delivery log, newest first."""
    from plugins.channel_webhook import outbound

    rows, _ = outbound.list_deliveries(subscription=subscription, status=status, limit=limit)
    for d in rows:
        code = d.last_status_code if d.last_status_code is not None else "-"
        click.echo(f"{d.id:>6}  sub {d.subscription_id}  {d.event_type:<24} {d.status:<10} attempts {d.attempts}  "
                   f"last {code} {d.last_duration_ms or 0} ms  {d.last_error or ''}".rstrip())


@webhooks_group.command("redeliver")
@click.argument("delivery_id", type=int)
@with_appcontext
def redeliver(delivery_id):
    """Send a delivery again now (same webhook-id)."""
    from plugins.channel_webhook import outbound

    try:
        delivery = outbound.redeliver(delivery_id)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"delivery {delivery.id}: {delivery.status} (HTTP {delivery.last_status_code}, "
               f"{delivery.last_error or 'ok'})")
    if delivery.status != "delivered":
        raise SystemExit(1)
