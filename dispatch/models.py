"""Trips, their events, offers, driver presence and location fixes, service areas, regulator zones and
estimates.

The database decides every race here: a partial unique index allows one open trip per rider, one active trip
per driver, one open offer per trip and per driver; status moves are guarded updates (see dispatch/state.py).
"""

from __future__ import annotations

import uuid
from datetime import date

import pgtrigger
from django.conf import settings
from django.contrib.gis.db import models as gis
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backend.fares.money import minor_to_decimal
from dispatch import bank_details
from dispatch.state import DRIVER_ACTIVE_STATUSES, DRIVERLESS_STATUSES, OPEN_STATUSES, TripStatus


class ServiceArea(models.Model):
    """A city or zone the co-op serves; staff draw it in the admin."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    area = gis.MultiPolygonField(srid=4326)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class RegulatorZone(models.Model):
    """A zone of the regulator's map, e.g. one of New York's TLC taxi zones (LocationID 1..263), which the
    trip-record report names pickups and dropoffs by. Staff load them from GeoJSON
    (`manage.py regulator_zones_load`, dispatch/compliance/zones.py); they never price or serve a trip."""

    location_id = models.PositiveIntegerField(unique=True)
    borough = models.CharField(max_length=60, blank=True, default="")
    zone = models.CharField(max_length=120)
    service_zone = models.CharField(max_length=60, blank=True, default="")
    area = gis.MultiPolygonField(srid=4326)
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["location_id"]

    def __str__(self) -> str:
        return f"{self.location_id} {self.zone}"


class FareEstimate(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fare_estimates"
    )
    pickup = gis.PointField(srid=4326)
    dropoff = gis.PointField(srid=4326)
    wheelchair_accessible = models.BooleanField(default=False)
    distance_m = models.PositiveIntegerField()
    duration_s = models.PositiveIntegerField()
    pickup_eta_s = models.PositiveIntegerField(null=True, blank=True)
    # The planned route (docs/roads.md): its path, and which router planned it (valhalla, model, ...).
    route_geometry = gis.LineStringField(srid=4326, null=True, blank=True)
    router = models.CharField(max_length=20, blank=True, default="")
    fare_minor = models.PositiveIntegerField()
    driver_pay_minimum_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    breakdown = models.JSONField(default=list)
    policy_version = models.ForeignKey("fares.FarePolicyVersion", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"estimate {self.id} ({minor_to_decimal(self.fare_minor, self.currency)} {self.currency})"


class TripCancelledBy(models.TextChoices):
    RIDER = "rider", gettext_lazy("Rider")
    DRIVER = "driver", gettext_lazy("Driver")
    SYSTEM = "system", gettext_lazy("System")


class TripPayer(models.TextChoices):
    RIDER = "rider", gettext_lazy("The rider (card or cash)")
    ORGANISATION = "organisation", gettext_lazy("The organisation that booked it (invoiced monthly)")


class Trip(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trips_as_rider"
    )
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="trips_as_driver",
    )
    vehicle = models.ForeignKey("accounts.Vehicle", on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=[(s.value, s.value) for s in TripStatus], default=TripStatus.REQUESTED
    )
    pickup = gis.PointField(srid=4326)
    dropoff = gis.PointField(srid=4326)
    wheelchair_accessible = models.BooleanField(default=False)
    estimate = models.ForeignKey(
        FareEstimate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy_version = models.ForeignKey("fares.FarePolicyVersion", on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    fare_estimate_minor = models.PositiveIntegerField()
    estimated_distance_m = models.PositiveIntegerField()
    estimated_duration_s = models.PositiveIntegerField()
    # The planned route, copied from the estimate or planned at request (docs/roads.md).
    route_geometry = gis.LineStringField(srid=4326, null=True, blank=True)
    router = models.CharField(max_length=20, blank=True, default="")
    # Set at completion from the measured trail, under the policy in force at request time.
    measured_distance_m = models.PositiveIntegerField(null=True, blank=True)
    # How measured_distance_m was measured: map_matched (the trail on the road graph), geodesic (the trail's
    # own length, when matching failed or no road graph is built) or estimate (no usable trail).
    distance_source = models.CharField(max_length=20, blank=True, default="")
    measured_duration_s = models.PositiveIntegerField(null=True, blank=True)
    fare_minor = models.PositiveIntegerField(null=True, blank=True)
    driver_pay_minor = models.PositiveIntegerField(null=True, blank=True)
    commission_minor = models.IntegerField(null=True, blank=True)
    fare_breakdown = models.JSONField(null=True, blank=True)
    cancellation_fee_minor = models.PositiveIntegerField(null=True, blank=True)
    cancelled_by = models.CharField(  # noqa: DJ001 - the contract distinguishes null (not cancelled)
        max_length=8, choices=TripCancelledBy.choices, null=True, blank=True
    )
    cancel_reason = models.CharField(max_length=500, blank=True, default="")
    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Dispatch bookkeeping: when the search gives up, and when the next offer round is due.
    search_deadline = models.DateTimeField(null=True, blank=True)
    next_dispatch_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A ride booked ahead (docs/scheduling.md): the pickup time asked for and the window the driver must
    # arrive in; `release_at` is when an unclaimed reservation enters dispatch (recomputed from road ETAs).
    scheduled_for = models.DateTimeField(null=True, blank=True)
    pickup_window_start = models.DateTimeField(null=True, blank=True)
    pickup_window_end = models.DateTimeField(null=True, blank=True)
    release_at = models.DateTimeField(null=True, blank=True)
    # A driver who claimed the reservation from the list (GET /driver/reservations); only a guarded UPDATE
    # `WHERE claimed_by IS NULL` sets it, so one claim wins.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_warned_at = models.DateTimeField(null=True, blank=True)
    rider_reminded_at = models.DateTimeField(null=True, blank=True)
    driver_reminded_at = models.DateTimeField(null=True, blank=True)
    # One occurrence of a recurring ride.
    series = models.ForeignKey(
        "RecurringRide", on_delete=models.PROTECT, null=True, blank=True, related_name="trips"
    )
    occurrence_date = models.DateField(null=True, blank=True)
    # Booked by an organisation for one of its riders or guests, and billed to it.
    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="trips"
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    booked_by_key = models.ForeignKey(
        "organisations.OrganisationApiKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reference = models.CharField(max_length=80, blank=True, default="", help_text="Cost centre or reference.")
    payer = models.CharField(max_length=12, choices=TripPayer.choices, default=TripPayer.RIDER)
    # The ride PIN (docs/safety.md): four digits the rider tells the driver, without which `trip.start` is
    # refused; "" when the rider asked for none. Only the rider's view of the trip shows the digits.
    ride_pin = models.CharField(max_length=4, blank=True, default="")
    ride_pin_failures = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [
            models.Index(fields=["rider", "-requested_at"], name="trip_rider_recent"),
            models.Index(fields=["driver", "-requested_at"], name="trip_driver_recent"),
            models.Index(fields=["status", "next_dispatch_at"], name="trip_dispatch_due"),
            models.Index(
                fields=["release_at"], name="trip_reservation_due", condition=models.Q(status="scheduled")
            ),
            models.Index(fields=["organisation", "-requested_at"], name="trip_organisation_recent"),
            models.Index(fields=["claimed_by", "pickup_window_start"], name="trip_claimed_by_driver"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in TripStatus]), name="trip_status_valid"
            ),
            models.UniqueConstraint(
                fields=["rider"],
                condition=models.Q(status__in=sorted(OPEN_STATUSES)),
                name="one_open_trip_per_rider",
            ),
            models.UniqueConstraint(
                fields=["driver"],
                condition=models.Q(status__in=sorted(DRIVER_ACTIVE_STATUSES)),
                name="one_active_trip_per_driver",
            ),
            models.CheckConstraint(
                condition=models.Q(driver__isnull=False) | models.Q(status__in=sorted(DRIVERLESS_STATUSES)),
                name="trip_driver_when_assigned",
            ),
            models.CheckConstraint(
                condition=models.Q(scheduled_for__isnull=True)
                | models.Q(
                    pickup_window_start__isnull=False,
                    pickup_window_end__isnull=False,
                    pickup_window_start__lte=models.F("scheduled_for"),
                    pickup_window_end__gte=models.F("scheduled_for"),
                ),
                name="trip_scheduled_has_window",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="scheduled") | models.Q(scheduled_for__isnull=False),
                name="trip_scheduled_status_has_time",
            ),
            models.CheckConstraint(condition=models.Q(payer__in=TripPayer.values), name="trip_payer_valid"),
            models.CheckConstraint(
                condition=~models.Q(payer="organisation") | models.Q(organisation__isnull=False),
                name="trip_organisation_payer_has_organisation",
            ),
            models.UniqueConstraint(
                fields=["series", "occurrence_date"], name="one_trip_per_series_occurrence"
            ),
            models.CheckConstraint(
                condition=models.Q(ride_pin__regex=r"^([0-9]{4})?$"), name="trip_ride_pin_digits"
            ),
        ]

    def __str__(self) -> str:
        return f"trip {self.id} ({self.status})"


class TripEvent(models.Model):
    """One row per status move: the trip's history, append-only."""

    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"TripEvent {self.status} · trip {self.trip_id}"


