"""`manage.py two_factor_reset --phone +1... --by +1... --reason "..."`: clear a person's lost second factor.

Staff run it when a director or a staff member has lost the phone with their authenticator app: every
TOTP device of that person is removed (sessions verified with them stop being verified), and at their next
sign-in they set up a new app after their password, as on their first sign-in. The reset is recorded in
the governance audit log (`account.second_factor_reset`, who for, which staff member, why), because
resetting a director's second factor is how someone would take over a director's account. It lives in
governance, not in accounts, because the audit log does (the kernel cannot import it).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from backend.accounts.models import User
from backend.accounts.phones import normalize_phone
from backend.accounts.second_factor import second_factor_reset
from governance.audit import audit_append

logger = logging.getLogger(__name__)


def _account(phone: str, role: str) -> User:
    try:
        user = User.objects.filter(phone=normalize_phone(phone)).first()
    except ValidationError as invalid:
        raise CommandError(f"{role}: {phone!r} is not a phone number") from invalid
    if user is None:
        raise CommandError(f"{role}: no account has the phone {phone}")
    return user


def second_factor_reset_audited(*, phone: str, by_phone: str, reason: str) -> int:
    """Remove the second factor of the account with `phone`, as the active staff member with `by_phone`
    asked, and record it; returns how many devices were removed."""
    if not reason.strip():
        raise CommandError("--reason: say why (the audit log keeps it; no personal details)")
    staff = _account(by_phone, "--by")
    if not (staff.is_active and staff.is_staff):
        raise CommandError("--by: only an active staff member may reset a second factor")
    user = _account(phone, "--phone")
    with transaction.atomic():
        removed = second_factor_reset(user=user)
        audit_append(
            kind="account.second_factor_reset",
            payload={
                "user_id": str(user.pk),
                "by_user_id": str(staff.pk),
                "devices_removed": removed,
                "reason": reason.strip(),
            },
        )
    logger.warning(
        "second factor reset for user %s by staff %s (%d device(s) removed)", user.pk, staff.pk, removed
    )
    return removed


class Command(BaseCommand):
    help = "Remove a person's TOTP devices (a lost phone); they set up a new one at their next sign-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="the phone of the account that lost its device")
        parser.add_argument("--by", required=True, help="the phone of the staff member doing the reset")
        parser.add_argument("--reason", required=True, help="why, for the audit log (no personal details)")

    def handle(self, *args: Any, **options: Any) -> None:
        removed = second_factor_reset_audited(
            phone=options["phone"], by_phone=options["by"], reason=options["reason"]
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"second factor reset: {removed} device(s) removed; a new one is set up at the next sign-in"
            )
        )
