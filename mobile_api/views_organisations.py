"""Organisations over HTTP (docs/organisations.md): staff set them up, their admins manage people, guests
and API keys, their coordinators (JWT) and systems (API key) book, read and cancel their trips, and a guest
follows one ride at a signed link.

Who sees what: an organisation exists for its active members, its API keys and staff; for anyone else its
id, and every id under it, answers 404 exactly as a made-up one (`organisation_not_found`). Inside it, a
trip, guest or key of another organisation answers 404 too. Admins and coordinators see all the
organisation's trips; its riders only their own. An API key acts only on its own organisation, within
its scopes (`trips:read` for GET, `trips:write` to book and cancel).

What an organisation's people and keys are told of other people is what it entered itself or what those
people agreed to show it: a guest is its own row (the name and phone it gave, never the account's name or
id), a trip's rider is the guest or member it knows (`_rider`), an admin's invitation answers with what
was sent, and a refusal for someone who has not accepted is the one for any rider not on the account.
The invited person accepts or declines at `/me/organisations/{id}/...`.

Thin: the gates (backend/organisations/selectors.py, api_keys.py), the services (backend/organisations/
services.py, dispatch.services.trips), the shapes (mobile_api/serializers_organisations.py). A booking and
the rider's notification are written in one transaction: the SMS leaves only if the trip exists.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.authentication import LanguageJWTAuthentication
from backend.accounts.models import User
from backend.errors import DomainError, InvalidInput, NotFound
from backend.fares.money import money
from backend.fares.pay import local_day_bounds
from backend.organisations import selectors as org_selectors
from backend.organisations import services as org_services
from backend.organisations.api_keys import (
    HasApiKeyScope,
    OrganisationApiKeyAuthentication,
    OrganisationRateThrottle,
    api_key_principal,
)
from backend.organisations.booking import rider_not_in_organisation, rides_on_account
from backend.organisations.guest_links import guest_link_check_current, guest_trip_id
from backend.organisations.models import ApiKeyScope, Organisation
from dispatch.models import Trip
from dispatch.selectors import organisation_trip_get, organisation_trips, trip_load
from dispatch.serializers import trip_for
from dispatch.services import trips
from dispatch.services.booking_notices import rider_told_of_booking
from dispatch.services.estimates import Place
from mobile_api import serializers_organisations as s
from mobile_api.idempotency import carries_idempotency_key, idempotent
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsStaff
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    error_responses,
    merge_errors,
)
from mobile_api.serializers import CancelIn

_ORG_NOT_FOUND = {404: ["organisation_not_found"]}
_ADMIN = merge_errors(_ORG_NOT_FOUND, {403: ["organisation_admin_required"]})
_BOOKER = merge_errors(_ORG_NOT_FOUND, {403: ["organisation_booking_not_allowed"]})
_STAFF = {403: ["permission_denied"]}
_API_KEY_AUTH = {401: ["api_key_invalid", "api_key_revoked"], 403: ["api_key_scope_missing"]}
ORGANISATION_ID = OpenApiParameter("organisation_id", type=uuid.UUID, location=OpenApiParameter.PATH)
_TRIPS_TAGS = ["organisations"]


class OrganisationApiKeyScheme(OpenApiAuthenticationExtension):
    """The organisation API key in the OpenAPI description: as a bearer token or the `X-Api-Key` header."""

    target_class = "backend.organisations.api_keys.OrganisationApiKeyAuthentication"
    name = ["organisationApiKey", "organisationApiKeyHeader"]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "rk_<prefix>_<secret> (organisation API key)",
            },
            {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        ]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        return [{"organisationApiKey": []}, {"organisationApiKeyHeader": []}]


# --- Who is asking, for which organisation ------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationCaller:
    """A member (`user_id`, `role`) or an API key (`key_id`) acting for `organisation`."""

    organisation: Organisation
    user_id: uuid.UUID | None
    role: str | None
    key_id: uuid.UUID | None

    @property
    def sees_all_trips(self) -> bool:
        return self.key_id is not None or self.role in org_selectors.BOOKER_ROLES


def _caller(request: Request, organisation_id: uuid.UUID) -> OrganisationCaller:
    principal = api_key_principal(request)
    if principal is not None:
        if principal.organisation_id != organisation_id:
            raise NotFound(_("No such organisation."), code="organisation_not_found")
        organisation = org_selectors.organisation_get(organisation_id=organisation_id)
        return OrganisationCaller(organisation=organisation, user_id=None, role=None, key_id=principal.key_id)
    organisation, membership = org_selectors.organisation_of_member(
        user_id=request.user.pk, organisation_id=organisation_id
    )
    return OrganisationCaller(
        organisation=organisation, user_id=request.user.pk, role=membership.role, key_id=None
    )


def _trips_for(caller: OrganisationCaller) -> QuerySet[Trip]:
    return organisation_trips(
        organisation_id=caller.organisation.id, rider_id=None if caller.sees_all_trips else caller.user_id
    )


def _trip_of(caller: OrganisationCaller, trip_id: uuid.UUID) -> Trip:
    return organisation_trip_get(
        organisation_id=caller.organisation.id,
        trip_id=trip_id,
        rider_id=None if caller.sees_all_trips else caller.user_id,
    )


def _rider(trip: Trip, known: dict[uuid.UUID, org_selectors.KnownRider]) -> dict[str, Any]:
    """The rider as the organisation knows them: never the name of the account a guest rides as."""
    rider = known.get(trip.rider_id)
    if rider is None:  # not reachable: a trip is booked for a member or a confirmed guest, both kept
        return {"kind": "member", "id": str(trip.rider_id), "name": ""}
    return {"kind": rider.kind, "id": str(rider.id), "name": rider.name}


def _booked_by(trip: Trip, rider: dict[str, Any]) -> dict[str, Any]:
    if trip.booked_by_key_id is not None:
        return {"kind": "api_key", "id": str(trip.booked_by_key_id), "name": trip.booked_by_key.name}
    if trip.booked_by_id is not None:
        return {"kind": "person", "id": str(trip.booked_by_id), "name": trip.booked_by.name}
    return {"kind": "rider", "id": rider["id"], "name": rider["name"]}


def _trips_out(trips_seen: list[Trip], *, viewer_id: uuid.UUID | None) -> list[dict[str, Any]]:
    """The organisation's trips as its people, keys and staff see them: the trip object with its rider
    as the organisation knows them (`_rider`), and who booked it."""
    known: dict[uuid.UUID, org_selectors.KnownRider] = {}
    for organisation_id in {trip.organisation_id for trip in trips_seen}:
        known.update(
            org_selectors.riders_as_known(
                organisation_id=organisation_id,
                rider_ids=[trip.rider_id for trip in trips_seen if trip.organisation_id == organisation_id],
            )
        )
    shown = []
    for trip in trips_seen:
        rider = _rider(trip, known)
        shown.append(
            {**trip_for(trip, viewer_id=viewer_id), "rider": rider, "booked_by": _booked_by(trip, rider)}
        )
    return shown


def _trip_out(trip: Trip, *, viewer_id: uuid.UUID | None) -> dict[str, Any]:
    return _trips_out([trip], viewer_id=viewer_id)[0]


def _filtered(trips_qs: QuerySet[Trip], request: Request) -> QuerySet[Trip]:
    params = request.query_params
    form = s.OrganisationTripFilterIn(
        data={
            key: value
            for key, value in {
                "status": params.get("status"),
                "reference": params.get("reference"),
                "date_from": params.get("from"),
                "date_to": params.get("to"),
            }.items()
            if value not in (None, "")
        }
    )
    form.is_valid(raise_exception=True)
    data = form.validated_data
    if "status" in data:
        trips_qs = trips_qs.filter(status=data["status"])
    if "reference" in data:
        trips_qs = trips_qs.filter(reference=data["reference"])
    if "date_from" in data or "date_to" in data:
        start, end = local_day_bounds(
            data.get("date_from") or data.get("date_to"), data.get("date_to") or data.get("date_from")
        )
        # The ride's day: when it is booked for, or when it was requested for a ride now.
        trips_qs = trips_qs.annotate(ride_at=Coalesce("scheduled_for", "requested_at")).filter(
            ride_at__gte=start, ride_at__lt=end
        )
    return trips_qs


class TripPage(CursorPage):
    ordering = "-requested_at"


_TRIP_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=s.TRIP_STATUSES, description="Only trips in this status."),
    OpenApiParameter("reference", str, description="Only trips booked with this reference (exact)."),
    OpenApiParameter("from", OpenApiTypes.DATE, description="First local date of the ride."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last local date of the ride (inclusive)."),
]


def _no_api_key_idempotency(handler: Callable[..., Response]) -> Callable[..., Response]:
    """`@idempotent(required=False)` for people. Keys are stored per user account, which an API key is not,
    so a key's request carrying `Idempotency-Key` is refused rather than run unprotected."""
    keyed = idempotent(required=False)(handler)

    @functools.wraps(handler)
    def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
        if api_key_principal(request) is not None and carries_idempotency_key(request._request):
            raise InvalidInput(
                _("Idempotency-Key is not yet honoured for API keys; send the booking without it."),
                code="idempotency_key_not_supported",
            )
        return keyed(view, request, *args, **kwargs)

    wrapper.idempotency_required = False  # type: ignore[attr-defined]
    return wrapper