class RatingRole(models.TextChoices):
    RIDER = "rider", gettext_lazy("Rider rates driver")
    DRIVER = "driver", gettext_lazy("Driver rates rider")


class Rating(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="ratings")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_role = models.CharField(max_length=8, choices=RatingRole.choices)
    stars = models.PositiveSmallIntegerField()
    comment = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trip", "author_role"], name="one_rating_per_party_per_trip"),
            models.CheckConstraint(condition=models.Q(stars__gte=1, stars__lte=5), name="rating_stars_range"),
        ]

    def __str__(self) -> str:
        return f"{self.stars}★ by the {self.author_role} · trip {self.trip_id}"


class Tip(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trip = models.ForeignKey(Trip, on_delete=models.PROTECT, related_name="tips")
    rider = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tips_received"
    )
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="tip_positive")]

    def __str__(self) -> str:
        amount = minor_to_decimal(self.amount_minor, self.currency)
        return f"tip of {amount} {self.currency} · trip {self.trip_id}"


class PresenceStatus(models.TextChoices):
    OFFLINE = "offline", gettext_lazy("Offline")
    ONLINE = "online", gettext_lazy("Online")


class DriverPresence(models.Model):
    """The durable side of presence. Hot positions live in Redis and the dispatch index; this row is written
    on online/offline and by the batched location flush, so everything can be rebuilt after a restart."""

    driver = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="presence"
    )
    status = models.CharField(max_length=8, choices=PresenceStatus.choices, default=PresenceStatus.OFFLINE)
    location = gis.PointField(srid=4326, null=True, blank=True)
    heading = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    fix_at = models.DateTimeField(null=True, blank=True)
    online_since = models.DateTimeField(null=True, blank=True)
    idle_since = models.DateTimeField(null=True, blank=True)
    connected = models.BooleanField(default=False)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    implausible_jumps = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)


