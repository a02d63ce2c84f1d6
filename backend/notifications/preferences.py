"""A person's notification preferences: channels per category switched on or off, and quiet hours.

Defaults (`DEFAULT_CHANNELS`): every channel on for every category, except that offers go by push only (an
offer lasts seconds) and money does not text (a receipt is an email or a push). Only the switches a person
changed are stored, so a new default reaches everyone who did not choose.

Quiet hours hold messages that can wait (governance, money, documents, account, bookings ahead) until
they end; messages about a ride happening now (`messages.is_timely`) and urgent ones (SOS) go at once.
The time zone is the person's (blank: the co-op's, `settings.TIME_ZONE`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import InvalidInput
from backend.notifications.messages import CATEGORY_NAMES, category_of
from backend.notifications.models import NotificationPreferences
from backend.notifications.quiet_hours import quiet_hours_end

CHANNEL_NAMES: tuple[str, ...] = ("email", "sms", "web_push", "mobile_push")

_ALL_ON = {channel: True for channel in CHANNEL_NAMES}
DEFAULT_CHANNELS: dict[str, dict[str, bool]] = {category: dict(_ALL_ON) for category in CATEGORY_NAMES} | {
    "offers": {"email": False, "sms": False, "web_push": True, "mobile_push": True},
    "money": {"email": True, "sms": False, "web_push": True, "mobile_push": True},
}


@dataclass(frozen=True)
class Preferences:
    """What decides where a person's messages go and when (the stored choices over the defaults)."""

    channels: dict[str, dict[str, bool]]
    quiet_start: time | None
    quiet_end: time | None
    time_zone: str  # blank: the co-op's

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone or settings.TIME_ZONE)

    def allows(self, *, category: str, channel: str) -> bool:
        return self.channels.get(category, _ALL_ON).get(channel, True)

    def quiet_until(self, at: datetime) -> datetime | None:
        """When the quiet hours `at` falls in end; None outside them (or with none set)."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        return quiet_hours_end(at=at, start=self.quiet_start, end=self.quiet_end, zone=self.zone)


def _merged(stored: Mapping[str, object]) -> dict[str, dict[str, bool]]:
    merged = {category: dict(channels) for category, channels in DEFAULT_CHANNELS.items()}
    for category, channels in stored.items():
        if category in merged and isinstance(channels, dict):
            for channel, on in channels.items():
                if channel in merged[category] and isinstance(on, bool):
                    merged[category][channel] = on
    return merged


def preferences_of(*, user_id: uuid.UUID) -> Preferences:
    """The person's preferences (the defaults where they chose nothing)."""
    return preferences_from(NotificationPreferences.objects.filter(user_id=user_id).first())


def preferences_from(row: NotificationPreferences | None) -> Preferences:
    """The preferences a stored row (or none: the defaults) stands for; for a caller that loaded the row
    with the person (notify() does, in the one query that finds where to send)."""
    if row is None:
        return Preferences(channels=_merged({}), quiet_start=None, quiet_end=None, time_zone="")
    return Preferences(
        channels=_merged(row.channels),
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone,
    )


def preferences_document(preferences: Preferences) -> dict[str, object]:
    """The API's answer (`GET /api/v1/me/notification-preferences`)."""
    quiet = (
        {"start": preferences.quiet_start.strftime("%H:%M"), "end": preferences.quiet_end.strftime("%H:%M")}
        if preferences.quiet_start is not None and preferences.quiet_end is not None
        else None
    )
    return {
        "categories": {category: dict(preferences.channels[category]) for category in CATEGORY_NAMES},
        "quiet_hours": quiet,
        "time_zone": preferences.time_zone or settings.TIME_ZONE,
        "time_zone_is_default": not preferences.time_zone,
    }


def _clock(value: object, errors: list[str]) -> time | None:
    if not isinstance(value, str):
        errors.append(_("must be a time as HH:MM"))
        return None
    try:
        parsed = datetime.strptime(value, "%H:%M").time()
    except ValueError:
        errors.append(_("must be a time as HH:MM, from 00:00 to 23:59"))
        return None
    return parsed


