"""Fares and trips for riders (and the driver's side of rating and cancelling) over HTTP. Thin: validate,
call a service in dispatch/services, shape the answer with dispatch.serializers.trip_for."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.fares.money import money
from dispatch.selectors import trip_get_for, trips_visible_to
from dispatch.serializers import TripSerializer, trip_for
from dispatch.services import abandoned, estimates, trips
from dispatch.services.estimates import Place
from mobile_api import serializers as s
from mobile_api.idempotency import idempotency_key_parameter, idempotent
from mobile_api.pagination import CursorPage
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    error_responses,
    merge_errors,
)

TRIP_ID = "6a0d7c4e-55c1-4f7e-a3f1-0b5b8e1f2c33"
_PLACES = {"pickup": {"lat": 40.7580, "lng": -73.9855}, "dropoff": {"lat": 40.7128, "lng": -74.0060}}
_TRIP_EXAMPLE = {
    "id": TRIP_ID,
    "status": "requested",
    **_PLACES,
    "wheelchair_accessible": False,
    "requested_at": "2026-11-21T14:03:00Z",
    "rider": {"id": "6f1c2b1e-8d4a-4c53-9f43-3f3c2a7d9b10", "name": "Ada Rider"},
    "driver": None,
    "fare_estimate": {"amount": 2307, "currency": "USD"},
    "fare": None,
    "driver_pay": None,
    "cancellation_fee": None,
    "fare_breakdown": None,
    "distance_m": 7412,
    "duration_s": 1260,
    "cancelled_by": None,
    "events": [{"status": "requested", "at": "2026-11-21T14:03:00Z"}],
}
IDEMPOTENCY_ERRORS = {
    400: ["idempotency_key_required", "idempotency_key_invalid"],
    409: ["idempotency_key_in_flight"],
    422: ["idempotency_key_reused"],
}
OPTIONAL_IDEMPOTENCY_ERRORS = {
    400: ["idempotency_key_invalid"],
    409: ["idempotency_key_in_flight"],
    422: ["idempotency_key_reused"],
}
_TRIP_ID_PARAMETER = OpenApiParameter("trip_id", type=uuid.UUID, location=OpenApiParameter.PATH)


def _place(data: dict[str, float]) -> Place:
    return Place(lat=data["lat"], lng=data["lng"])


class TripPage(CursorPage):
    ordering = "-requested_at"


TripPageOut = inline_serializer(
    "TripPage",
    {
        "results": TripSerializer(many=True),
        "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last one."),
    },
)


class FareEstimateView(APIView):
    @extend_schema(
        operation_id="fare_estimate",
        summary="Quote a trip: fare, route, driver pay floor, nearest driver; valid for 5 minutes",
        description=(
            "The fare is priced by the fare policy in force. A trip that names `estimate_id` pays the quoted "
            "fare unless the trip turns out materially different (the tolerance rule, docs/fares.md)."
        ),
        request=s.EstimateIn,
        parameters=[idempotency_key_parameter(required=False)],
        responses={
            200: s.EstimateOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    OPTIONAL_IDEMPOTENCY_ERRORS,
                    {422: ["outside_service_area"], 503: ["no_fare_policy"]},
                )
            ),
        },
        examples=[
            OpenApiExample("a ride across Manhattan", value={**_PLACES, "wheelchair_accessible": False}),
            OpenApiExample(
                "estimate",
                value={
                    "estimate_id": "0c6f1d0e-2b7a-4d0c-9d8e-1f2a3b4c5d6e",
                    "fare": {"amount": 2307, "currency": "USD"},
                    "distance_m": 7412,
                    "duration_s": 1260,
                    "pickup_eta_s": 240,
                    "driver_pay_minimum": {"amount": 1927, "currency": "USD"},
                    "policy_version": 1,
                    "breakdown": [
                        {"label": "Base fare", "amount": 250},
                        {"label": "Distance", "amount": 806},
                        {"label": "Time", "amount": 735},
                    ],
                    "expires_at": "2026-11-21T14:08:00Z",
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
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
        return Response(estimates.estimate_document(estimate))


class TripListView(APIView):
    pagination_class = TripPage

    @extend_schema(
        operation_id="trips_list",
        summary="The caller's trips (ridden or driven), newest first",
        parameters=[
            OpenApiParameter("cursor", str, description="The `next` link's cursor."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
        ],
        responses={
            200: TripPageOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, {400: ["invalid_cursor"]})),
        },
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
            "the same pickup and dropoff (within 10 m) and the same wheelchair flag. One open trip per rider."
        ),
        request=s.TripRequestIn,
        parameters=[idempotency_key_parameter(required=True)],
        responses={
            201: TripSerializer,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    IDEMPOTENCY_ERRORS,
                    {
                        403: ["rider_role_required"],
                        409: ["trip_in_progress"],
                        422: [
                            "outside_service_area",
                            "estimate_not_found",
                            "estimate_expired",
                            "estimate_mismatch",
                        ],
                        503: ["no_fare_policy"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample(
                "with an estimate",
                value={**_PLACES, "estimate_id": "0c6f1d0e-2b7a-4d0c-9d8e-1f2a3b4c5d6e"},
                request_only=True,
            ),
            OpenApiExample("requested", value=_TRIP_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
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
        )
        return Response(trip_for(trip, viewer_id=request.user.pk), status=201)


class TripDetailView(APIView):
    @extend_schema(
        operation_id="trips_read",
        summary="One of the caller's trips",
        parameters=[_TRIP_ID_PARAMETER],
        responses={
            200: TripSerializer,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, {404: ["trip_not_found"]})),
        },
        examples=[OpenApiExample("requested", value=_TRIP_EXAMPLE, response_only=True)],
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
        parameters=[_TRIP_ID_PARAMETER, idempotency_key_parameter(required=False)],
        responses={
            200: TripSerializer,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    OPTIONAL_IDEMPOTENCY_ERRORS,
                    {404: ["trip_not_found"], 409: ["trip_not_cancellable"]},
                )
            ),
        },
        examples=[
            OpenApiExample("with a reason", value={"reason": "Plans changed"}, request_only=True),
            OpenApiExample(
                "cancelled",
                value={
                    **_TRIP_EXAMPLE,
                    "status": "cancelled",
                    "cancelled_by": "rider",
                    "events": [
                        {"status": "requested", "at": "2026-11-21T14:03:00Z"},
                        {"status": "cancelled", "at": "2026-11-21T14:04:10Z"},
                    ],
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
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
        parameters=[_TRIP_ID_PARAMETER, idempotency_key_parameter(required=False)],
        responses={
            201: s.RatingOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    OPTIONAL_IDEMPOTENCY_ERRORS,
                    {
                        400: ["stars_out_of_range"],
                        404: ["trip_not_found"],
                        409: ["trip_not_completed", "already_rated"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample("five stars", value={"stars": 5, "comment": "Smooth ride"}, request_only=True),
            OpenApiExample(
                "rating",
                value={
                    "id": "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b",
                    "trip_id": TRIP_ID,
                    "author_role": "rider",
                    "stars": 5,
                    "comment": "Smooth ride",
                    "created_at": "2026-11-21T14:40:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
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
        return Response(_rating_document(rating), status=201)


class TripTipView(APIView):
    @extend_schema(
        operation_id="trips_tip",
        summary="Tip the driver of a completed trip; all of it goes to the driver (Idempotency-Key required)",
        description="Tips on one trip add up to at most its fare.",
        request=s.TipIn,
        parameters=[_TRIP_ID_PARAMETER, idempotency_key_parameter(required=True)],
        responses={
            201: s.TipOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    IDEMPOTENCY_ERRORS,
                    {
                        400: ["tip_amount_invalid"],
                        403: ["only_rider_may_tip"],
                        404: ["trip_not_found"],
                        409: ["trip_not_completed"],
                        422: ["currency_mismatch", "tip_too_large"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample(
                "three dollars", value={"amount": {"amount": 300, "currency": "USD"}}, request_only=True
            ),
            OpenApiExample(
                "tip",
                value={
                    "id": "2c3d4e5f-6071-4829-9aab-1c2d3e4f5a6b",
                    "trip_id": TRIP_ID,
                    "amount": {"amount": 300, "currency": "USD"},
                    "created_at": "2026-11-21T14:41:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
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
        return Response(
            {
                "id": str(tip.id),
                "trip_id": str(tip.trip_id),
                "amount": money(tip.amount_minor, tip.currency),
                "created_at": _iso(tip.created_at),
            },
            status=201,
        )


class StaffTripCloseView(APIView):
    """Staff end a trip nobody else can end (its driver vanished), with a reason and a fare decision."""

    permission_classes = [IsAdminUser]

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


def _iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _rating_document(rating: Any) -> dict[str, Any]:
    return {
        "id": str(rating.id),
        "trip_id": str(rating.trip_id),
        "author_role": rating.author_role,
        "stars": rating.stars,
        "comment": rating.comment,
        "created_at": _iso(rating.created_at),
    }
