"""Safety over HTTP (docs/safety.md): share-trip links, SOS, the ride PIN, and the staff side of alerts.

Thin: validate, call a service in dispatch/services (share_links, sos, ride_pins), answer through the
shapes of mobile_api/serializers_safety.py. Who may see what: a trip's links, its PIN and its SOS belong to
its rider (and its driver, for SOS); for anyone else the trip does not exist (404 `trip_not_found`). The
link's holder needs no account: the token in the path is the credential, every link that shows no trip
answers the same 404, and both the JSON and the page are limited per real client IP
(`ROCHDALE_SHARED_TRIP_RATE_IP`). Staff routes refuse everyone else (403 `staff_only`) before the id.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.throttling import RedisRateThrottle
from backend.errors import DomainError, InvalidInput
from dispatch import safety_selectors
from dispatch.models import SafetyAlert, SafetyAlertSource
from dispatch.serializers import TripSerializer, trip_for
from dispatch.services import ride_pins, share_links, sos
from mobile_api import serializers_safety as s
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsStaffOnly
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    error_responses,
    merge_errors,
)
from mobile_api.schema.trips import TRIP_ID_PARAMETER

_TRIP_NOT_FOUND = {404: ["trip_not_found"]}
_ALERT_NOT_FOUND = {404: ["safety_alert_not_found"]}
_ALERT_ID = OpenApiParameter("alert_id", uuid.UUID, OpenApiParameter.PATH, description="The alert's id.")
_LINK_ID = OpenApiParameter("link_id", uuid.UUID, OpenApiParameter.PATH, description="The share link's id.")
_TOKEN = OpenApiParameter(
    "token", str, OpenApiParameter.PATH, description="The link's secret, as the rider was given it."
)
# What the link's page and JSON say to their holder, whatever else they are asked.
_NO_STORE = "private, no-store, max-age=0"


class SharedTripRateThrottle(RedisRateThrottle):
    """Per real client IP (`client_ip`), on the link's JSON and its page alike."""

    scope = "shared_trip_ip"


def _public_url(path: str) -> str:
    return settings.ROCHDALE_PUBLIC_URL.rstrip("/") + path


# --- Share-trip links (the trip's rider) ----------------------------------------------------------------


class ShareLinkPage(CursorPage):
    ordering = ("-created_at", "id")


class TripShareLinksView(APIView):
    pagination_class = ShareLinkPage

    @extend_schema(
        operation_id="trip_share_links",
        summary="The share links of your trip, newest first (their tokens are never shown again)",
        parameters=[TRIP_ID_PARAMETER],
        responses={
            200: s.ShareLinkOut(many=True),
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _TRIP_NOT_FOUND)),
        },
        tags=["safety"],
    )
    def get(self, request: Request, trip_id: uuid.UUID) -> Response:
        links = safety_selectors.share_links_of(rider_id=request.user.pk, trip_id=trip_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(links, request, view=self)
        assert page is not None
        return paginator.get_paginated_response(s.ShareLinkOut(page, many=True).data)

    @extend_schema(
        operation_id="trip_share_link_create",
        summary="Make a link a friend can follow your trip with, until it ends",
        description=(
            "The answer carries the link's `token` and `url` this once; only a digest is kept. Whoever "
            "holds the link sees the trip's status, the driver's first name, the car (make, model, plate), "
            "where the car is while it drives to you or drives the ride, the ETA, and the pickup and dropoff "
            "to about a kilometre: never your name, phone, fare or history. At most "
            "ROCHDALE_SHARE_LINKS_PER_TRIP (3) work at once."
        ),
        request=s.ShareLinkCreateIn,
        parameters=[TRIP_ID_PARAMETER],
        responses={
            201: s.ShareLinkCreatedOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _TRIP_NOT_FOUND,
                    {409: ["share_trip_ended", "share_link_limit"]},
                )
            ),
        },
        tags=["safety"],
    )
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.ShareLinkCreateIn(data=request.data)
        body.is_valid(raise_exception=True)
        link, token = share_links.share_link_create(
            rider_id=request.user.pk, trip_id=trip_id, expires_in_s=body.validated_data["expires_in_s"]
        )
        answer = {
            **s.ShareLinkOut(link).data,
            "token": token,
            "url": _public_url(f"/share/{token}"),
            "api_url": _public_url(f"/api/v1/shared/trips/{token}"),
        }
        return Response(answer, status=201)


