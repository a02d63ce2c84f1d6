"""Signing in with a phone number and a password: the one path behind every transport (the API's token
route, mobile_api/views_accounts.py, and the board's sign-in page, governance/views_board.py).

It checks the per-phone and per-IP lockout, checks the credentials, and keeps the failure counts
(backend/accounts/throttling.py). The transport finds the client's address (`throttling.client_ip`) and
turns the signed-in user into its own answer: tokens, or a session.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

from backend.accounts.models import User
from backend.accounts.phones import normalize_phone
from backend.accounts.throttling import sign_in_check, sign_in_failed, sign_in_succeeded
from backend.errors import DomainError


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status = 401
    default_message = gettext_lazy("The phone number or the password is wrong.")


def sign_in_identity(phone: str) -> str:
    """The phone as the lockout counts it: its E.164 form, so that every spelling that signs in as one
    account (`+1 212 555 0100`, `+1-212-555-0100`) shares that account's count; a string that is no
    phone number counts as typed (without its surrounding spaces)."""
    try:
        return normalize_phone(phone)
    except ValidationError:
        return phone.strip()


def user_sign_in(*, phone: str, password: str, ip: str) -> User:
    """The user with this phone and password, counted against the phone's and the IP's failures.

    Raises `SignInLocked` (429 `sign_in_locked`, with `retry_after_s`) while the phone or the IP is locked
    out, even with the right password, and `InvalidCredentials` (401 `invalid_credentials`) for a wrong
    phone or password. A success clears the phone's count (not the IP's).
    """
    identity = sign_in_identity(phone)
    sign_in_check(phone=identity, ip=ip)
    user = authenticate(None, username=identity, password=password)
    if not isinstance(user, User):
        sign_in_failed(phone=identity, ip=ip)
        raise InvalidCredentials()
    sign_in_succeeded(phone=identity)
    return user