class PresenceSession(models.Model):
    """One online stretch of a driver, for online-time earnings figures."""

    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence_sessions"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["driver"], condition=models.Q(ended_at__isnull=True), name="one_open_presence_session"
            ),
        ]


class LocationFix(models.Model):
    """A driver's position history, inserted in batches (never one row per websocket message)."""

    driver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    trip = models.ForeignKey(Trip, on_delete=models.SET_NULL, null=True, blank=True, related_name="fixes")
    point = gis.PointField(srid=4326, spatial_index=False)
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    heading = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    accepted = models.BooleanField(default=True, help_text="False for fixes refused as implausible jumps.")

    class Meta:
        verbose_name_plural = "location fixes"
        indexes = [
            models.Index(fields=["trip", "recorded_at"], name="fix_trip_trail"),
            models.Index(fields=["received_at"], name="fix_received"),
            models.Index(fields=["driver", "recorded_at"], name="fix_driver_time"),
        ]

    def __str__(self) -> str:
        return f"fix of driver {self.driver_id} at {self.recorded_at.isoformat()}"


class OfferStatus(models.TextChoices):
    OPEN = "open", gettext_lazy("Open")
    ACCEPTED = "accepted", gettext_lazy("Accepted")
    DECLINED = "declined", gettext_lazy("Declined")
    EXPIRED = "expired", gettext_lazy("Expired")
    WITHDRAWN = "withdrawn", gettext_lazy("Withdrawn")


