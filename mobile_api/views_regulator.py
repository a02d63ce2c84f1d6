"""The regulator's reports for staff over HTTP: the month's trip-record file and accessibility figures.

Thin: validate the month, call dispatch/compliance, shape the answer. Staff only, refused with 403
`staff_only` before anything else is looked at. The trip records come as the CSV file the regulator takes
(the default, or `?format=csv`), or with `?format=json` as the file's summary: its counts, the exceptions
(trips whose row could not be produced), the fees no column takes and the reconciliation with the ledger.
Errors stay JSON whatever format was asked for.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import InvalidInput
from dispatch.compliance.accessibility import accessibility_figures
from dispatch.compliance.hvfhv import parse_month
from dispatch.compliance.trip_records import regulator_report, report_summary, trip_records_csv
from mobile_api.downloads import TextCSVRenderer
from mobile_api.permissions import IsStaffOnly
from mobile_api.schema import error_responses

MONTH_PARAMETER = OpenApiParameter(
    "month", OpenApiTypes.STR, required=True, description="The month, `YYYY-MM` (local dates of the co-op)."
)
REPORT_ERRORS = error_responses(
    {
        400: ["invalid_input"],
        403: ["staff_only"],
        422: ["trip_report_not_configured", "invalid_trip_report_fee_columns"],
    }
)


def _month(request: Request) -> date:
    try:
        return parse_month(request.query_params.get("month", ""))
    except ValueError as error:
        raise InvalidInput(details={"month": [str(error)]}) from error


class _StaffReportView(APIView):
    permission_classes = [IsStaffOnly]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code >= 400:
            # Errors keep the contract's JSON body whatever format was asked for.
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class TripRecordsView(_StaffReportView):
    # CSV first: a browser's or curl's `Accept: */*` downloads the file.
    renderer_classes = [TextCSVRenderer, JSONRenderer]

    @extend_schema(
        operation_id="staff_regulator_trip_records",
        summary="The month's trip-record file for the regulator (New York's HVFHV format), or its summary",
        parameters=[
            MONTH_PARAMETER,
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["csv", "json"],
                description="csv (default): the file; json: its summary, exceptions and reconciliation.",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="The file: the HVFHV header, then one row a completed trip."
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="rows, exceptions, unmapped_fees, warnings, reconciliation (docs/compliance.md).",
            ),
            **REPORT_ERRORS,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        month = _month(request)
        report, reconciliation = regulator_report(month=month)
        if isinstance(getattr(request, "accepted_renderer", None), JSONRenderer):
            return Response(report_summary(report, reconciliation))
        filename = f"hvfhv-trip-records-{report.month_label}.csv"
        return Response(
            trip_records_csv(report),
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                # What a download does not show: how many trips are left out of the file, and whether it
                # reconciles (the JSON summary lists them).
                "X-Rochdale-Exceptions": str(len(report.exceptions)),
                "X-Rochdale-Reconciled": "true" if reconciliation.ok else "false",
            },
        )


class AccessibilityView(_StaffReportView):
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="staff_regulator_accessibility",
        summary="The month's wheelchair-accessible (WAV) figures against standard requests",
        parameters=[MONTH_PARAMETER],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="month, from, to, time_zone, and for `wav` and `standard`: requests, matched, "
                "matched_in_wav, completed, cancelled, unfulfilled, to_assigned and to_on_scene "
                "({count, median_s, p90_s}).",
            ),
            **error_responses({400: ["invalid_input"], 403: ["staff_only"]}),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(accessibility_figures(month=_month(request)).as_document())
