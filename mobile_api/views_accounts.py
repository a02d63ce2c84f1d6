"""Accounts over HTTP: registration, sign-in (JWT), the caller's account, websocket tickets, approval."""

from __future__ import annotations

import uuid

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from backend.accounts import services
from backend.accounts.sign_in import user_sign_in
from backend.accounts.throttling import RegisterRateThrottle, SignInRateThrottle, client_ip
from backend.accounts.tickets import ticket_issue
from mobile_api import serializers as s
from mobile_api.accounts import account_document
from mobile_api.permissions import IsStaff
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    error_responses,
    merge_errors,
)

PUBLIC_POST_ERRORS = {
    400: ["invalid_input", "malformed_json"],
    413: ["request_too_large"],
    415: ["unsupported_media_type"],
}

_RIDER_EXAMPLE = {
    "phone": "+12125550100",
    "password": "a long pass phrase",
    "name": "Ada Rider",
    "role": "rider",
}
_DRIVER_EXAMPLE = {
    "phone": "+12125550101",
    "password": "another long pass phrase",
    "name": "Dev Driver",
    "role": "driver",
    "license_number": "TLC1234567",
    "vehicle": {
        "plate": "T123456C",
        "make": "Toyota",
        "model": "Camry",
        "year": 2022,
        "seats": 4,
        "wheelchair_accessible": False,
    },
}
_ACCOUNT_EXAMPLE = {
    "id": "6f1c2b1e-8d4a-4c53-9f43-3f3c2a7d9b10",
    "phone": "+12125550100",
    "name": "Ada Rider",
    "email": "ada@example.org",
    "language": "es",
    "roles": ["rider"],
}


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [RegisterRateThrottle]

    @extend_schema(
        operation_id="auth_register",
        summary="Register a rider, or a driver (who stays pending until staff approve)",
        request=s.RegisterIn,
        responses={
            201: s.AccountOut,
            **error_responses(
                merge_errors(
                    PUBLIC_POST_ERRORS,
                    {
                        400: ["phone_invalid", "password_too_weak", "driver_details_required"],
                        409: ["phone_taken", "license_taken"],
                        429: ["rate_limited"],
                    },
                )
            ),
        },
        examples=[
            OpenApiExample("rider", value=_RIDER_EXAMPLE, request_only=True),
            OpenApiExample("driver", value=_DRIVER_EXAMPLE, request_only=True),
            OpenApiExample("rider account", value=_ACCOUNT_EXAMPLE, response_only=True, status_codes=["201"]),
            OpenApiExample(
                "pending driver",
                value={**_ACCOUNT_EXAMPLE, "roles": ["driver"], "driver_status": "pending"},
                response_only=True,
                status_codes=["201"],
            ),
        ],
        tags=["accounts"],
    )
    def post(self, request: Request) -> Response:
        body = s.RegisterIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        vehicle = data.get("vehicle")
        user = services.user_register(
            phone=data["phone"],
            password=data["password"],
            name=data["name"],
            role=data["role"],
            license_number=data.get("license_number"),
            vehicle=services.VehicleDetails(**vehicle) if vehicle else None,
            email=data.get("email", ""),
        )
        return Response(account_document(user), status=201)


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInRateThrottle]

    @extend_schema(
        operation_id="auth_token",
        summary="Sign in with phone and password: a JWT access token and a refresh token",
        request=s.TokenIn,
        responses={
            200: s.TokenPairOut,
            **error_responses(
                merge_errors(
                    PUBLIC_POST_ERRORS,
                    {401: ["invalid_credentials"], 429: ["sign_in_locked", "rate_limited"]},
                )
            ),
        },
        examples=[
            OpenApiExample(
                "sign in",
                value={"phone": "+12125550100", "password": "a long pass phrase"},
                request_only=True,
            ),
            OpenApiExample(
                "tokens", value={"access": "eyJhbGciOi...", "refresh": "eyJhbGciOi..."}, response_only=True
            ),
        ],
        tags=["accounts"],
    )
    def post(self, request: Request) -> Response:
        body = s.TokenIn(data=request.data)
        body.is_valid(raise_exception=True)
        credentials = body.validated_data
        user = user_sign_in(
            phone=credentials["phone"], password=credentials["password"], ip=client_ip(request)
        )
        refresh = RefreshToken.for_user(user)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class TokenRefreshApiView(TokenRefreshView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInRateThrottle]

    @extend_schema(
        operation_id="auth_token_refresh",
        summary="Trade a refresh token for a new access token (and a rotated refresh token)",
        request=s.RefreshIn,
        responses={
            200: s.RefreshOut,
            **error_responses(
                merge_errors(PUBLIC_POST_ERRORS, {401: ["authentication_failed"], 429: ["rate_limited"]})
            ),
        },
        examples=[
            OpenApiExample("refresh", value={"refresh": "eyJhbGciOi..."}, request_only=True),
            OpenApiExample(
                "new tokens",
                value={"access": "eyJhbGciOi...", "refresh": "eyJhbGciOi..."},
                response_only=True,
            ),
        ],
        tags=["accounts"],
    )
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        body = s.RefreshIn(data=request.data)
        body.is_valid(raise_exception=True)
        return super().post(request, *args, **kwargs)


