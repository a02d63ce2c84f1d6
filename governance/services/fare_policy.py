"""Fare policy by board vote: a proposal carries a policy document, checked when it opens; when the
board passes it, the policy becomes a new version of the fare policy (backend/fares/services.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from backend.errors import InvalidInput
from backend.fares.policy import FarePolicy, PolicyValidationError
from backend.fares.services import policy_version_create
from governance.audit import AuditEvent
from governance.models import Proposal


def fare_policy_payload_validated(payload: object) -> dict[str, Any]:
    """The policy document a fare policy proposal stores: valid, unnumbered, with its `effective_at`."""
    if not isinstance(payload, dict):
        raise InvalidInput(
            _("A fare policy proposal carries the policy in its payload."), code="invalid_fare_policy"
        )
    try:
        policy = FarePolicy.from_document(payload)
    except PolicyValidationError as error:
        raise InvalidInput(str(error), code="invalid_fare_policy", details=error.details) from None
    if payload.get("version") is not None:
        raise InvalidInput(
            _("The server numbers policy versions; leave version out."),
            code="invalid_fare_policy",
            details={"version": [_("must not be set")]},
        )
    document = policy.to_document()
    document.pop("version", None)
    document["effective_at"] = payload.get("effective_at")
    if document["effective_at"] is None:
        document.pop("effective_at")
    return document


def fare_policy_adopt(proposal: Proposal, *, now: datetime) -> tuple[dict[str, Any], AuditEvent]:
    """Make a passed fare policy proposal the next policy version; returns the proposal's `effect` and
    the entry for the caller to append last."""
    document = dict(proposal.payload)
    requested = document.pop("effective_at", None)
    # A date already past means "at once": a policy never takes effect before the vote that adopted it.
    effective_at = max(datetime.fromisoformat(requested), now) if requested else now
    version = policy_version_create(
        document=document, effective_at=effective_at, source="governance", proposal_id=proposal.id
    )
    event = AuditEvent(
        kind="fare_policy.adopted",
        payload={"proposal_id": proposal.id, "version": version.version, "effective_at": effective_at},
    )
    return {"policy_version": version.version, "effective_at": effective_at.isoformat()}, event
