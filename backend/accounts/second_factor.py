"""The second factor: TOTP devices (django-otp) for the web sign-in (docs/sign-in.md).

A person has at most one confirmed device (the authenticator app they use) and, while they enrol or replace
it, one unconfirmed device whose secret they are scanning. Every code typed is counted per account
(`throttling.second_factor_*`, on top of django-otp's own per-device backoff), so a person who holds the
password cannot try the million codes. Codes are checked against one device with its row locked, so two
requests cannot both spend one code; a code is accepted once (django-otp keeps the last time step used).
"""

from __future__ import annotations

import base64
import logging

import segno
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

from backend.accounts.models import User
from backend.accounts.throttling import second_factor_check, second_factor_failed, second_factor_succeeded
from backend.errors import DomainError

logger = logging.getLogger(__name__)

ENROLMENT_DEVICE_NAME = "authenticator app"


class InvalidCode(DomainError):
    code = "invalid_code"
    status = 401
    default_message = _("That code is not right, or it was already used. Type the code your app shows now.")


def signing_in_user(*, user_id: str) -> User | None:
    """The active account whose password a session proved (the code step signs them in), or None."""
    return User.objects.filter(pk=user_id, is_active=True).first()


def confirmed_device(user: User) -> TOTPDevice | None:
    """The person's authenticator (the newest confirmed TOTP device), or None."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("-id").first()


def enrolment_device(*, user: User) -> TOTPDevice:
    """The unconfirmed device being enrolled: kept while the person scans it (a reload shows the same
    secret), created when there is none."""
    pending = TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("-id").first()
    if pending is not None:
        return pending
    return TOTPDevice.objects.create(user=user, name=ENROLMENT_DEVICE_NAME, confirmed=False)


def code_verify(*, user: User, device: TOTPDevice, code: str) -> TOTPDevice:
    """Check `code` against `device` (the person's own), counted against the account's wrong codes.

    Raises `SignInLocked` (429, scope "second_factor") while the account is locked out, even for the right
    code, and `InvalidCode` (401) for a code that does not verify (also when django-otp's backoff after a
    wrong code refuses to look at it yet). Returns the device, reloaded, with its last step recorded."""
    if device.user_id != user.pk:
        raise InvalidCode()
    second_factor_check(user_id=user.pk)
    cleaned = "".join(code.split())
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().filter(pk=device.pk, user=user).first()
        verified = locked is not None and cleaned.isdigit() and locked.verify_token(cleaned)
    if not verified or locked is None:
        second_factor_failed(user_id=user.pk)
        raise InvalidCode()
    second_factor_succeeded(user_id=user.pk)
    return locked


def enrolment_confirm(*, user: User, device: TOTPDevice, code: str) -> TOTPDevice:
    """Confirm the device being enrolled with its first code; it replaces every other device the person had
    (a lost or old phone stops working at once). Raises like `code_verify`."""
    if device.confirmed:
        raise InvalidCode()
    verified = code_verify(user=user, device=device, code=code)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=verified.pk).delete()
        verified.confirmed = True
        verified.save(update_fields=["confirmed"])
    logger.info("second factor enrolled for user %s (device %s)", user.pk, verified.pk)
    return verified


def second_factor_reset(*, user: User) -> int:
    """Remove every second-factor device the person has (staff do this for a lost phone, with
    `manage.py two_factor_reset`); sessions verified with them stop being verified. Returns how many."""
    removed = 0
    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
        removed += 1
    second_factor_succeeded(user_id=user.pk)  # a fresh start: the old device's wrong codes do not count
    return removed


def device_secret_text(device: TOTPDevice) -> str:
    """The secret as people type it into an authenticator app: base32, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))


def device_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// address as an inline SVG QR code (no image file, no CDN)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, dark="#111", light="#fff")
