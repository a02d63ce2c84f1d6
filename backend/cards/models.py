"""What Rochdale keeps about card payments: each rider's Stripe customer, the card holds of trips, and the
processor's webhook events.

No card number ever reaches us: the app hands the card to Stripe with a SetupIntent's client secret, and we
keep only Stripe's ids plus the brand and last four digits it reports. Money itself is recorded in the
ledger (backend/fares/ledger.py) and collected by `PaymentCapture` rows (backend/fares/payments.py); a hold
here is workflow state that lets a capture take the fare from money already authorised.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.fares.money import minor_to_decimal


class StripeCustomer(models.Model):
    """The rider's customer at Stripe, created once (with an idempotency key derived from the rider)."""

    rider = models.OneToOneField(
        "accounts.User", on_delete=models.PROTECT, primary_key=True, related_name="stripe_customer"
    )
    customer_id = models.CharField(max_length=64, unique=True)
    default_payment_method_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.customer_id} (rider {self.rider_id})"


class HoldStatus(models.TextChoices):
    AUTHORIZING = "authorizing", gettext_lazy("Authorising (the request to Stripe is in flight)")
    AUTHORIZED = "authorized", gettext_lazy("Authorised (funds held, not captured)")
    DECLINED = "declined", gettext_lazy("Declined by the card's issuer")
    CAPTURED = "captured", gettext_lazy("Captured (the rest released)")
    RELEASED = "released", gettext_lazy("Released (cancelled at Stripe, nothing taken)")
    EXPIRED = "expired", gettext_lazy("Expired or cancelled at Stripe before capture")


class CardHold(models.Model):
    """An authorisation (a manual-capture PaymentIntent) for a trip's quoted total plus the board's margin.

    Written (`authorizing`) before Stripe is called, so the idempotency key (derived from this row's id)
    exists before the money does and a retried request never holds twice; the trip is attached once it is
    created. A hold whose request failed or whose trip ended without a charge is released; one whose trip
    never got created is released by the sweep (`holds_release_due`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rider = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    trip = models.OneToOneField(
        "dispatch.Trip", on_delete=models.PROTECT, null=True, blank=True, related_name="card_hold"
    )
    status = models.CharField(max_length=12, choices=HoldStatus.choices, default=HoldStatus.AUTHORIZING)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    payment_intent_id = models.CharField(max_length=64, blank=True, default="")
    payment_method_id = models.CharField(max_length=64, blank=True, default="")
    card_brand = models.CharField(max_length=24, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    captured_minor = models.BigIntegerField(default=0)
    captured_by = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The capture the hold was captured for: a hold serves one.",
    )
    over_authorization_minor = models.BigIntegerField(
        default=0,
        help_text="What the final charge exceeded the hold by, charged as a second intent (flagged).",
    )
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="card_hold_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=HoldStatus.values), name="card_hold_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="card_hold_due")]

    def __str__(self) -> str:
        return f"hold of {minor_to_decimal(self.amount_minor, self.currency)} {self.currency} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        """The key of the authorisation at Stripe: one hold, one PaymentIntent, however often retried."""
        return f"rochdale:hold:{self.id}"


class WebhookEvent(models.Model):
    """A Stripe event as received (signature verified), processed once: the event id is the primary key,
    so a delivery repeated by Stripe finds the row and does nothing. Append-only but for the processing
    stamp, which the handler sets once under the row's lock."""

    event_id = models.CharField(max_length=80, primary_key=True)
    type = models.CharField(max_length=80)
    created = models.DateTimeField(help_text="When Stripe created the event (not when it reached us).")
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    deliveries = models.PositiveIntegerField(default=1)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        triggers = [pgtrigger.Protect(name="webhook_events_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
