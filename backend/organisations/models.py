"""Organisations that book rides for others and are billed monthly (docs/organisations.md).

An organisation (a clinic, an agency, a business, a broker) has people in it (`OrganisationMembership`):
admins who manage it, coordinators who book for riders, and riders who ride on its account (with the app).
A coordinator may also book for a guest (`OrganisationGuest`): someone known by name and phone who has no
app and no password, and hears about the ride by SMS. The guest still rides as a `User` (the trip's rider),
created without a usable password, so every trip keeps one rider and every rule about riders holds.

Nobody is bound to an organisation without saying yes. A guest whose phone already belongs to someone's
own Rochdale account is only an invitation (`OrganisationGuest.confirmed_at` null) until that person
accepts; a person an admin adds is invited (`OrganisationInvitation`, by phone) and becomes a member when
they accept. Until then the organisation books nothing for them and learns nothing of their account.

The organisation's booking policy lives on its row: when its rides may be picked up (`allowed_hours`),
where (`allowed_area`), the most a ride may cost (`max_fare_minor`), whether it books wheelchair-accessible
rides, and who may book. Trips it books are billed to it (the ledger's `organisation_receivable`), never to
a card.

A broker's or clinic's own system books through an API key (`OrganisationApiKey`): a random secret shown
once, stored only as its SHA-256, scoped (`trips:read`, `trips:write`) and revocable.
"""

from __future__ import annotations

import uuid

from django.contrib.gis.db import models as gis
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.accounts.models import User


class OrganisationKind(models.TextChoices):
    CLINIC = "clinic", gettext_lazy("Clinic or hospital")
    AGENCY = "agency", gettext_lazy("Public agency")
    BUSINESS = "business", gettext_lazy("Business")
    BROKER = "broker", gettext_lazy("Transport broker")


class BookingRule(models.TextChoices):
    COORDINATORS = "coordinators", gettext_lazy("Only its coordinators book")
    MEMBERS = "members", gettext_lazy("Its riders may also book for themselves")


class Organisation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=160, unique=True)
    kind = models.CharField(
        max_length=16, choices=OrganisationKind.choices, default=OrganisationKind.BUSINESS
    )
    is_active = models.BooleanField(default=True)
    billing_email = models.EmailField(blank=True, default="")
    billing_address = models.TextField(blank=True, default="")
    currency = models.CharField(max_length=3, default="USD")
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    # Booking policy. `allowed_hours`: a list of {"weekdays": [ISO 1..7], "from": "HH:MM", "to": "HH:MM"} in
    # the co-op's time zone; the pickup time must fall in one of them. Empty means any time.
    allowed_hours = models.JSONField(default=list, blank=True)
    # Where its rides may start and end; null means anywhere the co-op serves.
    allowed_area = gis.MultiPolygonField(srid=4326, null=True, blank=True)
    max_fare_minor = models.PositiveIntegerField(null=True, blank=True)
    wav_allowed = models.BooleanField(default=True, help_text="May book wheelchair-accessible rides.")
    booking_rule = models.CharField(
        max_length=16, choices=BookingRule.choices, default=BookingRule.COORDINATORS
    )
    reference_required = models.BooleanField(
        default=False, help_text="Every booking must carry a cost centre or reference code."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=OrganisationKind.values), name="organisation_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(booking_rule__in=BookingRule.values),
                name="organisation_booking_rule_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OrganisationRole(models.TextChoices):
    ADMIN = "admin", gettext_lazy("Admin (manages people and keys, books)")
    COORDINATOR = "coordinator", gettext_lazy("Coordinator (books for riders)")
    RIDER = "rider", gettext_lazy("Rider on the organisation's account")


class OrganisationMembership(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="organisation_memberships")
    role = models.CharField(max_length=16, choices=OrganisationRole.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "user"], name="one_membership_per_organisation_user"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=OrganisationRole.values), name="organisation_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} of {self.organisation_id}"


class OrganisationInvitation(models.Model):
    """An admin's invitation of the person with `phone` to the organisation in `role`: nothing of any
    account is looked at or bound until the account with that phone accepts it (then it becomes their
    membership and the row goes) or declines it (the row goes). One per organisation and phone."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    phone = models.CharField(max_length=16, help_text="E.164, as the admin gave it")
    role = models.CharField(max_length=16, choices=OrganisationRole.choices)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "phone"], name="one_invitation_per_organisation_phone"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=OrganisationRole.values),
                name="organisation_invitation_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.phone} as {self.role} to {self.organisation_id}"


class OrganisationGuest(models.Model):
    """A person an organisation books for who has no app: known by name and phone, told by SMS.

    `account_created`: this row made the rider account (no usable password) for the guest, so the account
    is a guest account, not somebody's own. `confirmed_at`: when the guest rides on the organisation's
    account; set at once for a guest account, null for somebody's own account until its holder accepts
    (rows made directly, by staff tools or tests, are confirmed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="guests")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="guest_of")
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=16, help_text="E.164")
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    account_created = models.BooleanField(default=False)
    confirmed_at = models.DateTimeField(null=True, blank=True, default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "user"], name="one_guest_per_organisation_user"),
        ]

    def __str__(self) -> str:
        return f"guest {self.name} of {self.organisation_id}"


class ApiKeyScope(models.TextChoices):
    TRIPS_READ = "trips:read", gettext_lazy("Read the organisation's trips")
    TRIPS_WRITE = "trips:write", gettext_lazy("Book and cancel the organisation's trips")


class OrganisationApiKey(models.Model):
    """A key a broker's or clinic's system books with. Only `prefix` (to find the row) and the SHA-256 of the
    whole key are stored; the key itself is shown once, when it is made."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"key {self.prefix}… of {self.organisation_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
