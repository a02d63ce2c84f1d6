"""Fare policy versions (and, in ledger.py-backed models below, the money records).

A policy version is immutable: the database refuses UPDATE and DELETE. The one in force at an instant is the
version with the latest `effective_at` not after it (the highest version number breaks a tie).
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.fares.money import minor_to_decimal


class PolicySource(models.TextChoices):
    SEED = "seed", gettext_lazy("Seeded default")
    GOVERNANCE = "governance", gettext_lazy("Passed board proposal")
    FOUNDING = "founding", gettext_lazy("Founding board (management command)")


class FarePolicyVersion(models.Model):
    version = models.PositiveIntegerField(primary_key=True)
    effective_at = models.DateTimeField(db_index=True)
    document = models.JSONField(help_text="The contract's policy object without version and effective_at.")
    source = models.CharField(max_length=16, choices=PolicySource.choices)
    proposal_id = models.UUIDField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        triggers = [
            pgtrigger.Protect(
                name="fare_policy_versions_immutable", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=PolicySource.values), name="policy_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"fare policy v{self.version} from {self.effective_at.isoformat()}"


class AccountKind(models.TextChoices):
    """The ledger's accounts. Asset accounts grow by debits; the others grow by credits."""

    RIDER_RECEIVABLE = "rider_receivable", gettext_lazy("Rider receivable (asset)")
    CASH_CLEARING = "cash_clearing", gettext_lazy("Cash and card clearing (asset)")
    DRIVER_PAYABLE = "driver_payable", gettext_lazy("Driver payable (liability)")
    TIPS_HELD = "tips_held", gettext_lazy("Tips held for drivers (liability)")
    COOP_REVENUE = "coop_revenue", gettext_lazy("Co-op revenue (income)")
    FLOOR_TOP_UPS = "floor_top_ups", gettext_lazy("Pay-floor top-ups (expense)")
    REFUNDS = "refunds", gettext_lazy("Refunds and goodwill (expense)")
    CHARGEBACKS = "chargebacks", gettext_lazy("Card disputes and chargebacks (expense)")
    # One account per fee code (`LedgerAccount.code`): what riders paid in taxes, surcharges, funds and
    # tolls that the co-op owes on to whoever set them. Never income, never driver pay.
    PASS_THROUGH = "pass_through", gettext_lazy("Pass-through fees held for remittance (liability)")
    # One account per organisation that is billed monthly (`LedgerAccount.code` is the organisation's id):
    # what its booked trips cost, until it pays the invoice (docs/billing.md).
    ORGANISATION_RECEIVABLE = (
        "organisation_receivable",
        gettext_lazy("Organisation receivable, invoiced monthly (asset)"),
    )
    MEMBER_EQUITY = "member_equity", gettext_lazy("Member share capital (equity)")
    SHARE_SUBSCRIPTIONS = "share_subscriptions", gettext_lazy("Share subscriptions receivable (asset)")
    MEMBER_CAPITAL = "member_capital", gettext_lazy("Member capital accounts: retained patronage (equity)")
    DIVIDENDS_PAYABLE = "dividends_payable", gettext_lazy("Patronage dividends payable in cash (liability)")
    SURPLUS = "surplus", gettext_lazy("Retained surplus (equity)")


DEBIT_NORMAL_KINDS = frozenset(
    {
        AccountKind.RIDER_RECEIVABLE,
        AccountKind.ORGANISATION_RECEIVABLE,
        AccountKind.CASH_CLEARING,
        AccountKind.FLOOR_TOP_UPS,
        AccountKind.REFUNDS,
        AccountKind.CHARGEBACKS,
        AccountKind.SHARE_SUBSCRIPTIONS,
    }
)


# The kinds with one account per code: a pass-through fee's code, an organisation's id.
CODED_KINDS = (AccountKind.PASS_THROUGH.value, AccountKind.ORGANISATION_RECEIVABLE.value)


class LedgerAccount(models.Model):
    """One account of a kind, per owner where the kind is personal (a rider, a driver, a member), for
    `pass_through` per fee code (`code`, e.g. `sales_tax`: each fee the policy names has its own account),
    and for `organisation_receivable` per organisation (`code` is its id); every other kind has the empty
    code.

    An account has no balance row: its balance is the sum of its postings (`ledger.balance_minor`), so
    posting never updates, and never locks, a shared row (backend/fares/ledger.py explains the lock order).
    """

    kind = models.CharField(max_length=24, choices=AccountKind.choices)
    owner = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3)
    code = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text=(
            "The fee code of a pass_through account (the policy's fees[].code), the organisation id of an "
            "organisation_receivable account; empty for other kinds."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "owner", "currency", "code"],
                name="ledger_account_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind__in=CODED_KINDS) & ~models.Q(code="")
                    | ~models.Q(kind__in=CODED_KINDS) & models.Q(code="")
                ),
                name="ledger_account_code_iff_coded_kind",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="ledger_accounts_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        code = f":{self.code}" if self.code else ""
        return f"{self.kind}{code}:{self.owner_id or 'coop'}:{self.currency}"


