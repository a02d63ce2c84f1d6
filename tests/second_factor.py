"""Second-factor helpers for tests: a person's authenticator (a confirmed TOTP device) and the code it shows,
computed from the device's key as an authenticator app would (django_otp.oath.totp)."""

from __future__ import annotations

import time

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def authenticator_for(user) -> TOTPDevice:
    """The person's confirmed TOTP device (made when they have none)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code_now(device: TOTPDevice, *, refresh: bool = True) -> str:
    """A code the device accepts now: the current one, or, when that time step was already used (a code is
    accepted once), the next one (within the tolerance of one step). `refresh=False` reads no row (inside
    playwright's event loop the ORM may not run): the device as loaded must then be up to date."""
    if refresh:
        device.refresh_from_db()
    step_now = int(time.time() - device.t0) // device.step
    ahead = max(0, device.last_t + 1 - step_now)
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=ahead)
    return f"{value:0{device.digits}d}"
