"""Refunds (staff), trip receipts (the rider, staff) and annual driver statements (the driver) over HTTP.

Thin: validate, call dispatch/money (refunds.py, receipts.py, statements.py), shape the answer. Money is
`{"amount", "currency"}` in minor units in JSON; the CSV writes exact decimals in major units, as the
earnings export does. A receipt or a statement comes as a PDF with `Accept: application/pdf` or
`?format=pdf` (the statement also at `.pdf`), as JSON otherwise; errors are JSON whatever was asked for.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.dates import MONTHS
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import InvalidInput
from backend.fares.money import minor_to_decimal, money
from backend.timestamps import wire_timestamp
from dispatch.money import receipts, refunds, statements
from dispatch.serializers import PlaceSerializer, RouteSerializer, route_document
from mobile_api import serializers as s
from mobile_api.downloads import JSONErrorsView, OnlyRenderer, PDFOnly, PDFRenderer, pdf_response, wants
from mobile_api.idempotency import idempotent
from mobile_api.permissions import HasEarnings, IsStaffOnly
from mobile_api.schema import MoneySerializer, error_responses
from mobile_api.schema.trips import TRIP_ID, TRIP_ID_PARAMETER
from mobile_api.serializers_fields import MinorMoney, Timestamp


def _m(amount: int, currency: str) -> dict[str, Any]:
    return dict(money(amount, currency))


# --- Refunds (staff) --------------------------------------------------------------------------------------


class RefundIn(serializers.Serializer):
    amount = s.MoneyIn(help_text="What to give back, in the trip's currency (minor units).")
    reason = serializers.CharField(
        max_length=refunds.REFUND_REASON_MAX_LENGTH,
        allow_blank=False,
        trim_whitespace=True,
        help_text="Why: recorded on the refund entry and shown on the rider's receipt.",
    )


class RefundOut(serializers.Serializer):
    """Reads a `dispatch.money.refunds.Refund`."""

    id = serializers.UUIDField(help_text="The refund's journal entry.")
    trip_id = serializers.UUIDField()
    amount = MinorMoney("amount")
    driver_part = MinorMoney(
        "driver_part",
        help_text="What the driver bore of it (the board's `refunds.driver_pay`; zero when `kept`).",
    )
    fee_part = MinorMoney("fee_part", help_text="What came back out of pass-through fees.")
    reason = serializers.CharField()
    staff_id = serializers.UUIDField(allow_null=True)
    created_at = Timestamp()
    payout_status = serializers.ChoiceField(
        choices=["pending", "processing", "succeeded", "failed", "voided"],
        allow_null=True,
        help_text="The payout back to the rider through the payment provider; null when the charge had not "
        "been captured yet and was reduced instead.",
    )


_RefundListSchema = inline_serializer(
    "RefundList",
    {
        "results": RefundOut(many=True),
        "refunded": MoneySerializer,
        "refundable": MoneySerializer,
    },
)

REFUND_EXAMPLE = {
    "id": "0f6b1f5e-9a51-4c3a-8f49-1d0c7a3e2b11",
    "trip_id": TRIP_ID,
    "amount": {"amount": 300, "currency": "USD"},
    "driver_part": {"amount": 0, "currency": "USD"},
    "fee_part": {"amount": 0, "currency": "USD"},
    "reason": "Driver took a longer route",
    "staff_id": "4c1f0a52-3b7e-4d2a-9c55-6f8e1b2d3a40",
    "created_at": "2026-11-21T15:10:00Z",
    "payout_status": "pending",
}


class StaffTripRefundsView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_trip_refunds",
        summary="A trip's refunds, newest first, what they gave back and what may still be refunded (staff)",
        parameters=[TRIP_ID_PARAMETER],
        responses={200: _RefundListSchema, **error_responses({404: ["trip_not_found"]})},
        tags=["staff"],
    )
    def get(self, request: Request, trip_id: uuid.UUID) -> Response:
        found = refunds.trip_refunds(trip_id=trip_id)
        return Response(
            {
                "results": RefundOut(found.refunds, many=True).data,
                "refunded": _m(found.refunded, found.currency),
                "refundable": _m(found.refundable, found.currency),
            }
        )

    @extend_schema(
        operation_id="staff_trip_refund",
        summary="Refund (part of) what a trip charged its rider (staff)",
        description=(
            "At most what the trip charged (fare and fees, or a late-cancellation fee; tips excluded) less "
            "earlier refunds, else 422 `refund_exceeds_charge` with `details.refundable`. The refund is "
            "split over the fare and each fee in proportion; the driver bears a part only under the board's "
            "`refunds.driver_pay: shared_above_floor`, never below the trip's floor (docs/receipts.md). "
            "Before capture the charge is reduced; after, the money goes back through the provider. The "
            "rider's updated receipt is emailed. Non-staff get 403 `staff_only` before the id is looked at."
        ),
        request=RefundIn,
        parameters=[TRIP_ID_PARAMETER],
        responses={
            201: RefundOut,
            **error_responses({404: ["trip_not_found"], 422: ["currency_mismatch", "refund_exceeds_charge"]}),
        },
        examples=[
            OpenApiExample(
                "partial refund",
                value={"amount": {"amount": 300, "currency": "USD"}, "reason": "Driver took a longer route"},
                request_only=True,
            ),
            OpenApiExample("refunded", value=REFUND_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["staff"],
    )
    @idempotent(required=False)
    def post(self, request: Request, trip_id: uuid.UUID) -> Response:
        body = RefundIn(data=request.data)
        body.is_valid(raise_exception=True)
        amount = body.validated_data["amount"]
        entry = refunds.refund_post(
            trip_id=trip_id,
            amount_minor=amount["amount"],
            currency=amount["currency"],
            reason=body.validated_data["reason"],
            staff_id=request.user.pk,
        )
        refund = next(r for r in refunds.trip_refunds(trip_id=trip_id).refunds if r.id == entry.id)
        return Response(RefundOut(refund).data, status=201)


# --- Receipts (the rider, staff) --------------------------------------------------------------------------

_Line = inline_serializer("ReceiptLine", {"label": serializers.CharField(), "amount": MoneySerializer})
_ReceiptSchema = inline_serializer(
    "Receipt",
    {
        "trip_id": serializers.UUIDField(),
        "status": serializers.CharField(),
        "currency": serializers.CharField(),
        "fare": inline_serializer("ReceiptFare", {"lines": type(_Line)(many=True), "total": MoneySerializer}),
        "fees": inline_serializer(
            "ReceiptFee",
            {"code": serializers.CharField(), "label": serializers.CharField(), "amount": MoneySerializer},
            many=True,
        ),
        "cancellation_fee": MoneySerializer,
        "tips": inline_serializer(
            "ReceiptTip", {"amount": MoneySerializer, "at": serializers.DateTimeField()}, many=True
        ),
        "refunds": inline_serializer(
            "ReceiptRefund",
            {
                "id": serializers.UUIDField(),
                "amount": MoneySerializer,
                "reason": serializers.CharField(),
                "at": serializers.DateTimeField(),
            },
            many=True,
        ),
        "charged": MoneySerializer,
        "refunded": MoneySerializer,
        "total": MoneySerializer,
        "payment": inline_serializer(
            "ReceiptPayment",
            {
                "provider": serializers.CharField(),
                "status": serializers.CharField(),
                "card": inline_serializer(
                    "ReceiptCard",
                    {"brand": serializers.CharField(), "last4": serializers.CharField()},
                    allow_null=True,
                ),
            },
            allow_null=True,
        ),
        "billed_to": serializers.CharField(
            allow_null=True,
            help_text="The organisation the fare is billed to (docs/billing.md); `null` when the rider pays.",
        ),
        "pickup": PlaceSerializer(),
        "dropoff": PlaceSerializer(),
        "requested_at": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "completed_at": serializers.DateTimeField(allow_null=True),
        "ended_at": serializers.DateTimeField(allow_null=True),
        "distance_m": serializers.IntegerField(allow_null=True),
        "duration_s": serializers.IntegerField(allow_null=True),
        "route": RouteSerializer(allow_null=True),
        "driver": inline_serializer(
            "ReceiptDriver",
            {
                "first_name": serializers.CharField(),
                "vehicle": inline_serializer(
                    "ReceiptVehicle",
                    {
                        "make": serializers.CharField(),
                        "model": serializers.CharField(),
                        "plate": serializers.CharField(),
                    },
                    allow_null=True,
                ),
            },
            allow_null=True,
        ),
        "updated_at": serializers.DateTimeField(),
    },
)


def receipt_document(receipt: receipts.Receipt) -> dict[str, Any]:
    """The receipt as the API answers it."""
    trip, cur = receipt.trip, receipt.currency

    def ts(moment: Any) -> str | None:
        return wire_timestamp(moment) if moment else None

    payment = receipt.payment
    return {
        "trip_id": str(trip.id),
        "status": trip.status,
        "currency": cur,
        "fare": {
            "lines": [
                {"label": receipts.fare_line_label(line.label), "amount": _m(line.amount, cur)}
                for line in receipt.fare_lines
            ],
            "total": _m(receipt.fare, cur),
        },
        "fees": [{"code": f.code, "label": f.label, "amount": _m(f.amount, cur)} for f in receipt.fees],
        "cancellation_fee": _m(receipt.cancellation_fee, cur) if receipt.cancellation_fee else None,
        "tips": [{"amount": _m(tip.amount, cur), "at": ts(tip.at)} for tip in receipt.tips],
        "refunds": [
            {"id": str(r.entry_id), "amount": _m(r.amount, cur), "reason": r.reason, "at": ts(r.at)}
            for r in receipt.refunds
        ],
        "charged": _m(receipt.charged, cur),
        "refunded": _m(receipt.refunded, cur),
        "total": _m(receipt.total, cur),
        "payment": (
            {
                "provider": payment.provider,
                "status": payment.status,
                "card": (
                    {"brand": payment.card_brand or "", "last4": payment.card_last4}
                    if payment.card_last4
                    else None
                ),
            }
            if payment
            else None
        ),
        "billed_to": receipt.billed_to or None,
        "pickup": {"lat": trip.pickup.y, "lng": trip.pickup.x},
        "dropoff": {"lat": trip.dropoff.y, "lng": trip.dropoff.x},
        "requested_at": ts(trip.requested_at),
        "started_at": ts(trip.started_at),
        "completed_at": ts(trip.completed_at),
        "ended_at": ts(trip.ended_at),
        "distance_m": trip.measured_distance_m,
        "duration_s": trip.measured_duration_s,
        "route": route_document(trip.route_geometry, trip.router),
        "driver": receipts.driver_summary(trip),
        "updated_at": ts(receipt.updated_at),
    }


_FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "pdf"],
    description="pdf: the receipt as a PDF (as `Accept: application/pdf`).",
)


class TripReceiptView(JSONErrorsView):
    renderer_classes = [JSONRenderer, PDFRenderer]

    @extend_schema(
        operation_id="trips_receipt",
        summary="The itemised receipt of a trip that charged you (JSON, or PDF)",
        description=(
            "Built from the ledger: the fare lines, pass-through fees, a late-cancellation fee, tips and "
            "refunds, what was charged and the total, how it was paid, places, times, distance and the "
            "route. "
            "The trip's rider and staff only: for anyone else, its driver included, the trip does not exist "
            "(404). A trip that has charged nothing yet answers 409 `receipt_not_available`."
        ),
        parameters=[TRIP_ID_PARAMETER, _FORMAT_PARAMETER],
        responses={
            (200, "application/json"): _ReceiptSchema,
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The receipt as a PDF."
            ),
            **error_responses({404: ["trip_not_found"], 409: ["receipt_not_available"]}),
        },
        tags=["trips"],
    )
    def get(self, request: Request, trip_id: uuid.UUID) -> Response:
        receipt = receipts.receipt_for_viewer(
            trip_id=trip_id, viewer_id=request.user.pk, viewer_is_staff=bool(request.user.is_staff)
        )
        if wants(request, PDFRenderer):
            return pdf_response(receipts.receipt_pdf(receipt), f"receipt-{trip_id}.pdf")
        return Response(receipt_document(receipt))


# --- Annual driver statements (the driver) ----------------------------------------------------------------

_Figures = {
    "trips": serializers.IntegerField(),
    "cancellations": serializers.IntegerField(),
    "gross_fares": MoneySerializer,
    "commission": MoneySerializer,
    "floor_top_ups": inline_serializer(
        "StatementFloorTopUps",
        {"per_trip": MoneySerializer, "weekly": MoneySerializer, "total": MoneySerializer},
    ),
    "pay": MoneySerializer,
    "tips": MoneySerializer,
    "refunds_borne": MoneySerializer,
    "net_earnings": MoneySerializer,
    "share_instalments": MoneySerializer,
    "fees_passed_through": MoneySerializer,
    "payouts": MoneySerializer,
}
_StatementSchema = inline_serializer(
    "DriverStatement",
    {
        "year": serializers.IntegerField(),
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "currency": serializers.CharField(),
        "issuer": serializers.CharField(),
        **_Figures,
        "fees": inline_serializer(
            "StatementFee",
            {"code": serializers.CharField(), "label": serializers.CharField(), "amount": MoneySerializer},
            many=True,
        ),
        "payout_lines": inline_serializer(
            "StatementPayout",
            {
                "id": serializers.UUIDField(),
                "paid_at": serializers.DateTimeField(),
                "week_start": serializers.DateField(allow_null=True),
                "method": serializers.CharField(),
                "payable": MoneySerializer,
                "tips": MoneySerializer,
                "amount": MoneySerializer,
            },
            many=True,
        ),
        "months": inline_serializer(
            "StatementMonth", {"month": serializers.IntegerField(), **_Figures}, many=True
        ),
    },
)


def _figures(figures: statements.StatementFigures, currency: str) -> dict[str, Any]:
    def m(amount: int) -> dict[str, Any]:
        return _m(amount, currency)

    return {
        "trips": figures.trips,
        "cancellations": figures.cancellations,
        "gross_fares": m(figures.gross_fares),
        "commission": m(figures.commission),
        "floor_top_ups": {
            "per_trip": m(figures.per_trip_top_ups),
            "weekly": m(figures.weekly_top_ups),
            "total": m(figures.floor_top_ups),
        },
        "pay": m(figures.pay),
        "tips": m(figures.tips),
        "refunds_borne": m(figures.refunds_borne),
        "net_earnings": m(figures.net_earnings),
        "share_instalments": m(figures.share_instalments),
        "fees_passed_through": m(figures.fees_passed_through),
        "payouts": m(figures.payouts),
    }


def statement_document(statement: statements.DriverStatement) -> dict[str, Any]:
    cur = statement.currency
    return {
        "year": statement.year,
        "from": statement.date_from.isoformat(),
        "to": statement.date_to.isoformat(),
        "currency": cur,
        "issuer": settings.ROCHDALE_COOPERATIVE_NAME,
        **_figures(statement.year_figures, cur),
        "fees": [{"code": f.code, "label": f.label, "amount": _m(f.amount, cur)} for f in statement.fees],
        "payout_lines": [
            {
                "id": str(p.entry_id),
                "paid_at": wire_timestamp(p.paid_at),
                "week_start": p.week_start.isoformat() if p.week_start else None,
                "method": p.method,
                "payable": _m(p.payable, cur),
                "tips": _m(p.tips, cur),
                "amount": _m(p.amount, cur),
            }
            for p in statement.payouts
        ],
        "months": [
            {"month": index + 1, **_figures(month, cur)} for index, month in enumerate(statement.months)
        ],
    }


STATEMENT_CSV_COLUMNS = [
    "period",
    "trips",
    "cancellations",
    "gross_fares",
    "commission",
    "per_trip_top_ups",
    "weekly_top_ups",
    "pay",
    "tips",
    "refunds_borne",
    "net_earnings",
    "share_instalments",
    "fees_passed_through",
    "payouts",
    "currency",
]


class StatementCSVRenderer(BaseRenderer):
    """The statement as CSV: one row per month (`2026-01`...), then the year's row; amounts are exact
    decimals in major units, as the earnings export writes them."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if not isinstance(data, dict) or "months" not in data:
            return json.dumps(data).encode()
        cur = data["currency"]

        def amount(value: dict[str, Any]) -> str:
            return str(minor_to_decimal(value["amount"], cur))

        def row(period: str, figures: dict[str, Any]) -> list[str]:
            return [
                period,
                str(figures["trips"]),
                str(figures["cancellations"]),
                amount(figures["gross_fares"]),
                amount(figures["commission"]),
                amount(figures["floor_top_ups"]["per_trip"]),
                amount(figures["floor_top_ups"]["weekly"]),
                amount(figures["pay"]),
                amount(figures["tips"]),
                amount(figures["refunds_borne"]),
                amount(figures["net_earnings"]),
                amount(figures["share_instalments"]),
                amount(figures["fees_passed_through"]),
                amount(figures["payouts"]),
                cur,
            ]

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(STATEMENT_CSV_COLUMNS)
        for month in data["months"]:
            writer.writerow(row(f"{data['year']}-{month['month']:02d}", month))
        writer.writerow(row(str(data["year"]), data))
        return out.getvalue().encode("utf-8")