class JournalEntry(models.Model):
    """One balanced movement of money. `key` makes posting idempotent (e.g. `trip:{id}:fare`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=32)
    memo = models.CharField(max_length=300, blank=True, default="")
    trip = models.ForeignKey(
        "dispatch.Trip", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reverses = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "journal entries"
        ordering = ["created_at"]
        triggers = [
            pgtrigger.Protect(
                name="journal_entries_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} · {self.key}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    debit_minor = models.BigIntegerField(default=0)
    credit_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(debit_minor__gt=0, credit_minor=0) | models.Q(debit_minor=0, credit_minor__gt=0)
                ),
                name="posting_one_positive_side",
            ),
        ]
        indexes = [models.Index(fields=["account", "entry"], name="posting_account_entry")]
        triggers = [
            pgtrigger.Protect(name="postings_append_only", operation=pgtrigger.Update | pgtrigger.Delete)
        ]

    def __str__(self) -> str:
        return f"{'debit' if self.debit_minor else 'credit'} · entry {self.entry_id}"


class CapturePurpose(models.TextChoices):
    """What a capture collects (or, for a refund payout, gives back) through the payment provider."""

    FARE = "fare", gettext_lazy("Trip fare")
    TIP = "tip", gettext_lazy("Tip")
    CANCELLATION_FEE = "cancellation_fee", gettext_lazy("Late-cancellation fee")
    REFUND = "refund", gettext_lazy("Refund payout to the rider")


class CaptureStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending (enqueued)")
    PROCESSING = "processing", gettext_lazy("Processing (a worker is talking to the provider)")
    SUCCEEDED = "succeeded", gettext_lazy("Succeeded")
    FAILED = "failed", gettext_lazy("Failed (retried with backoff while next_attempt_at is set)")
    VOIDED = "voided", gettext_lazy("Voided (refunded in full before it was captured)")


class PaymentCapture(models.Model):
    """One amount to collect from (or pay back to) a rider through the payment provider, and its attempts.

    The trip never waits for it: the row is written in the completion transaction, an attempt is enqueued
    after commit, and `retry_failed_captures` retries failures with backoff. Success posts `key` in the
    ledger (Dr cash_clearing, Cr rider_receivable; the mirror image for a refund payout). This row is
    workflow state, not money: the journal is the record of what moved.

    Every provider call carries `idempotency_key`: the same logical charge sends the same key however often
    it is retried, so a provider that deduplicates by key (Stripe's `Idempotency-Key`) charges once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(max_length=120, unique=True, help_text="The ledger key posted on success.")
    purpose = models.CharField(max_length=20, choices=CapturePurpose.choices)
    trip = models.ForeignKey(
        "dispatch.Trip", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rider = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=CaptureStatus.choices, default=CaptureStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    provider_refusals = models.PositiveIntegerField(
        default=0,
        help_text=(
            "Attempts the provider answered with a refusal. Part of the idempotency key: the attempt after a "
            "refusal is a new charge (a new key); a retry of an attempt with no answer repeats the key."
        ),
    )
    last_error = models.CharField(max_length=500, blank=True, default="")
    provider_reference = models.CharField(max_length=200, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    source_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="capture_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gte=0), name="capture_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=CaptureStatus.values), name="capture_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(purpose__in=CapturePurpose.values), name="capture_purpose_valid"
            ),
        ]

    def __str__(self) -> str:
        amount = minor_to_decimal(self.amount_minor, self.currency)
        return f"{self.purpose} of {amount} {self.currency} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        """The provider's idempotency key for the charge this capture asks for now.

        Derived from what the charge is (this capture, its purpose, amount and currency) and from how many
        times the provider refused it: a retry after a timeout or a dead worker sends the same key (so a
        charge that did go through is answered, not repeated), while a different amount (a refund reduced
        it), purpose, or the attempt after a refusal is a different charge with a different key."""
        return (
            f"rochdale:{self.purpose}:{self.id}:{self.amount_minor}{self.currency.lower()}"
            f":{self.provider_refusals}"
        )
