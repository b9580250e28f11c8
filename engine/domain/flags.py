"""Special-order flags computed at placement; plugins add more through ``order_flags``."""

from __future__ import annotations

VIP, GIFT, REPEAT, REPLACEMENT = "vip", "gift", "repeat", "replacement"
# what a channel order lacks or what does not add up: accepted, and flagged for staff to look at
NO_EMAIL, REVIEW_ADDRESS, REVIEW_TOTALS = "no_email", "review:address", "review:totals"
MAX_LENGTH = 100  # the order_flags column; a longer flag is dropped, not stored cut short


def core_flags(*, previous_orders: int, is_vip: bool, gift: bool, coupon_category: str | None,
               replacement: bool = False) -> list[str]:
    flags = []
    if is_vip:
        flags.append(VIP)
    if gift:
        flags.append(GIFT)
    if replacement:
        flags.append(REPLACEMENT)
    if coupon_category:
        flags.append(f"coupon:{coupon_category}")
    if previous_orders > 0:
        flags.append(REPEAT)
    return flags


def merge(flags: list[str], extra) -> list[str]:
    """Add plugin flags (strings, or lists of strings) keeping order and uniqueness; flags that are
    not strings of 1 to ``MAX_LENGTH`` characters are left out."""
    out: list[str] = []
    for item in [flags, *extra]:
        for flag in [item] if isinstance(item, str) else (item or []):
            if isinstance(flag, str) and 0 < len(flag) <= MAX_LENGTH and flag not in out:
                out.append(flag)
    return out
