"""The shape of the co-op's public figures (`GET /api/v1/coop/figures`), for the OpenAPI description: the
body is built by dispatch/figures.py `coop_figures`; these serializers only describe it."""

from __future__ import annotations

from rest_framework import serializers

from dispatch.figures import SUPPRESSIBLE
from dispatch.serializers import MoneySerializer


def _from_field(serializer: type[serializers.Serializer]) -> None:
    """Name the declared `from_` field `from` (a Python keyword, so it cannot be declared as such)."""
    declared = serializer._declared_fields
    serializer._declared_fields = {
        ("from" if name == "from_" else name): field for name, field in declared.items()
    }


class HoursBandSerializer(serializers.Serializer):
    from_ = serializers.FloatField(help_text="Online hours, lower end (included).")
    to = serializers.FloatField(help_text="Online hours, upper end (included).")


_from_field(HoursBandSerializer)


class HourlyEarningsGiniSerializer(serializers.Serializer):
    gini = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="To 3 decimals; null when withheld or nobody was online.",
    )
    band_hours = HoursBandSerializer(
        allow_null=True,
        help_text="Comparable online hours: half to one and a half times the median driver's.",
    )
    drivers_online = serializers.IntegerField(min_value=0, help_text="Drivers with any online time.")
    drivers_included = serializers.IntegerField(min_value=0, help_text="Of them, inside the band.")


class OfferDecilesSerializer(serializers.Serializer):
    shares = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1),
        min_length=10,
        max_length=10,
        allow_null=True,
        help_text="The share of the month's offers each tenth of the drivers received, busiest tenth first.",
    )
    drivers = serializers.IntegerField(
        min_value=0, help_text="Drivers online or offered a trip in the month."
    )
    offers = serializers.IntegerField(min_value=0)


class ResponseTimeSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0, help_text="Requests that reached this step.")
    median = serializers.FloatField(allow_null=True, help_text="Seconds.")
    p90 = serializers.FloatField(allow_null=True, help_text="Seconds, 90th percentile.")


class WavResponseTimesSerializer(serializers.Serializer):
    requests = serializers.IntegerField(
        min_value=0, help_text="Wheelchair-accessible requests made in the month."
    )
    drivers = serializers.IntegerField(min_value=0, help_text="Drivers who took them.")
    request_to_assignment_s = ResponseTimeSerializer()
    request_to_pickup_s = ResponseTimeSerializer(
        help_text="From the request to the driver's arrival at the pickup."
    )


class CoopFiguresSerializer(serializers.Serializer):
    month = serializers.RegexField(r"^\d{4}-\d{2}$")
    from_ = serializers.DateField()
    to = serializers.DateField()
    time_zone = serializers.CharField()
    complete = serializers.BooleanField(help_text="False while the month is under way.")
    min_drivers = serializers.IntegerField(help_text="Figures over fewer drivers than this are withheld.")
    trips_completed = serializers.IntegerField(min_value=0)
    drivers_who_drove = serializers.IntegerField(min_value=0)
    commission_kept = MoneySerializer(allow_null=True, help_text="The co-op's commission, from the ledger.")
    floor_top_ups_paid = MoneySerializer(
        allow_null=True, help_text="What the pay floor added to drivers' pay (per trip and weekly)."
    )
    trips_over_floor_share = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="Share of completed trips whose pay beat their floor.",
    )
    hourly_earnings_gini = HourlyEarningsGiniSerializer()
    offer_share_by_decile = OfferDecilesSerializer()
    wav_response_times = WavResponseTimesSerializer()
    suppressed = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SUPPRESSIBLE)), help_text="The figures withheld."
    )


_from_field(CoopFiguresSerializer)


FIGURES_EXAMPLE = {
    "month": "2026-10",
    "from": "2026-10-01",
    "to": "2026-10-31",
    "time_zone": "America/New_York",
    "complete": True,
    "min_drivers": 5,
    "trips_completed": 12,
    "drivers_who_drove": 6,
    "commission_kept": {"amount": 2320, "currency": "USD"},
    "floor_top_ups_paid": {"amount": 480, "currency": "USD"},
    "trips_over_floor_share": 0.667,
    "hourly_earnings_gini": {
        "gini": 0.216,
        "band_hours": {"from": 50.0, "to": 150.0},
        "drivers_online": 7,
        "drivers_included": 5,
    },
    "offer_share_by_decile": {
        "shares": [0.2, 0.162, 0.133, 0.133, 0.133, 0.114, 0.067, 0.038, 0.019, 0.0],
        "drivers": 7,
        "offers": 21,
    },
    "wav_response_times": {
        "requests": 6,
        "drivers": 5,
        "request_to_assignment_s": {"count": 5, "median": 180.0, "p90": 456.0},
        "request_to_pickup_s": {"count": 5, "median": 480.0, "p90": 780.0},
    },
    "suppressed": [],
}
