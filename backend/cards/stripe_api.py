"""The one place the Stripe SDK is configured, and how its errors read to the payment machinery.

Settings: `STRIPE_API_KEY` (a secret key), `STRIPE_API_BASE` (default Stripe's own API; tests and staging
point it at localstripe), `STRIPE_WEBHOOK_SECRET` (the endpoint's signing secret), `STRIPE_PUBLISHABLE_KEY`
(handed to the apps with a SetupIntent). Calls never retry inside the SDK: a retry is the capture
machinery's decision (backend/fares/payments.py), made with the same idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_TIMEOUT_S = 20.0


class StripeKeyMissing(ImproperlyConfigured, stripe.StripeError):
    """No `STRIPE_API_KEY` where the co-op takes cards. A misconfiguration, and also a Stripe call that
    could not be made: every adapter path that handles Stripe's errors degrades on it as on an outage
    (nothing was charged, nothing is the rider's fault), and rider-facing card routes answer 503."""


def stripe_client(*, timeout_s: float = DEFAULT_TIMEOUT_S) -> stripe.StripeClient:
    """A client for the configured account, giving up after `timeout_s` and never retrying by itself.
    Raises StripeKeyMissing without a key."""
    api_key = settings.STRIPE_API_KEY
    if not api_key:
        raise StripeKeyMissing("STRIPE_API_KEY is not set; card payments need the co-op's Stripe key.")
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": settings.STRIPE_API_BASE or DEFAULT_API_BASE},
        max_network_retries=0,
        http_client=stripe.HTTPXClient(timeout=timeout_s, allow_sync_methods=True),
    )


@dataclass(frozen=True)
class StripeFailure:
    """A Stripe error as the capture machinery needs it: `definitive` when Stripe processed the request
    and refused it (the next attempt is a new charge, with a new key); not definitive when the outcome is
    unknown (network, timeout, Stripe's own 5xx, rate limits, a key still in use), so the retry repeats the
    key. `decline_code`/`code` are Stripe's, for the rider's message and staff."""

    message: str
    definitive: bool
    code: str = ""
    http_status: int | None = None


def stripe_failure(error: stripe.StripeError) -> StripeFailure:
    code = getattr(error, "code", None) or ""
    decline = getattr(error, "decline_code", None) or ""
    status = getattr(error, "http_status", None)
    message = f"stripe: {type(error).__name__}: {error.user_message or str(error)}"[:480]
    unknown_outcome = isinstance(
        error,
        stripe.APIConnectionError | stripe.RateLimitError | stripe.IdempotencyError | stripe.APIError,
    ) or (status is not None and status >= 500)
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError | StripeKeyMissing):
        unknown_outcome = True  # our key is wrong or gone: nothing was charged, nothing is the rider's fault
    return StripeFailure(
        message=message, definitive=not unknown_outcome, code=decline or code, http_status=status
    )


def object_id(value: object) -> str:
    """An expandable field's id: Stripe sends either the id or the whole object (localstripe always the
    object)."""
    if isinstance(value, str):
        return value
    return str(getattr(value, "id", "") or "")


def rochdale_id(metadata: Mapping[str, object] | None, name: str) -> uuid.UUID | None:
    """One of our ids that we put in a Stripe object's metadata (`rochdale_hold`, `rochdale_capture`), or
    None when it is missing or not an id of ours (metadata can be edited in Stripe's dashboard)."""
    raw = (metadata or {}).get(name)
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def amount_taken(intent: Mapping[str, object]) -> int:
    """What a PaymentIntent captured, before any refund: Stripe's `amount_received`. localstripe has no such
    field and captures less by refunding the rest untagged, so there it is its charge's amount less the
    refunds that carry no metadata."""
    received = intent.get("amount_received")
    if received is not None:
        return int(received)
    charge = intent.get("latest_charge")
    if intent.get("status") != "succeeded" or not isinstance(charge, Mapping):
        return 0
    refunds = (charge.get("refunds") or {}).get("data") or []
    released = sum(int(refund.get("amount") or 0) for refund in refunds if not refund.get("metadata"))
    return int(charge.get("amount") or 0) - released


def amount_refundable(intent: Mapping[str, object]) -> int:
    """What a PaymentIntent's charge can still give back: what it captured less what was refunded (Stripe's
    `amount_captured`; localstripe has none and counts its release of an uncaptured rest as refunded)."""
    charge = intent.get("latest_charge")
    if intent.get("status") != "succeeded" or not isinstance(charge, Mapping):
        return 0
    captured = charge.get("amount_captured")
    kept = int(captured if captured is not None else charge.get("amount") or 0)
    return max(kept - int(charge.get("amount_refunded") or 0), 0)