# --- Staff --------------------------------------------------------------------------------------------------


class OrganisationPage(CursorPage):
    ordering = ("name", "id")


def _policy_changes(data: dict[str, Any]) -> dict[str, Any]:
    changes = dict(data)
    if "max_fare" in changes and changes["max_fare"] is not None:
        changes["max_fare"] = dict(changes["max_fare"])
    return changes


class StaffOrganisationsView(APIView):
    permission_classes = [IsStaff]
    pagination_class = OrganisationPage

    @extend_schema(
        operation_id="staff_organisations",
        summary="Every organisation, by name",
        responses={
            200: s.OrganisationOut(many=True),
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _STAFF)),
        },
        tags=["staff"],
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(org_selectors.organisations_all(), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(s.OrganisationOut(page, many=True).data)

    @extend_schema(
        operation_id="staff_organisation_create",
        summary="Set up an organisation (a clinic, agency, business or broker) and its booking policy",
        description=(
            "Billed in the fare policy's currency. Its policy starts open (any time, anywhere served, any "
            "fare) unless the body sets it. Add its first admin with `POST /organisations/{id}/members`."
        ),
        request=s.OrganisationCreateIn,
        responses={
            201: s.OrganisationOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _STAFF,
                    {
                        400: ["allowed_hours_invalid"],
                        409: ["organisation_name_taken"],
                        422: ["currency_mismatch"],
                        503: ["no_fare_policy"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample(
                "clinic",
                value={
                    "name": "Eastside Dialysis Center",
                    "kind": "clinic",
                    "allowed_hours": [{"weekdays": [1, 2, 3, 4, 5, 6], "from": "05:00", "to": "21:00"}],
                    "max_fare": {"amount": 6000, "currency": "USD"},
                    "reference_required": True,
                },
                request_only=True,
            )
        ],
        tags=["staff"],
    )
    def post(self, request: Request) -> Response:
        body = s.OrganisationCreateIn(data=request.data)
        body.is_valid(raise_exception=True)
        changes = _policy_changes(body.validated_data)
        organisation = org_services.organisation_create(
            by=request.user, name=changes.pop("name"), changes=changes
        )
        return Response(s.OrganisationOut(organisation).data, status=201)


class StaffOrganisationView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="staff_organisation",
        summary="One organisation and its booking policy",
        parameters=[ORGANISATION_ID],
        responses={
            200: s.OrganisationOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _STAFF, _ORG_NOT_FOUND)),
        },
        tags=["staff"],
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        return Response(
            s.OrganisationOut(org_selectors.organisation_get(organisation_id=organisation_id)).data
        )

    @extend_schema(
        operation_id="staff_organisation_update",
        summary="Change an organisation's details or booking policy (only the fields sent)",
        parameters=[ORGANISATION_ID],
        request=s.OrganisationPatchIn,
        responses={
            200: s.OrganisationOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _STAFF,
                    _ORG_NOT_FOUND,
                    {
                        400: ["allowed_hours_invalid"],
                        409: ["organisation_name_taken"],
                        422: ["currency_mismatch"],
                    },
                )
            ),
        },
        tags=["staff"],
    )
    def patch(self, request: Request, organisation_id: uuid.UUID) -> Response:
        body = s.OrganisationPatchIn(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        organisation = org_services.organisation_update(
            organisation_id=organisation_id, by=request.user, changes=_policy_changes(body.validated_data)
        )
        return Response(s.OrganisationOut(organisation).data)


class StaffOrganisationTripsView(APIView):
    permission_classes = [IsStaff]
    pagination_class = TripPage

    @extend_schema(
        operation_id="staff_organisation_trips",
        summary="An organisation's trips, newest first (filter by status, reference, local dates)",
        parameters=[ORGANISATION_ID, *_TRIP_LIST_PARAMETERS],
        responses={
            200: s.OrganisationTripOut(many=True),
            **error_responses(
                merge_errors(AUTHENTICATED_GET_ERRORS, _STAFF, _ORG_NOT_FOUND, {400: ["invalid_input"]})
            ),
        },
        tags=["staff"],
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        organisation = org_selectors.organisation_get(organisation_id=organisation_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            _filtered(organisation_trips(organisation_id=organisation.id), request), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response(_trips_out(list(page), viewer_id=None))


# --- Its admins: people, guests, keys -----------------------------------------------------------------------


class MemberPage(CursorPage):
    ordering = ("created_at", "id")


class GuestPage(CursorPage):
    ordering = ("name", "id")


class ApiKeyPage(CursorPage):
    ordering = ("-created_at", "id")


def _page(view: APIView, request: Request, rows: QuerySet, serializer: type) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(rows, request, view=view)
    assert page is not None
    return paginator.get_paginated_response(serializer(page, many=True).data)


class OrganisationMembersView(APIView):
    pagination_class = MemberPage

    @extend_schema(
        operation_id="organisation_members",
        summary="The organisation's people and their roles (its admins and coordinators)",
        parameters=[ORGANISATION_ID],
        responses={
            200: s.OrganisationMembershipOut(many=True),
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _BOOKER)),
        },
        tags=_TRIPS_TAGS,
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        organisation = org_selectors.organisation_for_booker(
            organisation_id=organisation_id, user=request.user
        )
        return _page(
            self,
            request,
            org_selectors.members_of(organisation_id=organisation.id),
            s.OrganisationMembershipOut,
        )

    @extend_schema(
        operation_id="organisation_member_add",
        summary="Invite a person by phone as admin, coordinator or rider, or change a member's role (its "
        "admins)",
        description=(
            "A phone that is not one of its members' is invited, the same way whether or not it has a "
            "Rochdale account: the answer is what was sent and `status: invited`, nothing of any account. "
            "The account with the phone is asked (event `organisation_member_invite`) and joins when it "
            "accepts (`POST /me/organisations/{id}/accept`). A member's phone changes their role at once. "
            "Staff add an existing account directly (`status: active`; 422 `account_not_found`, "
            "`rider_role_required`)."
        ),
        parameters=[ORGANISATION_ID],
        request=s.MemberIn,
        responses={
            201: s.MemberAddedOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _ADMIN,
                    {
                        400: ["phone_invalid"],
                        409: ["last_admin"],
                        422: ["account_not_found", "rider_role_required"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample(
                "coordinator", value={"phone": "+12125550123", "role": "coordinator"}, request_only=True
            )
        ],
        tags=_TRIPS_TAGS,
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        body = s.MemberIn(data=request.data)
        body.is_valid(raise_exception=True)
        added = org_services.member_add(
            organisation_id=organisation_id,
            by=request.user,
            phone=body.validated_data["phone"],
            role=body.validated_data["role"],
        )
        return Response(s.MemberAddedOut(added).data, status=201)


class OrganisationMemberView(APIView):
    @extend_schema(
        operation_id="organisation_member_remove",
        summary="Take someone out of the organisation (its admins; it keeps at least one admin)",
        parameters=[
            ORGANISATION_ID,
            OpenApiParameter("user_id", type=uuid.UUID, location=OpenApiParameter.PATH),
        ],
        responses={
            204: None,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_GET_ERRORS, _ADMIN, {404: ["member_not_found"], 409: ["last_admin"]}
                )
            ),
        },
        tags=_TRIPS_TAGS,
    )
    def delete(self, request: Request, organisation_id: uuid.UUID, user_id: uuid.UUID) -> Response:
        org_services.member_remove(organisation_id=organisation_id, by=request.user, user_id=user_id)
        return Response(status=204)


class OrganisationGuestsView(APIView):
    pagination_class = GuestPage

    @extend_schema(
        operation_id="organisation_guests",
        summary="The people the organisation books for who need no app (its admins and coordinators)",
        parameters=[ORGANISATION_ID],
        responses={
            200: s.GuestOut(many=True),
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _BOOKER)),
        },
        tags=_TRIPS_TAGS,
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        organisation = org_selectors.organisation_for_booker(
            organisation_id=organisation_id, user=request.user
        )
        return _page(self, request, org_selectors.guests_of(organisation_id=organisation.id), s.GuestOut)

    @extend_schema(
        operation_id="organisation_guest_add",
        summary="Add a guest by name and phone (the same phone again is the same guest)",
        description=(
            "The answer is the guest as given (id, name, phone), the same whether or not the phone has a "
            "Rochdale account. A phone with none gets a rider account nobody can sign in to, and the guest "
            "rides at once; the holder of an account with the phone is asked first (event "
            "`organisation_guest_invite`), and until they accept a booking for them is refused with 422 "
            "`rider_not_in_organisation`. Guests hear about their rides by SMS, with a link to follow each."
        ),
        parameters=[ORGANISATION_ID],
        request=s.GuestIn,
        responses={
            201: s.GuestOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _BOOKER, {400: ["phone_invalid"]})),
        },
        examples=[
            OpenApiExample("guest", value={"name": "Maria Lopez", "phone": "+12125550188"}, request_only=True)
        ],
        tags=_TRIPS_TAGS,
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        body = s.GuestIn(data=request.data)
        body.is_valid(raise_exception=True)
        guest = org_services.guest_add(
            organisation_id=organisation_id,
            name=body.validated_data["name"],
            phone=body.validated_data["phone"],
            by=request.user,
        )
        return Response(s.GuestOut(guest).data, status=201)


class OrganisationApiKeysView(APIView):
    pagination_class = ApiKeyPage

    @extend_schema(
        operation_id="organisation_api_keys",
        summary="The organisation's API keys, revoked ones too (prefixes only; its admins)",
        parameters=[ORGANISATION_ID],
        responses={
            200: s.ApiKeyOut(many=True),
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _ADMIN)),
        },
        tags=_TRIPS_TAGS,
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        organisation = org_selectors.organisation_for_admin(
            organisation_id=organisation_id, user=request.user
        )
        return _page(self, request, org_selectors.api_keys_of(organisation_id=organisation.id), s.ApiKeyOut)

    @extend_schema(
        operation_id="organisation_api_key_create",
        summary="Make an API key for the organisation's own system; the answer shows the key once",
        parameters=[ORGANISATION_ID],
        request=s.ApiKeyIn,
        responses={
            201: s.ApiKeyCreatedOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _ADMIN)),
        },
        examples=[
            OpenApiExample(
                "booking system",
                value={"name": "Clinic scheduling", "scopes": ["trips:read", "trips:write"]},
                request_only=True,
            )
        ],
        tags=_TRIPS_TAGS,
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        body = s.ApiKeyIn(data=request.data)
        body.is_valid(raise_exception=True)
        issued = org_services.api_key_create(
            organisation_id=organisation_id,
            by=request.user,
            name=body.validated_data["name"],
            scopes=body.validated_data["scopes"],
        )
        return Response({**s.ApiKeyOut(issued.key).data, "key": issued.plaintext}, status=201)


