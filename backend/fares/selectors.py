"""Reading fare policies: the version in force at an instant, parsed into the pure `FarePolicy`."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import ServiceUnavailable
from backend.fares.models import FarePolicyVersion
from backend.fares.policy import FarePolicy


def policy_version_in_force(at: datetime | None = None) -> FarePolicyVersion:
    moment = at or timezone.now()
    version = (
        FarePolicyVersion.objects.filter(effective_at__lte=moment)
        .order_by("-effective_at", "-version")
        .first()
    )
    if version is None:
        raise ServiceUnavailable(_("No fare policy is in force yet."), code="no_fare_policy")
    return version


@lru_cache(maxsize=64)
def _parsed(version: int, effective_at: datetime, document_key: str) -> FarePolicy:
    import json

    return FarePolicy.from_document(json.loads(document_key), version=version, effective_at=effective_at)


def policy_of(version: FarePolicyVersion) -> FarePolicy:
    """The pure policy for a stored version (cached: versions are immutable)."""
    import json

    return _parsed(version.version, version.effective_at, json.dumps(version.document, sort_keys=True))


def policy_in_force(at: datetime | None = None) -> FarePolicy:
    return policy_of(policy_version_in_force(at))


def policy_document(version: FarePolicyVersion) -> dict:
    """The contract's fare policy object for a stored version, `version` and `effective_at` included."""
    return policy_of(version).to_document()


def policy_versions_newest_first() -> QuerySet[FarePolicyVersion]:
    """Every version ever adopted, the newest (highest number) first."""
    return FarePolicyVersion.objects.order_by("-version")
