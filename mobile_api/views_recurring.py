"""Recurring rides over HTTP (docs/recurring.md): make one, list them, read one and its dates, skip a date,
cancel the series.

A rider books for themself; an organisation's coordinator (or admin) books for one of its riders or guests
with `organisation_id` and `rider_id`. A series is seen by its rider and by the coordinators and admins of
its organisation; for anyone else it answers 404 as one that does not exist. Thin: validate, call
dispatch/services/recurring.py, shape the answer."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import InvalidInput
from backend.organisations import selectors as org_selectors
from backend.timestamps import wire_timestamp
from dispatch.models import RecurringRide, RecurringRideStatus
from dispatch.scheduling.recurrence import local_date_of
from dispatch.serializers import PartySerializer, PlaceSerializer
from dispatch.services import recurring
from dispatch.services.estimates import Place
from dispatch.services.recurring import MaterialiseReport, OccurrenceView
from mobile_api.idempotency import idempotent
from mobile_api.pagination import CursorPage
from mobile_api.schema import error_responses
from mobile_api.serializers import PlaceIn, UuidStringField
from mobile_api.serializers_fields import Timestamp

# The span of dates an occurrences request lists when it names no `to`.
DEFAULT_LISTED_DAYS = 28
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_FOUND = {404: ["recurring_ride_not_found"]}
_SERIES_ID = OpenApiParameter("series_id", uuid.UUID, OpenApiParameter.PATH, description="The series' id.")


# --- shapes -----------------------------------------------------------------------------------------------


class RecurringRideIn(serializers.Serializer):
    pickup = PlaceIn()
    dropoff = PlaceIn()
    wheelchair_accessible = serializers.BooleanField(required=False, default=False)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7),
        min_length=1,
        max_length=7,
        help_text="ISO weekdays: 1 Monday .. 7 Sunday.",
    )
    pickup_time = serializers.TimeField(
        input_formats=["%H:%M"], help_text="Local pickup time, HH:MM, in the co-op's time zone."
    )
    pickup_window_s = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="Seconds either side of the pickup time (the board's default and maximum apply).",
    )
    starts_on = serializers.DateField(help_text="The first date (local), today or later.")
    until = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="The last date (inclusive)."
    )
    count = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="The number of rides from starts_on, skipped ones included.",
    )
    organisation_id = UuidStringField(
        required=False, allow_null=True, default=None, help_text="Book on this organisation's account."
    )
    rider_id = UuidStringField(
        required=False,
        allow_null=True,
        default=None,
        help_text="With organisation_id: the organisation's rider (yourself by default).",
    )
    guest_id = UuidStringField(
        required=False,
        allow_null=True,
        default=None,
        help_text="With organisation_id: one of the organisation's guests, by the id its guest list shows.",
    )
    reference = serializers.CharField(required=False, allow_blank=True, default="", max_length=80)

    def validate(self, data: dict) -> dict:
        if data.get("guest_id") is not None and (
            data.get("rider_id") is not None or not data.get("organisation_id")
        ):
            raise serializers.ValidationError(
                {"guest_id": "only with organisation_id, and not with rider_id"}
            )
        return data

    def validate_weekdays(self, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError(_("Each weekday once."))
        return value


class SkipIn(serializers.Serializer):
    date = serializers.DateField(help_text="The local date of the occurrence to skip.")


def _query_date(request: Request, name: str) -> date | None:
    """A `YYYY-MM-DD` query parameter, None when absent; InvalidInput naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(_("Dates are YYYY-MM-DD."), details={name: [_("A date is YYYY-MM-DD.")]}) from None


class RecurringRideOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RecurringRideStatus.values)
    rider = PartySerializer()
    organisation_id = serializers.UUIDField(allow_null=True)
    booked_by_id = serializers.UUIDField(allow_null=True)
    pickup = PlaceSerializer()
    dropoff = PlaceSerializer()
    wheelchair_accessible = serializers.BooleanField()
    reference = serializers.CharField(allow_blank=True)
    weekdays = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=7))
    pickup_time = serializers.TimeField(format="%H:%M")
    pickup_window_s = serializers.IntegerField()
    time_zone = serializers.CharField()
    starts_on = serializers.DateField()
    until = serializers.DateField(allow_null=True)
    count = serializers.IntegerField(allow_null=True)
    last_date = serializers.DateField(allow_null=True, help_text="The last date of the rule, if it ends.")
    skipped_dates = serializers.ListField(child=serializers.DateField())
    materialised_through = serializers.DateField(
        allow_null=True, help_text="The last date whose ride has been booked (or tried)."
    )
    created_at = Timestamp()
    cancelled_at = Timestamp(allow_null=True)