class OrganisationApiKeyRevokeView(APIView):
    @extend_schema(
        operation_id="organisation_api_key_revoke",
        summary="Revoke an API key: every request with it answers 401 from now on",
        parameters=[
            ORGANISATION_ID,
            OpenApiParameter("key_id", type=uuid.UUID, location=OpenApiParameter.PATH),
        ],
        request=None,
        responses={
            200: s.ApiKeyOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _ADMIN, {404: ["api_key_not_found"]})),
        },
        tags=_TRIPS_TAGS,
    )
    def post(self, request: Request, organisation_id: uuid.UUID, key_id: uuid.UUID) -> Response:
        key = org_services.api_key_revoke(organisation_id=organisation_id, by=request.user, key_id=key_id)
        return Response(s.ApiKeyOut(key).data)


# --- Its bookers and systems: trips -------------------------------------------------------------------------


class OrganisationTripsApi(APIView):
    """The organisation's trip routes: people (JWT) and the organisation's API keys."""

    authentication_classes = [OrganisationApiKeyAuthentication, LanguageJWTAuthentication]
    permission_classes = [IsAuthenticated, HasApiKeyScope]
    throttle_classes = [OrganisationRateThrottle]
    api_key_scopes = {
        "GET": ApiKeyScope.TRIPS_READ.value,
        "POST": ApiKeyScope.TRIPS_WRITE.value,
    }


