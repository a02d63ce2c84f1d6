"""The driver's payouts on the wire: explicit, read-only fields (nothing here is ever written by a client).

A payout's destination is what the driver may see of it: their Stripe account id, or the last four digits
of the bank account (the number itself never leaves the bank file). A failed payout says so in plain words;
the provider's own error stays with staff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from backend.fares.money import money
from backend.timestamps import wire_timestamp
from dispatch.models import Payout, PayoutMethod, PayoutStatus
from dispatch.money.payouts import PayoutStatement, StatementLine
from mobile_api.serializers_fields import MinorMoney, Timestamp

FAILED_MESSAGE = (
    "This payout was refused by the bank or the payment provider. Nothing was paid: the amount is back in "
    "your balance and is paid with your next weekly payout."
)

# Statement amounts can be negative (a share instalment withheld, a correction), unlike the trip's Money.
SignedMoney = inline_serializer(
    "SignedMoney", {"amount": serializers.IntegerField(), "currency": serializers.CharField()}
)


class PayoutSerializer(serializers.ModelSerializer):
    week_end = serializers.SerializerMethodField()
    amount = MinorMoney("amount_minor")
    pay = MinorMoney("payable_minor")
    tips = MinorMoney("tips_minor")
    created_at = Timestamp()
    submitted_at = Timestamp(allow_null=True)
    paid_at = Timestamp(allow_null=True)
    failure_reason = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=PayoutStatus.values)
    method = serializers.ChoiceField(choices=PayoutMethod.values)

    class Meta:
        model = Payout
        fields = [
            "id",
            "week_start",
            "week_end",
            "status",
            "method",
            "amount",
            "pay",
            "tips",
            "destination",
            "created_at",
            "submitted_at",
            "paid_at",
            "failure_reason",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DateField())
    def get_week_end(self, obj: Payout) -> str:
        return (obj.week_start + timedelta(days=6)).isoformat()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_failure_reason(self, obj: Payout) -> str | None:
        return FAILED_MESSAGE if obj.status == PayoutStatus.FAILED else None


_LINE_KINDS = ["trip", "cancellation", "tip", "weekly_top_up", "share_instalment", "adjustment"]
_LINE_FIELDS = {
    "kind": serializers.ChoiceField(choices=_LINE_KINDS),
    "at": serializers.DateTimeField(),
    "description": serializers.CharField(),
    "trip_id": serializers.UUIDField(allow_null=True),
    "fare": inline_serializer(
        "PayoutStatementFare",
        {"amount": serializers.IntegerField(), "currency": serializers.CharField()},
        allow_null=True,
    ),
    "distance_m": serializers.IntegerField(allow_null=True),
    "duration_s": serializers.IntegerField(allow_null=True),
    "pay": SignedMoney,
    "tip": SignedMoney,
    "amount": SignedMoney,
}
StatementOut = inline_serializer(
    "PayoutStatement",
    {
        "week_start": serializers.DateField(),
        "week_end": serializers.DateField(),
        "cut_off": serializers.DateTimeField(),
        "currency": serializers.CharField(),
        "trips": serializers.IntegerField(),
        "brought_forward": SignedMoney,
        "lines": inline_serializer("PayoutStatementLine", _LINE_FIELDS, many=True),
        "totals": inline_serializer(
            "PayoutStatementTotals",
            {
                "pay": SignedMoney,
                "tips": SignedMoney,
                "weekly_top_ups": SignedMoney,
                "share_instalments": SignedMoney,
                "adjustments": SignedMoney,
            },
        ),
        "total": SignedMoney,
    },
)


def statement_document(statement: PayoutStatement) -> dict[str, Any]:
    cur = statement.currency

    def m(amount: int | None) -> dict[str, Any] | None:
        return None if amount is None else dict(money(amount, cur))

    def line(item: StatementLine) -> dict[str, Any]:
        return {
            "kind": item.kind,
            "at": wire_timestamp(item.at),
            "description": item.description,
            "trip_id": str(item.trip_id) if item.trip_id else None,
            "fare": m(item.fare),
            "distance_m": item.distance_m,
            "duration_s": item.duration_s,
            "pay": m(item.pay),
            "tip": m(item.tip),
            "amount": m(item.amount),
        }

    return {
        "week_start": statement.week_start.isoformat(),
        "week_end": statement.week_end.isoformat(),
        "cut_off": wire_timestamp(statement.cut_off),
        "currency": cur,
        "trips": statement.trips,
        "brought_forward": m(statement.brought_forward),
        "lines": [line(item) for item in statement.lines],
        "totals": {
            "pay": m(statement.sum_of("trip", "cancellation")),
            "tips": m(statement.sum_of("tip")),
            "weekly_top_ups": m(statement.sum_of("weekly_top_up")),
            "share_instalments": m(statement.sum_of("share_instalment")),
            "adjustments": m(statement.sum_of("adjustment")),
        },
        "total": m(statement.total),
    }
