"""Whether an organisation may book this ride: who books, for whom, when, where, for how much.

Called by `dispatch.services.trips.trip_request` for every organisation booking, after the fare is quoted
and before anything is written. The checks, each with its refusal:
- the organisation exists and is active (NotFound `organisation_not_found`, also for one the booker is not
  in, so ids of other organisations reveal nothing);
- the booker may book for it: an active admin or coordinator, the rider themself when the organisation lets
  its riders book (`booking_rule` members), or an unrevoked API key of the organisation with `trips:write`
  (PermissionDenied `organisation_booking_not_allowed`);
- the rider rides on its account: an active member with the rider role, or one of its confirmed guests
  (a guest on somebody's own account waits for its holder to accept; until then it is refused the same
  way: Unprocessable `rider_not_in_organisation`);
- the policy: pickup time in `allowed_hours` (`organisation_hours`), both ends inside `allowed_area`
  (`organisation_area`), the quoted fare at most `max_fare_minor` (`organisation_max_fare`), wheelchair-
  accessible rides allowed (`organisation_wav_not_allowed`), and a reference when one is required
  (InvalidInput `reference_required`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.gis.geos import Point
from django.utils.translation import gettext as _

from backend.errors import InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.organisations.models import (
    ApiKeyScope,
    BookingRule,
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationMembership,
    OrganisationRole,
)
from backend.organisations.rules import pickup_time_allowed

BOOKER_ROLES = (OrganisationRole.ADMIN, OrganisationRole.COORDINATOR)


def booking_check(
    *,
    organisation_id: uuid.UUID,
    rider_id: uuid.UUID,
    booked_by_id: uuid.UUID | None,
    booked_by_key_id: uuid.UUID | None,
    pickup: Point,
    dropoff: Point,
    pickup_at: datetime,
    fare_minor: int,
    wheelchair_accessible: bool,
    reference: str,
) -> Organisation:
    """Refuse the booking unless every rule of the organisation allows it; returns the organisation."""
    organisation = Organisation.objects.filter(id=organisation_id, is_active=True).first()
    if organisation is None:
        raise NotFound(_("No such organisation."), code="organisation_not_found")
    _check_booker(
        organisation, rider_id=rider_id, booked_by_id=booked_by_id, booked_by_key_id=booked_by_key_id
    )
    if not rides_on_account(organisation_id=organisation.id, rider_id=rider_id):
        raise rider_not_in_organisation()
    if organisation.reference_required and not reference.strip():
        raise InvalidInput(
            _("This organisation requires a cost centre or reference code on every booking."),
            code="reference_required",
        )
    local = pickup_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    if not pickup_time_allowed(organisation.allowed_hours, local):
        raise Unprocessable(
            _("The organisation does not book rides at this time."),
            code="organisation_hours",
            details={"pickup_local": local.isoformat(), "allowed_hours": organisation.allowed_hours},
        )
    if organisation.allowed_area is not None:
        outside = [
            name
            for name, point in (("pickup", pickup), ("dropoff", dropoff))
            if not organisation.allowed_area.covers(point)
        ]
        if outside:
            raise Unprocessable(
                _("The organisation books rides only within its area."),
                code="organisation_area",
                details={"outside": outside},
            )
    if organisation.max_fare_minor is not None and fare_minor > organisation.max_fare_minor:
        raise Unprocessable(
            _("This ride costs more than the organisation allows for one ride."),
            code="organisation_max_fare",
            details={
                "fare": fare_minor,
                "max_fare": organisation.max_fare_minor,
                "currency": organisation.currency,
            },
        )
    if wheelchair_accessible and not organisation.wav_allowed:
        raise Unprocessable(
            _("The organisation does not book wheelchair-accessible rides."),
            code="organisation_wav_not_allowed",
        )
    return organisation


def rides_on_account(*, organisation_id: uuid.UUID, rider_id: uuid.UUID) -> bool:
    """The rider rides on the organisation's account: an active rider member or a confirmed guest."""
    return (
        OrganisationMembership.objects.filter(
            organisation_id=organisation_id, user_id=rider_id, is_active=True, role=OrganisationRole.RIDER
        ).exists()
        or OrganisationGuest.objects.filter(
            organisation_id=organisation_id, user_id=rider_id, confirmed_at__isnull=False
        ).exists()
    )


def rider_not_in_organisation() -> Unprocessable:
    """The one refusal for every rider not on the account: not a rider member, not a guest, or a guest
    whose account holder has not accepted yet (which must not show)."""
    return Unprocessable(
        _(
            "This rider does not ride on the organisation's account (yet); add them as a rider or a guest, "
            "who may need to accept first."
        ),
        code="rider_not_in_organisation",
    )


def _check_booker(
    organisation: Organisation,
    *,
    rider_id: uuid.UUID,
    booked_by_id: uuid.UUID | None,
    booked_by_key_id: uuid.UUID | None,
) -> None:
    refused = PermissionDenied(
        _("You may not book rides for this organisation."), code="organisation_booking_not_allowed"
    )
    if booked_by_key_id is not None:
        key = OrganisationApiKey.objects.filter(
            id=booked_by_key_id, organisation=organisation, revoked_at__isnull=True
        ).first()
        if key is None or ApiKeyScope.TRIPS_WRITE.value not in key.scopes:
            raise refused
        return
    if booked_by_id is None:
        raise refused
    membership = OrganisationMembership.objects.filter(
        organisation=organisation, user_id=booked_by_id, is_active=True
    ).first()
    if membership is None:
        raise NotFound(_("No such organisation."), code="organisation_not_found")
    if membership.role in BOOKER_ROLES:
        return
    if organisation.booking_rule == BookingRule.MEMBERS and booked_by_id == rider_id:
        return
    raise refused
