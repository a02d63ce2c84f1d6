"""A person's notification data for the data-rights export and erasure (dispatch/services/data_rights.py):
their preferences and the browsers and app installs their pushes go to."""

from __future__ import annotations

import uuid

from backend.notifications.models import NotificationPreferences, PushDevice, PushSubscription
from backend.notifications.preferences import preferences_document, preferences_of
from backend.timestamps import wire_timestamp


def notification_settings_export(*, user_id: uuid.UUID) -> dict[str, object]:
    """Preferences, and where pushes go (an endpoint's host only and a token's first characters: enough to
    recognise a browser or a phone, not to send to it)."""
    return {
        "preferences": preferences_document(preferences_of(user_id=user_id)),
        "web_push_subscriptions": [
            {
                "push_service": subscription.endpoint.split("://", 1)[-1].split("/", 1)[0],
                "user_agent": subscription.user_agent,
                "created_at": wire_timestamp(subscription.created_at),
            }
            for subscription in PushSubscription.objects.filter(user_id=user_id)
        ],
        "devices": [
            {
                "platform": device.platform,
                "token_start": device.token[:8],
                "created_at": wire_timestamp(device.created_at),
            }
            for device in PushDevice.objects.filter(user_id=user_id)
        ],
    }


def notification_settings_erase(*, user_id: uuid.UUID) -> None:
    """Forget where the person's pushes went and what they chose."""
    PushSubscription.objects.filter(user_id=user_id).delete()
    PushDevice.objects.filter(user_id=user_id).delete()
    NotificationPreferences.objects.filter(user_id=user_id).delete()