_BOOKING_ERRORS = merge_errors(
    AUTHENTICATED_POST_ERRORS,
    _API_KEY_AUTH,
    {
        400: [
            "idempotency_key_not_supported",
            "phone_invalid",
            "reference_required",
            "scheduled_for_invalid",
            "pickup_window_invalid",
        ],
        403: ["organisation_booking_not_allowed", "rider_role_required"],
        404: ["organisation_not_found", "guest_not_found"],
        409: ["trip_in_progress", "reservation_overlaps"],
        422: [
            "rider_not_in_organisation",
            "organisation_hours",
            "organisation_area",
            "organisation_max_fare",
            "organisation_wav_not_allowed",
            "outside_service_area",
            "scheduled_too_soon",
            "scheduled_too_far_ahead",
        ],
        503: ["no_fare_policy"],
    },
)


class OrganisationTripsView(OrganisationTripsApi):
    pagination_class = TripPage

    @extend_schema(
        operation_id="organisation_trips",
        summary="The organisation's trips, newest first (its riders: their own); filter by status, "
        "reference, local dates",
        parameters=[ORGANISATION_ID, *_TRIP_LIST_PARAMETERS],
        responses={
            200: s.OrganisationTripOut(many=True),
            **error_responses(
                merge_errors(
                    AUTHENTICATED_GET_ERRORS, _API_KEY_AUTH, _ORG_NOT_FOUND, {400: ["invalid_input"]}
                )
            ),
        },
        tags=_TRIPS_TAGS,
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        caller = _caller(request, organisation_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(_filtered(_trips_for(caller), request), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(_trips_out(list(page), viewer_id=caller.user_id))

    @extend_schema(
        operation_id="organisation_trip_book",
        summary="Book a ride on the organisation's account for one of its riders or guests",
        description=(
            "Name the rider with `rider_id` (a member with the app), `guest_id`, or `guest` `{name, phone}` "
            "(found or added as a guest, as `POST .../guests` does, and kept when the booking is refused "
            "unless the request carries an `Idempotency-Key`); a guest whose account holder has not "
            "accepted yet is refused with 422 `rider_not_in_organisation`, as any rider not on the "
            "account. A rider of an organisation that lets its riders book may name nobody and book for "
            "themself. Now, or ahead with `scheduled_for` (and `pickup_window_s`). The "
            "organisation's policy is checked (hours, area, maximum fare, WAV, who books, reference) and it "
            "is billed; no card is held. The rider is told by SMS (event `trip_booked_for_you`) with a link "
            "to follow the ride. `Idempotency-Key` is honoured for people; an API key's request must not "
            "carry one yet."
        ),
        parameters=[ORGANISATION_ID],
        request=s.OrganisationTripIn,
        responses={201: s.OrganisationTripOut, **error_responses(_BOOKING_ERRORS)},
        examples=[
            OpenApiExample(
                "guest, booked ahead",
                value={
                    "guest": {"name": "Maria Lopez", "phone": "+12125550188"},
                    "pickup": {"lat": 40.7580, "lng": -73.9855},
                    "dropoff": {"lat": 40.7128, "lng": -74.0060},
                    "wheelchair_accessible": True,
                    "scheduled_for": "2026-12-03T07:30:00-05:00",
                    "pickup_window_s": 900,
                    "reference": "DIALYSIS-4471",
                },
                request_only=True,
            )
        ],
        tags=_TRIPS_TAGS,
    )
    @_no_api_key_idempotency
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        caller = _caller(request, organisation_id)
        body = s.OrganisationTripIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        organisation = caller.organisation
        # A guest named by phone is added first, in its own transaction: the invitation it may send stays
        # when the booking is refused (as `POST .../guests`), except under an Idempotency-Key's.
        rider_id = _rider_of_booking(request, caller, data)
        with transaction.atomic():
            trip = trips.trip_request(
                rider_id=rider_id,
                pickup=Place(**data["pickup"]),
                dropoff=Place(**data["dropoff"]),
                wheelchair_accessible=data["wheelchair_accessible"],
                scheduled_for=data["scheduled_for"],
                pickup_window_s=data["pickup_window_s"],
                organisation_id=organisation.id,
                booked_by_id=caller.user_id,
                booked_by_key_id=caller.key_id,
                reference=data["reference"],
            )
            if rider_id != caller.user_id:
                rider_told_of_booking(trip=trip)
        return Response(_trip_out(_trip_of(caller, trip.id), viewer_id=caller.user_id), status=201)


def _rider_of_booking(request: Request, caller: OrganisationCaller, data: dict[str, Any]) -> uuid.UUID:
    """The rider a booking names: a member by id, a guest by id or by name and phone, or the caller.

    For its bookers and keys, a named rider who does not ride on the account (not a rider member, not a
    confirmed guest) is refused here, before anything of the account they ride as could show in a refusal
    (its roles, its own rides in progress or booked ahead)."""
    if data.get("guest") is not None:
        rider_id = org_services.guest_add(
            organisation_id=caller.organisation.id,
            name=data["guest"]["name"],
            phone=data["guest"]["phone"],
            by=request.user if isinstance(request.user, User) else None,
            by_key_id=caller.key_id,
        ).user_id
    elif data.get("guest_id") is not None:
        rider_id = org_selectors.guest_get(
            organisation_id=caller.organisation.id, guest_id=data["guest_id"]
        ).user_id
    elif data.get("rider_id") is not None:
        rider_id = data["rider_id"]
    elif caller.user_id is None:
        raise InvalidInput(details={"rider_id": [_("Name the rider: rider_id, guest_id or guest.")]})
    else:
        return caller.user_id
    if caller.sees_all_trips and not rides_on_account(
        organisation_id=caller.organisation.id, rider_id=rider_id
    ):
        raise rider_not_in_organisation()
    return rider_id


class OrganisationTripView(OrganisationTripsApi):
    @extend_schema(
        operation_id="organisation_trip",
        summary="One of the organisation's trips",
        parameters=[
            ORGANISATION_ID,
            OpenApiParameter("trip_id", type=uuid.UUID, location=OpenApiParameter.PATH),
        ],
        responses={
            200: s.OrganisationTripOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_GET_ERRORS,
                    _API_KEY_AUTH,
                    {404: ["organisation_not_found", "trip_not_found"]},
                )
            ),
        },
        tags=_TRIPS_TAGS,
    )
    def get(self, request: Request, organisation_id: uuid.UUID, trip_id: uuid.UUID) -> Response:
        caller = _caller(request, organisation_id)
        return Response(_trip_out(_trip_of(caller, trip_id), viewer_id=caller.user_id))


class OrganisationTripCancelView(OrganisationTripsApi):
    @extend_schema(
        operation_id="organisation_trip_cancel",
        summary="Cancel one of the organisation's trips that has not started, on its rider's behalf",
        description="Late-cancellation fees are the organisation's, as for a rider (docs/organisations.md).",
        parameters=[
            ORGANISATION_ID,
            OpenApiParameter("trip_id", type=uuid.UUID, location=OpenApiParameter.PATH),
        ],
        request=CancelIn,
        responses={
            200: s.OrganisationTripOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _API_KEY_AUTH,
                    {404: ["organisation_not_found", "trip_not_found"], 409: ["trip_not_cancellable"]},
                )
            ),
        },
        tags=_TRIPS_TAGS,
    )
    def post(self, request: Request, organisation_id: uuid.UUID, trip_id: uuid.UUID) -> Response:
        caller = _caller(request, organisation_id)
        body = CancelIn(data=request.data)
        body.is_valid(raise_exception=True)
        trip = _trip_of(caller, trip_id)
        trips.trip_cancel(
            trip_id=trip.id,
            actor_id=caller.user_id,
            organisation_id=caller.organisation.id,
            reason=body.validated_data["reason"],
        )
        return Response(_trip_out(_trip_of(caller, trip.id), viewer_id=caller.user_id))