class Offer(models.Model):
    """A trip offered to one driver, with why they were chosen (explainable dispatch)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="offers")
    driver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="offers")
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    pickup_distance_m = models.PositiveIntegerField()
    pickup_eta_s = models.PositiveIntegerField()
    rank = models.PositiveIntegerField()
    candidates_considered = models.PositiveIntegerField()
    idle_s = models.PositiveIntegerField(default=0)
    reason = models.JSONField(default=dict)
    dispatch_policy_version = models.PositiveIntegerField(null=True, blank=True)
    # The fencing token of the dispatch lease under which the offer was made (DispatchLease): which term of
    # which worker (or the sweeper) made it. Null for offers made before leases existed.
    lease_token = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=OfferStatus.values), name="offer_status_valid"
            ),
            models.UniqueConstraint(
                fields=["trip"], condition=models.Q(status="open"), name="one_open_offer_per_trip"
            ),
            models.UniqueConstraint(
                fields=["driver"], condition=models.Q(status="open"), name="one_open_offer_per_driver"
            ),
            models.UniqueConstraint(fields=["trip", "driver"], name="offer_trip_driver_once"),
        ]

    def __str__(self) -> str:
        return f"offer to driver {self.driver_id} · trip {self.trip_id} ({self.status})"


class DispatchLease(models.Model):
    """Who may dispatch a region, until when, under which fencing token (docs/dispatch.md, "Failover").

    One row per region. A dispatch worker (or the sweeper, while no worker runs) takes it when it is free
    or expired, which adds one to `token`; the holder renews `expires_at` every second. Every dispatch round
    checks, inside its own transaction and under a lock on this row, that the token is still its own, so a
    worker that lost the lease (stalled, cut off) cannot write once another has taken it. Times are the
    database's clock, so the machines' clocks do not have to agree."""

    region = models.CharField(primary_key=True, max_length=64)
    holder = models.CharField(max_length=200, help_text="role:host:pid:random of the process holding it")
    token = models.BigIntegerField(help_text="the fencing token: one more at every change of holder")
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "dispatch lease"

    def __str__(self) -> str:
        return f"dispatch lease {self.region} · token {self.token} · {self.holder}"


class DispatchPolicyVersion(models.Model):
    """The board's dispatch rules (fairness window, offer timeout, search budget), versioned like fares."""

    version = models.PositiveIntegerField(primary_key=True)
    effective_at = models.DateTimeField(db_index=True)
    document = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]


# --- Driver payouts (dispatch/money/payouts.py, docs/payouts.md) ------------------------------------------


def validate_routing_number(value: str) -> None:
    if not bank_details.aba_routing_number_valid(value):
        raise ValidationError(
            _("Not an ABA routing number: 9 digits whose check digit matches."), code="invalid_routing_number"
        )


def validate_account_number(value: str) -> None:
    if not bank_details.account_number_valid(value):
        raise ValidationError(_("An account number is 4 to 17 digits."), code="invalid_account_number")


class BankAccountType(models.TextChoices):
    CHECKING = "checking", gettext_lazy("Checking")
    SAVINGS = "savings", gettext_lazy("Savings")


