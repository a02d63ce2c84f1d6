"""notify() and its outbox on real PostgreSQL and a real SMTP server (aiosmtpd): written with the caller's
transaction and sent only after it commits, once per dedup key, retried with backoff after a refusal, given
up after the last attempt, and never sent twice by two workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from backend.notifications.delivery import MAX_ATTEMPTS, notification_deliver, notifications_deliver_due
from backend.notifications.models import Notification, NotificationStatus
from backend.notifications.services import notify
from tests.factories import RiderFactory

pytestmark = pytest.mark.django_db(transaction=True)
CONTEXT = {"pickup_local": "Mon 01 Mar 07:30", "window_start_local": "07:15", "window_end_local": "07:45"}


def test_a_notification_goes_after_commit_on_every_channel_of_the_person(smtp_server, celery_eager):
    rider = RiderFactory(email="ada@example.org")
    with transaction.atomic():
        notify(user_id=rider.id, event="reservation_reminder", context={**CONTEXT, "link": ""})
        # Inside the sender's transaction nothing has gone out yet.
        assert smtp_server.messages == []
    rows = {row.channel: row for row in Notification.objects.filter(user=rider)}
    assert set(rows) == {"sms", "email"}
    assert all(row.status == NotificationStatus.SENT and row.attempts == 1 for row in rows.values())
    assert rows["sms"].to == rider.phone and rows["sms"].provider_reference.startswith("log-")
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.org" and message["Subject"] == "Your ride is coming up"
    assert "between 07:15 and 07:45" in message.get_content()


def test_nothing_is_sent_for_a_transaction_that_rolled_back(smtp_server, celery_eager):
    rider = RiderFactory(email="ada@example.org")
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
        raise RuntimeError("the booking failed")
    assert not Notification.objects.exists() and smtp_server.messages == []


def test_a_dedup_key_sends_a_message_once_however_often_it_is_asked_for(smtp_server, celery_eager):
    rider = RiderFactory(email="ada@example.org")
    for _ in range(3):
        notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT, dedup_key="reminder:trip-1")
    assert Notification.objects.filter(user=rider).count() == 2
    assert len(smtp_server.messages) == 1


def test_a_refused_email_is_retried_after_its_backoff_and_then_sent(smtp_server, celery_eager):
    rider = RiderFactory(email="ada@example.org")
    smtp_server.refuse = ["451 4.3.0 Try again later"]
    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    row = Notification.objects.get(user=rider, channel="email")
    assert row.status == NotificationStatus.PENDING and row.attempts == 1 and "451" in row.last_error
    assert row.next_attempt_at > timezone.now()
    # Not before its backoff ...
    assert notifications_deliver_due() == 0
    # ... and then it goes.
    assert notifications_deliver_due(now=row.next_attempt_at + timedelta(seconds=1)) == 1
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.attempts == 2 and len(smtp_server.messages) == 1


def test_a_message_refused_at_every_attempt_is_given_up_and_kept_for_staff(smtp_server):
    rider = RiderFactory(email="ada@example.org")
    smtp_server.refuse = ["451 4.3.0 Try again later"] * MAX_ATTEMPTS
    [_, email] = notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    moment = timezone.now()
    for _ in range(MAX_ATTEMPTS):
        moment += timedelta(days=1)
        notification_deliver(notification_id=email.id, now=moment)
    email.refresh_from_db()
    assert email.status == NotificationStatus.FAILED and email.attempts == MAX_ATTEMPTS
    assert notification_deliver(notification_id=email.id, now=moment + timedelta(days=1)) is None
    assert smtp_server.messages == []


def test_a_claimed_message_is_not_sent_again_by_a_second_worker_while_its_lease_runs(smtp_server):
    rider = RiderFactory(email="ada@example.org")
    [_, email] = notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    first = notification_deliver(notification_id=email.id)
    assert first is not None and first.status == NotificationStatus.SENT
    assert notification_deliver(notification_id=email.id) is None
    assert len(smtp_server.messages) == 1


def test_an_inactive_account_is_told_nothing():
    rider = RiderFactory(is_active=False)
    assert notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT) == []


def test_a_sweep_does_not_run_while_another_is_still_sending(smtp_server):
    """A slow channel can make a sweep outlast the beat's interval: the next one finds the lock taken and
    sends nothing, so no row is claimed by two sweeps."""
    import threading

    from django.db import connections

    from backend.notifications.delivery import _SWEEP_LOCK

    rider = RiderFactory(email="ada@example.org")
    notify(user_id=rider.id, event="reservation_reminder", context=CONTEXT)
    due = timezone.now() + timedelta(hours=1)
    holding, release = threading.Event(), threading.Event()

    def other_sweep() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_SWEEP_LOCK])
            holding.set()
            release.wait(10)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_SWEEP_LOCK])
        connections["default"].close()

    thread = threading.Thread(target=other_sweep)
    thread.start()
    try:
        assert holding.wait(10)
        assert notifications_deliver_due(now=due) == 0
    finally:
        release.set()
        thread.join(10)
    # Then the next sweep sends both (the SMS and the email, neither delivered yet).
    assert notifications_deliver_due(now=due) == 2


def test_notify_finds_the_person_their_choices_and_every_push_target_in_one_query():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backend.notifications.models import NotificationPreferences, PushDevice, PushSubscription

    rider = RiderFactory(email="ada@example.org")
    older = PushDevice.objects.create(user=rider, platform="apns", token="ab" * 32)
    newer = PushDevice.objects.create(user=rider, platform="fcm", token="cd" * 32)
    subscription = PushSubscription.objects.create(
        user=rider, endpoint="https://push.example.org/send/abc", p256dh="k" * 87, auth="a" * 22
    )
    # SMS switched off for ride messages: the choice, read in that same query, is honoured.
    NotificationPreferences.objects.create(user=rider, channels={"trips": {"sms": False}})
    with CaptureQueriesContext(connection) as queries:
        rows = notify(
            user_id=rider.id,
            event="driver_arriving",
            context={"driver_name": "Ada", "vehicle": "Prius"},
            dedup_key="arriving:1",
        )
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(reads) == 1, reads
    assert [(row.channel, row.device_id, row.push_subscription_id) for row in rows] == [
        ("mobile_push", older.id, None),
        ("mobile_push", newer.id, None),
        ("web_push", None, subscription.id),
    ]
    assert rows[2].to == "push.example.org"
    assert {row.dedup_key for row in rows} == {
        f"arriving:1:mobile_push:{older.id}",
        f"arriving:1:mobile_push:{newer.id}",
        f"arriving:1:web_push:{subscription.id}",
    }