def _rider_as_known(series: RecurringRide) -> dict[str, Any]:
    """The series' rider as its booker knows them: an organisation's guest by the guest's id and the name
    the organisation gave (never the account behind it), anyone else by their account."""
    if series.organisation_id is not None:
        known = org_selectors.riders_as_known(
            organisation_id=series.organisation_id, rider_ids=[series.rider_id]
        ).get(series.rider_id)
        if known is not None:
            return {"id": known.id, "name": known.name}
    return {"id": series.rider_id, "name": series.rider.name}


def _series_document(series: RecurringRide) -> dict[str, Any]:
    return RecurringRideOut(
        {
            "id": series.id,
            "status": series.status,
            "rider": _rider_as_known(series),
            "organisation_id": series.organisation_id,
            "booked_by_id": series.booked_by_id,
            "pickup": {"lat": series.pickup.y, "lng": series.pickup.x},
            "dropoff": {"lat": series.dropoff.y, "lng": series.dropoff.x},
            "wheelchair_accessible": series.wheelchair_accessible,
            "reference": series.reference,
            "weekdays": sorted(series.weekdays),
            "pickup_time": series.pickup_time,
            "pickup_window_s": series.pickup_window_s,
            "time_zone": series.time_zone,
            "starts_on": series.starts_on,
            "until": series.until,
            "count": series.count,
            "last_date": recurring.series_rule(series).last_date(),
            "skipped_dates": sorted(series.skipped_dates),
            "materialised_through": series.materialised_through,
            "created_at": series.created_at,
            "cancelled_at": series.cancelled_at,
        }
    ).data


class RecurringOccurrenceBookedOut(serializers.Serializer):
    date = serializers.DateField()
    trip_id = serializers.UUIDField()


class RecurringOccurrenceNotBookedOut(serializers.Serializer):
    date = serializers.DateField()
    code = serializers.CharField()
    message = serializers.CharField()


class RecurringRideCreatedOut(serializers.Serializer):
    recurring_ride = RecurringRideOut()
    booked = RecurringOccurrenceBookedOut(many=True)
    not_booked = RecurringOccurrenceNotBookedOut(many=True, help_text="Occurrences the booking refused now.")


class RecurringRideCancelledOut(serializers.Serializer):
    recurring_ride = RecurringRideOut()
    cancelled_trip_ids = serializers.ListField(child=serializers.UUIDField())


class RecurringOccurrenceTripOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(help_text="The trip's status (the trip object's `status`).")


class RecurringOccurrenceFailureOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    at = serializers.CharField(help_text="When the booking was last refused.")


class RecurringOccurrenceOut(serializers.Serializer):
    date = serializers.DateField()
    pickup_at = serializers.DateTimeField()
    local_time = serializers.CharField(help_text="HH:MM; later than the rule's on a spring-forward day.")
    state = serializers.ChoiceField(choices=["booked", "skipped", "upcoming", "not_booked", "cancelled"])
    trip = RecurringOccurrenceTripOut(allow_null=True)
    failure = RecurringOccurrenceFailureOut(allow_null=True)


RecurringOccurrencesOut = inline_serializer(
    "RecurringOccurrences",
    {
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "time_zone": serializers.CharField(),
        "occurrences": RecurringOccurrenceOut(many=True),
    },
)
RecurringRidePageOut = inline_serializer(
    "RecurringRidePage",
    {"results": RecurringRideOut(many=True), "next": serializers.URLField(allow_null=True)},
)


