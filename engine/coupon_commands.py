"""``hookshop coupons list|create|disable``: the coupons of the table, through the services the REST API calls
(one transaction each). The input is checked by the API's own schema, so both refuse the same things."""

from __future__ import annotations

import click
import marshmallow as ma
from flask.cli import with_appcontext

from engine.errors import DomainError


def _line(c) -> str:
    value = {"percentage": f"{c.value}%", "fixed_amount": f"{c.value} {c.currency} minor units",
             "free_shipping": "free shipping"}[c.kind]
    limit = "no limit" if c.usage_limit is None else f"{c.used_count}/{c.usage_limit} used"
    per = f", {c.per_customer_limit} per customer" if c.per_customer_limit else ""
    dates = ""
    if c.valid_from or c.valid_until:
        dates = f", valid {c.valid_from.date() if c.valid_from else '…'} to {c.valid_until.date() if c.valid_until else '…'}"
    return f"{c.code}\t{value}\tcoupon:{c.category}\t{limit}{per}{dates}\t{'active' if c.active else 'disabled'}"


@click.group("coupons")
def coupons_group():
    """Coupons: list, create, disable (the COUPONS setting's coupons are a fallback and not listed)."""


@coupons_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="disabled coupons too")
@with_appcontext
def list_command(show_all):
    """The coupons, newest first: code, value, flag, uses, state (tab separated)."""
    from engine.services import coupons

    cursor = None
    while True:
        items, cursor = coupons.list_coupons(active=None if show_all else True, limit=500, cursor=cursor)
        for coupon in items:
            click.echo(_line(coupon))
        if cursor is None:
            break


@coupons_group.command("create")
@click.argument("code")
@click.option("--kind", required=True, type=click.Choice(["percentage", "fixed_amount", "free_shipping"]))
@click.option("--value", type=int, help="percentage: 1 to 100; fixed_amount: minor units (1000 = 10.00 EUR)")
@click.option("--currency", help="required for fixed_amount")
@click.option("--category", help="the order's flag is coupon:<category> (default: the code in lower case)")
@click.option("--valid-from", help="ISO 8601, e.g. 2026-12-01T00:00:00+00:00 (no zone: UTC)")
@click.option("--valid-until", help="ISO 8601")
@click.option("--usage-limit", type=int, help="uses in total")
@click.option("--per-customer-limit", type=int, help="uses per customer (by e-mail)")
@with_appcontext
def create_command(code, **options):
    """Create a coupon CODE (unique in any letter case)."""
    from engine.api.customer_schemas import CouponIn
    from engine.services import coupons

    body = {"code": code, **{k: v for k, v in options.items() if v is not None}}
    try:
        data = CouponIn().load(body)
        coupon = coupons.create_coupon(data)
    except ma.ValidationError as exc:
        problems = "; ".join(f"--{k.replace('_', '-')}: {', '.join(map(str, v))}" for k, v in exc.messages.items())
        raise click.ClickException(f"the coupon is not valid: {problems}") from exc
    except DomainError as exc:
        details = "; ".join(f"--{k.replace('_', '-')}: {', '.join(map(str, v))}" for k, v in exc.errors.items())
        raise click.ClickException(f"{exc.message}{' (' + details + ')' if details else ''}") from exc
    click.echo(f"coupon {coupon.code} created")
    click.echo(_line(coupon))


@coupons_group.command("disable")
@click.argument("code")
@with_appcontext
def disable_command(code):
    """Disable coupon CODE: orders with it are refused from now on (its uses stay counted)."""
    from engine.services import coupons

    try:
        coupon = coupons.disable_coupon(code)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"coupon {coupon.code} disabled")
