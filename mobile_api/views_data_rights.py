"""Data rights over HTTP (docs/compliance.md, "Data rights"): the caller's export and their erasure request.

Both routes act on the caller only (no id in the path: nobody can name another person's data here). Thin:
the services are in dispatch/services/data_rights.py.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch.services.data_rights import account_export_chunks, erasure_request
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    error_responses,
    merge_errors,
)

ERASURE_CODES = [
    "erasure_open_trip",
    "erasure_rides_booked",
    "erasure_member_share_capital",
    "erasure_money_outstanding",
]


class ErasureIn(serializers.Serializer):
    password = serializers.CharField(
        max_length=256, trim_whitespace=False, help_text="The account's current password, to confirm."
    )


class ErasureOut(serializers.Serializer):
    request_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["requested", "completed"])
    requested_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class ExportView(APIView):
    @extend_schema(
        operation_id="me_export",
        summary="Everything the co-op holds about the caller, as one JSON document (streamed)",
        description=(
            "The account, driver profile and vehicles, trips as rider and as driver (times, places, fare, "
            "route), ratings given and received (without their authors), tips, payments (captures, the "
            "ledger lines on the caller's own accounts, cards as brand and last four digits only), payouts "
            "and bank accounts (masked), membership and governance records (vote and ballot receipts only: "
            "how a member voted is a secret ballot), erasure requests, and the driver's location history. "
            "Not paginated: one document."
        ),
        responses={
            (200, "application/json"): OpenApiResponse(response=OpenApiTypes.OBJECT),
            **error_responses(AUTHENTICATED_GET_ERRORS),
        },
        tags=["accounts"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        chunks = account_export_chunks(user_id=request.user.pk)
        response = StreamingHttpResponse(chunks, content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="rochdale-data-export.json"'
        response["Cache-Control"] = "no-store"
        return response


class ErasureView(APIView):
    @extend_schema(
        operation_id="me_erasure",
        summary="Ask to be erased, confirming with the current password (a rider owing nothing: at once)",
        description=(
            "Records the request. A rider who never drove nor was a member, with no open trip and no money "
            "owed either way, is erased at once (201, `completed`): the account is pseudonymised and can "
            "no longer sign in. Anyone else's request waits for staff (202, `requested`). An open trip, a "
            "current membership or money owed either way answers 409 with its code; the request stays "
            "recorded and staff see why."
        ),
        request=ErasureIn,
        responses={
            201: ErasureOut,
            202: ErasureOut,
            **error_responses(
                merge_errors(AUTHENTICATED_POST_ERRORS, {403: ["password_incorrect"], 409: ERASURE_CODES})
            ),
        },
        examples=[
            OpenApiExample("confirm", value={"password": "a long pass phrase"}, request_only=True),
            OpenApiExample(
                "erased at once",
                value={
                    "request_id": "3b0c7a52-1f7e-4d7e-9a55-5a4c2f1e9d10",
                    "status": "completed",
                    "requested_at": "2026-12-01T10:00:00Z",
                    "completed_at": "2026-12-01T10:00:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "waiting for staff",
                value={
                    "request_id": "3b0c7a52-1f7e-4d7e-9a55-5a4c2f1e9d10",
                    "status": "requested",
                    "requested_at": "2026-12-01T10:00:00Z",
                    "completed_at": None,
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
        tags=["accounts"],
    )
    def post(self, request: Request) -> Response:
        body = ErasureIn(data=request.data)
        body.is_valid(raise_exception=True)
        outcome = erasure_request(user_id=request.user.pk, password=body.validated_data["password"])
        return Response(outcome.document(), status=201 if outcome.status == "completed" else 202)
