"""Request and answer shapes of the organisation routes (mobile_api/views_organisations.py). Inputs name
their fields (nothing else of a body is read); answers are built from the rows by these serializers."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.gis.geos import GEOSException, GEOSGeometry
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backend.organisations.models import (
    ApiKeyScope,
    BookingRule,
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationKind,
    OrganisationMembership,
    OrganisationRole,
)
from backend.organisations.services import GUEST_NAME_MAX_LENGTH, KEY_NAME_MAX_LENGTH, NAME_MAX_LENGTH
from dispatch.serializers import MoneySerializer, PlaceSerializer, TripSerializer
from dispatch.state import TripStatus
from mobile_api.serializers_fields import MinorMoney, Timestamp

REFERENCE_MAX_LENGTH = 80
# The trip object's statuses, as its serializer lists them (ENUM_NAME_OVERRIDES names the set `TripStatusEnum`
# now that two components carry it: the trip and the organisation's trip).
TRIP_STATUSES = [status.value for status in TripStatus]

_GEOJSON_AREA = {
    "type": "object",
    "nullable": True,
    "description": "A GeoJSON Polygon or MultiPolygon in longitude/latitude (WGS 84); null: anywhere served.",
    "properties": {
        "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
        "coordinates": {"type": "array", "items": {}},
    },
    "required": ["type", "coordinates"],
}
_ALLOWED_HOURS = {
    "type": "array",
    "description": 'Slots `{"weekdays": [1..7], "from": "HH:MM", "to": "HH:MM"}` in the co-op\'s local time '
    "(ISO weekdays, Monday 1; `to` not after `from` runs past midnight); empty: any time.",
    "items": {
        "type": "object",
        "properties": {
            "weekdays": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
            "from": {"type": "string", "example": "07:00"},
            "to": {"type": "string", "example": "19:00"},
        },
        "required": ["weekdays", "from", "to"],
    },
}


@extend_schema_field(_GEOJSON_AREA)
class GeoJsonAreaField(serializers.Field):
    """A GeoJSON polygon in, a GEOS geometry out (the service checks it is a valid polygon)."""

    def to_internal_value(self, data: Any) -> GEOSGeometry:
        if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
            raise serializers.ValidationError(_("A GeoJSON Polygon or MultiPolygon."))
        try:
            geometry = GEOSGeometry(json.dumps(data))
        except (GEOSException, ValueError, TypeError) as exc:
            raise serializers.ValidationError(_("Not a readable GeoJSON polygon.")) from exc
        geometry.srid = 4326
        return geometry

    def to_representation(self, value: GEOSGeometry | None) -> dict[str, Any] | None:
        return None if value is None else json.loads(value.geojson)


@extend_schema_field(_ALLOWED_HOURS)
class AllowedHoursField(serializers.JSONField):
    """Checked by the service (backend/organisations/rules.py), which names the slot that is wrong."""


class OrganisationOut(serializers.ModelSerializer):
    allowed_hours = AllowedHoursField()
    allowed_area = GeoJsonAreaField(allow_null=True)
    max_fare = MinorMoney("max_fare_minor", allow_null=True)
    created_at = Timestamp()

    class Meta:
        model = Organisation
        fields = [
            "id",
            "name",
            "kind",
            "is_active",
            "billing_email",
            "billing_address",
            "currency",
            "payment_terms_days",
            "allowed_hours",
            "allowed_area",
            "max_fare",
            "wav_allowed",
            "booking_rule",
            "reference_required",
            "created_at",
        ]
        read_only_fields = fields


class OrganisationPatchIn(serializers.Serializer):
    """Every field optional; only those sent change."""

    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False)
    kind = serializers.ChoiceField(OrganisationKind.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    billing_email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    billing_address = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False)
    allowed_hours = AllowedHoursField(required=False)
    allowed_area = GeoJsonAreaField(required=False, allow_null=True)
    max_fare = MoneySerializer(required=False, allow_null=True)
    wav_allowed = serializers.BooleanField(required=False)
    booking_rule = serializers.ChoiceField(BookingRule.choices, required=False)
    reference_required = serializers.BooleanField(required=False)


class OrganisationCreateIn(OrganisationPatchIn):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)


class PersonOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    phone = serializers.CharField()


class OrganisationMembershipOut(serializers.ModelSerializer):
    user = PersonOut()
    created_at = Timestamp()

    class Meta:
        model = OrganisationMembership
        fields = ["user", "role", "created_at"]
        read_only_fields = fields


class MemberIn(serializers.Serializer):
    phone = serializers.CharField(max_length=32, help_text="The person's Rochdale account phone (E.164).")
    role = serializers.ChoiceField(OrganisationRole.choices)


class MemberAddedOut(serializers.Serializer):
    """What an admin sent, and whether it is an invitation: never anything of the account with the phone."""

    id = serializers.UUIDField(
        allow_null=True, help_text="The invitation's id; null when a member's role changed."
    )
    phone = serializers.CharField()
    role = serializers.ChoiceField(OrganisationRole.choices)
    status = serializers.ChoiceField(
        ["invited", "active"],
        help_text="`invited`: the person with this phone is asked and joins when they accept (with or "
        "without an account today); `active`: a member's new role, or staff adding an account directly.",
    )
    created_at = Timestamp()


class GuestOut(serializers.ModelSerializer):
    """The guest as the organisation gave it; nothing of the account they ride as."""

    created_at = Timestamp()

    class Meta:
        model = OrganisationGuest
        fields = ["id", "name", "phone", "created_at"]
        read_only_fields = fields


class GuestIn(serializers.Serializer):
    name = serializers.CharField(max_length=GUEST_NAME_MAX_LENGTH)
    phone = serializers.CharField(max_length=32, help_text="E.164; where the guest's SMS go.")


class ApiKeyOut(serializers.ModelSerializer):
    created_at = Timestamp()
    last_used_at = Timestamp(allow_null=True)
    revoked_at = Timestamp(allow_null=True)
    is_active = serializers.BooleanField(read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiKeyScope.values), read_only=True)

    class Meta:
        model = OrganisationApiKey
        fields = ["id", "name", "prefix", "scopes", "is_active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreatedOut(ApiKeyOut):
    key = serializers.CharField(
        read_only=True, help_text="The key itself, `rk_<prefix>_<secret>`: shown this once, never stored."
    )

    class Meta(ApiKeyOut.Meta):
        fields = [*ApiKeyOut.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=KEY_NAME_MAX_LENGTH)
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiKeyScope.values), min_length=1)


class OrganisationTripIn(serializers.Serializer):
    rider_id = serializers.UUIDField(
        required=False, help_text="A rider of the organisation (a member with the app)."
    )
    guest_id = serializers.UUIDField(required=False, help_text="One of the organisation's guests.")
    guest = GuestIn(required=False, help_text="A guest by name and phone, added (or found) as it books.")
    pickup = PlaceSerializer()
    dropoff = PlaceSerializer()
    wheelchair_accessible = serializers.BooleanField(required=False, default=False)
    scheduled_for = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Book ahead for this pickup time."
    )
    pickup_window_s = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Half-width of the pickup window."
    )
    reference = serializers.CharField(
        max_length=REFERENCE_MAX_LENGTH, required=False, allow_blank=True, default=""
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        named = [name for name in ("rider_id", "guest_id", "guest") if attrs.get(name) is not None]
        if len(named) > 1:
            raise serializers.ValidationError(_("Name the rider once: rider_id, guest_id or guest."))
        return attrs


class BookedByOut(serializers.Serializer):
    kind = serializers.ChoiceField(["person", "api_key", "rider"])
    id = serializers.UUIDField(allow_null=True)
    name = serializers.CharField()


class OrganisationRiderOut(serializers.Serializer):
    kind = serializers.ChoiceField(
        ["guest", "member"], help_text="How the organisation knows the rider: its guest or its member."
    )
    id = serializers.UUIDField(help_text="The guest's id (`guest_id`), or the member's (`rider_id`).")
    name = serializers.CharField(help_text="The name the organisation gave its guest, or the member's.")


class OrganisationTripOut(TripSerializer):
    """The trip object, its rider as the organisation knows them, and who booked it for it."""

    rider = OrganisationRiderOut(read_only=True)
    booked_by = BookedByOut(read_only=True)


class InvitationOut(serializers.Serializer):
    kind = serializers.ChoiceField(
        ["membership", "guest"],
        help_text="`membership`: join in `role` (`POST /me/organisations/{id}/accept` or `/decline`); "
        "`guest`: let it book rides for you (`POST /me/organisations/{id}/guest/accept` or "
        "`/guest/decline`).",
    )
    role = serializers.ChoiceField(OrganisationRole.choices, allow_null=True)


class MyOrganisationOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(OrganisationKind.choices)
    role = serializers.ChoiceField(
        OrganisationRole.choices, allow_null=True, help_text="Null: not a member (invited, or its guest)."
    )
    guest = serializers.BooleanField(help_text="It may book rides for you as its guest.")
    invitations = InvitationOut(many=True, help_text="What waits for your yes.")
    booking_rule = serializers.ChoiceField(BookingRule.choices)
    reference_required = serializers.BooleanField()
    wav_allowed = serializers.BooleanField()
    allowed_hours = AllowedHoursField()
    max_fare = MoneySerializer(allow_null=True)


class OrganisationTripFilterIn(serializers.Serializer):
    status = serializers.ChoiceField(TRIP_STATUSES, required=False)
    reference = serializers.CharField(max_length=REFERENCE_MAX_LENGTH, required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