# --- A person's own organisations ---------------------------------------------------------------------------


def _my_organisations(user: User, organisations: list[Organisation]) -> list[dict[str, Any]]:
    """Each organisation as the person sees it: what its booking policy allows, their role in it, whether
    it books for them as its guest, and what waits for their yes."""
    standing = org_selectors.person_in_organisations(
        user=user, organisation_ids=[organisation.id for organisation in organisations]
    )
    return [
        {
            "id": str(organisation.id),
            "name": organisation.name,
            "kind": organisation.kind,
            "role": standing[organisation.id].role,
            "guest": standing[organisation.id].guest,
            "invitations": standing[organisation.id].invitations,
            "booking_rule": organisation.booking_rule,
            "reference_required": organisation.reference_required,
            "wav_allowed": organisation.wav_allowed,
            "allowed_hours": organisation.allowed_hours,
            "max_fare": None
            if organisation.max_fare_minor is None
            else money(organisation.max_fare_minor, organisation.currency),
        }
        for organisation in organisations
    ]


class MyOrganisationsView(APIView):
    pagination_class = OrganisationPage

    @extend_schema(
        operation_id="me_organisations",
        summary="The organisations the caller is in, rides for as a guest or is invited to, by name: their "
        "role, what waits for their yes, and what the booking policy allows",
        responses={200: s.MyOrganisationOut(many=True), **error_responses(AUTHENTICATED_GET_ERRORS)},
        tags=["accounts"],
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            org_selectors.organisations_of_person(user=request.user), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response(_my_organisations(request.user, list(page)))


_INVITATION_NOT_FOUND = {404: ["invitation_not_found"]}
_DECLINE_ERRORS = error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _INVITATION_NOT_FOUND))


