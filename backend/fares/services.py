"""Writes of fare policy: new versions.

A fare policy version is created only here (called by governance when a board proposal passes, and by
`manage.py fare_policy_adopt` for the founding board) or by the seed migration. (A trip's money, refunds
included, is dispatch's: dispatch/money/.)
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import InvalidInput
from backend.fares.models import FarePolicyVersion, PolicySource
from backend.fares.policy import FarePolicy, PolicyValidationError

# One advisory lock serialises version numbering (max + 1) across processes; the primary key backs it up.
_POLICY_NUMBERING_LOCK = 0x5F415245  # "_ARE": any constant unique to this use
_WRITABLE_SOURCES = (PolicySource.GOVERNANCE, PolicySource.FOUNDING)


def policy_version_create(
    *,
    document: dict,
    effective_at: datetime | None,
    source: str,
    proposal_id: uuid.UUID | None = None,
) -> FarePolicyVersion:
    """Validate a fare policy and store it as the next version.

    `effective_at` (else the document's own `effective_at`, else now) is never earlier than now: a policy
    takes effect at once or later, so the history of what was in force is never rewritten. The stored
    document is the normalised contract object without `version` and `effective_at`, which the server sets.
    A proposal produces at most one version: calling again with the same `proposal_id` returns it.

    Raises InvalidInput (`invalid_fare_policy`, details keyed by field path) for a document that is not a
    valid policy, and InvalidInput for a bad source or a naive `effective_at`.
    """
    if source not in _WRITABLE_SOURCES:
        raise InvalidInput(
            _("A fare policy version comes from a passed proposal or the founding board."),
            details={
                "source": [
                    _("must be one of %(sources)s")
                    % {"sources": ", ".join(s.value for s in _WRITABLE_SOURCES)}
                ]
            },
        )
    if effective_at is not None and timezone.is_naive(effective_at):
        raise InvalidInput(details={"effective_at": [_("must carry a time zone")]})
    if source == PolicySource.GOVERNANCE and proposal_id is None:
        raise InvalidInput(details={"proposal_id": [_("a governance version names its proposal")]})
    try:
        policy = FarePolicy.from_document(document)
    except PolicyValidationError as exc:
        raise InvalidInput(str(exc), code=exc.code, details=exc.details) from exc

    stored = policy.to_document()
    stored.pop("version")
    stored.pop("effective_at")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POLICY_NUMBERING_LOCK])
        if proposal_id is not None:
            existing = FarePolicyVersion.objects.filter(proposal_id=proposal_id).first()
            if existing is not None:
                return existing
        now = timezone.now()
        requested = effective_at or policy.effective_at or now
        latest = FarePolicyVersion.objects.aggregate(latest=Max("version"))["latest"] or 0
        return FarePolicyVersion.objects.create(
            version=latest + 1,
            effective_at=max(requested, now),
            document=stored,
            source=source,
            proposal_id=proposal_id,
            created_at=now,
        )
