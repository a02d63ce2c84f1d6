"""Writes on accounts: registration of riders and drivers, and staff approval of drivers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import DriverProfile, DriverStatus, User, Vehicle
from backend.accounts.phones import normalize_phone
from backend.errors import Conflict, InvalidInput, NotFound

Role = Literal["rider", "driver"]


@dataclass(frozen=True)
class VehicleDetails:
    plate: str
    make: str
    model: str
    year: int
    seats: int
    wheelchair_accessible: bool = False


def user_register(
    *,
    phone: str,
    password: str,
    name: str,
    role: Role,
    license_number: str | None = None,
    vehicle: VehicleDetails | None = None,
    email: str = "",
) -> User:
    """Create a rider, or a driver with their licence and vehicle (pending until staff approve them), with
    an optional email address for receipts and statements.

    Raises InvalidInput (`phone_invalid`, `password_too_weak`, `driver_details_required`) and Conflict
    (`phone_taken`, `license_taken`). With ROCHDALE_AUTO_APPROVE_DRIVERS on, a driver is approved at once.
    """
    try:
        phone = normalize_phone(phone)
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(exc.messages), code="phone_invalid", details={"phone": exc.messages}
        ) from exc
    address = _clean_email(email)
    candidate = User(phone=phone, name=name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(
            _("This password is too weak."), code="password_too_weak", details={"password": exc.messages}
        ) from exc
    if role == "driver" and (not license_number or vehicle is None):
        raise InvalidInput(
            _("A driver registers with a licence number and a vehicle."),
            code="driver_details_required",
            details={"license_number": [_("Required for drivers.")], "vehicle": [_("Required for drivers.")]},
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                phone,
                password=password,
                name=name,
                email=address,
                is_rider=role == "rider",
                is_driver=role == "driver",
            )
            if role == "driver":
                assert vehicle is not None and license_number
                auto_approve = settings.ROCHDALE_AUTO_APPROVE_DRIVERS
                profile = DriverProfile.objects.create(
                    user=user,
                    license_number=license_number,
                    status=DriverStatus.APPROVED if auto_approve else DriverStatus.PENDING,
                    approved_at=timezone.now() if auto_approve else None,
                )
                Vehicle.objects.create(
                    driver=profile,
                    plate=vehicle.plate,
                    make=vehicle.make,
                    model=vehicle.model,
                    year=vehicle.year,
                    seats=vehicle.seats,
                    wheelchair_accessible=vehicle.wheelchair_accessible,
                )
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
        if "license" in constraint:
            raise Conflict(
                _("A driver with this licence number is already registered."), code="license_taken"
            ) from exc
        raise Conflict(_("An account with this phone number already exists."), code="phone_taken") from exc
    except ValidationError as exc:  # full_clean on the user (a duplicate phone is caught here first)
        if "phone" in getattr(exc, "message_dict", {}) and User.objects.filter(phone=phone).exists():
            raise Conflict(
                _("An account with this phone number already exists."), code="phone_taken"
            ) from exc
        raise InvalidInput(
            _("Some fields are not valid."), details=getattr(exc, "message_dict", {"": exc.messages})
        ) from exc
    return user


def driver_approve(*, driver_id: uuid.UUID, approved_by: User) -> DriverProfile:
    """Approve a pending (or suspended) driver; approving an approved driver changes nothing.

    `driver_id` is the driver's user id. Raises NotFound (`driver_not_found`) for anyone who is not a driver.
    """
    with transaction.atomic():
        profile = (
            DriverProfile.objects.select_for_update().select_related("user").filter(user_id=driver_id).first()
        )
        if profile is None:
            raise NotFound(_("No driver has this id."), code="driver_not_found")
        if profile.status != DriverStatus.APPROVED:
            profile.status = DriverStatus.APPROVED
            profile.approved_at = timezone.now()
            profile.approved_by = approved_by
            profile.save(update_fields=["status", "approved_at", "approved_by"])
    return profile


def user_email_set(*, user_id: uuid.UUID, email: str) -> User:
    """Set (or, with "", clear) the account's own email address, where receipts and statements go.
    Raises InvalidInput `email_invalid`."""
    User.objects.filter(id=user_id).update(email=_clean_email(email))
    return User.objects.get(id=user_id)


def user_language_set(*, user_id: uuid.UUID, language: str) -> User:
    """Set (or, with "", clear) the language the person reads messages in when a request does not say:
    emails, SMS and push, and API answers without an Accept-Language header (docs/languages.md).
    Raises InvalidInput `language_unsupported` for a code outside settings.LANGUAGES."""
    code = (language or "").strip().lower()
    supported = [known for known, _name in settings.LANGUAGES]
    if code and code not in supported:
        raise InvalidInput(
            _("This language is not one the co-op offers."),
            code="language_unsupported",
            details={"language": supported},
        )
    User.objects.filter(id=user_id).update(language=code)
    return User.objects.get(id=user_id)


def _clean_email(email: str) -> str:
    address = (email or "").strip()
    if not address:
        return ""
    try:
        validate_email(address)
    except ValidationError as exc:
        raise InvalidInput(
            _("This is not an email address."), code="email_invalid", details={"email": exc.messages}
        ) from exc
    return User.objects.normalize_email(address)