def preferences_set(
    *,
    user_id: uuid.UUID,
    categories: object = None,
    quiet_hours: object = None,
    quiet_hours_given: bool = False,
    time_zone: object = None,
) -> Preferences:
    """Change the person's preferences: `categories` switches only the channels it names (the others keep
    their value), `quiet_hours` ({"start", "end"} or None to clear, applied when `quiet_hours_given`),
    `time_zone` (an IANA name, "" for the co-op's; None leaves it). Every problem is reported at once as
    `invalid_input` with details per field."""
    errors: dict[str, object] = {}
    switches: dict[str, dict[str, bool]] = {}
    if categories is not None:
        if not isinstance(categories, dict):
            errors["categories"] = [_("must be an object of categories")]
        else:
            problems: dict[str, object] = {}
            for category, channels in categories.items():
                if category not in CATEGORY_NAMES:
                    problems[str(category)] = [
                        _("unknown category; one of %(names)s") % {"names": ", ".join(CATEGORY_NAMES)}
                    ]
                    continue
                if not isinstance(channels, dict):
                    problems[category] = [_("must be an object of channels")]
                    continue
                channel_problems: dict[str, list[str]] = {}
                for channel, on in channels.items():
                    if channel not in CHANNEL_NAMES:
                        channel_problems[str(channel)] = [
                            _("unknown channel; one of %(names)s") % {"names": ", ".join(CHANNEL_NAMES)}
                        ]
                    elif not isinstance(on, bool):
                        channel_problems[channel] = [_("must be true or false")]
                    else:
                        switches.setdefault(category, {})[channel] = on
                if channel_problems:
                    problems[category] = channel_problems
            if problems:
                errors["categories"] = problems
    start = end = None
    if quiet_hours_given and quiet_hours is not None:
        if not isinstance(quiet_hours, dict) or set(quiet_hours) - {"start", "end"}:
            errors["quiet_hours"] = [_('must be null or an object with "start" and "end"')]
        else:
            problems = {}
            for name in ("start", "end"):
                field_errors: list[str] = []
                if name not in quiet_hours:
                    field_errors.append(_("is required"))
                else:
                    parsed = _clock(quiet_hours[name], field_errors)
                    start, end = (parsed, end) if name == "start" else (start, parsed)
                if field_errors:
                    problems[name] = field_errors
            if not problems and start == end:
                problems["end"] = [_("must differ from start")]
            if problems:
                errors["quiet_hours"] = problems
    if time_zone is not None:
        if not isinstance(time_zone, str):
            errors["time_zone"] = [_("must be a time zone name such as America/New_York")]
        elif time_zone and not _known_zone(time_zone):
            errors["time_zone"] = [_("unknown time zone; use a name such as America/New_York")]
    if errors:
        raise InvalidInput(_("Some notification preferences are not valid."), details=errors)

    with transaction.atomic():
        row, _created = NotificationPreferences.objects.select_for_update().get_or_create(user_id=user_id)
        if switches:
            stored = {category: dict(channels) for category, channels in (row.channels or {}).items()}
            for category, channels in switches.items():
                for channel, on in channels.items():
                    if DEFAULT_CHANNELS[category][channel] == on:
                        stored.get(category, {}).pop(channel, None)
                    else:
                        stored.setdefault(category, {})[channel] = on
            row.channels = {category: channels for category, channels in stored.items() if channels}
        if quiet_hours_given:
            row.quiet_start, row.quiet_end = start, end
        if time_zone is not None:
            row.time_zone = time_zone
        row.updated_at = timezone.now()
        row.save()
    return preferences_of(user_id=user_id)


def _known_zone(name: str) -> bool:
    """An IANA zone name the tz database lists (never a path)."""
    zones = available_timezones()
    if zones:
        return name in zones
    try:  # no tz database to list (a slim image): ask zoneinfo for the one name
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def channel_wanted(*, user_id: uuid.UUID, event: str, channel: str) -> bool:
    """Whether the person keeps `channel` on for `event`'s category: for a sender with its own channel (the
    receipt's full email, dispatch/money/receipt_mail.py) that still follows the person's switches."""
    return preferences_of(user_id=user_id).allows(category=category_of(event), channel=channel)