class MeView(APIView):
    @extend_schema(
        operation_id="me",
        summary="The signed-in user: roles (member and director from governance), driver status",
        responses={200: s.AccountOut, **error_responses(AUTHENTICATED_GET_ERRORS)},
        examples=[
            OpenApiExample(
                "member driver",
                value={
                    **_ACCOUNT_EXAMPLE,
                    "roles": ["driver", "member"],
                    "driver_status": "approved",
                    "member": {
                        "member_id": "0b5e3a38-4d0f-4a53-9d2e-3f0d8c7a1e55",
                        "status": "active",
                        "share_price": {"amount": 10000, "currency": "USD"},
                        "paid": {"amount": 2500, "currency": "USD"},
                        "joined_at": "2026-11-21T14:03:00Z",
                        "director": False,
                        "term_ends": None,
                    },
                },
                response_only=True,
            )
        ],
        tags=["accounts"],
    )
    def get(self, request: Request) -> Response:
        return Response(account_document(request.user))

    @extend_schema(
        operation_id="me_update",
        summary="Change the account's own email address (where receipts and statements go) or language "
        '(what messages are written in); "" clears either',
        request=s.AccountUpdateIn,
        responses={200: s.AccountOut, **error_responses({400: ["email_invalid", "language_unsupported"]})},
        tags=["accounts"],
    )
    def patch(self, request: Request) -> Response:
        body = s.AccountUpdateIn(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user
        # One transaction, so a body with one refused field changes nothing.
        with transaction.atomic():
            if "email" in body.validated_data:
                user = services.user_email_set(user_id=user.pk, email=body.validated_data["email"])
            if "language" in body.validated_data:
                user = services.user_language_set(user_id=user.pk, language=body.validated_data["language"])
        return Response(account_document(user))


class WsTicketView(APIView):
    @extend_schema(
        operation_id="ws_ticket",
        summary="A single-use ticket (30 s) for the websocket handshake (`/ws/...?ticket=`)",
        request=None,
        responses={201: s.TicketOut, **error_responses(AUTHENTICATED_GET_ERRORS)},
        examples=[
            OpenApiExample(
                "ticket",
                value={"ticket": "Zk9h...", "expires_in": 30},
                response_only=True,
                status_codes=["201"],
            )
        ],
        tags=["accounts"],
    )
    def post(self, request: Request) -> Response:
        ticket, ttl = ticket_issue(user_id=request.user.pk)
        return Response({"ticket": ticket, "expires_in": ttl}, status=201)


class DriverApproveView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="staff_driver_approve",
        summary="Staff approve a driver (id is the driver's user id); the driver may then go online",
        request=None,
        responses={
            200: s.AccountOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_GET_ERRORS,
                    {403: ["permission_denied"], 404: ["driver_not_found", "not_found"]},
                )
            ),
        },
        examples=[
            OpenApiExample(
                "approved",
                value={**_ACCOUNT_EXAMPLE, "roles": ["driver"], "driver_status": "approved"},
                response_only=True,
                status_codes=["200"],
            )
        ],
        tags=["staff"],
    )
    def post(self, request: Request, driver_id: uuid.UUID) -> Response:
        profile = services.driver_approve(driver_id=driver_id, approved_by=request.user)
        return Response(account_document(profile.user))
