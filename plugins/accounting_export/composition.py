"""The sale's composition: what revenue, discounts, shipping and VAT per rate an order's total is made of, from
the configured rates or from the tax figures a channel gave. Pure: reads the order and the settings, writes
nothing."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from .settings import Settings, net_of, rate_key


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, exactly (largest remainders get the odd units)."""
    whole = sum(weights)
    if not weights:
        return []
    if whole == 0:
        return [total] + [0] * (len(weights) - 1)
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:rest]:
        shares[i] += 1
    return shares


# the orders whose tax the channel told us (``tax_status``): booked from their own figures
CHANNEL_TAXED = ("exclusive", "inclusive")


def _percent_key(rate: str | None, settings: Settings) -> str:
    """A tax line's rate (a decimal fraction, ``"0.19"``) as the journal's rate key (``"19"``)."""
    if rate in (None, ""):
        return rate_key(settings.default_rate)  # a tax the platform charged without saying its rate
    return rate_key(Decimal(rate) * 100)


def _implied_bases(vat: dict[str, int]) -> dict[str, int]:
    """The net each rate's tax was charged on (tax × 100 / rate): the weights of the net per rate."""
    return {key: int(amount * 100 / Decimal(key)) if Decimal(key) else 0 for key, amount in vat.items()}


def _channel_vat(order, settings: Settings) -> tuple[dict[str, int], dict[str, int]] | None:
    """The VAT per rate of a channel order from its own tax figures, and the shipping's part of it; None
    when the channel gave none (the configured rates apply)."""
    status = order.tax_status
    if status == "none":
        return {}, {}
    if status not in CHANNEL_TAXED or not order.tax_lines:
        return None
    vat: dict[str, int] = defaultdict(int)
    shipping_vat: dict[str, int] = defaultdict(int)
    for line in order.tax_lines:
        key = _percent_key(line.get("rate"), settings)
        vat[key] += int(line.get("amount") or 0)
        shipping_vat[key] += int(line.get("shipping_amount") or 0)
    off = order.tax_total - sum(vat.values())
    if off:  # tax lines that do not add up to the order's tax: the rest at the largest line's rate
        vat[max(vat, key=lambda k: (vat[k], k))] += off
    return {k: v for k, v in vat.items() if v}, {k: v for k, v in shipping_vat.items() if v}


def channel_composition(order, settings: Settings) -> list[list] | None:
    """The sale from the order's own tax figures, when the channel gave them (``tax_status`` ``none``,
    or ``exclusive``/``inclusive`` with ``tax_lines``); None otherwise (the configured rates apply).

    VAT per rate is the platform's tax lines (their ``shipping_amount`` is the shipping's part); the net is
    what is left: ``total - tax``, shipping net of its tax when prices include it, the discount's net in
    proportion. The net parts carry the rates in proportion to the tax each rate was charged on."""
    own = _channel_vat(order, settings)
    if own is None:
        return None
    vat, shipping_vat = own
    tax = sum(vat.values())
    inclusive = order.prices_include_tax
    shipping_tax = sum(shipping_vat.values())
    shipping_net = order.shipping_total - (shipping_tax if inclusive else 0)
    goods_net = order.total - tax - shipping_net  # after the discount
    goods_vat = {k: vat[k] - shipping_vat.get(k, 0) for k in vat}
    discount = order.discount_total
    if inclusive and discount and order.subtotal - discount > 0:
        # the discount contained tax like the prices: its net in the proportion of the lines' net to gross
        discount_net = int((Decimal(discount) * goods_net / (order.subtotal - discount))
                           .quantize(Decimal(1), rounding=ROUND_HALF_UP))
    else:
        discount_net = discount
    parts: dict[tuple[str, str], int] = defaultdict(int)

    def spread(role: str, amount: int, bases: dict[str, int], whole: int, count: int) -> None:
        # rates in proportion to the net they taxed; what no tax line explains is at 0 % (an untaxed gift
        # card), unless it is only the rounding of the tax amounts the bases came from (half a minor unit
        # per line and rate, × 100 / rate)
        weights = {k: v for k, v in bases.items() if v}
        rest = whole - sum(weights.values())
        tolerance = sum(math.ceil(Decimal(50 * count) / Decimal(k)) for k in weights)
        if not weights:
            weights["0"] = 1
        elif rest > tolerance:
            weights["0"] = weights.get("0", 0) + rest
        keys = list(weights)
        for key, share in zip(keys, allocate(amount, [weights[k] for k in keys]), strict=True):
            parts[(role, key)] += share

    goods_bases = _implied_bases(goods_vat)
    count = len(order.lines) + len(order.non_stock_lines or []) + 1
    spread("sales", goods_net + discount_net, goods_bases, goods_net, count)
    if discount_net:
        spread("discounts", -discount_net, goods_bases, goods_net, count)
    if order.shipping_total:
        if shipping_vat:
            spread("shipping", shipping_net, _implied_bases(shipping_vat), shipping_net, 1)
        else:  # the channel did not say which of its tax was the shipping's: like the goods
            spread("shipping", shipping_net, goods_bases, goods_net, count)
    for key, amount in vat.items():
        parts[("vat", key)] += amount
    return [[role, rate, amount] for (role, rate), amount in parts.items() if amount]


