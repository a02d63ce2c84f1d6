"""Fare policy (anyone signed in), driver earnings (drivers), failed payment captures (staff).

Thin: parse and validate the query, call a selector, shape the answer. Money is `{"amount", "currency"}`
in minor units everywhere; the CSV export writes exact decimal major units for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import InvalidInput
from backend.fares.models import FarePolicyVersion, PaymentCapture
from backend.fares.money import minor_to_decimal, money
from backend.fares.payments import failed_captures
from backend.fares.selectors import policy_document, policy_version_in_force, policy_versions_newest_first
from backend.timestamps import wire_timestamp
from dispatch.money.earnings import MAX_RANGE_DAYS, Earnings, current_week, driver_earnings
from mobile_api.pagination import CursorPage
from mobile_api.permissions import HasEarnings, IsStaff
from mobile_api.schema import ErrorBody, MoneySerializer, error_responses

# --- Schemas ----------------------------------------------------------------------------------------------

_RiderRates = inline_serializer(
    "FarePolicyRider",
    {
        "base": serializers.CharField(),
        "per_distance": serializers.CharField(),
        "per_minute": serializers.CharField(),
        "booking_fee": serializers.CharField(),
        "minimum_fare": serializers.CharField(),
        "surge_cap": serializers.CharField(),
        "cancellation_fee": serializers.CharField(),
        "free_cancellation_s": serializers.IntegerField(),
    },
)
_DriverMinimum = inline_serializer(
    "FarePolicyDriverMinimum",
    {
        "per_distance": serializers.CharField(),
        "per_minute": serializers.CharField(),
        "per_trip": serializers.CharField(),
        "wav_per_distance": serializers.CharField(),
        "period": serializers.ChoiceField(choices=["trip", "week"]),
    },
)
_FeeZone = inline_serializer(
    "FarePolicyFeeZone",
    {
        "area": serializers.CharField(help_text="A service area's name."),
        "touch": serializers.ChoiceField(choices=["pickup", "dropoff", "pickup_or_dropoff", "route"]),
    },
)
_FeeConditions = inline_serializer(
    "FarePolicyFeeConditions",
    {"zone": _FeeZone, "wheelchair_accessible": serializers.BooleanField()},
    required=False,
)
_Fee = inline_serializer(
    "FarePolicyFee",
    {
        "code": serializers.CharField(),
        "label": serializers.CharField(),
        "kind": serializers.ChoiceField(choices=["flat", "percentage", "trip_amount"]),
        "amount": serializers.CharField(required=False, help_text="`flat` only."),
        "rate": serializers.CharField(required=False, help_text="`percentage` only: 0.045 is 4.5%."),
        "of": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text='`percentage` only: "fare" and/or codes of fees listed before.',
        ),
        "when": _FeeConditions,
    },
    many=True,
    required=False,
    help_text="**Extension.** Pass-through fees on top of the fare (docs/fares.md); absent when none.",
)
_Payments = inline_serializer(
    "FarePolicyPayments",
    {"authorization_margin_rate": serializers.CharField()},
    required=False,
    help_text="**Extension.** The card hold is the quoted total x (1 + margin); absent means 0.",
)
_Refunds = inline_serializer(
    "FarePolicyRefunds",
    {"driver_pay": serializers.ChoiceField(choices=["kept", "shared_above_floor"])},
    required=False,
    help_text='**Extension.** Who bears a refund of the fare; absent means "kept" (the co-op).',
)
_FARE_POLICY_FIELDS = {
    "version": serializers.IntegerField(),
    "effective_at": serializers.DateTimeField(),
    "currency": serializers.CharField(),
    "distance_unit": serializers.ChoiceField(choices=["mile", "km"]),
    "rider": _RiderRates,
    "commission_rate": serializers.CharField(),
    "driver_minimum": _DriverMinimum,
    "fees": _Fee,
    "payments": _Payments,
    "refunds": _Refunds,
}
_FarePolicySchema = inline_serializer("FarePolicy", _FARE_POLICY_FIELDS)
_FarePolicyListSchema = type(_FarePolicySchema)(many=True)
_EarningsLineSchema = inline_serializer(
    "EarningsLine",
    {
        "trip_id": serializers.UUIDField(),
        "kind": serializers.ChoiceField(choices=["trip", "cancellation"]),
        "completed_at": serializers.DateTimeField(),
        "distance_m": serializers.IntegerField(allow_null=True),
        "duration_s": serializers.IntegerField(allow_null=True),
        "fare": MoneySerializer,
        "commission": MoneySerializer,
        "floor_top_up": MoneySerializer,
        "pay": MoneySerializer,
        "floor_applied": serializers.BooleanField(),
        "tip": MoneySerializer,
    },
    many=True,
)
_EarningsSchema = inline_serializer(
    "Earnings",
    {
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "currency": serializers.CharField(),
        "trips": serializers.IntegerField(),
        "gross_fares": MoneySerializer,
        "commission": MoneySerializer,
        "tips": MoneySerializer,
        "minimum_top_up": MoneySerializer,
        "pay": MoneySerializer,
        "total": MoneySerializer,
        "online_seconds": serializers.IntegerField(),
        "engaged_seconds": serializers.IntegerField(),
        "hourly": inline_serializer(
            "EarningsHourly",
            {
                "per_engaged_hour": MoneySerializer,
                "per_online_hour": MoneySerializer,
            },
        ),
        "lines": _EarningsLineSchema,
        "weekly_top_ups": inline_serializer(
            "WeeklyTopUp",
            {
                "week": serializers.CharField(),
                "week_start": serializers.DateField(),
                "amount": MoneySerializer,
            },
            many=True,
        ),
    },
)
_EARNINGS_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, description="First local date (default: this week's Monday)."
    ),
    OpenApiParameter(
        "to", OpenApiTypes.DATE, description=f"Last local date, inclusive; at most {MAX_RANGE_DAYS} days."
    ),
]

# --- Fare policy ------------------------------------------------------------------------------------------


class FarePolicySerializer(serializers.BaseSerializer):
    def to_representation(self, instance: FarePolicyVersion) -> dict[str, Any]:
        return policy_document(instance)


class VersionPage(CursorPage):
    ordering = "-version"


class FarePolicyView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="fare_policy",
        summary="The fare policy in force now",
        responses={200: _FarePolicySchema, 401: ErrorBody, **error_responses({503: ["no_fare_policy"]})},
    )
    def get(self, request: Request) -> Response:
        return Response(policy_document(policy_version_in_force()))


class FarePolicyHistoryView(ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = FarePolicySerializer
    pagination_class = VersionPage

    def get_queryset(self) -> QuerySet[FarePolicyVersion]:
        return policy_versions_newest_first()

    @extend_schema(
        operation_id="fare_policy_history",
        summary="Every fare policy version, newest first",
        responses={200: _FarePolicyListSchema, 401: ErrorBody},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- Earnings ---------------------------------------------------------------------------------------------


def _parse_date(raw: str | None, name: str, problems: dict[str, list[str]]) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        problems[name] = [_("must be a date, YYYY-MM-DD")]
        return None


def earnings_range(query: QueryDict) -> tuple[date, date]:
    """The validated [from, to] range: default this week; one end given, a week from or to it."""
    problems: dict[str, list[str]] = {}
    date_from = _parse_date(query.get("from"), "from", problems)
    date_to = _parse_date(query.get("to"), "to", problems)
    if problems:
        raise InvalidInput(details=problems)
    if date_from is None and date_to is None:
        date_from, date_to = current_week()
    elif date_to is None:
        date_to = date_from + timedelta(days=6)
    elif date_from is None:
        date_from = date_to - timedelta(days=6)
    if date_from > date_to:
        raise InvalidInput(details={"to": [_("must not be before from")]})
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(
            details={
                "to": [
                    _("the range may span at most %(max_range_days)s days")
                    % {"max_range_days": MAX_RANGE_DAYS}
                ]
            }
        )
    return date_from, date_to


def earnings_document(earnings: Earnings) -> dict[str, Any]:
    cur = earnings.currency

    def m(amount: int | None) -> dict[str, Any] | None:
        return None if amount is None else dict(money(amount, cur))

    return {
        "from": earnings.date_from.isoformat(),
        "to": earnings.date_to.isoformat(),
        "currency": cur,
        "trips": earnings.trips,
        "gross_fares": m(earnings.gross_fares),
        "commission": m(earnings.commission),
        "tips": m(earnings.tips),
        "minimum_top_up": m(earnings.minimum_top_up),
        "pay": m(earnings.pay),
        "total": m(earnings.total),
        "online_seconds": earnings.online_seconds,
        "engaged_seconds": earnings.engaged_seconds,
        "hourly": {
            "per_engaged_hour": m(earnings.per_hour(earnings.engaged_seconds)),
            "per_online_hour": m(earnings.per_hour(earnings.online_seconds)),
        },
        "lines": [
            {
                "trip_id": str(line.trip_id),
                "kind": line.kind,
                "completed_at": wire_timestamp(line.at),
                "distance_m": line.distance_m,
                "duration_s": line.duration_s,
                "fare": m(line.fare),
                "commission": m(line.commission),
                "floor_top_up": m(line.floor_top_up),
                "pay": m(line.pay),
                "floor_applied": line.floor_applied,
                "tip": m(line.tip),
            }
            for line in earnings.lines
        ],
        "weekly_top_ups": [
            {"week": top_up.week, "week_start": top_up.week_start.isoformat(), "amount": m(top_up.amount)}
            for top_up in earnings.top_ups
        ],
    }


CSV_COLUMNS = [
    "kind",
    "trip_id",
    "completed_at",
    "week",
    "fare",
    "commission",
    "floor_top_up",
    "pay",
    "tip",
    "floor_applied",
    "currency",
]


class EarningsCSVRenderer(BaseRenderer):
    """The earnings document as CSV: one row per line and weekly top-up, then a total row. Amounts are
    exact decimals in major units (`12.34`); errors stay JSON (see `EarningsView.finalize_response`)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if not isinstance(data, dict) or "lines" not in data:
            return json.dumps(data).encode()
        cur = data["currency"]

        def amount(value: dict[str, Any]) -> str:
            return str(minor_to_decimal(value["amount"], cur))

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for line in data["lines"]:
            writer.writerow(
                [
                    line["kind"],
                    line["trip_id"],
                    line["completed_at"],
                    "",
                    amount(line["fare"]),
                    amount(line["commission"]),
                    amount(line["floor_top_up"]),
                    amount(line["pay"]),
                    amount(line["tip"]),
                    "yes" if line["floor_applied"] else "no",
                    cur,
                ]
            )
        for top_up in data["weekly_top_ups"]:
            zero = str(minor_to_decimal(0, cur))
            pay = amount(top_up["amount"])
            writer.writerow(["weekly_top_up", "", "", top_up["week"], zero, zero, pay, pay, zero, "", cur])
        writer.writerow(
            [
                "total",
                f"{data['trips']} trips",
                f"{data['from']}..{data['to']}",
                "",
                amount(data["gross_fares"]),
                amount(data["commission"]),
                amount(data["minimum_top_up"]),
                amount(data["pay"]),
                amount(data["tips"]),
                "",
                cur,
            ]
        )
        return out.getvalue().encode("utf-8")