def _created_document(series: RecurringRide, report: MaterialiseReport) -> dict[str, Any]:
    return {
        "recurring_ride": _series_document(series),
        "booked": [{"date": b.occurrence_date.isoformat(), "trip_id": str(b.trip_id)} for b in report.booked],
        "not_booked": [
            {"date": f.occurrence_date.isoformat(), "code": f.code, "message": f.message}
            for f in report.failed
        ],
    }


def _occurrence_document(view: OccurrenceView) -> dict[str, Any]:
    occurrence = view.occurrence
    failure = view.failure
    return {
        "date": occurrence.local_date.isoformat(),
        "pickup_at": wire_timestamp(occurrence.at),
        "local_time": occurrence.local_time.strftime("%H:%M"),
        "state": view.state,
        "trip": {"id": str(view.trip_id), "status": view.trip_status} if view.trip_id else None,
        "failure": (
            {"code": str(failure["code"]), "message": str(failure["message"]), "at": str(failure["at"])}
            if failure
            else None
        ),
    }


_CREATE_EXAMPLE = OpenApiExample(
    "dialysis",
    summary="Monday, Wednesday and Friday at 07:30, 36 rides",
    value={
        "pickup": {"lat": 40.7128, "lng": -74.006},
        "dropoff": {"lat": 40.7306, "lng": -73.9866},
        "weekdays": [1, 3, 5],
        "pickup_time": "07:30",
        "starts_on": "2027-03-01",
        "count": 36,
    },
    request_only=True,
)


# --- views ------------------------------------------------------------------------------------------------


class RecurringRidePage(CursorPage):
    ordering = ("-created_at", "-id")


