"""`manage.py account_erase --user ID` (docs/compliance.md, "Data rights"): staff carry out an erasure.

The command lives with the trips layer because an erasure reaches every layer below it
(dispatch/services/data_rights.py). Without `--user` it lists the open requests and what blocks each.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.errors import DomainError
from dispatch.services.data_rights import account_erase, erasure_blockers, erasure_requests_open


def user_id_argument(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a user id (a UUID)") from None


class Command(BaseCommand):
    help = (
        "Erase (pseudonymise) an account: name, phone, email and password go, the ledger, trip records, "
        "payouts and audit entries stay. Refused while the person has an open trip, a current membership "
        "or money owed either way. Without --user, list the open erasure requests."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--user", type=user_id_argument, default=None, help="the user id to erase")
        parser.add_argument(
            "--by", type=user_id_argument, default=None, help="the staff user carrying it out (recorded)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = options["user"]
        if user_id is None:
            for request in erasure_requests_open():
                blockers = erasure_blockers(user_id=request.user_id)
                why = "; ".join(b.code for b in blockers) or "ready"
                self.stdout.write(f"{request.user_id} requested {request.requested_at.isoformat()}: {why}")
            return
        try:
            result = account_erase(user_id=user_id, erased_by=options["by"])
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        self.stdout.write(
            f"erased {result.user_id} as {result.pseudonym!r} (request {result.request_id}): "
            f"{result.fixes_deleted} location fixes deleted, {result.comments_blanked} rating comments and "
            f"{result.cancel_reasons_blanked} cancel reasons blanked, "
            f"{result.cards_detached} cards detached, "
            f"{result.estimates_deleted} estimates deleted"
        )