def _my_organisation(user: User, organisation_id: uuid.UUID) -> dict[str, Any]:
    return _my_organisations(user, [org_selectors.organisation_get(organisation_id=organisation_id)])[0]


class MyOrganisationAcceptView(APIView):
    @extend_schema(
        operation_id="me_organisation_accept",
        summary="Accept an organisation's invitation to join it in the role it offers",
        description="Its invitation of the caller's phone (`invitations` kind `member`); a rider "
        "membership makes the account a rider.",
        parameters=[ORGANISATION_ID],
        request=None,
        responses={
            200: s.MyOrganisationOut,
            **error_responses(
                merge_errors(AUTHENTICATED_POST_ERRORS, _INVITATION_NOT_FOUND, {409: ["last_admin"]})
            ),
        },
        tags=["accounts"],
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        org_services.invitation_accept(user=request.user, organisation_id=organisation_id)
        return Response(_my_organisation(request.user, organisation_id))


class MyOrganisationDeclineView(APIView):
    @extend_schema(
        operation_id="me_organisation_decline",
        summary="Decline an organisation's invitation to join it",
        parameters=[ORGANISATION_ID],
        request=None,
        responses={
            204: None,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _INVITATION_NOT_FOUND)),
        },
        tags=["accounts"],
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        org_services.invitation_decline(user=request.user, organisation_id=organisation_id)
        return Response(status=204)


