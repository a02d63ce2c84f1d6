"""The caller's notifications over HTTP (docs/notifications.md): their preferences and quiet hours, their
browsers' Web Push subscriptions (and the VAPID key a browser subscribes with), and their app installs'
device tokens. Each route acts on the caller's own rows only. Thin: validate the shape, call
backend/notifications (preferences.py, push_targets.py), shape the answer."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import InvalidInput
from backend.notifications.messages import CATEGORY_NAMES
from backend.notifications.models import PushDevice, PushPlatform, PushSubscription
from backend.notifications.preferences import (
    CHANNEL_NAMES,
    DEFAULT_CHANNELS,
    preferences_document,
    preferences_of,
    preferences_set,
)
from backend.notifications.push_targets import (
    push_device_delete,
    push_device_save,
    push_subscription_delete,
    push_subscription_save,
)
from backend.notifications.webpush import vapid_public_key
from backend.timestamps import wire_timestamp
from mobile_api.schema import error_responses

# --- shapes -----------------------------------------------------------------------------------------------

_Channels = inline_serializer(
    "NotificationChannels",
    {channel: serializers.BooleanField() for channel in CHANNEL_NAMES},
)
_QuietHours = inline_serializer(
    "QuietHours",
    {
        "start": serializers.CharField(help_text="Local time HH:MM the quiet hours start (inclusive)."),
        "end": serializers.CharField(help_text="Local time HH:MM they end; before start runs overnight."),
    },
)
PreferencesOut = inline_serializer(
    "NotificationPreferences",
    {
        "categories": inline_serializer(
            "NotificationCategories", {category: _Channels for category in CATEGORY_NAMES}
        ),
        "quiet_hours": inline_serializer(
            "QuietHoursOrNull",
            {"start": serializers.CharField(), "end": serializers.CharField()},
            allow_null=True,
        ),
        "time_zone": serializers.CharField(help_text="The IANA time zone quiet hours are read in."),
        "time_zone_is_default": serializers.BooleanField(help_text="True while it follows the co-op's."),
    },
)
PreferencesIn = inline_serializer(
    "NotificationPreferencesUpdate",
    {
        "categories": serializers.DictField(
            child=serializers.DictField(child=serializers.BooleanField()),
            required=False,
            help_text="Only the categories and channels named change; the others keep their value.",
        ),
        "quiet_hours": inline_serializer(
            "QuietHoursUpdate",
            {"start": serializers.CharField(), "end": serializers.CharField()},
            allow_null=True,
            required=False,
            help_text="null clears the quiet hours; omitted leaves them.",
        ),
        "time_zone": serializers.CharField(
            required=False, allow_blank=True, help_text='An IANA name; "" follows the co-op\'s.'
        ),
    },
)


class PushSubscriptionIn(serializers.Serializer):
    """What `PushSubscription.toJSON()` gives a page, as the browser made it."""

    endpoint = serializers.CharField(max_length=1000)
    keys = inline_serializer(
        "PushSubscriptionKeys",
        {"p256dh": serializers.CharField(max_length=100), "auth": serializers.CharField(max_length=50)},
    )
    # The browser's own name for it (PushSubscription.toJSON()).
    expirationTime = serializers.IntegerField(required=False, allow_null=True)


class PushSubscriptionDeleteIn(serializers.Serializer):
    endpoint = serializers.CharField(max_length=1000)


PushSubscriptionOut = inline_serializer(
    "PushSubscription",
    {
        "id": serializers.UUIDField(),
        "endpoint": serializers.CharField(),
        "created_at": serializers.CharField(),
    },
)


class DeviceIn(serializers.Serializer):
    platform = serializers.ChoiceField(choices=PushPlatform.values, help_text="fcm (Android) or apns (iOS).")
    token = serializers.CharField(
        max_length=512, help_text="The FCM registration token or APNs device token."
    )


DeviceOut = inline_serializer(
    "PushDevice",
    {
        "id": serializers.UUIDField(),
        "platform": serializers.CharField(),
        "created_at": serializers.CharField(),
    },
)


def _valid(serializer: serializers.Serializer) -> dict:
    if not serializer.is_valid():
        raise InvalidInput(_("Some fields are missing or not valid."), details=serializer.errors)
    return serializer.validated_data


def _subscription_document(subscription: PushSubscription) -> dict[str, object]:
    return {
        "id": str(subscription.id),
        "endpoint": subscription.endpoint,
        "created_at": wire_timestamp(subscription.created_at),
    }


def _device_document(device: PushDevice) -> dict[str, object]:
    return {
        "id": str(device.id),
        "platform": device.platform,
        "created_at": wire_timestamp(device.created_at),
    }


# Every category, as the API always lists them all (the defaults, with governance texts switched off).
_PREFERENCES_EXAMPLE = {
    "categories": {category: dict(channels) for category, channels in DEFAULT_CHANNELS.items()}
    | {"governance": {"email": True, "sms": False, "web_push": True, "mobile_push": True}},
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "time_zone": "America/New_York",
    "time_zone_is_default": True,
}

# --- views ------------------------------------------------------------------------------------------------


class NotificationPreferencesView(APIView):
    @extend_schema(
        operation_id="me_notification_preferences",
        summary="The caller's notification switches per category and channel, quiet hours and time zone",
        responses={200: PreferencesOut},
        examples=[
            OpenApiExample("defaults with quiet hours", value=_PREFERENCES_EXAMPLE, response_only=True)
        ],
        tags=["notifications"],
    )
    def get(self, request: Request) -> Response:
        return Response(preferences_document(preferences_of(user_id=request.user.pk)))

    @extend_schema(
        operation_id="me_notification_preferences_update",
        summary="Switch channels per category, set or clear quiet hours, set the time zone",
        description=(
            "Only what the body names changes. Quiet hours hold messages that can wait until they end; "
            "messages about a ride happening now, and urgent ones (SOS), are sent at once whatever the "
            "switches and quiet hours say."
        ),
        request=PreferencesIn,
        responses={200: PreferencesOut, **error_responses({400: ["invalid_input"]})},
        examples=[
            OpenApiExample(
                "quiet nights, no governance texts",
                value={
                    "categories": {"governance": {"sms": False}},
                    "quiet_hours": {"start": "22:00", "end": "07:00"},
                },
                request_only=True,
            )
        ],
        tags=["notifications"],
    )
    def put(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise InvalidInput(
                _("The body must be a JSON object."), details={"body": [_("must be an object")]}
            )
        unknown = sorted(set(body) - {"categories", "quiet_hours", "time_zone"})
        if unknown:
            raise InvalidInput(
                _("Some fields are not valid."), details={name: [_("unknown field")] for name in unknown}
            )
        preferences = preferences_set(
            user_id=request.user.pk,
            categories=body.get("categories"),
            quiet_hours=body.get("quiet_hours"),
            quiet_hours_given="quiet_hours" in body,
            time_zone=body.get("time_zone"),
        )
        return Response(preferences_document(preferences))


class VapidPublicKeyView(APIView):
    @extend_schema(
        operation_id="me_push_vapid_public_key",
        summary="The VAPID public key a browser subscribes with (applicationServerKey, base64url)",
        responses={200: inline_serializer("VapidPublicKey", {"public_key": serializers.CharField()})},
        tags=["notifications"],
    )
    def get(self, request: Request) -> Response:
        return Response({"public_key": vapid_public_key()})


class PushSubscriptionsView(APIView):
    @extend_schema(
        operation_id="me_push_subscription_save",
        summary="Keep this browser's Web Push subscription (201 new, 200 already kept)",
        request=PushSubscriptionIn,
        responses={
            200: PushSubscriptionOut,
            201: PushSubscriptionOut,
            **error_responses({400: ["invalid_input"]}),
        },
        tags=["notifications"],
    )
    def post(self, request: Request) -> Response:
        data = _valid(PushSubscriptionIn(data=request.data))
        subscription, created = push_subscription_save(
            user_id=request.user.pk,
            endpoint=data["endpoint"],
            p256dh=data["keys"]["p256dh"],
            auth=data["keys"]["auth"],
            user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(
            _subscription_document(subscription),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="me_push_subscription_delete",
        summary="Forget this browser's subscription (by its endpoint)",
        request=PushSubscriptionDeleteIn,
        responses={
            204: None,
            **error_responses({400: ["invalid_input"], 404: ["push_subscription_not_found"]}),
        },
        tags=["notifications"],
    )
    def delete(self, request: Request) -> Response:
        data = _valid(PushSubscriptionDeleteIn(data=request.data))
        push_subscription_delete(user_id=request.user.pk, endpoint=data["endpoint"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class DevicesView(APIView):
    @extend_schema(
        operation_id="me_device_save",
        summary="Keep this app install's push token (201 new, 200 already kept)",
        request=DeviceIn,
        responses={200: DeviceOut, 201: DeviceOut, **error_responses({400: ["invalid_input"]})},
        tags=["notifications"],
    )
    def post(self, request: Request) -> Response:
        data = _valid(DeviceIn(data=request.data))
        device, created = push_device_save(
            user_id=request.user.pk, platform=data["platform"], token=data["token"]
        )
        return Response(
            _device_document(device), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="me_device_delete",
        summary="Forget this app install's push token (on sign-out)",
        request=DeviceIn,
        responses={204: None, **error_responses({400: ["invalid_input"], 404: ["device_not_found"]})},
        tags=["notifications"],
    )
    def delete(self, request: Request) -> Response:
        data = _valid(DeviceIn(data=request.data))
        push_device_delete(user_id=request.user.pk, platform=data["platform"], token=data["token"])
        return Response(status=status.HTTP_204_NO_CONTENT)
