"""Rides booked ahead, for drivers and staff (docs/scheduling.md): `GET /driver/reservations` (what the
driver may claim, and their claims), `POST /driver/reservations/{id}/claim` and `.../release`, and
`GET /staff/reservations?status=upcoming|unclaimed_at_risk`.

Thin: the gate, the service (dispatch/services/claims.py, dispatch/services/reservations.py), the shape. A
reservation the caller may not see answers 404 `reservation_not_found`, as one that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.models import User
from backend.errors import InvalidInput
from backend.timestamps import wire_timestamp
from dispatch.models import Trip
from dispatch.services import claims, reservations
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsDriver, IsStaffOnly
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    MoneySerializer,
    error_responses,
    merge_errors,
)

_ELIGIBILITY_CODES = ["document_missing", "document_pending", "document_expired", "hours_limit_reached"]
_LIST_ERRORS = merge_errors(
    AUTHENTICATED_GET_ERRORS, {403: ["driver_role_required", "driver_not_approved", *_ELIGIBILITY_CODES]}
)
_CLAIM_ERRORS = merge_errors(
    AUTHENTICATED_POST_ERRORS,
    {
        403: ["driver_not_approved", *_ELIGIBILITY_CODES],
        404: ["reservation_not_found"],
        409: ["reservation_already_claimed", "claim_limit_reached", "claims_overlap"],
    },
)
_RELEASE_ERRORS = merge_errors(
    AUTHENTICATED_POST_ERRORS,
    {404: ["reservation_not_found"], 409: ["claim_release_too_late", "claim_release_limit_reached"]},
)
_STAFF_ERRORS = merge_errors(AUTHENTICATED_GET_ERRORS, {400: ["status_invalid"], 403: ["staff_only"]})
_RESERVATION_ID = OpenApiParameter("trip_id", type=uuid.UUID, location=OpenApiParameter.PATH)

_Place = inline_serializer(
    "ReservationPlace", {"lat": serializers.FloatField(), "lng": serializers.FloatField()}
)
_Area = inline_serializer(
    "ReservationArea",
    {"lat": serializers.FloatField(), "lng": serializers.FloatField()},
    help_text="The centre of the 0.01° cell (about 1 km) the place is in.",
)
_NullablePlace = inline_serializer(
    "ReservationExactPlace",
    {"lat": serializers.FloatField(), "lng": serializers.FloatField()},
    allow_null=True,
    help_text="The exact place once the driver's claim can no longer be given back (after "
    "`release_until`); `null` before, and for a ride they have not claimed.",
)
ReservationOut = inline_serializer(
    "DriverReservation",
    {
        "id": serializers.UUIDField(help_text="The trip's id."),
        "scheduled_for": serializers.DateTimeField(),
        "window_start": serializers.DateTimeField(),
        "window_end": serializers.DateTimeField(),
        "pickup_area": _Area,
        "dropoff_area": _Area,
        "pickup": _NullablePlace,
        "dropoff": _NullablePlace,
        "wheelchair_accessible": serializers.BooleanField(),
        "distance_m": serializers.IntegerField(),
        "duration_s": serializers.IntegerField(),
        "pickup_distance_m": serializers.IntegerField(
            allow_null=True,
            help_text="From the driver's last known position to the centre of `pickup_area`, to the "
            "kilometre; null if unknown.",
        ),
        "fare_estimate": MoneySerializer,
        "driver_pay": MoneySerializer,
        "claimed_by_you": serializers.BooleanField(),
        "claimed_at": serializers.DateTimeField(allow_null=True),
        "release_until": serializers.DateTimeField(
            allow_null=True, help_text="Until when the driver may give their claim back."
        ),
    },
)
ReservationPageOut = inline_serializer(
    "DriverReservationPage",
    {"results": ReservationOut.__class__(many=True), "next": serializers.URLField(allow_null=True)},
)
_Party = inline_serializer(
    "ReservationParty", {"id": serializers.UUIDField(), "name": serializers.CharField()}, allow_null=True
)
StaffReservationOut = inline_serializer(
    "StaffReservation",
    {
        "id": serializers.UUIDField(),
        "status": serializers.CharField(
            help_text="`scheduled`, or `requested` once in dispatch (the trip object's status)."
        ),
        "scheduled_for": serializers.DateTimeField(),
        "window_start": serializers.DateTimeField(),
        "window_end": serializers.DateTimeField(),
        "release_at": serializers.DateTimeField(allow_null=True),
        "pickup": _Place,
        "dropoff": _Place,
        "wheelchair_accessible": serializers.BooleanField(),
        "rider": _Party,
        "organisation": _Party,
        "reference": serializers.CharField(allow_blank=True),
        "claimed_by": _Party,
        "claimed_at": serializers.DateTimeField(allow_null=True),
        "claim_warned_at": serializers.DateTimeField(allow_null=True),
        "risks": serializers.ListField(
            child=serializers.ChoiceField(
                choices=[
                    "searching",
                    "rider_on_another_trip",
                    "no_driver_near",
                    "window_open",
                    "claimed_driver_warned",
                ]
            ),
            help_text="Why it may not be served in its window (`unclaimed_at_risk`); empty for `upcoming`.",
        ),
    },
)
StaffReservationPageOut = inline_serializer(
    "StaffReservationPage",
    {"results": StaffReservationOut.__class__(many=True), "next": serializers.URLField(allow_null=True)},
)

_EXAMPLE = {
    "id": "7d1f5c2e-3b0a-4a47-9c1e-2f6b8a0d4e11",
    "scheduled_for": "2026-11-24T12:30:00Z",
    "window_start": "2026-11-24T12:15:00Z",
    "window_end": "2026-11-24T12:45:00Z",
    "pickup_area": {"lat": 40.76, "lng": -73.99},
    "dropoff_area": {"lat": 40.71, "lng": -74.01},
    "pickup": None,
    "dropoff": None,
    "wheelchair_accessible": False,
    "distance_m": 6400,
    "duration_s": 1260,
    "pickup_distance_m": 2000,
    "fare_estimate": {"amount": 2390, "currency": "USD"},
    "driver_pay": {"amount": 2032, "currency": "USD"},
    "claimed_by_you": False,
    "claimed_at": None,
    "release_until": None,
}


class ReservationPage(CursorPage):
    ordering = ("pickup_window_start", "id")


class DriverReservationsView(APIView):
    permission_classes = [IsDriver]
    pagination_class = ReservationPage

    @extend_schema(
        operation_id="driver_reservations",
        summary="Rides booked ahead the driver may claim, and their own claims, soonest window first",
        description=(
            "Unclaimed reservations whose window opens within the board's `claim_horizon_s`, with the pickup "
            "in the service area the driver is in, wheelchair-accessible ones only for a wheelchair-"
            "accessible active vehicle. Places are their 0.01° cells (about 1 km) until the driver's claim "
            "can no longer be given back (`release_until`); the ride's exact places show from then. "
            "The driver must be approved and eligible (docs/compliance.md)."
        ),
        parameters=[
            OpenApiParameter("cursor", str, description="The `next` link's cursor."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
        ],
        responses={200: ReservationPageOut, **error_responses(_LIST_ERRORS)},
        examples=[
            OpenApiExample("one to claim", value={"results": [_EXAMPLE], "next": None}, response_only=True)
        ],
        tags=["driver"],
    )
    def get(self, request: Request) -> Response:
        driver_id = request.user.pk
        found = claims.driver_reservations(driver_id=driver_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(found, request, view=self)
        assert page is not None
        origin = claims.driver_origin(driver_id=driver_id)
        return paginator.get_paginated_response(
            [claims.reservation_document(trip, driver_id=driver_id, origin=origin) for trip in page]
        )


class ReservationClaimView(APIView):
    # Any signed-in caller: a reservation is looked up among those the caller may claim, so a rider (or a
    # driver who may not see it) gets the same 404 as for an id that does not exist.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="driver_reservation_claim",
        summary="Claim a ride booked ahead; the rider is told who will pick them up",
        description=(
            "One claim wins: whoever claims a ride another driver holds (or loses the race for it) gets "
            "409 `reservation_already_claimed`. At most `max_claims_per_driver` claims at once, none whose "
            "windows (plus the ride) overlap. Claiming one's own claim again answers it unchanged. The "
            "places stay coarse until `release_until` (exact at once for a ride too soon to give back)."
        ),
        request=None,
        parameters=[_RESERVATION_ID],
        responses={200: ReservationOut, **error_responses(_CLAIM_ERRORS)},
        examples=[
            OpenApiExample(
                "claimed",
                value={
                    **_EXAMPLE,
                    "claimed_by_you": True,
                    "claimed_at": "2026-11-22T18:02:11Z",
                    "release_until": "2026-11-24T10:30:00Z",
                },
                response_only=True,
            )
        ],
        tags=["driver"],
    )
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        trip = claims.reservation_claim(driver_id=request.user.pk, trip_id=trip_id)
        return Response(_driver_document(trip, request))


class ReservationReleaseView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="driver_reservation_release",
        summary="Give a claimed ride back (until `claim_release_until_s` before its pickup time)",
        description=(
            "Until `release_until` (else 409 `claim_release_too_late`), at most "
            f"{claims.MAX_RELEASES_PER_DAY} times in any 24 hours (409 `claim_release_limit_reached`, "
            "`details.max_releases_per_day` and `details.next_release_at`)."
        ),
        request=None,
        parameters=[_RESERVATION_ID],
        responses={200: ReservationOut, **error_responses(_RELEASE_ERRORS)},
        tags=["driver"],
    )
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        trip = claims.reservation_release(driver_id=request.user.pk, trip_id=trip_id)
        return Response(_driver_document(trip, request))


def _driver_document(trip: Trip, request: Request) -> dict[str, Any]:
    driver_id = request.user.pk
    return claims.reservation_document(
        trip, driver_id=driver_id, origin=claims.driver_origin(driver_id=driver_id)
    )


class StaffReservationPage(CursorPage):
    ordering = ("pickup_window_start", "id")


STAFF_STATUSES = ("upcoming", "unclaimed_at_risk")


class StaffReservationsView(APIView):
    permission_classes = [IsStaffOnly]
    pagination_class = StaffReservationPage

    @extend_schema(
        operation_id="staff_reservations",
        summary="Upcoming reservations, or those at risk of not being served in their window",
        description=(
            "`upcoming` (the default): every reservation not yet under way, soonest window first, paged. "
            "`unclaimed_at_risk`: those in dispatch with no driver yet, due with their rider on another "
            "trip, due within 30 minutes with no free driver near, still waiting with their window open, "
            "or whose claimed driver was warned; each with its `risks`, at most 200, in one page."
        ),
        parameters=[
            OpenApiParameter("status", str, enum=list(STAFF_STATUSES), description="Which list."),
            OpenApiParameter("cursor", str, description="The `next` link's cursor (`upcoming`)."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20; `upcoming`)."),
        ],
        responses={200: StaffReservationPageOut, **error_responses(_STAFF_ERRORS)},
        tags=["staff"],
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status", "upcoming")
        if wanted not in STAFF_STATUSES:
            raise InvalidInput(
                _("status is upcoming or unclaimed_at_risk."),
                code="status_invalid",
                details={"allowed": list(STAFF_STATUSES)},
            )
        if wanted == "unclaimed_at_risk":
            return Response(
                {
                    "results": [
                        _staff_document(trip, risks) for trip, risks in reservations.reservations_at_risk()
                    ],
                    "next": None,
                }
            )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(reservations.reservations_upcoming(), request, view=self)
        assert page is not None
        return paginator.get_paginated_response([_staff_document(trip, []) for trip in page])


def _party(user: User | None) -> dict[str, str] | None:
    return None if user is None else {"id": str(user.pk), "name": user.name}


def _staff_document(trip: Trip, risks: list[str]) -> dict[str, Any]:
    assert trip.scheduled_for and trip.pickup_window_start and trip.pickup_window_end
    return {
        "id": str(trip.id),
        "status": trip.status,
        "scheduled_for": wire_timestamp(trip.scheduled_for),
        "window_start": wire_timestamp(trip.pickup_window_start),
        "window_end": wire_timestamp(trip.pickup_window_end),
        "release_at": wire_timestamp(trip.release_at) if trip.release_at else None,
        "pickup": {"lat": trip.pickup.y, "lng": trip.pickup.x},
        "dropoff": {"lat": trip.dropoff.y, "lng": trip.dropoff.x},
        "wheelchair_accessible": trip.wheelchair_accessible,
        "rider": _party(trip.rider),
        "organisation": None
        if trip.organisation is None
        else {"id": str(trip.organisation.pk), "name": trip.organisation.name},
        "reference": trip.reference,
        "claimed_by": _party(trip.claimed_by),
        "claimed_at": wire_timestamp(trip.claimed_at) if trip.claimed_at else None,
        "claim_warned_at": wire_timestamp(trip.claim_warned_at) if trip.claim_warned_at else None,
        "risks": risks,
    }
