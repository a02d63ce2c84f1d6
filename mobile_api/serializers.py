"""Input and output shapes of the rider and account routes. Every field is listed explicitly; nothing a
client sends can set a server field (status, fare, driver, pay, rider...): those are not input fields at all,
so they are ignored. Outputs are what views answer (`XOut(row).data`), so the OpenAPI description generated
from them is the answer's own shape. The governance shapes are in serializers_governance.py."""

from __future__ import annotations

import math
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backend.fares.money import ISO_4217_CURRENCIES, money
from backend.fares.pricing import RiderCharge
from dispatch.models import FareEstimate
from dispatch.money.fees import estimate_charge
from dispatch.serializers import MoneySerializer, RouteSerializer, route_document
from mobile_api.serializers_fields import MinorMoney, Timestamp
from mobile_api.serializers_governance import MembershipSummaryOut


class CoordinateField(serializers.FloatField):
    """A JSON number within [min, max]: strings, booleans, NaN, infinities and huge integers are refused."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            value = float(data)
        except OverflowError:
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return super().to_internal_value(value)


class UuidStringField(serializers.UUIDField):
    """A UUID written as a string (DRF would also take an integer and make a UUID of it)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class PlaceIn(serializers.Serializer):
    lat = CoordinateField(min_value=-90, max_value=90, help_text="Latitude in degrees (WGS 84).")
    lng = CoordinateField(min_value=-180, max_value=180, help_text="Longitude in degrees (WGS 84).")


class MoneyIn(serializers.Serializer):
    amount = serializers.IntegerField(min_value=1, max_value=10_000_000, help_text="Minor units (cents).")
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217 code, e.g. USD.")

    def validate_currency(self, value: str) -> str:
        if value not in ISO_4217_CURRENCIES:
            raise serializers.ValidationError(_("Not an ISO 4217 currency code."))
        return value


# The trip object's money shape, so the schema has one "Money" component.
MoneyOut = MoneySerializer


# --- accounts ---


class VehicleIn(serializers.Serializer):
    plate = serializers.CharField(max_length=16)
    make = serializers.CharField(max_length=40)
    model = serializers.CharField(max_length=40)
    year = serializers.IntegerField(min_value=1980, max_value=2100)
    seats = serializers.IntegerField(min_value=1, max_value=15)
    wheelchair_accessible = serializers.BooleanField(default=False)


class RegisterIn(serializers.Serializer):
    phone = serializers.CharField(max_length=32, help_text="E.164, e.g. +12125550100.")
    password = serializers.CharField(min_length=1, max_length=128, trim_whitespace=False, write_only=True)
    name = serializers.CharField(min_length=1, max_length=120)
    role = serializers.ChoiceField(choices=["rider", "driver"])
    email = serializers.CharField(
        max_length=254, required=False, allow_blank=True, help_text="Optional: where receipts are sent."
    )
    license_number = serializers.CharField(max_length=32, required=False, help_text="Drivers only.")
    vehicle = VehicleIn(required=False, help_text="Drivers only.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["role"] == "driver":
            missing = {
                name: ["Required for drivers."]
                for name in ("license_number", "vehicle")
                if not attrs.get(name)
            }
            if missing:
                raise serializers.ValidationError(missing)
        return attrs


class AccountOut(serializers.Serializer):
    id = serializers.UUIDField()
    phone = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField(help_text="The account's own address for receipts; empty when none.")
    language = serializers.CharField(
        help_text="The language chosen for messages (en, es, bn, fr, ht); empty follows Accept-Language."
    )
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=["rider", "driver", "staff", "member", "director"])
    )
    driver_status = serializers.ChoiceField(
        choices=["pending", "approved", "suspended"], required=False, help_text="Drivers only."
    )
    member = MembershipSummaryOut(required=False, help_text="Members only: their membership summary.")