class TripShareLinkRevokeView(APIView):
    @extend_schema(
        operation_id="trip_share_link_revoke",
        summary="Stop a share link at once",
        request=None,
        parameters=[TRIP_ID_PARAMETER, _LINK_ID],
        responses={
            200: s.ShareLinkOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, {404: ["share_link_not_found"]})),
        },
        tags=["safety"],
    )
    def post(self, request: Request, trip_id: uuid.UUID, link_id: uuid.UUID) -> Response:
        link = share_links.share_link_revoke(rider_id=request.user.pk, trip_id=trip_id, link_id=link_id)
        return Response(s.ShareLinkOut(link).data)


class SharedTripView(APIView):
    """The link's JSON: no account, the token is the credential."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [SharedTripRateThrottle]

    @extend_schema(
        operation_id="shared_trip",
        summary="A shared trip's progress, for whoever holds the link (no sign-in)",
        description=(
            "Answers 404 `share_link_not_found`, always the same body, for a token that is unknown, "
            "revoked or expired, and once the trip has ended (completed, cancelled or unfulfilled)."
        ),
        parameters=[_TOKEN],
        responses={200: s.SharedTripOut, **error_responses({404: ["share_link_not_found"]})},
        tags=["safety"],
    )
    def get(self, request: Request, token: str) -> Response:
        return Response(share_links.shared_trip_progress(token=token))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # The refusals too (404, 429) must never be cached or referred on.
        return _private(super().finalize_response(request, response, *args, **kwargs))


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = _NO_STORE
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    """`/share/{token}`: the page a friend opens. Rendered with the trip as it is now, then kept current by
    polling the JSON (mobile_api/static/share/share.js); without JavaScript it refreshes itself."""
    throttle = SharedTripRateThrottle()
    if not throttle.allow_request(request, None):  # type: ignore[arg-type]
        response = render(request, "share/unavailable.html", {"reason": "rate_limited"}, status=429)
        response["Retry-After"] = str(max(int(throttle.wait() or 1), 1))
        return _page_headers(response)
    try:
        progress = share_links.shared_trip_progress(token=token)
    except DomainError:
        return _page_headers(render(request, "share/unavailable.html", {"reason": "not_found"}, status=404))
    eta, car = progress["eta"], progress["car"]
    context = {
        "trip": progress,
        "api_url": f"/api/v1/shared/trips/{token}",
        "now": timezone.now(),
        "eta_minutes": None if eta is None else max(math.ceil(eta["seconds"] / 60), 1),
        "car_seen": None if car is None else datetime.fromisoformat(car["at"]),
        "poll_ms": max(int(settings.ROCHDALE_SHARE_PAGE_POLL_S * 1000), 1000),
    }
    return _page_headers(render(request, "share/trip.html", context))


def _page_headers(response: HttpResponse) -> HttpResponse:
    _private(response)
    # Our own script, style and JSON only: nothing from elsewhere, no inline script, no framing.
    response["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return response


# --- SOS (the trip's rider or driver; an online driver) ---------------------------------------------------


def _sos_answer(alert: SafetyAlert, created: bool) -> Response:
    return Response(s.SafetyAlertOut(alert).data, status=201 if created else 200)


def _position(data: dict[str, Any]) -> sos.SosPosition | None:
    place = data.get("position")
    if place is None:
        return None
    return sos.SosPosition(lat=place["lat"], lng=place["lng"], accuracy_m=data.get("accuracy_m"))


_SOS_EXAMPLE = OpenApiExample(
    "sos",
    value={
        "client_key": "0d4b1b8e-6f0e-4a57-a1f5-3a9c0c4b6e21",
        "position": {"lat": 40.7601, "lng": -73.9822},
        "accuracy_m": 8,
    },
    request_only=True,
)


class TripSosView(APIView):
    @extend_schema(
        operation_id="trip_sos",
        summary="SOS from the trip's rider or driver: the co-op's staff are alerted at once",
        description=(
            "Recorded with the position and the trip, shown on the staff live map and sent to every staff "
            "member, urgently. The same `client_key` answers the same alert (200) and alerts nobody again. "
            "In danger, also call the emergency number."
        ),
        request=s.SosIn,
        parameters=[TRIP_ID_PARAMETER],
        responses={
            201: s.SafetyAlertOut,
            200: s.SafetyAlertOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _TRIP_NOT_FOUND)),
        },
        examples=[_SOS_EXAMPLE],
        tags=["safety"],
    )
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.SosIn(data=request.data)
        body.is_valid(raise_exception=True)
        alert, created = sos.sos_raise(
            user_id=request.user.pk,
            client_key=body.validated_data["client_key"],
            source=SafetyAlertSource.API,
            trip_id=trip_id,
            position=_position(body.validated_data),
        )
        return _sos_answer(alert, created)


class SosView(APIView):
    @extend_schema(
        operation_id="sos",
        summary="SOS without naming a trip: your open trip, or (a driver) while online",
        description=(
            "The caller's trip under way is used (as its driver, else as its rider); without one, only a "
            "driver who is online may raise an SOS (403 `sos_not_available`). Without a position, a "
            "driver's last fix is used."
        ),
        request=s.SosIn,
        responses={
            201: s.SafetyAlertOut,
            200: s.SafetyAlertOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, {403: ["sos_not_available"]})),
        },
        examples=[_SOS_EXAMPLE],
        tags=["safety"],
    )
    def post(self, request: Request) -> Response:
        body = s.SosIn(data=request.data)
        body.is_valid(raise_exception=True)
        alert, created = sos.sos_raise(
            user_id=request.user.pk,
            client_key=body.validated_data["client_key"],
            source=SafetyAlertSource.API,
            position=_position(body.validated_data),
        )
        return _sos_answer(alert, created)


# --- SOS (staff) ----------------------------------------------------------------------------------------


class AlertPage(CursorPage):
    ordering = ("-raised_at", "id")


_ALERT_STATUS = OpenApiParameter(
    "status",
    str,
    enum=["unresolved", "open", "all"],
    description="`unresolved` (the default): open or acknowledged; `open`: nobody took it on yet; `all`.",
)


class StaffSafetyAlertsView(APIView):
    permission_classes = [IsStaffOnly]
    pagination_class = AlertPage

    @extend_schema(
        operation_id="staff_safety_alerts",
        summary="SOS alerts, newest first",
        parameters=[_ALERT_STATUS],
        responses={
            200: s.StaffSafetyAlertOut(many=True),
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, {400: ["status_invalid"]})),
        },
        tags=["staff"],
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status", "unresolved")
        if status not in ("unresolved", "open", "all"):
            raise InvalidInput(
                _("status is unresolved, open or all."),
                code="status_invalid",
                details={"allowed": ["unresolved", "open", "all"]},
            )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(safety_selectors.safety_alerts(status=status), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(s.StaffSafetyAlertOut(page, many=True).data)


class StaffSafetyAlertView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_safety_alert",
        summary="One SOS alert",
        parameters=[_ALERT_ID],
        responses={
            200: s.StaffSafetyAlertOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _ALERT_NOT_FOUND)),
        },
        tags=["staff"],
    )
    def get(self, request: Request, alert_id: uuid.UUID) -> Response:
        return Response(s.StaffSafetyAlertOut(safety_selectors.safety_alert_get(alert_id=alert_id)).data)


class StaffSafetyAlertAcknowledgeView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_safety_alert_acknowledge",
        summary="Take an SOS on (the first acknowledgement stands; the person is told)",
        request=s.AlertAcknowledgeIn,
        parameters=[_ALERT_ID],
        responses={
            200: s.StaffSafetyAlertOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _ALERT_NOT_FOUND)),
        },
        tags=["staff"],
    )
    def post(self, request: Request, alert_id: uuid.UUID) -> Response:
        body = s.AlertAcknowledgeIn(data=request.data)
        body.is_valid(raise_exception=True)
        alert = sos.sos_acknowledge(
            alert_id=alert_id, staff_id=request.user.pk, note=body.validated_data["note"]
        )
        return Response(s.StaffSafetyAlertOut(alert).data)


class StaffSafetyAlertResolveView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_safety_alert_resolve",
        summary="Close an SOS with what happened",
        request=s.AlertResolveIn,
        parameters=[_ALERT_ID],
        responses={
            200: s.StaffSafetyAlertOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _ALERT_NOT_FOUND)),
        },
        tags=["staff"],
    )
    def post(self, request: Request, alert_id: uuid.UUID) -> Response:
        body = s.AlertResolveIn(data=request.data)
        body.is_valid(raise_exception=True)
        alert = sos.sos_resolve(alert_id=alert_id, staff_id=request.user.pk, note=body.validated_data["note"])
        return Response(s.StaffSafetyAlertOut(alert).data)


# --- Ride PIN -------------------------------------------------------------------------------------------


class TripRidePinResetView(APIView):
    @extend_schema(
        operation_id="trip_ride_pin_reset",
        summary="Issue a new ride PIN for your trip (also lifts the lock after wrong tries)",
        request=None,
        parameters=[TRIP_ID_PARAMETER],
        responses={
            200: TripSerializer,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _TRIP_NOT_FOUND,
                    {409: ["ride_pin_not_set", "trip_already_started"]},
                )
            ),
        },
        tags=["safety"],
    )
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        trip = ride_pins.ride_pin_reset(rider_id=request.user.pk, trip_id=trip_id)
        return Response(trip_for(trip, viewer_id=request.user.pk))


class StaffTripRidePinWaiveView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_trip_ride_pin_waive",
        summary="Take the ride PIN off a trip that has not started, with a reason (audited)",
        request=s.RidePinWaiveIn,
        parameters=[TRIP_ID_PARAMETER],
        responses={
            200: TripSerializer,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _TRIP_NOT_FOUND,
                    {409: ["ride_pin_not_set", "trip_already_started"]},
                )
            ),
        },
        tags=["staff"],
    )
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = s.RidePinWaiveIn(data=request.data)
        body.is_valid(raise_exception=True)
        trip = ride_pins.ride_pin_waive(
            staff_id=request.user.pk, trip_id=trip_id, reason=body.validated_data["reason"]
        )
        return Response(trip_for(trip, viewer_id=request.user.pk))


class MySafetySettingsView(APIView):
    @extend_schema(
        operation_id="me_safety",
        summary="Your standing safety choices",
        responses={200: s.SafetySettingsOut, **error_responses(AUTHENTICATED_GET_ERRORS)},
        tags=["safety"],
    )
    def get(self, request: Request) -> Response:
        chosen = ride_pins.rider_safety_settings_get(rider_id=request.user.pk)
        return Response(s.SafetySettingsOut(chosen).data)

    @extend_schema(
        operation_id="me_safety_update",
        summary="Ask for a ride PIN on every trip you request",
        request=s.SafetySettingsIn,
        responses={
            200: s.SafetySettingsOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, {403: ["rider_role_required"]})),
        },
        tags=["safety"],
    )
    def put(self, request: Request) -> Response:
        body = s.SafetySettingsIn(data=request.data)
        body.is_valid(raise_exception=True)
        chosen = ride_pins.rider_safety_settings_update(
            rider_id=request.user.pk, ride_pin_always=body.validated_data["ride_pin_always"]
        )
        return Response(s.SafetySettingsOut(chosen).data)