def _statement_year(year: int) -> int:
    if not statements.statement_year_valid(year):
        raise InvalidInput(
            details={
                "year": [
                    _("must be a year from %(first_year)s to this year")
                    % {"first_year": statements.FIRST_YEAR}
                ]
            },
        )
    return year


def statement_pdf(document: dict[str, Any]) -> bytes:
    cur = document["currency"]

    def fmt(value: dict[str, Any]) -> str:
        return receipts.format_money(value["amount"], cur)

    month_names = [str(MONTHS[n]) for n in range(1, 13)]  # in the reader's language
    context = {
        "doc": document,
        "fmt_months": [
            {
                "name": month_names[month["month"] - 1],
                "trips": month["trips"],
                "gross_fares": fmt(month["gross_fares"]),
                "commission": fmt(month["commission"]),
                "floor_top_ups": fmt(month["floor_top_ups"]["total"]),
                "pay": fmt(month["pay"]),
                "tips": fmt(month["tips"]),
                "net_earnings": fmt(month["net_earnings"]),
            }
            for month in document["months"]
        ],
        "totals": {
            key: fmt(document[key])
            for key in (
                "gross_fares",
                "commission",
                "pay",
                "tips",
                "refunds_borne",
                "net_earnings",
                "share_instalments",
                "fees_passed_through",
                "payouts",
            )
        },
        "per_trip_top_ups": fmt(document["floor_top_ups"]["per_trip"]),
        "weekly_top_ups": fmt(document["floor_top_ups"]["weekly"]),
        "floor_top_ups": fmt(document["floor_top_ups"]["total"]),
        "fees": [{"label": fee["label"], "amount": fmt(fee["amount"])} for fee in document["fees"]],
        "payouts": [
            {"paid_at": p["paid_at"][:10], "method": p["method"], "amount": fmt(p["amount"])}
            for p in document["payout_lines"]
        ],
    }
    return receipts.html_to_pdf(render_to_string("statements/driver_statement.html", context))


