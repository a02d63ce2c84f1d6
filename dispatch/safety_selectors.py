"""Reads for the safety features (docs/safety.md): a trip's share links, the trip behind a share token, the
SOS alerts staff work through. Each read is scoped to who may see it; anything else does not exist."""

from __future__ import annotations

import hashlib
import uuid

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import NotFound
from dispatch.models import (
    SafetyAlert,
    SafetyAlertAction,
    SafetyAlertActionKind,
    Trip,
    TripShareLink,
)
from dispatch.state import FINAL_STATUSES

# Tokens are 43 characters (32 random bytes, URL-safe base64); anything much longer is not one of ours and
# is refused before it is hashed.
MAX_SHARE_TOKEN_LENGTH = 100


class ShareLinkNotFound(NotFound):
    code = "share_link_not_found"


def share_token_digest(token: str) -> str:
    """What is stored of a share token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def share_link_not_found() -> ShareLinkNotFound:
    """The one refusal of a share link, whatever the reason (unknown, expired, revoked, trip ended): the
    holder of a link learns nothing more from it than that it shows no trip."""
    return ShareLinkNotFound(
        _("This link does not show a trip now: it may have ended, expired or been revoked.")
    )


def shared_trip_link(*, token: str) -> TripShareLink:
    """The working link with this token, its trip (driver and vehicle loaded); ShareLinkNotFound when the
    token is unknown, revoked, expired, or its trip has ended."""
    if not token or len(token) > MAX_SHARE_TOKEN_LENGTH:
        raise share_link_not_found()
    link = (
        TripShareLink.objects.select_related("trip", "trip__driver", "trip__vehicle")
        .filter(
            token_sha256=share_token_digest(token), revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        .first()
    )
    if link is None or link.trip.status in FINAL_STATUSES:
        raise share_link_not_found()
    return link


def share_links_of(*, rider_id: uuid.UUID, trip_id: uuid.UUID) -> QuerySet[TripShareLink]:
    """The links the trip's rider made, newest first; NotFound `trip_not_found` for anyone else."""
    if not Trip.objects.filter(id=trip_id, rider_id=rider_id).exists():
        raise NotFound(_("No such trip."), code="trip_not_found")
    return TripShareLink.objects.filter(trip_id=trip_id).order_by("-created_at")


def _with_actions(alerts: QuerySet[SafetyAlert]) -> QuerySet[SafetyAlert]:
    return alerts.select_related(
        "raised_by", "trip", "trip__rider", "trip__driver", "trip__vehicle"
    ).prefetch_related(
        Prefetch("actions", queryset=SafetyAlertAction.objects.select_related("by").order_by("at", "id"))
    )


def safety_alerts(*, status: str = "unresolved") -> QuerySet[SafetyAlert]:
    """Alerts for staff, newest first: `unresolved` (open or acknowledged), `open` (nobody took it on yet)
    or `all`."""
    alerts = SafetyAlert.objects.all()
    resolved = SafetyAlertAction.objects.filter(alert_id=OuterRef("pk"), kind=SafetyAlertActionKind.RESOLVED)
    acknowledged = SafetyAlertAction.objects.filter(
        alert_id=OuterRef("pk"), kind=SafetyAlertActionKind.ACKNOWLEDGED
    )
    if status in ("unresolved", "open"):
        alerts = alerts.filter(~Exists(resolved))
    if status == "open":
        alerts = alerts.filter(~Exists(acknowledged))
    return _with_actions(alerts).order_by("-raised_at")


def safety_alert_get(*, alert_id: uuid.UUID) -> SafetyAlert:
    alert = _with_actions(SafetyAlert.objects.filter(id=alert_id)).first()
    if alert is None:
        raise NotFound(_("No such alert."), code="safety_alert_not_found")
    return alert
