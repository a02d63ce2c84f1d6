"""Erasure of a person's account (data rights, docs/compliance.md): the request, and the account's part.

Erasure here means pseudonymisation, not deletion. The ledger, the trip records, payouts and the governance
audit log must outlive the person (tax law and the regulator ask for years of them, and the ledger and the
audit log refuse UPDATE and DELETE by design), and they all point at the user id. So the id stays and what
made it a person goes: the name becomes a stable pseudonym, the phone a placeholder that is no phone number
(so nobody can register it or sign in with it), the email is cleared, the password made unusable, the
account deactivated, its refresh tokens blacklisted and its second-factor (TOTP) devices removed. The
protected records are never touched.

This module is the kernel's part: it knows accounts only. What blocks an erasure (an open trip, money owed
either way, share capital) and the trips' and locations' part live above it, in
dispatch/services/data_rights.py, which calls `user_pseudonymise` inside its transaction.
"""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from backend.accounts.models import ErasureRequest, ErasureStatus, User
from backend.accounts.second_factor import second_factor_reset
from backend.errors import NotFound, PermissionDenied
from backend.redis import REDIS_UNREACHABLE

logger = logging.getLogger(__name__)

PHONE_PLACEHOLDER_PREFIX = "erased"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# The phone column holds 16 characters: the prefix and 10 base-36 digits of the user id (51 bits).
_CODE_LENGTH = 10


def pseudonym_code(user_id: uuid.UUID) -> str:
    """Ten base-36 digits derived from the user id: the same id always gives the same code, so the pseudonym
    is stable (a report run twice names the same "Erased user"), and nothing about the person is in it."""
    number = user_id.int
    digits = []
    for _ in range(_CODE_LENGTH):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(digits)


def pseudonym_name(user_id: uuid.UUID) -> str:
    return f"Erased user {pseudonym_code(user_id)}"


def phone_placeholder(user_id: uuid.UUID) -> str:
    """Unique (the code comes from the unique id) and never a phone number: registration normalises every
    phone to E.164, which this is not, so nobody can take it; signing in with it finds an inactive account
    with an unusable password."""
    return f"{PHONE_PLACEHOLDER_PREFIX}{pseudonym_code(user_id)}"


def is_erased(user: User) -> bool:
    return user.phone == phone_placeholder(user.id)


def erasure_request_record(*, user_id: uuid.UUID, password: str) -> tuple[ErasureRequest, bool]:
    """Record the caller's request to be erased, confirmed by their current password (a stolen access token
    alone cannot erase an account). Returns the open request and whether it is new: asking again while a
    request is open returns that one.

    Raises PermissionDenied `password_incorrect`.
    """
    user = User.objects.filter(id=user_id, is_active=True).first()
    if user is None:
        raise NotFound(gettext("No such account."), code="account_not_found")
    if not isinstance(password, str) or not user.check_password(password):
        raise PermissionDenied(
            gettext("Confirm the erasure with the account's current password."), code="password_incorrect"
        )
    existing = ErasureRequest.objects.filter(user_id=user_id, status=ErasureStatus.REQUESTED).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return ErasureRequest.objects.create(user_id=user_id), True
    except IntegrityError:  # a second request raced this one: the partial unique index kept one
        return ErasureRequest.objects.get(user_id=user_id, status=ErasureStatus.REQUESTED), False


def erasure_request_open(*, user_id: uuid.UUID) -> ErasureRequest | None:
    return ErasureRequest.objects.filter(user_id=user_id, status=ErasureStatus.REQUESTED).first()


def erasure_blockers_note(*, request_id: uuid.UUID, blockers: list[dict[str, str]]) -> None:
    """Keep what held the request back at its last check, for staff and for the person's next look."""
    ErasureRequest.objects.filter(id=request_id).update(blockers=blockers, checked_at=timezone.now())


def user_pseudonymise(*, user_id: uuid.UUID, erased_by: uuid.UUID | None) -> tuple[User, ErasureRequest]:
    """The account's part of an erasure; must run inside the erasure's transaction. Locks the user row
    `FOR NO KEY UPDATE`, which never waits for the key-share locks that money transactions' foreign-key
    checks take on users (backend/fares/ledger.py). Completes the open request (making one when staff erase
    without a request, e.g. on a written request) and returns it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("user_pseudonymise must run inside the erasure's transaction")
    user = User.objects.select_for_update(no_key=True).filter(id=user_id).first()
    if user is None:
        raise NotFound(gettext("No such account."), code="account_not_found")
    user.name = pseudonym_name(user.id)
    user.phone = phone_placeholder(user.id)
    user.email = ""
    user.set_unusable_password()
    user.is_active = False
    user.is_staff = False
    user.is_superuser = False
    user.save(update_fields=["name", "phone", "email", "password", "is_active", "is_staff", "is_superuser"])
    user.groups.clear()
    user.user_permissions.clear()
    tokens_revoke(user_id=user.id)
    _second_factor_remove(user)
    now = timezone.now()
    request = ErasureRequest.objects.filter(user_id=user.id, status=ErasureStatus.REQUESTED).first()
    if request is None:
        request = ErasureRequest.objects.create(user_id=user.id, requested_at=now)
    request.status = ErasureStatus.COMPLETED
    request.completed_at = now
    request.completed_by_id = erased_by
    request.blockers = []
    request.checked_at = now
    request.save(update_fields=["status", "completed_at", "completed_by", "blockers", "checked_at"])
    return user, request


def _second_factor_remove(user: User) -> None:
    """The person's authenticator devices (their TOTP keys) go with the account."""
    try:
        second_factor_reset(user=user)
    except REDIS_UNREACHABLE:
        # The devices are deleted before the reset clears the wrong-code counter, which expires by itself.
        logger.warning("erasure of %s: the second factor's counter was left to expire", user.pk)


def tokens_revoke(*, user_id: uuid.UUID) -> int:
    """Blacklist every refresh token issued to the user (access tokens die within minutes, and the
    authentication refuses an inactive account at once). Returns how many were blacklisted now."""
    outstanding = OutstandingToken.objects.filter(user_id=user_id).exclude(blacklistedtoken__isnull=False)
    revoked = 0
    for token in outstanding:
        _, created = BlacklistedToken.objects.get_or_create(token=token)
        revoked += int(created)
    return revoked
