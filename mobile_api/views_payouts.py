"""The driver's payouts: `GET /driver/payouts` (their own, newest week first, paged),
`GET /driver/payouts/{payout_id}` (one, with its statement) and `POST /driver/payouts/stripe-onboarding`
(the link to Stripe's hosted onboarding for their Express account).

Thin: the gate (drivers only, on the list and the onboarding), a query filtered to the caller (anyone else's
payout answers 404, as one that does not exist), the service, the shape. docs/payouts.md."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import NotFound
from backend.timestamps import wire_timestamp
from dispatch.money.payouts import driver_payouts, payout_statement, stripe_onboarding_link
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsDriver
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    error_responses,
    merge_errors,
)
from mobile_api.serializers_payouts import PayoutSerializer, StatementOut, statement_document

_DRIVER = {403: ["driver_role_required"]}

PayoutPageOut = inline_serializer(
    "PayoutPage", {"results": PayoutSerializer(many=True), "next": serializers.URLField(allow_null=True)}
)
PayoutDetailOut = inline_serializer(
    "PayoutDetail",
    {"payout": PayoutSerializer(), "statement": StatementOut},
)
OnboardingOut = inline_serializer(
    "StripeOnboardingLink",
    {
        "account_id": serializers.CharField(),
        "url": serializers.URLField(),
        "expires_at": serializers.DateTimeField(),
    },
)


class PayoutPage(CursorPage):
    ordering = ("-week_start", "-created_at")


class DriverPayoutsView(APIView):
    permission_classes = [IsDriver]
    pagination_class = PayoutPage

    @extend_schema(
        operation_id="driver_payouts",
        summary="The driver's own payouts, newest week first",
        parameters=[
            OpenApiParameter("cursor", str, description="The `next` link's cursor."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
        ],
        responses={200: PayoutPageOut, **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _DRIVER))},
        tags=["driver"],
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(driver_payouts(driver_id=request.user.pk), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(PayoutSerializer(page, many=True).data)


class DriverPayoutDetailView(APIView):
    # Any signed-in caller; the payout is looked up among the caller's own, so whoever is not its driver
    # (a rider, another driver) gets the same 404 as for an id that does not exist.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="driver_payout",
        summary="One of the driver's payouts, with its statement (the week's trips, tips, top-ups, total)",
        responses={
            200: PayoutDetailOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, {404: ["not_found"]})),
        },
        tags=["driver"],
    )
    def get(self, request: Request, payout_id: uuid.UUID) -> Response:
        payout = driver_payouts(driver_id=request.user.pk).filter(id=payout_id).first()
        if payout is None:
            raise NotFound()
        return Response(
            {
                "payout": PayoutSerializer(payout).data,
                "statement": statement_document(payout_statement(payout=payout)),
            }
        )


class StripeOnboardingView(APIView):
    permission_classes = [IsDriver]

    @extend_schema(
        operation_id="driver_payouts_stripe_onboarding",
        summary="A link to Stripe's onboarding for the driver's payout account (made on the first call)",
        description=(
            "The driver's Stripe Connect Express account is created once; each call returns a new "
            "single-use onboarding link (it expires within minutes). No body."
        ),
        request=None,
        responses={
            200: OnboardingOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _DRIVER,
                    {503: ["stripe_not_configured", "payout_provider_unavailable"]},
                )
            ),
        },
        tags=["driver"],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        link = stripe_onboarding_link(driver_id=request.user.pk)
        return Response(
            {"account_id": link.account_id, "url": link.url, "expires_at": wire_timestamp(link.expires_at)}
        )
