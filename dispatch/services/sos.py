"""SOS (docs/safety.md): the rider or the driver of a trip, or an online driver without one, asks the co-op
for help.

`sos_raise` writes one append-only `SafetyAlert` (who, their role, the trip, the position, when), and in the
same transaction a notification to every active staff account (urgent: through quiet hours), a governance
audit entry, and after commit an `sos` frame to every staff live map (`dispatch.realtime.STAFF_MAP_GROUP`).
The client's key makes it idempotent: a second press with the same key, or a retry over a bad connection,
answers the first alert and alerts nobody again. An SOS is never refused for want of a position: without
one, a driver's last accepted fix is used where there is one.

Staff take an alert on (`sos_acknowledge`) and close it with what happened (`sos_resolve`); each is an
append-only `SafetyAlertAction`, one of each kind per alert (a unique index decides between two staff
members at once: the second is answered the alert as the first left it), audited, and sent to the maps
(`sos.updated`). The person who raised it is told when staff took it on.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import NotFound, PermissionDenied
from backend.notifications.services import notify
from backend.redis import REDIS_UNREACHABLE
from dispatch import live
from dispatch.models import (
    DriverPresence,
    PresenceStatus,
    SafetyAlert,
    SafetyAlertAction,
    SafetyAlertActionKind,
    SafetyAlertRole,
    Trip,
)
from dispatch.realtime import STAFF_MAP_GROUP, push_to_group
from dispatch.safety_selectors import safety_alert_get
from dispatch.safety_serializers import alert_for_staff
from dispatch.state import DRIVER_ACTIVE_STATUSES, OPEN_STATUSES
from governance.audit import audit_append

logger = logging.getLogger(__name__)

AUDIT_RAISED = "safety.sos_raised"
AUDIT_ACKNOWLEDGED = "safety.sos_acknowledged"
AUDIT_RESOLVED = "safety.sos_resolved"
EVENT_RAISED = "safety_sos"
EVENT_ACKNOWLEDGED = "safety_sos_acknowledged"
FRAME_RAISED = "sos"
FRAME_UPDATED = "sos.updated"


@dataclass(frozen=True, slots=True)
class SosPosition:
    lat: float
    lng: float
    accuracy_m: float | None = None


class SosNotAvailable(PermissionDenied):
    code = "sos_not_available"


def sos_raise(
    *,
    user_id: uuid.UUID,
    client_key: str,
    source: str,
    trip_id: uuid.UUID | None = None,
    position: SosPosition | None = None,
) -> tuple[SafetyAlert, bool]:
    """Raise an SOS; returns the alert and whether it is new (False: this key's alert, answered again).

    With `trip_id` the caller must be that trip's rider or driver (else NotFound `trip_not_found`, as for a
    trip that does not exist). Without, the caller's open trip is used (as its driver, else as its rider);
    with none, only a driver who is online may raise one (SosNotAvailable `sos_not_available`)."""
    known = _alert_of_key(user_id, client_key)
    if known is not None:
        return known, False
    trip, role = _trip_and_role(user_id, trip_id)
    point, accuracy, position_source = _where(user_id, role, position)
    with transaction.atomic():
        try:
            with transaction.atomic():
                alert = SafetyAlert.objects.create(
                    raised_by_id=user_id,
                    role=role,
                    trip_id=trip.id if trip else None,
                    position=point,
                    accuracy_m=accuracy,
                    position_source=position_source,
                    client_key=client_key,
                    source=source,
                )
        except IntegrityError:
            # The same key pressed twice at once: the other press made the alert.
            known = _alert_of_key(user_id, client_key)
            if known is None:
                raise
            return known, False
        alert = safety_alert_get(alert_id=alert.id)
        shown = alert_for_staff(alert)
        _tell_staff(alert, shown)
        # Every member reads the audit log: ids only, never where the person was (staff have it on the
        # alert).
        audit_append(
            kind=AUDIT_RAISED,
            payload={
                "alert_id": str(alert.id),
                "raised_by": str(user_id),
                "role": role,
                "trip_id": str(trip.id) if trip else None,
                "has_position": shown["position"] is not None,
                "source": source,
            },
        )
        push_to_group(STAFF_MAP_GROUP, {"type": FRAME_RAISED, "alert": shown})
    return alert, True


def _alert_of_key(user_id: uuid.UUID, client_key: str) -> SafetyAlert | None:
    alert_id = (
        SafetyAlert.objects.filter(raised_by_id=user_id, client_key=client_key)
        .values_list("id", flat=True)
        .first()
    )
    return None if alert_id is None else safety_alert_get(alert_id=alert_id)


def _trip_and_role(user_id: uuid.UUID, trip_id: uuid.UUID | None) -> tuple[Trip | None, str]:
    if trip_id is not None:
        trip = Trip.objects.filter(Q(rider_id=user_id) | Q(driver_id=user_id), id=trip_id).first()
        if trip is None:
            raise NotFound(_("No such trip."), code="trip_not_found")
        return trip, SafetyAlertRole.DRIVER if trip.driver_id == user_id else SafetyAlertRole.RIDER
    driving = Trip.objects.filter(driver_id=user_id, status__in=sorted(DRIVER_ACTIVE_STATUSES)).first()
    if driving is not None:
        return driving, SafetyAlertRole.DRIVER
    riding = Trip.objects.filter(rider_id=user_id, status__in=sorted(OPEN_STATUSES)).first()
    if riding is not None:
        return riding, SafetyAlertRole.RIDER
    if DriverPresence.objects.filter(driver_id=user_id, status=PresenceStatus.ONLINE).exists():
        return None, SafetyAlertRole.DRIVER
    raise SosNotAvailable(
        _("An SOS needs a trip of yours, or a driver who is online. In danger, call the emergency number.")
    )


def _where(
    user_id: uuid.UUID, role: str, position: SosPosition | None
) -> tuple[Point | None, float | None, str]:
    """The position sent, else (for a driver) the last accepted fix; (None, None, "") when neither."""
    if position is not None:
        return Point(position.lng, position.lat, srid=4326), position.accuracy_m, "client"
    if role != SafetyAlertRole.DRIVER:
        return None, None, ""
    try:
        state = live.driver_live_state(user_id)
        if "lat" in state and "lng" in state:
            return Point(float(state["lng"]), float(state["lat"]), srid=4326), None, "last_fix"
    except REDIS_UNREACHABLE:
        logger.warning("SOS by %s: live positions unreachable, trying the last flushed fix", user_id)
    except ValueError:
        pass
    presence = DriverPresence.objects.filter(driver_id=user_id).only("location").first()
    if presence is not None and presence.location is not None:
        return presence.location, None, "last_fix"
    return None, None, ""


def _tell_staff(alert: SafetyAlert, shown: dict[str, Any]) -> None:
    position = shown["position"]
    context = {
        "role": alert.role,
        "name": alert.raised_by.name,
        "phone": alert.raised_by.phone,
        "trip_id": shown["trip"]["id"] if shown["trip"] else "",
        "position": f"{position['lat']:.5f}, {position['lng']:.5f}" if position else "",
        "alert_id": str(alert.id),
    }
    for staff_id in User.objects.filter(is_staff=True, is_active=True).values_list("id", flat=True):
        # Urgent: on every channel that reaches them, through quiet hours and their switches.
        notify(
            user_id=staff_id,
            event=EVENT_RAISED,
            context=context,
            dedup_key=f"sos:{alert.id}:{staff_id}",
            urgent=True,
        )


def sos_acknowledge(*, alert_id: uuid.UUID, staff_id: uuid.UUID, note: str = "") -> SafetyAlert:
    """A staff member takes the alert on. The first acknowledgement stands; a later one (or two at once)
    answers the alert as it is. Raises NotFound `safety_alert_not_found`."""
    return _act(alert_id, staff_id, SafetyAlertActionKind.ACKNOWLEDGED, note, AUDIT_ACKNOWLEDGED)


def sos_resolve(*, alert_id: uuid.UUID, staff_id: uuid.UUID, note: str) -> SafetyAlert:
    """Close the alert with what happened (`note`). Raises NotFound `safety_alert_not_found`."""
    return _act(alert_id, staff_id, SafetyAlertActionKind.RESOLVED, note, AUDIT_RESOLVED)


def _act(alert_id: uuid.UUID, staff_id: uuid.UUID, kind: str, note: str, audit_kind: str) -> SafetyAlert:
    safety_alert_get(alert_id=alert_id)  # NotFound first
    with transaction.atomic():
        try:
            with transaction.atomic():
                SafetyAlertAction.objects.create(alert_id=alert_id, kind=kind, by_id=staff_id, note=note)
        except IntegrityError:
            return safety_alert_get(alert_id=alert_id)
        alert = safety_alert_get(alert_id=alert_id)
        if kind == SafetyAlertActionKind.ACKNOWLEDGED:
            notify(
                user_id=alert.raised_by_id,
                event=EVENT_ACKNOWLEDGED,
                context={"alert_id": str(alert.id)},
                dedup_key=f"sos-acknowledged:{alert.id}",
                urgent=True,
            )
        # The note is staff's account of an emergency, for staff: the log keeps its digest, which shows
        # it was written and that it has not changed since, without telling every member what happened.
        audit_append(
            kind=audit_kind,
            payload={
                "alert_id": str(alert_id),
                "staff_id": str(staff_id),
                "note_sha256": hashlib.sha256(note.encode()).hexdigest(),
            },
        )
        push_to_group(STAFF_MAP_GROUP, {"type": FRAME_UPDATED, "alert": alert_for_staff(alert)})
    return alert