class AccountUpdateIn(serializers.Serializer):
    """What an account may change about itself here: its email address and its language, nothing else (no
    other field is read). Either may be left out; at least one is given."""

    email = serializers.CharField(max_length=254, allow_blank=True, required=False)
    language = serializers.CharField(
        max_length=10,
        allow_blank=True,
        required=False,
        help_text='en, es, bn, fr or ht (settings.LANGUAGES); "" follows Accept-Language, else English.',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(_("Give an email address or a language to change."))
        return attrs


class TokenIn(serializers.Serializer):
    phone = serializers.CharField(max_length=32)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class TokenPairOut(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshIn(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class RefreshOut(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(required=False, help_text="The rotated refresh token (use it next time).")


class TicketOut(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds.")


# --- fares and trips ---


class EstimateIn(serializers.Serializer):
    pickup = PlaceIn()
    dropoff = PlaceIn()
    wheelchair_accessible = serializers.BooleanField(default=False)


class BreakdownLineOut(serializers.Serializer):
    label = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units, in the fare's currency.")


class FeeLineOut(serializers.Serializer):
    code = serializers.CharField(help_text="The fee's code in the fare policy (`fees[].code`).")
    label = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units, in the fare's currency.")


class EstimateOut(serializers.Serializer):
    """Reads a `dispatch.models.FareEstimate`."""

    estimate_id = serializers.UUIDField(source="id")
    fare = MinorMoney("fare_minor")
    distance_m = serializers.IntegerField()
    duration_s = serializers.IntegerField()
    pickup_eta_s = serializers.IntegerField(allow_null=True)
    driver_pay_minimum = MinorMoney(
        "driver_pay_minimum_minor", help_text="The least the driver is paid for this route (the trip floor)."
    )
    policy_version = serializers.IntegerField(source="policy_version_id")
    breakdown = BreakdownLineOut(many=True)
    expires_at = Timestamp()
    route = serializers.SerializerMethodField(
        help_text="**Extension.** The planned route along the streets and which router planned it "
        "(docs/roads.md); the trip that names this estimate keeps it."
    )

    fees = serializers.SerializerMethodField(
        help_text="**Extension.** Pass-through fees on top of the fare (taxes, surcharges, funds: the fare "
        "policy's `fees`, docs/fares.md); empty when none applies. Never part of the fare or of driver pay."
    )
    total = serializers.SerializerMethodField(
        help_text="**Extension.** What the rider is quoted in all: `fare` + `fees`."
    )

    @extend_schema_field(RouteSerializer(allow_null=True))
    def get_route(self, estimate: FareEstimate) -> dict[str, object] | None:
        return route_document(estimate.route_geometry, estimate.router)

    @extend_schema_field(FeeLineOut(many=True))
    def get_fees(self, estimate: FareEstimate) -> list[dict[str, Any]]:
        return self._charge(estimate).fees_document()

    @extend_schema_field(MoneySerializer)
    def get_total(self, estimate: FareEstimate) -> dict[str, Any]:
        charge = self._charge(estimate)
        return dict(money(charge.total, charge.currency))

    def _charge(self, estimate: FareEstimate) -> RiderCharge:
        # Both fields come from one evaluation of the fees (one zone query at most).
        charges: dict[object, RiderCharge] = self.context.setdefault("estimate_charges", {})
        if estimate.pk not in charges:
            charges[estimate.pk] = estimate_charge(estimate)
        return charges[estimate.pk]


class TripRequestIn(serializers.Serializer):
    pickup = PlaceIn()
    dropoff = PlaceIn()
    estimate_id = UuidStringField(required=False, allow_null=True)
    wheelchair_accessible = serializers.BooleanField(required=False, allow_null=True, default=None)
    scheduled_for = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="**Extension.** Book ahead for this pickup time (docs/scheduling.md); a time without an "
        "offset is read in the co-op's time zone.",
    )
    pickup_window_s = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="**Extension.** With `scheduled_for`: the pickup window, in seconds either side of it "
        "(the board's default and maximum apply).",
    )
    ride_pin = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="**Extension.** A ride PIN (docs/safety.md): four digits shown to you alone, which the "
        "driver must enter to start the ride. Left out: your standing choice (`PUT /me/safety`).",
    )

    def validate(self, data: dict) -> dict:
        if data.get("pickup_window_s") is not None and data.get("scheduled_for") is None:
            raise serializers.ValidationError({"pickup_window_s": "only with scheduled_for"})
        return data


class CancelIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class TripCloseIn(serializers.Serializer):
    """Staff closing a trip: what the rider pays, and why (recorded on the trip and in the audit log)."""

    decision = serializers.ChoiceField(
        choices=["charge_trail", "charge_estimate", "no_charge"],
        help_text="`charge_trail`: complete on the measured trail; `charge_estimate`: complete at the "
        "route's estimate (the quote); `no_charge`: cancel as the system, no fee. The charges need a trip "
        "that started.",
    )
    reason = serializers.CharField(max_length=500, allow_blank=False, trim_whitespace=True)


class RatingIn(serializers.Serializer):
    stars = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class RatingOut(serializers.Serializer):
    """Reads a `dispatch.models.Rating`."""

    id = serializers.UUIDField()
    trip_id = serializers.UUIDField()
    author_role = serializers.CharField(help_text="`rider` (the rider rated the driver) or `driver`.")
    stars = serializers.IntegerField()
    comment = serializers.CharField(allow_blank=True)
    created_at = Timestamp()


class TipIn(serializers.Serializer):
    amount = MoneyIn()


class TipOut(serializers.Serializer):
    """Reads a `dispatch.models.Tip`."""

    id = serializers.UUIDField()
    trip_id = serializers.UUIDField()
    amount = MinorMoney("amount_minor")
    created_at = Timestamp()
