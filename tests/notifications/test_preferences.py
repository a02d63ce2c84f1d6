"""Preferences and quiet hours: the API with its validation, a channel switched off writes no row and sends
nothing, quiet hours hold what can wait and the sweep sends it when they end, a ride happening now and an
urgent message go at once, and each person reads the message in their own language."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from backend.notifications import messages
from backend.notifications.delivery import notifications_deliver_due
from backend.notifications.models import Notification, NotificationPreferences, NotificationStatus
from backend.notifications.preferences import preferences_set
from backend.notifications.services import notify
from tests.conftest import auth_client_for
from tests.factories import RiderFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/me/notification-preferences"
CONTEXT = {"pickup_local": "Mon 01 Mar 07:30", "window_start_local": "07:15", "window_end_local": "07:45"}
PROPOSAL = {
    "title": "Bylaw 4: the pay floor",
    "closes_local": "Fri 05 Mar 18:00",
    "link": "https://r.example/m/",
}


def _quiet_now(user, zone: str = "America/Chicago") -> datetime:
    """Quiet hours around the present moment in `zone` (an hour either side); returns when they end."""
    local = timezone.now().astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0)
    start, end = (local - timedelta(hours=1)).time(), (local + timedelta(hours=1)).time()
    preferences_set(
        user_id=user.id,
        quiet_hours={"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")},
        quiet_hours_given=True,
        time_zone=zone,
    )
    return local + timedelta(hours=1)


def test_the_defaults_are_every_channel_but_texts_for_money_and_anything_but_push_for_offers(settings):
    body = auth_client_for(RiderFactory()).get(URL).json()
    assert list(body["categories"]) == list(messages.CATEGORY_NAMES)
    assert body["categories"]["trips"] == {"email": True, "sms": True, "web_push": True, "mobile_push": True}
    assert body["categories"]["offers"] == {
        "email": False,
        "sms": False,
        "web_push": True,
        "mobile_push": True,
    }
    assert body["categories"]["money"]["sms"] is False
    assert body["quiet_hours"] is None
    assert body["time_zone"] == settings.TIME_ZONE and body["time_zone_is_default"] is True


def test_a_person_switches_channels_sets_quiet_hours_and_a_time_zone():
    rider = RiderFactory()
    client = auth_client_for(rider)
    answer = client.put(
        URL,
        {
            "categories": {"governance": {"sms": False}, "offers": {"email": False}},
            "quiet_hours": {"start": "22:30", "end": "06:45"},
            "time_zone": "Africa/Lagos",
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = client.get(URL).json()
    assert body["categories"]["governance"] == {
        "email": True,
        "sms": False,
        "web_push": True,
        "mobile_push": True,
    }
    assert body["quiet_hours"] == {"start": "22:30", "end": "06:45"}
    assert body["time_zone"] == "Africa/Lagos" and body["time_zone_is_default"] is False
    # Only what differs from the defaults is kept, so a later default reaches the person.
    assert NotificationPreferences.objects.get(user=rider).channels == {"governance": {"sms": False}}
    # Omitted fields stay; null clears the quiet hours; "" follows the co-op's zone again.
    client.put(URL, {"categories": {"governance": {"sms": True}}}, format="json")
    assert client.get(URL).json()["quiet_hours"] == {"start": "22:30", "end": "06:45"}
    body = client.put(URL, {"quiet_hours": None, "time_zone": ""}, format="json").json()
    assert body["quiet_hours"] is None and body["time_zone_is_default"] is True
    assert NotificationPreferences.objects.get(user=rider).channels == {}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"categories": {"gossip": {"sms": False}}}, {"categories": {"gossip": ["unknown category"]}}),
        (
            {"categories": {"trips": {"pigeon": False}}},
            {"categories": {"trips": {"pigeon": ["unknown channel"]}}},
        ),
        (
            {"categories": {"trips": {"sms": "no"}}},
            {"categories": {"trips": {"sms": ["must be true or false"]}}},
        ),
        ({"categories": ["trips"]}, {"categories": ["must be an object of categories"]}),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, {"quiet_hours": {"start": ["must be a time"]}}),
        ({"quiet_hours": {"start": "22:00"}}, {"quiet_hours": {"end": ["is required"]}}),
        (
            {"quiet_hours": {"start": "22:00", "end": "22:00"}},
            {"quiet_hours": {"end": ["must differ from start"]}},
        ),
        ({"quiet_hours": "22-7"}, {"quiet_hours": ['must be null or an object with "start" and "end"']}),
        ({"time_zone": "Mars/Olympus_Mons"}, {"time_zone": ["unknown time zone"]}),
        ({"time_zone": "../../etc/passwd"}, {"time_zone": ["unknown time zone"]}),
        ({"volume": 11}, {"volume": ["unknown field"]}),
    ],
)
def test_a_bad_preference_is_refused_with_the_field_and_why(body, details):
    rider = RiderFactory()
    answer = auth_client_for(rider).put(URL, body, format="json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"

    def starts(expected, got):
        if isinstance(expected, dict):
            return set(expected) == set(got) and all(starts(expected[key], got[key]) for key in expected)
        return len(expected) == len(got) and all(g.startswith(e) for e, g in zip(expected, got, strict=True))

    assert starts(details, error["details"]), error["details"]
    assert not NotificationPreferences.objects.filter(user=rider).exists()


def test_a_channel_switched_off_writes_no_row_and_sends_nothing(
    smtp_server, django_capture_on_commit_callbacks, celery_eager
):
    rider = RiderFactory(email="ada@example.org")
    preferences_set(user_id=rider.id, categories={"reservations": {"email": False, "sms": False}})
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT) == []
        # Other categories still go.
        sent = notify(
            user_id=rider.id,
            event="organisation_member_invite",
            context={"organisation": "Clinic", "role": "coordinator"},
        )
    assert {row.channel for row in sent} == {"sms", "email"}
    assert not Notification.objects.filter(event="reservation_reminder").exists()
    [message] = smtp_server.messages
    assert message["Subject"] == "You are invited to an organisation"


def test_quiet_hours_hold_a_message_that_can_wait_and_the_sweep_sends_it_when_they_end(
    smtp_server, django_capture_on_commit_callbacks, celery_eager
):
    member = RiderFactory(email="member@example.org")
    ends = _quiet_now(member)
    with django_capture_on_commit_callbacks(execute=True):
        rows = notify(user_id=member.id, event="proposal_opened", context=PROPOSAL)
    assert {row.channel for row in rows} == {"sms", "email"}
    assert all(row.held_until == ends and row.next_attempt_at == ends for row in rows)
    # Held, not dropped: nothing goes out during the quiet hours ...
    assert notifications_deliver_due() == 0
    assert notifications_deliver_due(now=ends - timedelta(seconds=1)) == 0
    assert smtp_server.messages == []
    # ... and everything goes when they end.
    assert notifications_deliver_due(now=ends + timedelta(seconds=1)) == 2
    assert {row.status for row in Notification.objects.filter(user=member)} == {NotificationStatus.SENT}
    [message] = smtp_server.messages
    assert (
        message["Subject"] == "A new proposal to vote on"
        and "Bylaw 4: the pay floor" in message.get_content()
    )


def test_a_ride_happening_now_goes_through_quiet_hours(django_capture_on_commit_callbacks, celery_eager):
    rider = RiderFactory()
    _quiet_now(rider)
    with django_capture_on_commit_callbacks(execute=True):
        [row] = notify(
            user_id=rider.id, event="driver_arriving", context={"driver_name": "Ana", "vehicle": "Prius"}
        )
    row.refresh_from_db()
    assert row.channel == "sms" and row.held_until is None and row.status == NotificationStatus.SENT
    assert row.body == "Rochdale: Ana is at your pickup in a Prius."


def test_an_urgent_message_goes_through_quiet_hours_and_switches(
    smtp_server, django_capture_on_commit_callbacks, celery_eager
):
    staff = RiderFactory(email="staff@example.org")
    _quiet_now(staff)
    preferences_set(user_id=staff.id, categories={"governance": {"sms": False, "email": False}})
    with django_capture_on_commit_callbacks(execute=True):
        rows = notify(user_id=staff.id, event="proposal_opened", context=PROPOSAL, urgent=True)
    assert {row.channel for row in rows} == {"sms", "email"}
    assert all(row.urgent and row.held_until is None for row in rows)
    assert {row.status for row in Notification.objects.filter(user=staff)} == {NotificationStatus.SENT}
    assert len(smtp_server.messages) == 1


def test_each_person_reads_the_message_in_their_own_language(django_capture_on_commit_callbacks):
    """Rendered under the recipient's language (User.language; blank: the co-op's), from locale/."""
    context = {"driver_name": "Ana", "vehicle": "Toyota Prius"}
    spanish, default = RiderFactory(language="es"), RiderFactory()
    [es] = notify(user_id=spanish.id, event="driver_arriving", context=context)
    [en] = notify(user_id=default.id, event="driver_arriving", context=context)
    assert (es.subject, es.body) == (
        "Tu conductor llegó",
        "Rochdale: Ana está en tu punto de recogida en un Toyota Prius.",
    )
    assert (en.subject, en.body) == (
        "Your driver is here",
        "Rochdale: Ana is at your pickup in a Toyota Prius.",
    )


def test_a_retry_that_falls_in_quiet_hours_waits_for_their_end(smtp_server):
    from backend.notifications.delivery import notification_deliver

    member = RiderFactory(email="member@example.org")
    [_sms, email] = notify(user_id=member.id, event="proposal_opened", context=PROPOSAL)
    ends = _quiet_now(member)  # the person's quiet hours began before the message went out
    assert notification_deliver(notification_id=email.id) is None
    email.refresh_from_db()
    assert email.status == NotificationStatus.PENDING and email.attempts == 0
    assert email.held_until == ends == email.next_attempt_at and smtp_server.messages == []
    sent = notification_deliver(notification_id=email.id, now=ends + timedelta(seconds=1))
    assert sent is not None and sent.status == NotificationStatus.SENT and len(smtp_server.messages) == 1