class DriverBankAccount(models.Model):
    """Where a driver's payouts by bank file go. Personal data: staff enter and see it (masked everywhere but
    the generated bank file); drivers never see the number back.

    A row is never edited: new details are a new row, and saving it deactivates the driver's previous one,
    so every payout keeps pointing at the account it was actually sent to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bank_accounts"
    )
    holder_name = models.CharField(max_length=120)
    routing_number = models.CharField(max_length=9, validators=[validate_routing_number])
    account_number = models.CharField(max_length=17, validators=[validate_account_number])
    account_type = models.CharField(
        max_length=8, choices=BankAccountType.choices, default=BankAccountType.CHECKING
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["driver"],
                condition=models.Q(is_active=True),
                name="one_active_bank_account_per_driver",
            ),
            models.CheckConstraint(
                condition=models.Q(routing_number__regex=bank_details.ROUTING_NUMBER_PATTERN),
                name="bank_routing_number_digits",
            ),
            models.CheckConstraint(
                condition=models.Q(account_number__regex=bank_details.ACCOUNT_NUMBER_PATTERN),
                name="bank_account_number_digits",
            ),
            models.CheckConstraint(
                condition=models.Q(account_type__in=BankAccountType.values), name="bank_account_type_valid"
            ),
        ]

    def __str__(self) -> str:
        # Masked: this is what every select box, log line and admin link shows.
        return f"{self.get_account_type_display()} {self.masked_account_number} ({self.routing_number})"

    @property
    def masked_account_number(self) -> str:
        return bank_details.mask_account_number(self.account_number)


class DriverStripeAccount(models.Model):
    """The driver's Stripe Connect Express account, made at their first onboarding request."""

    driver = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="stripe_account"
    )
    account_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Stripe account {self.account_id} of driver {self.driver_id}"


class PayoutStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending: recorded in the ledger, not sent yet")
    SUBMITTED = "submitted", gettext_lazy("Submitted to the provider or the bank file")
    PAID = "paid", gettext_lazy("Paid")
    FAILED = "failed", gettext_lazy("Failed: refused, the amount went back to the driver's balance")


class PayoutMethod(models.TextChoices):
    STRIPE = "stripe", gettext_lazy("Stripe Connect transfer")
    ACH = "ach", gettext_lazy("ACH bank file (NACHA)")


class Payout(models.Model):
    """One driver-week's payout: what the driver had payable (pay and tips) at the week's cut-off.

    Unique per (driver, week_start), so a run repeated or run twice at once pays once. The ledger entry
    `payout:{driver_id}:{week_start}` is posted in the transaction that creates the row; the provider is
    called after it, with `idempotency_key`, which never changes for this payout. Status moves only through
    `dispatch.money.payouts` (its `PAYOUT_TRANSITIONS`); a failed payout's entry is reversed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    driver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts")
    week_start = models.DateField()
    cut_off = models.DateTimeField(help_text="The week's end: what the ledger held by then is paid.")
    status = models.CharField(max_length=10, choices=PayoutStatus.choices, default=PayoutStatus.PENDING)
    method = models.CharField(max_length=10, choices=PayoutMethod.choices)
    amount_minor = models.BigIntegerField()
    payable_minor = models.BigIntegerField(help_text="The driver_payable part of the amount.")
    tips_minor = models.BigIntegerField(help_text="The tips_held part of the amount.")
    currency = models.CharField(max_length=3)
    destination = models.CharField(max_length=64, blank=True, default="")
    bank_account = models.ForeignKey(
        DriverBankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="payouts"
    )
    idempotency_key = models.CharField(max_length=120, unique=True)
    provider_reference = models.CharField(max_length=120, blank=True, default="")
    batch = models.CharField(max_length=64, blank=True, default="", db_index=True)
    batch_sequence = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    errors = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-week_start", "driver_id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="payout_retry_due")]
        constraints = [
            models.UniqueConstraint(fields=["driver", "week_start"], name="one_payout_per_driver_week"),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(amount_minor=models.F("payable_minor") + models.F("tips_minor")),
                name="payout_amount_is_pay_and_tips",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=PayoutStatus.values), name="payout_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(method__in=PayoutMethod.values), name="payout_method_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"payout {self.driver_id} week of {self.week_start.isoformat()} ({self.status})"

    @property
    def ledger_key(self) -> str:
        return payout_ledger_key(self.driver_id, self.week_start)


def payout_ledger_key(driver_id: uuid.UUID | str, week_start: date) -> str:
    """`payout:{driver_id}:{week_start ISO date}`, the payout entry's key (shared name, see the brief)."""
    return f"payout:{driver_id}:{week_start.isoformat()}"


class RecurringRideStatus(models.TextChoices):
    ACTIVE = "active", gettext_lazy("Active")
    ENDED = "ended", gettext_lazy("Ended (its last date or count was reached)")
    CANCELLED = "cancelled", gettext_lazy("Cancelled")