def line_rate(order, settings: Settings, sku: str) -> str | None:
    """The VAT rate a receipt shows on a line: the configured one, or for an order booked from its own
    tax figures the platform's rate when there is one (several rates: None, the tax table says it all)."""
    if order.tax_status == "none":
        return "0"
    if order.tax_status in CHANNEL_TAXED and order.tax_lines:
        rates = {_percent_key(line.get("rate"), settings) for line in order.tax_lines if line.get("amount")}
        return rates.pop() if len(rates) == 1 else None
    return rate_key(settings.rate_for(sku))


def composition(order, settings: Settings) -> list[list]:
    """The sale seen from revenue: ``[[role, tax_rate, amount], ...]`` (credits positive), summing to
    ``order.total``. A channel order that carries its own tax figures is booked from them
    (``channel_composition``). Otherwise lines are grouped by VAT rate; the discount is spread over the
    rates in proportion to their gross; shipping carries the shipping rate."""
    own = channel_composition(order, settings)
    if own is not None:
        off = order.total - sum(amount for _, _, amount in own)
        if off:  # never let a mismatch unbalance the books
            own.append(["sales", "0", off])
        return own
    groups: dict[str, int] = {}
    for line in order.lines:
        key = rate_key(settings.rate_for(line.sku))
        groups[key] = groups.get(key, 0) + line.unit_price * line.quantity
    rates = list(groups)
    discounts = dict(zip(rates, allocate(min(order.discount_total, sum(groups.values())),
                                         [groups[r] for r in rates]), strict=True))
    parts: dict[tuple[str, str], int] = {}

    def add(role: str, rate: str, amount: int) -> None:
        parts[(role, rate)] = parts.get((role, rate), 0) + amount

    if order.tax_total:
        # a channel that charged tax on top of its (net) prices: the tax it charged is split over the rates
        ship_rate = rate_key(settings.shipping_rate)
        bases = {rate: groups[rate] - discounts[rate] for rate in rates}
        for rate in rates:
            add("sales", rate, groups[rate])
            add("discounts", rate, -discounts[rate])
        if order.shipping_total:
            add("shipping", ship_rate, order.shipping_total)
            bases[ship_rate] = bases.get(ship_rate, 0) + order.shipping_total
        keys = list(bases)
        weights = [int(bases[k] * Decimal(k) * 100) for k in keys]
        if not any(weights):
            keys, weights = [rate_key(settings.default_rate)], [1]
        for key, tax in zip(keys, allocate(order.tax_total, weights), strict=True):
            add("vat", key, tax)
        groups = {}
    for rate, gross in groups.items():
        discount = discounts[rate]
        full = net_of(gross, Decimal(rate))
        after = net_of(gross - discount, Decimal(rate))
        add("sales", rate, full)
        add("discounts", rate, -(full - after))
        add("vat", rate, gross - discount - after)
    if order.shipping_total and not order.tax_total:
        rate = rate_key(settings.shipping_rate)
        net = net_of(order.shipping_total, Decimal(rate))
        add("shipping", rate, net)
        add("vat", rate, order.shipping_total - net)
    off = order.total - sum(parts.values())
    if off:  # the core's totals always add up; never let a mismatch unbalance the books
        add("sales", rate_key(settings.default_rate), off)
    return [[role, rate, amount] for (role, rate), amount in parts.items() if amount]