class MyOrganisationGuestAcceptView(APIView):
    @extend_schema(
        operation_id="me_organisation_guest_accept",
        summary="Let an organisation book rides for you on its account, as its guest",
        description="Until then it could book nothing for you (`invitations` kind `guest`); the account "
        "becomes a rider. Accepting again changes nothing.",
        parameters=[ORGANISATION_ID],
        request=None,
        responses={
            200: s.MyOrganisationOut,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _INVITATION_NOT_FOUND)),
        },
        tags=["accounts"],
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        org_services.guest_accept(user=request.user, organisation_id=organisation_id)
        return Response(_my_organisation(request.user, organisation_id))


class MyOrganisationGuestDeclineView(APIView):
    @extend_schema(
        operation_id="me_organisation_guest_decline",
        summary="Refuse an organisation's asking to book rides for you: its waiting guest is removed",
        parameters=[ORGANISATION_ID],
        request=None,
        responses={
            204: None,
            **error_responses(merge_errors(AUTHENTICATED_POST_ERRORS, _INVITATION_NOT_FOUND)),
        },
        tags=["accounts"],
    )
    def post(self, request: Request, organisation_id: uuid.UUID) -> Response:
        org_services.guest_decline(user=request.user, organisation_id=organisation_id)
        return Response(status=204)