class RecurringRide(models.Model):
    """A ride that repeats (dialysis on Monday, Wednesday and Friday at 07:30): weekdays and a local pickup
    time from a date, until a date or a number of rides. It is materialised a few days ahead into scheduled
    trips (`Trip.series`, one per occurrence date); the dates come from the pure rule in
    dispatch/scheduling/recurrence.py, in the series' own time zone, so 07:30 stays 07:30 across DST."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recurring_rides"
    )
    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="series"
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pickup = gis.PointField(srid=4326)
    dropoff = gis.PointField(srid=4326)
    wheelchair_accessible = models.BooleanField(default=False)
    reference = models.CharField(max_length=80, blank=True, default="")
    # ISO weekdays, Monday 1 .. Sunday 7.
    weekdays = ArrayField(models.PositiveSmallIntegerField(), size=7)
    pickup_time = models.TimeField(help_text="Local pickup time in time_zone.")
    pickup_window_s = models.PositiveIntegerField(help_text="Half-width of the pickup window, in seconds.")
    time_zone = models.CharField(max_length=64)
    starts_on = models.DateField()
    until = models.DateField(null=True, blank=True)
    count = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=RecurringRideStatus.choices, default=RecurringRideStatus.ACTIVE
    )
    # Occurrences on these dates are not booked (skipped before they were materialised).
    skipped_dates = ArrayField(models.DateField(), default=list, blank=True)
    materialised_through = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RecurringRideStatus.values), name="recurring_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(until__isnull=False, count__isnull=False), name="recurring_until_or_count"
            ),
            models.CheckConstraint(condition=~models.Q(weekdays=[]), name="recurring_has_weekdays"),
        ]

    def __str__(self) -> str:
        return f"series {self.id} ({self.status})"


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", gettext_lazy("Issued")
    PARTLY_PAID = "partly_paid", gettext_lazy("Partly paid")
    PAID = "paid", gettext_lazy("Paid")


class OrganisationInvoice(models.Model):
    """One organisation's trips of one local month (docs/billing.md). Its lines are the trips' ledger
    charges to the organisation's receivable account, copied when it is issued, so the invoice reconciles
    with the ledger to the cent; payments staff record against it post their own ledger entries."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=40, unique=True)
    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.PROTECT, related_name="invoices"
    )
    month = models.DateField(help_text="The first day of the local month it covers.")
    currency = models.CharField(max_length=3)
    total_minor = models.PositiveBigIntegerField()
    issued_at = models.DateTimeField(default=timezone.now)
    due_on = models.DateField()
    status = models.CharField(max_length=12, choices=InvoiceStatus.choices, default=InvoiceStatus.ISSUED)

    class Meta:
        ordering = ["-month", "organisation_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "month"], name="one_invoice_per_organisation_month"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=InvoiceStatus.values), name="invoice_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"invoice {self.number}"


class InvoiceLine(models.Model):
    """One billed charge of one trip: its fare, a late-cancellation fee, or a refund (a negative line)."""

    invoice = models.ForeignKey(OrganisationInvoice, on_delete=models.PROTECT, related_name="lines")
    trip = models.ForeignKey(Trip, on_delete=models.PROTECT, related_name="invoice_lines")
    entry = models.OneToOneField(
        "fares.JournalEntry",
        on_delete=models.PROTECT,
        related_name="invoice_line",
        help_text="The ledger entry this line bills: one entry is billed once.",
    )
    kind = models.CharField(max_length=24)
    amount_minor = models.BigIntegerField()
    reference = models.CharField(max_length=80, blank=True, default="")
    rider_name = models.CharField(max_length=120, blank=True, default="")
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]
        triggers = [
            pgtrigger.Protect(name="invoice_lines_append_only", operation=pgtrigger.Update | pgtrigger.Delete)
        ]

    def __str__(self) -> str:
        return f"{self.kind} line · trip {self.trip_id}"