class RecurringRideListView(APIView):
    pagination_class = RecurringRidePage

    @extend_schema(
        operation_id="recurring_rides_list",
        summary="The recurring rides you ride, and those of the organisations you book for",
        parameters=[
            OpenApiParameter("cursor", str, description="The `next` link's cursor."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
        ],
        responses={200: RecurringRidePageOut},
        tags=["recurring rides"],
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            recurring.recurring_rides_visible_to(user_id=request.user.pk), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response([_series_document(series) for series in page])

    @extend_schema(
        operation_id="recurring_rides_create",
        summary="Make a recurring ride; what falls within the booking horizon is booked at once",
        description=(
            "Weekdays and a local pickup time in the co-op's time zone, from `starts_on`, until a date or "
            "for a count of rides (skipped ones count), or until cancelled. Occurrences are booked as "
            "scheduled trips a few days ahead (docs/recurring.md); `not_booked` lists those refused now."
        ),
        request=RecurringRideIn,
        responses={
            201: RecurringRideCreatedOut,
            **error_responses(
                {
                    400: ["recurring_rule_invalid", "pickup_window_invalid", "reference_required"],
                    403: ["rider_role_required", "booking_not_allowed", "organisation_booking_not_allowed"],
                    404: ["organisation_not_found"],
                    422: [
                        "recurring_starts_in_past",
                        "recurring_starts_too_far_ahead",
                        "recurring_rule_empty",
                        "outside_service_area",
                        "rider_not_in_organisation",
                        "organisation_hours",
                        "organisation_area",
                        "organisation_max_fare",
                        "organisation_wav_not_allowed",
                    ],
                }
            ),
        },
        examples=[_CREATE_EXAMPLE],
        tags=["recurring rides"],
    )
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        body = RecurringRideIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        rider_id = data["rider_id"]
        if data["guest_id"] is not None:
            # A booker of the organisation only: anyone else learns nothing of its guests.
            organisation = org_selectors.organisation_for_booker(
                organisation_id=data["organisation_id"], user=request.user
            )
            rider_id = org_selectors.guest_get(
                organisation_id=organisation.id, guest_id=data["guest_id"]
            ).user_id
        series, report = recurring.recurring_ride_create(
            booked_by_id=request.user.pk,
            rider_id=rider_id,
            organisation_id=data["organisation_id"],
            pickup=Place(**data["pickup"]),
            dropoff=Place(**data["dropoff"]),
            wheelchair_accessible=data["wheelchair_accessible"],
            weekdays=data["weekdays"],
            pickup_time=data["pickup_time"],
            pickup_window_s=data["pickup_window_s"],
            starts_on=data["starts_on"],
            until=data["until"],
            count=data["count"],
            reference=data["reference"],
        )
        return Response(_created_document(series, report), status=201)


class RecurringRideDetailView(APIView):
    @extend_schema(
        operation_id="recurring_rides_read",
        summary="One recurring ride",
        parameters=[_SERIES_ID],
        responses={200: RecurringRideOut, **error_responses(_NOT_FOUND)},
        tags=["recurring rides"],
    )
    def get(self, request: Request, series_id: uuid.UUID) -> Response:
        series = recurring.recurring_ride_get_for(user_id=request.user.pk, series_id=series_id)
        return Response(_series_document(series))


class RecurringRideOccurrencesView(APIView):
    @extend_schema(
        operation_id="recurring_rides_occurrences",
        summary="A recurring ride's dates, each with its trip (id and status) once booked",
        parameters=[
            _SERIES_ID,
            OpenApiParameter("from", OpenApiTypes.DATE, description="First local date (default today)."),
            OpenApiParameter(
                "to",
                OpenApiTypes.DATE,
                description=f"Last local date (default {DEFAULT_LISTED_DAYS - 1} days after `from`; at most "
                f"{recurring.MAX_LISTED_DAYS - 1} days after it).",
            ),
        ],
        responses={
            200: RecurringOccurrencesOut,
            **error_responses({400: ["invalid_input", "date_range_invalid"], **_NOT_FOUND}),
        },
        tags=["recurring rides"],
    )
    def get(self, request: Request, series_id: uuid.UUID) -> Response:
        start, end = _query_date(request, "from"), _query_date(request, "to")
        series = recurring.recurring_ride_get_for(user_id=request.user.pk, series_id=series_id)
        start = start or local_date_of(timezone.now(), time_zone=series.time_zone)
        end = end or start + timedelta(days=min(DEFAULT_LISTED_DAYS - 1, (date.max - start).days))
        views = recurring.recurring_ride_occurrences(series=series, start=start, end=end)
        return Response(
            {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "time_zone": series.time_zone,
                "occurrences": [_occurrence_document(view) for view in views],
            }
        )


class RecurringRideSkipView(APIView):
    @extend_schema(
        operation_id="recurring_rides_skip",
        summary="Skip one date of a recurring ride (its trip, if booked, is cancelled)",
        description=(
            "The board's cancellation rules apply to a booked occurrence as to any reservation. Skipping a "
            "date twice changes nothing; a skipped date still counts towards `count`."
        ),
        request=SkipIn,
        parameters=[_SERIES_ID],
        responses={
            200: RecurringRideOut,
            **error_responses(
                {
                    **_NOT_FOUND,
                    409: ["recurring_ride_not_active", "occurrence_passed", "trip_not_cancellable"],
                    422: ["not_an_occurrence"],
                }
            ),
        },
        tags=["recurring rides"],
    )
    @idempotent(required=False)
    def post(self, request: Request, series_id: uuid.UUID) -> Response:
        body = SkipIn(data=request.data)
        body.is_valid(raise_exception=True)
        series = recurring.recurring_ride_skip(
            series_id=series_id, actor_id=request.user.pk, occurrence_date=body.validated_data["date"]
        )
        return Response(_series_document(series))


class RecurringRideCancelView(APIView):
    @extend_schema(
        operation_id="recurring_rides_cancel",
        summary="Cancel a recurring ride: no more bookings, and its scheduled trips are cancelled",
        description=(
            "Rides already in dispatch or under way are left alone (cancel them as trips). The board's "
            "cancellation rules apply to each reservation cancelled. No body."
        ),
        request=None,
        parameters=[_SERIES_ID],
        responses={
            200: RecurringRideCancelledOut,
            **error_responses({**_NOT_FOUND, 409: ["recurring_ride_not_active"]}),
        },
        tags=["recurring rides"],
    )
    @idempotent(required=False)
    def post(self, request: Request, series_id: uuid.UUID) -> Response:
        outcome = recurring.recurring_ride_cancel(series_id=series_id, actor_id=request.user.pk)
        return Response(
            {
                "recurring_ride": _series_document(outcome.series),
                "cancelled_trip_ids": [str(trip_id) for trip_id in outcome.cancelled_trip_ids],
            }
        )
