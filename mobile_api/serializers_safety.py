"""Inputs and answers of the safety routes (docs/safety.md). Inputs list their fields explicitly; answers are
the shapes of dispatch/safety_serializers.py (the ones the driver socket and the live map use too), declared
here field by field so the OpenAPI description states them."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from dispatch.models import SafetyAlert, SafetyAlertRole, SafetyAlertSource, TripShareLink
from dispatch.safety_serializers import (
    ALERT_STATUSES,
    SHARED_TRIP_STATUSES,
    alert_for_raiser,
    alert_for_staff,
    share_link_view,
)
from dispatch.serializers import PlaceSerializer

# --- Share-trip links -----------------------------------------------------------------------------------


class ShareLinkCreateIn(serializers.Serializer):
    expires_in_s = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="How long the link works, in seconds: 300 to ROCHDALE_SHARE_LINK_MAX_TTL_S (24 hours); "
        "left out, ROCHDALE_SHARE_LINK_TTL_S (4 hours). It stops anyway when the trip ends.",
    )


class ShareLinkOut(serializers.Serializer):
    id = serializers.UUIDField()
    trip_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField(
        help_text="Not revoked and not expired (it also stops when the trip ends)."
    )

    def to_representation(self, instance: TripShareLink) -> dict[str, Any]:
        return share_link_view(instance, now=timezone.now())


class ShareLinkCreatedOut(ShareLinkOut):
    token = serializers.CharField(help_text="The link's secret, shown this once: it is not stored.")
    url = serializers.URLField(help_text="The page to send: the trip's progress, refreshed as it goes.")
    api_url = serializers.URLField(help_text="The same progress as JSON (`GET /shared/trips/{token}`).")


class SharedAreaOut(serializers.Serializer):
    lat = serializers.FloatField(help_text="Rounded to two decimals of a degree (about a kilometre).")
    lng = serializers.FloatField()


class SharedVehicleOut(serializers.Serializer):
    make = serializers.CharField()
    model = serializers.CharField()
    plate = serializers.CharField()


class SharedDriverOut(serializers.Serializer):
    first_name = serializers.CharField()
    vehicle = SharedVehicleOut(allow_null=True)


class SharedCarOut(serializers.Serializer):
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    heading = serializers.IntegerField(allow_null=True, help_text="Degrees clockwise from north.")
    at = serializers.DateTimeField(help_text="When the car was there.")


class SharedEtaOut(serializers.Serializer):
    seconds = serializers.IntegerField(min_value=0)
    to = serializers.ChoiceField(choices=["pickup", "dropoff"])


class SharedTripOut(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=SHARED_TRIP_STATUSES, help_text="An ended trip's link answers 404."
    )
    driver = SharedDriverOut(allow_null=True)
    car = SharedCarOut(
        allow_null=True,
        help_text="Where the car is, while it drives to the pickup (`assigned`) or the ride is under way "
        "(`in_progress`) and its last fix is recent; `null` otherwise.",
    )
    eta = SharedEtaOut(allow_null=True, help_text="By road from the car's last fix; `null` when unknown.")
    pickup_area = SharedAreaOut()
    dropoff_area = SharedAreaOut()
    scheduled_for = serializers.DateTimeField(allow_null=True)
    link_expires_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- SOS ------------------------------------------------------------------------------------------------


class SosIn(serializers.Serializer):
    client_key = serializers.CharField(
        min_length=1,
        max_length=128,
        help_text="Made by the app when SOS is first pressed and sent with every retry: the same key "
        "answers the same alert and alerts nobody again.",
    )
    position = PlaceSerializer(required=False, allow_null=True, default=None)
    accuracy_m = serializers.FloatField(
        required=False, allow_null=True, default=None, min_value=0, max_value=10_000
    )


class SafetyAlertOut(serializers.Serializer):
    """What the person who raised the alert is told back."""

    id = serializers.UUIDField()
    trip_id = serializers.UUIDField(allow_null=True)
    raised_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=ALERT_STATUSES)
    acknowledged_at = serializers.DateTimeField(allow_null=True, help_text="When staff took it on.")

    def to_representation(self, instance: SafetyAlert) -> dict[str, Any]:
        return alert_for_raiser(instance)


class StaffPartyOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    phone = serializers.CharField()


class StaffActorOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class StaffActionOut(serializers.Serializer):
    by = StaffActorOut()
    at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True)


class StaffAlertVehicleOut(serializers.Serializer):
    plate = serializers.CharField()
    make = serializers.CharField()
    model = serializers.CharField()


class StaffAlertTripOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    rider = StaffPartyOut()
    driver = StaffPartyOut(allow_null=True)
    vehicle = StaffAlertVehicleOut(allow_null=True)


class StaffSafetyAlertOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ALERT_STATUSES)
    raised_at = serializers.DateTimeField()
    role = serializers.ChoiceField(choices=SafetyAlertRole.choices)
    source = serializers.ChoiceField(choices=SafetyAlertSource.choices)
    raised_by = StaffPartyOut()
    trip = StaffAlertTripOut(allow_null=True)
    position = PlaceSerializer(allow_null=True)
    accuracy_m = serializers.FloatField(allow_null=True)
    position_source = serializers.ChoiceField(
        choices=["client", "last_fix"],
        allow_null=True,
        help_text="`client`: sent with the SOS; `last_fix`: the driver's last accepted fix (none was sent).",
    )
    acknowledged = StaffActionOut(allow_null=True)
    resolved = StaffActionOut(allow_null=True)

    def to_representation(self, instance: SafetyAlert) -> dict[str, Any]:
        return alert_for_staff(instance)


class AlertAcknowledgeIn(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AlertResolveIn(serializers.Serializer):
    note = serializers.CharField(max_length=500, allow_blank=False, trim_whitespace=True)


# --- Ride PIN -------------------------------------------------------------------------------------------


class RidePinWaiveIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, allow_blank=False, trim_whitespace=True)


class SafetySettingsIn(serializers.Serializer):
    ride_pin_always = serializers.BooleanField(
        help_text="A ride PIN on every trip you request, unless the request says `ride_pin: false`."
    )


class SafetySettingsOut(serializers.Serializer):
    ride_pin_always = serializers.BooleanField()
