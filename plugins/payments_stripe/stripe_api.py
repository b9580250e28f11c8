"""Stripe's API through the official SDK: amounts in Stripe's units (ISO 4217 minor units with Stripe's own
exceptions), the configured client, reads, and Stripe's errors as sentences (``StripeUnavailable``: try again
later; ``StripeRefused``: not a decline, the message says why)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import overload

import stripe

from engine.plugin_api import (
    ValidationFailed,
    currency_code,
    exponent,
    format_money,
)

from .settings import SETTINGS

EXPAND = ["latest_charge.balance_transaction"]  # the fee, when Stripe knows it


class StripeUnavailable(Exception):
    """Stripe could not be reached, was rate limiting, or failed inside: try again later."""


class StripeRefused(Exception):
    """Stripe refused the request (not a decline): the message says why."""


# Stripe's API counts amounts in each currency's minor unit, with two exceptions it keeps for
# backwards compatibility (https://docs.stripe.com/currencies#special-cases): ISK has no minor
# unit in ISO 4217 but is two-decimal in Stripe's API (whole krónur only: multiples of 100), and
# MGA has two in ISO 4217 but is zero-decimal at Stripe. Every other currency, zero-decimal ones
# (JPY, KRW, ...) and three-decimal ones (KWD, BHD, ...) included, is sent as it is stored.
STRIPE_EXPONENTS = {"ISK": 2, "MGA": 0}


def _exponents(currency: str) -> tuple[int, int]:
    ours = exponent(currency)
    return ours, STRIPE_EXPONENTS.get(currency_code(currency), ours)


def to_stripe(amount: int, currency: str) -> int:
    """Our minor units -> the ``amount`` Stripe expects; ``ValidationFailed`` when Stripe cannot charge it.

    Stripe takes three-decimal currencies (KWD, BHD, JOD, OMR, TND) only with a last digit of 0."""
    ours, theirs = _exponents(currency)
    if ours == 3 and amount % 10:
        raise ValidationFailed(
            f"Stripe charges {currency_code(currency)} only in multiples of 10 minor units: "
            f"{format_money(amount, currency)} cannot be charged",
            errors={"amount": [f"{currency_code(currency)} amounts at Stripe end in 0 (e.g. "
                               f"{format_money(amount - amount % 10, currency)})"]})
    if theirs >= ours:
        return amount * 10 ** (theirs - ours)
    whole, rest = divmod(amount, 10 ** (ours - theirs))
    if rest:
        raise ValidationFailed(
            f"Stripe charges {currency_code(currency)} in whole units only: "
            f"{format_money(amount, currency)} cannot be charged",
            errors={"amount": [f"whole {currency_code(currency)} only at Stripe"]})
    return whole


@overload
def from_stripe(amount: int, currency: str) -> int: ...


@overload
def from_stripe(amount: None, currency: str) -> None: ...


def from_stripe(amount: int | None, currency: str) -> int | None:
    """A Stripe ``amount`` -> our minor units (rounded half up where Stripe's unit is finer)."""
    if amount is None:
        return None
    ours, theirs = _exponents(currency)
    if ours >= theirs:
        return amount * 10 ** (ours - theirs)
    factor = 10 ** (theirs - ours)
    return (amount + factor // 2) // factor


def capture_method() -> str:
    return SETTINGS.get("CAPTURE")


def payment_method_types() -> list[str]:
    return SETTINGS.get("PAYMENT_METHOD_TYPES")


@contextmanager
def stripe_client():
    """A client for one call of the provider, with the configured API base (a fresh HTTP session)."""
    http = stripe.RequestsClient(timeout=SETTINGS.get("TIMEOUT") or 30)
    options = {"max_network_retries": SETTINGS.get("MAX_NETWORK_RETRIES"), "http_client": http}
    if SETTINGS.get("API_BASE"):
        options["base_addresses"] = {"api": SETTINGS.get("API_BASE").rstrip("/")}
    try:
        yield stripe.StripeClient(SETTINGS.get("SECRET_KEY"), **options)
    finally:
        http.close()


def describe(exc: stripe.StripeError) -> str:
    """A sentence for the order's timeline and the API error."""
    if isinstance(exc, stripe.APIConnectionError):
        text = str(exc)
        if "refused" in text:
            why = "connection refused"
        elif "imed out" in text or "Timeout" in text:
            why = "the request timed out"
        elif "aborted" in text or "Disconnected" in text or "reset" in text:
            why = "the connection was dropped before Stripe answered"
        else:
            why = "network error"
        return (f"Stripe could not be reached ({why}); try again later: the retry reuses the same "
                "idempotency key, so nothing is charged twice")
    if isinstance(exc, stripe.RateLimitError):
        return "Stripe is rate limiting requests (HTTP 429); try again in a moment"
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe rejected the API key: check HOOKSHOP_STRIPE_SECRET_KEY"
    if isinstance(exc, stripe.CardError):
        code = "/".join(c for c in (exc.code, getattr(exc.error, "decline_code", None) if exc.error else None) if c)
        return f"card declined: {exc.user_message or 'the card was declined'}" + (f" ({code})" if code else "")
    if isinstance(exc, stripe.APIError):
        return f"Stripe failed internally (HTTP {exc.http_status}); try again later"
    return f"Stripe refused the request: {exc.user_message or exc} (HTTP {exc.http_status})"


def read(call):
    """A read (retrieve, list): its answer as plain dicts, or StripeUnavailable / StripeRefused."""
    try:
        return call().to_dict()
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise StripeUnavailable(describe(exc)) from exc
    except stripe.StripeError as exc:
        raise StripeRefused(describe(exc)) from exc


def retrieve_intent(client, pi_id: str) -> dict:
    return read(lambda: client.v1.payment_intents.retrieve(pi_id, params={"expand": EXPAND}))


def list_refunds(client, pi_id: str) -> list[dict]:
    return read(lambda: client.v1.refunds.list(params={"payment_intent": pi_id, "limit": 100}))["data"]