class EarningsView(APIView):
    permission_classes = [HasEarnings]
    renderer_classes = [JSONRenderer, EarningsCSVRenderer]

    @extend_schema(
        operation_id="driver_earnings",
        summary="The signed-in driver's earnings over a range of local dates (JSON, or CSV with ?format=csv)",
        parameters=[
            *_EARNINGS_PARAMETERS,
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: a CSV export."
            ),
        ],
        responses={
            (200, "application/json"): _EarningsSchema,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same figures as CSV."),
            **error_responses({400: ["invalid_input"]}),
            401: ErrorBody,
            403: ErrorBody,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        date_from, date_to = earnings_range(request.query_params)
        earnings = driver_earnings(driver_id=request.user.id, date_from=date_from, date_to=date_to)
        response = Response(earnings_document(earnings))
        if isinstance(getattr(request, "accepted_renderer", None), EarningsCSVRenderer):
            filename = f"earnings-{date_from.isoformat()}-{date_to.isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code >= 400:
            # Errors keep the contract's JSON body whatever format was asked for.
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class _CSVOnly:
    """Content negotiation that always answers CSV (for the `.csv` route)."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> Any:
        renderer = next(r for r in renderers if isinstance(r, EarningsCSVRenderer))
        return renderer, renderer.media_type


class EarningsCSVView(EarningsView):
    content_negotiation_class = _CSVOnly

    @extend_schema(
        operation_id="driver_earnings_csv",
        summary="The signed-in driver's earnings as CSV",
        parameters=_EARNINGS_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV export of the earnings."),
            **error_responses({400: ["invalid_input"]}),
            401: ErrorBody,
            403: ErrorBody,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- Staff: failed payment captures ---------------------------------------------------------------------


class FailedCaptureSerializer(serializers.ModelSerializer):
    amount = serializers.SerializerMethodField()
    will_retry = serializers.SerializerMethodField()

    class Meta:
        model = PaymentCapture
        fields = [
            "id",
            "key",
            "purpose",
            "status",
            "trip_id",
            "rider_id",
            "amount",
            "provider",
            "attempts",
            "last_error",
            "next_attempt_at",
            "last_attempt_at",
            "will_retry",
            "created_at",
        ]

    def get_amount(self, obj: PaymentCapture) -> dict[str, Any]:
        return dict(money(obj.amount_minor, obj.currency))

    def get_will_retry(self, obj: PaymentCapture) -> bool:
        return obj.next_attempt_at is not None


class FailedPaymentsView(ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = FailedCaptureSerializer
    pagination_class = CursorPage

    def get_queryset(self) -> QuerySet[PaymentCapture]:
        return failed_captures()

    @extend_schema(
        operation_id="staff_payments_failed",
        summary="Payment captures that failed (retrying with backoff, or given up and waiting for staff)",
        responses={200: FailedCaptureSerializer(many=True), 401: ErrorBody, 403: ErrorBody},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