_STATEMENT_ERRORS = error_responses({400: ["invalid_input"]})


class DriverStatementView(JSONErrorsView):
    permission_classes = [HasEarnings]
    renderer_classes = [JSONRenderer, StatementCSVRenderer, PDFRenderer]

    @extend_schema(
        operation_id="driver_statement",
        summary="The signed-in driver's statement for a calendar year (JSON, CSV or PDF)",
        description=(
            "Gross fares, commission, floor top-ups (per trip and weekly), pay, tips, refunds the driver "
            "bore, net earnings, share instalments withheld, pass-through fees (not income), and payouts, "
            "for the year and each month, from the ledger; pay is the earnings route's over the same dates. "
            "`?format=csv` or `.csv`, `?format=pdf` or `.pdf` for the other forms."
        ),
        parameters=[
            OpenApiParameter("year", OpenApiTypes.INT, location=OpenApiParameter.PATH),
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=["json", "csv", "pdf"], description="csv or pdf export."
            ),
        ],
        responses={
            (200, "application/json"): _StatementSchema,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same figures as CSV."),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="As a PDF."),
            **_STATEMENT_ERRORS,
        },
        tags=["driver"],
    )
    def get(self, request: Request, year: int) -> Response:
        statement = statements.driver_statement(driver_id=request.user.id, year=_statement_year(year))
        document = statement_document(statement)
        if wants(request, PDFRenderer):
            return pdf_response(statement_pdf(document), f"statement-{year}.pdf")
        response = Response(document)
        if wants(request, StatementCSVRenderer):
            response["Content-Disposition"] = f'attachment; filename="statement-{year}.csv"'
        return response


class _CSVOnly(OnlyRenderer):
    renderer = StatementCSVRenderer


class DriverStatementCSVView(DriverStatementView):
    content_negotiation_class = _CSVOnly

    @extend_schema(
        operation_id="driver_statement_csv",
        summary="The signed-in driver's statement for a year, as CSV",
        parameters=[OpenApiParameter("year", OpenApiTypes.INT, location=OpenApiParameter.PATH)],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="One row a month, then the year."
            ),
            **_STATEMENT_ERRORS,
        },
        tags=["driver"],
    )
    def get(self, request: Request, year: int) -> Response:
        return super().get(request, year)


class DriverStatementPDFView(DriverStatementView):
    content_negotiation_class = PDFOnly

    @extend_schema(
        operation_id="driver_statement_pdf",
        summary="The signed-in driver's statement for a year, as PDF",
        parameters=[OpenApiParameter("year", OpenApiTypes.INT, location=OpenApiParameter.PATH)],
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The statement."),
            **_STATEMENT_ERRORS,
        },
        tags=["driver"],
    )
    def get(self, request: Request, year: int) -> Response:
        return super().get(request, year)
