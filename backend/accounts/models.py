"""Users, drivers and vehicles.

The user model is custom from day one: the phone number (E.164) is the username, ids are UUIDs, and roles
are explicit flags. Member and director are not flags here: they are facts owned by governance (a member row,
a board seat in force) so they cannot drift from the records that make them true.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from backend.accounts.phones import normalize_phone


def language_choices() -> list[tuple[str, str]]:
    """The languages a person may choose (settings.LANGUAGES). A callable, so that adding a language to the
    settings needs no migration."""
    return list(settings.LANGUAGES)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, phone: str, password: str | None, **fields: Any) -> User:
        user = self.model(phone=normalize_phone(phone), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, phone: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(phone, password, **fields)

    def create_superuser(self, phone: str, password: str | None = None, **fields: Any) -> User:
        fields["is_staff"] = True
        fields["is_superuser"] = True
        fields.setdefault("name", "Administrator")
        return self._create(phone, password, **fields)

    def get_by_natural_key(self, username: str | None) -> User:
        # An unparsable phone is looked up as typed, and so simply matches nobody.
        with contextlib.suppress(ValidationError):
            username = normalize_phone(username or "")
        return self.get(phone=username)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone = models.CharField(max_length=16, unique=True, help_text="E.164, e.g. +12125550100")
    name = models.CharField(max_length=120)
    email = models.EmailField(
        blank=True,
        default="",
        help_text="Optional: where receipts and statements are sent (never shown to others).",
    )
    # The language the person reads messages in when a request does not say (docs/languages.md): emails,
    # SMS and push are rendered in it, and so is an API answer without an Accept-Language header. Blank
    # follows the request's Accept-Language, else English.
    language = models.CharField(
        max_length=10,
        blank=True,
        default="",
        choices=language_choices,
        help_text="A code from settings.LANGUAGES (en, es, bn, fr, ht); blank follows Accept-Language.",
    )
    is_rider = models.BooleanField(default=False)
    is_driver = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["date_joined"]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"

    def clean(self) -> None:
        super().clean()
        if self.phone:
            self.phone = normalize_phone(self.phone)

    @property
    def base_roles(self) -> list[str]:
        """Roles held on the account itself; governance adds member and director (mobile_api/accounts.py)."""
        roles = []
        if self.is_rider:
            roles.append("rider")
        if self.is_driver:
            roles.append("driver")
        if self.is_staff:
            roles.append("staff")
        return roles


class DriverStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending approval")
    APPROVED = "approved", gettext_lazy("Approved")
    SUSPENDED = "suspended", gettext_lazy("Suspended")


class DriverProfile(models.Model):
    user = models.OneToOneField(
        User, on_delete=models.PROTECT, primary_key=True, related_name="driver_profile"
    )
    license_number = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=DriverStatus.choices, default=DriverStatus.PENDING)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DriverStatus.values), name="driver_status_valid"
            ),
            models.UniqueConstraint(fields=["license_number"], name="driver_license_unique"),
        ]

    def __str__(self) -> str:
        return f"driver {self.user_id} ({self.status})"

    @property
    def is_approved(self) -> bool:
        return self.status == DriverStatus.APPROVED

    @property
    def active_vehicle(self) -> Vehicle | None:
        return self.vehicles.filter(is_active=True).order_by("-created_at").first()


class Vehicle(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    driver = models.ForeignKey(DriverProfile, on_delete=models.PROTECT, related_name="vehicles")
    plate = models.CharField(max_length=16)
    make = models.CharField(max_length=40)
    model = models.CharField(max_length=40)
    year = models.PositiveSmallIntegerField()
    seats = models.PositiveSmallIntegerField()
    wheelchair_accessible = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(seats__gte=1, seats__lte=15), name="vehicle_seats_range"
            ),
            models.CheckConstraint(
                condition=models.Q(year__gte=1980, year__lte=2100), name="vehicle_year_range"
            ),
            models.UniqueConstraint(
                fields=["driver"], condition=models.Q(is_active=True), name="one_active_vehicle_per_driver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year} {self.make} {self.model} ({self.plate})"


class ErasureStatus(models.TextChoices):
    REQUESTED = "requested", gettext_lazy("Requested (waiting for what blocks it, or for staff)")
    COMPLETED = "completed", gettext_lazy("Completed (the account is pseudonymised)")


class ErasureRequest(models.Model):
    """A person's request to be erased (docs/compliance.md, "Data rights"), and its outcome.

    The row outlives the erasure: it is the co-op's record that it was asked and when it acted, and it holds
    no personal data beyond the (by then pseudonymous) user id. At most one request per user is open."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="erasure_requests")
    status = models.CharField(max_length=10, choices=ErasureStatus.choices, default=ErasureStatus.REQUESTED)
    requested_at = models.DateTimeField(default=timezone.now)
    blockers = models.JSONField(
        default=list, blank=True, help_text="What held the erasure back when last checked: [{code, message}]."
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ErasureStatus.values), name="erasure_status_valid"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status=ErasureStatus.REQUESTED),
                name="one_open_erasure_request_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"erasure of {self.user_id} ({self.status})"