# --- A guest's link -----------------------------------------------------------------------------------------


GUEST_VEHICLE_FIELDS = ("make", "model", "plate", "wheelchair_accessible")


def _trip_loaded(trip_id: uuid.UUID) -> Trip:
    try:
        return trip_load(trip_id)
    except Trip.DoesNotExist as exc:
        raise NotFound(_("No ride is followed at this link."), code="guest_link_not_found") from exc


class GuestTripView(View):
    """What a guest sees at the link in their SMS: that trip's status and window, the driver's first name
    and vehicle, and the driver's position only while the driver is on the way or driving. The signed token
    is the credential (no account, no token header); a tampered or made-up one answers 404
    `guest_link_not_found`, one past its time 403 `guest_link_expired`. Never cached, never referred."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            trip_id = guest_trip_id(token=token)
            trip = _trip_loaded(trip_id)
            guest_link_check_current(ended_at=trip.ended_at, now=timezone.now())
        except DomainError as error:
            response = JsonResponse(error.as_body(), status=error.status)
        else:
            response = JsonResponse(_guest_view(trip))
        response["Cache-Control"] = "private, no-store, max-age=0"
        response["Referrer-Policy"] = "no-referrer"
        return response


def _guest_view(trip: Trip) -> dict[str, Any]:
    """Picked from the trip object as its rider sees it (the driver's position only while on the way or
    driving, as for any rider): nothing of the places, the fare, the rider or the organisation."""
    shown = trip_for(trip, viewer_id=trip.rider_id)
    driver = shown["driver"]
    reservation = shown["reservation"] or {}
    return {
        "status": shown["status"],
        "scheduled_for": reservation.get("scheduled_for"),
        "window_start": reservation.get("window_start"),
        "window_end": reservation.get("window_end"),
        "driver": None
        if driver is None
        else {
            "first_name": (driver["name"].split() or [""])[0],
            "vehicle": None
            if driver["vehicle"] is None
            else {key: driver["vehicle"][key] for key in GUEST_VEHICLE_FIELDS},
            "location": driver["location"],
        },
    }
