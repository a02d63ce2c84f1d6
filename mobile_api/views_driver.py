"""The driver's REST side: `GET /driver/state` (resync after any reconnect) and `GET /driver/offers`
(their own offer history, each with why they were chosen). Thin: read, shape, answer."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch.selectors import driver_active_trip, driver_offers
from dispatch.serializers import TripSerializer, trip_for
from dispatch.services.eligibility import driver_eligibility_standing
from dispatch.services.offers import offer_document, offer_history_item, open_offer_for_driver
from dispatch.services.presence import presence_is_online
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsDriver
from mobile_api.schema import AUTHENTICATED_GET_ERRORS, error_responses, merge_errors

_DRIVER_ERRORS = merge_errors(AUTHENTICATED_GET_ERRORS, {403: ["driver_role_required"]})

_Money = inline_serializer(
    "DriverMoney", {"amount": serializers.IntegerField(), "currency": serializers.CharField()}
)
_Place = inline_serializer("DriverPlace", {"lat": serializers.FloatField(), "lng": serializers.FloatField()})
_OFFER_FIELDS = {
    "offer_id": serializers.UUIDField(),
    "trip_id": serializers.UUIDField(),
    "pickup": _Place,
    "dropoff": _Place,
    "pickup_distance_m": serializers.IntegerField(),
    "pickup_eta_s": serializers.IntegerField(),
    "trip_distance_m": serializers.IntegerField(),
    "trip_duration_s": serializers.IntegerField(),
    "fare": _Money,
    "driver_pay": _Money,
    "wheelchair_accessible": serializers.BooleanField(),
    "expires_at": serializers.DateTimeField(),
}
_PROBLEM_FIELDS = {
    "code": serializers.ChoiceField(
        choices=["document_missing", "document_pending", "document_expired", "hours_limit_reached"]
    ),
    "message": serializers.CharField(),
    "details": serializers.DictField(),
}
_HOURS_FIELDS = {
    "limit": serializers.CharField(),
    "label": serializers.CharField(),
    "counts": serializers.ChoiceField(choices=["passenger", "engaged"]),
    "used_s": serializers.IntegerField(),
    "max_s": serializers.IntegerField(),
    "left_s": serializers.IntegerField(),
    "available_at": serializers.DateTimeField(allow_null=True),
}
_EligibilityOut = inline_serializer(
    "DriverEligibility",
    {
        "eligible": serializers.BooleanField(),
        "problems": inline_serializer("EligibilityProblem", _PROBLEM_FIELDS, many=True),
        "wheelchair_accessible_problems": inline_serializer(
            "WheelchairEligibilityProblem", _PROBLEM_FIELDS, many=True, allow_null=True
        ),
        "hours": inline_serializer("HoursLeft", _HOURS_FIELDS, many=True),
    },
)
DriverStateOut = inline_serializer(
    "DriverState",
    {
        "online": serializers.BooleanField(),
        "offer": inline_serializer("Offer", _OFFER_FIELDS, allow_null=True),
        "trip": TripSerializer(allow_null=True),
        "eligibility": _EligibilityOut,
    },
)
_HISTORY_FIELDS = {
    "offer_id": serializers.UUIDField(),
    "trip_id": serializers.UUIDField(),
    "status": serializers.ChoiceField(choices=["open", "accepted", "declined", "expired", "withdrawn"]),
    "created_at": serializers.DateTimeField(),
    "expires_at": serializers.DateTimeField(),
    "responded_at": serializers.DateTimeField(allow_null=True),
    "pickup_distance_m": serializers.IntegerField(),
    "pickup_eta_s": serializers.IntegerField(),
    "rank": serializers.IntegerField(),
    "candidates_considered": serializers.IntegerField(),
    "idle_s": serializers.IntegerField(),
    "dispatch_policy_version": serializers.IntegerField(allow_null=True),
    "reason": serializers.DictField(),
}
OfferPageOut = inline_serializer(
    "OfferPage",
    {
        "results": inline_serializer("OfferHistoryItem", _HISTORY_FIELDS, many=True),
        "next": serializers.URLField(allow_null=True),
    },
)


class DriverStateView(APIView):
    permission_classes = [IsDriver]

    @extend_schema(
        operation_id="driver_state",
        summary="What the driver app resyncs from after any reconnect",
        description=(
            "`offer` is the driver's open, unexpired offer (or null); `trip` their active trip; "
            "`eligibility` what the regulator profile's documents and hours limits leave them "
            "(docs/compliance.md): the problems keeping them from offers, those only wheelchair-accessible "
            "trips add (null unless the active vehicle is one), and the hours left per limit."
        ),
        responses={200: DriverStateOut, **error_responses(_DRIVER_ERRORS)},
        tags=["driver"],
    )
    def get(self, request: Request) -> Response:
        driver_id = request.user.pk
        offer = open_offer_for_driver(driver_id=driver_id)
        trip = driver_active_trip(driver_id=driver_id)
        return Response(
            {
                "online": presence_is_online(driver_id=driver_id),
                "offer": offer_document(offer) if offer is not None else None,
                "trip": trip_for(trip, viewer_id=driver_id) if trip is not None else None,
                "eligibility": driver_eligibility_standing(driver_id=driver_id, at=timezone.now()).as_dict(),
            }
        )


class OfferPage(CursorPage):
    ordering = "-created_at"


class DriverOffersView(APIView):
    pagination_class = OfferPage
    permission_classes = [IsDriver]

    @extend_schema(
        operation_id="driver_offers",
        summary="The driver's own offers, newest first, each with why they were chosen",
        parameters=[
            OpenApiParameter("cursor", str, description="The `next` link's cursor."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
        ],
        responses={200: OfferPageOut, **error_responses(_DRIVER_ERRORS)},
        tags=["driver"],
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(driver_offers(driver_id=request.user.pk), request, view=self)
        assert page is not None
        return paginator.get_paginated_response([offer_history_item(offer) for offer in page])