class InvoicePayment(models.Model):
    """Money an organisation paid against an invoice, recorded by staff (entry `invoice-payment:{id}`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    invoice = models.ForeignKey(OrganisationInvoice, on_delete=models.PROTECT, related_name="payments")
    amount_minor = models.PositiveBigIntegerField()
    received_on = models.DateField()
    method = models.CharField(max_length=40, help_text="ACH, cheque, card, ...")
    reference = models.CharField(max_length=120, blank=True, default="")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["recorded_at"]
        triggers = [
            pgtrigger.Protect(
                name="invoice_payments_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="invoice_payment_positive")
        ]

    # --- Safety (docs/safety.md): share-trip links, SOS alerts, the rider's standing choices ----------------

    def __str__(self) -> str:
        return f"payment received {self.received_on} ({self.method})"


class TripShareLink(models.Model):
    """A link the trip's rider gives a friend to follow the ride. Only the token's SHA-256 is kept (the
    token is shown once, at creation), so a copy of this table opens no trip. A link works until it
    expires, is revoked or the trip ends; revoking stamps `revoked_at` with a guarded update."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="share_links")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["trip", "-created_at"], name="share_link_trip_recent")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="share_link_expires_after"
            ),
        ]

    def __str__(self) -> str:
        return f"share link {self.id} of trip {self.trip_id}"


class SafetyAlertRole(models.TextChoices):
    RIDER = "rider", gettext_lazy("The trip's rider")
    DRIVER = "driver", gettext_lazy("The driver")


class SafetyAlertSource(models.TextChoices):
    API = "api", gettext_lazy("The REST API")
    SOCKET = "socket", gettext_lazy("The driver's websocket")


class SafetyAlert(models.Model):
    """An SOS: who raised it (the trip's rider or driver, or an online driver without a trip), where they
    were and when. Append-only (pgtrigger): what staff do about it are SafetyAlertAction rows, so the record
    of the emergency itself can never be edited away. One alert per (person, client key): a panicked
    double-tap, or a retry over a bad connection, finds the first alert again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=8, choices=SafetyAlertRole.choices)
    trip = models.ForeignKey(
        Trip, on_delete=models.PROTECT, null=True, blank=True, related_name="safety_alerts"
    )
    position = gis.PointField(srid=4326, null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    # "client": the position the app sent; "last_fix": the driver's last accepted fix (the app sent none).
    position_source = models.CharField(max_length=10, blank=True, default="")
    client_key = models.CharField(max_length=128)
    source = models.CharField(max_length=8, choices=SafetyAlertSource.choices)
    raised_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-raised_at"]
        triggers = [
            pgtrigger.Protect(name="safety_alerts_append_only", operation=pgtrigger.Update | pgtrigger.Delete)
        ]
        constraints = [
            models.UniqueConstraint(fields=["raised_by", "client_key"], name="one_alert_per_client_key"),
            models.CheckConstraint(
                condition=models.Q(role__in=SafetyAlertRole.values), name="safety_alert_role_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=SafetyAlertSource.values), name="safety_alert_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"SOS {self.id} by {self.role} {self.raised_by_id}"


class SafetyAlertActionKind(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", gettext_lazy("A staff member took it on")
    RESOLVED = "resolved", gettext_lazy("Closed, with what happened")


class SafetyAlertAction(models.Model):
    """What staff did about an alert, append-only: at most one acknowledgement and one resolution per
    alert (a unique index decides between two staff members clicking at once). The alert's status is
    derived from these rows: open, acknowledged, resolved."""

    alert = models.ForeignKey(SafetyAlert, on_delete=models.PROTECT, related_name="actions")
    kind = models.CharField(max_length=12, choices=SafetyAlertActionKind.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        triggers = [
            pgtrigger.Protect(
                name="safety_alert_actions_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["alert", "kind"], name="one_safety_action_per_kind"),
            models.CheckConstraint(
                condition=models.Q(kind__in=SafetyAlertActionKind.values), name="safety_action_kind_valid"
            ),
        ]


class RiderSafetySettings(models.Model):
    """A rider's standing safety choices: a ride PIN on every trip they request (docs/safety.md)."""

    rider = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="safety_settings"
    )
    ride_pin_always = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "rider safety settings"

    def __str__(self) -> str:
        return f"safety settings of rider {self.rider_id}"
