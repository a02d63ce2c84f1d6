"""Fares and trips for riders (and the driver's side of rating and cancelling) over HTTP. Thin: validate,
call a service in dispatch/services, answer through an output serializer (the trip object is
dispatch.serializers.trip_for, the one shape REST and the websocket pushes share). The examples and each
route's refusals are in mobile_api/schema/trips.py."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch.selectors import trip_get_for, trips_visible_to
from dispatch.serializers import TripSerializer, trip_for
from dispatch.services import abandoned, estimates, trips
from dispatch.services.estimates import Place
from mobile_api import serializers as s
from mobile_api.idempotency import idempotency_key_parameter, idempotent
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsStaff
from mobile_api.schema import AUTHENTICATED_POST_ERRORS, error_responses, merge_errors
from mobile_api.schema import trips as docs
from mobile_api.schema.trips import OPTIONAL_IDEMPOTENCY_ERRORS
from mobile_api.schema.trips import TRIP_EXAMPLE as _TRIP_EXAMPLE
from mobile_api.schema.trips import TRIP_ID_PARAMETER as _TRIP_ID_PARAMETER


def _place(data: dict[str, float]) -> Place:
    return Place(lat=data["lat"], lng=data["lng"])


class TripPage(CursorPage):
    ordering = "-requested_at"


class FareEstimateView(APIView):
    @extend_schema(
        operation_id="fare_estimate",
        summary="Quote a trip: fare, route, driver pay floor, nearest driver; valid for 5 minutes",
        description=(
            "The fare is priced by the fare policy in force. A trip that names `estimate_id` pays the quoted "
            "fare unless the trip turns out materially different (the tolerance rule, docs/fares.md)."
        ),
        request=s.EstimateIn,
        responses={200: s.EstimateOut, **error_responses(docs.FARE_ESTIMATE)},
        examples=docs.FARE_ESTIMATE_EXAMPLES,
        tags=["trips"],
    )
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        body = s.EstimateIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        estimate = estimates.estimate_create(
            rider_id=request.user.pk,
            pickup=_place(data["pickup"]),
            dropoff=_place(data["dropoff"]),
            wheelchair_accessible=data["wheelchair_accessible"],
        )
        return Response(s.EstimateOut(estimate).data)


class TripListView(APIView):
    pagination_class = TripPage

    @extend_schema(
        operation_id="trips_list",
        summary="The caller's trips (ridden or driven), newest first",
        responses={200: TripSerializer(many=True)},
        tags=["trips"],
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(trips_visible_to(request.user.pk), request, view=self)
        assert page is not None
        return paginator.get_paginated_response([trip_for(trip, viewer_id=request.user.pk) for trip in page])

    @extend_schema(
        operation_id="trips_request",
        summary="Request a trip (Idempotency-Key required)",
        description=(
            "With `estimate_id` the trip carries that estimate's quote: it must be your own, unexpired, for "
            "the same pickup and dropoff (within 10 m) and the same wheelchair flag. One open trip per "
            "rider. With `scheduled_for` the ride is booked ahead (docs/scheduling.md): it is `scheduled` "
            "until its dispatch starts, and a rider may hold several reservations that do not overlap."
        ),
        request=s.TripRequestIn,
        responses={201: TripSerializer, **error_responses(docs.TRIP_REQUEST)},
        examples=docs.TRIP_REQUEST_EXAMPLES,
        tags=["trips"],
    )
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        body = s.TripRequestIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        trip = trips.trip_request(
            rider_id=request.user.pk,
            pickup=_place(data["pickup"]),
            dropoff=_place(data["dropoff"]),
            wheelchair_accessible=data.get("wheelchair_accessible"),
            estimate_id=data.get("estimate_id"),
            scheduled_for=data.get("scheduled_for"),
            pickup_window_s=data.get("pickup_window_s"),
            ride_pin=data.get("ride_pin"),
        )
        return Response(trip_for(trip, viewer_id=request.user.pk), status=201)


class TripDetailView(APIView):
    @extend_schema(
        operation_id="trips_read",
        summary="One of the caller's trips",
        parameters=[docs.TRIP_ID_PARAMETER],
        responses={200: TripSerializer, **error_responses(docs.TRIP_READ)},
        examples=docs.TRIP_READ_EXAMPLES,
        tags=["trips"],
    )
    def get(self, request: Request, trip_id: uuid.UUID) -> Response:
        trip = trip_get_for(user_id=request.user.pk, trip_id=trip_id)
        return Response(trip_for(trip, viewer_id=request.user.pk))


class TripCancelView(APIView):
    @extend_schema(
        operation_id="trips_cancel",
        summary="Cancel a trip that has not started (rider or driver)",
        description=(
            "A rider cancelling more than the policy's `free_cancellation_s` after a driver was assigned "
            "pays the cancellation fee (`cancellation_fee` on the trip)."
        ),
        request=s.CancelIn,
        parameters=[docs.TRIP_ID_PARAMETER],
        responses={200: TripSerializer, **error_responses(docs.TRIP_CANCEL)},
        examples=docs.TRIP_CANCEL_EXAMPLES,
        tags=["trips"],
    )
    @idempotent(required=False)
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.CancelIn(data=request.data)
        body.is_valid(raise_exception=True)
        trip = trips.trip_cancel(
            trip_id=trip_id, actor_id=request.user.pk, reason=body.validated_data["reason"]
        )
        return Response(trip_for(trip, viewer_id=request.user.pk))


class TripRatingView(APIView):
    @extend_schema(
        operation_id="trips_rate",
        summary="Rate the other party of a completed trip (once each)",
        request=s.RatingIn,
        parameters=[docs.TRIP_ID_PARAMETER],
        responses={201: s.RatingOut, **error_responses(docs.TRIP_RATE)},
        examples=docs.TRIP_RATE_EXAMPLES,
        tags=["trips"],
    )
    @idempotent(required=False)
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.RatingIn(data=request.data)
        body.is_valid(raise_exception=True)
        rating = trips.trip_rate(
            trip_id=trip_id,
            author_id=request.user.pk,
            stars=body.validated_data["stars"],
            comment=body.validated_data["comment"],
        )
        return Response(s.RatingOut(rating).data, status=201)


class TripTipView(APIView):
    @extend_schema(
        operation_id="trips_tip",
        summary="Tip the driver of a completed trip; all of it goes to the driver (Idempotency-Key required)",
        description="Tips on one trip add up to at most its fare.",
        request=s.TipIn,
        parameters=[docs.TRIP_ID_PARAMETER],
        responses={201: s.TipOut, **error_responses(docs.TRIP_TIP)},
        examples=docs.TRIP_TIP_EXAMPLES,
        tags=["trips"],
    )
    @idempotent(required=True)
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.TipIn(data=request.data)
        body.is_valid(raise_exception=True)
        amount = body.validated_data["amount"]
        tip = trips.trip_tip(
            trip_id=trip_id,
            rider_id=request.user.pk,
            amount_minor=amount["amount"],
            currency=amount["currency"],
        )
        return Response(s.TipOut(tip).data, status=201)


class StaffTripCloseView(APIView):
    """Staff end a trip nobody else can end (its driver vanished), with a reason and a fare decision."""

    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="staff_trip_close",
        summary="Staff close an open trip with a recorded reason and a fare decision",
        description=(
            "`no_charge` cancels any open trip as the system without a fee (`cancelled_by: system`; an "
            "in-progress trip through the system-only move, docs/api.md). `charge_trail` completes a "
            "started trip on its measured trail and `charge_estimate` at the route's estimate (the quote), "
            "both with the usual settlement and pay floor. Both parties get `trip.updated`; the close is "
            "recorded in the audit log. Non-staff get 403 before the id is looked at."
        ),
        request=s.TripCloseIn,
        parameters=[_TRIP_ID_PARAMETER, idempotency_key_parameter(required=False)],
        responses={
            200: TripSerializer,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    OPTIONAL_IDEMPOTENCY_ERRORS,
                    {
                        403: ["permission_denied"],
                        404: ["trip_not_found"],
                        409: ["trip_already_ended", "close_decision_not_applicable"],
                        422: ["trail_unusable"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample(
                "no charge",
                value={"decision": "no_charge", "reason": "Driver's phone died; rider waited 10 minutes"},
                request_only=True,
            ),
            OpenApiExample(
                "closed",
                value={**_TRIP_EXAMPLE, "status": "cancelled", "cancelled_by": "system"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
        tags=["staff"],
    )
    @idempotent(required=False)
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.TripCloseIn(data=request.data)
        body.is_valid(raise_exception=True)
        trip = abandoned.trip_close_by_staff(
            trip_id=trip_id,
            staff_id=request.user.pk,
            decision=abandoned.CloseDecision(body.validated_data["decision"]),
            reason=body.validated_data["reason"],
        )
        return Response(trip_for(trip, viewer_id=request.user.pk))
