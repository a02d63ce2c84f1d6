"""Issue 17's events, each from the code that causes it, through notify() to real local channels: a booking
whose push fails still succeeds and the push is retried; the driver at the pickup; an offer while the
driver's app is away; the receipt; a document about to expire; proposals and elections to the voter roll,
once however often their senders run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.notifications.delivery import notifications_deliver_due
from backend.notifications.models import Notification, NotificationStatus, PushDevice
from backend.notifications.preferences import preferences_set
from dispatch.models import DriverPresence
from dispatch.services.driving import trip_arrive
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.mobile_api.builders import DROPOFF, PICKUP, assigned_trip, completed_trip

pytestmark = pytest.mark.django_db


def _subscribe(user, service):
    browser = service.subscribe()
    assert (
        auth_client_for(user)
        .post("/api/v1/me/push-subscriptions", browser.to_json(), format="json")
        .status_code
        == 201
    )
    return browser


def _rows(user, event):
    return list(Notification.objects.filter(user=user, event=event).order_by("channel"))


def test_a_failing_push_never_fails_the_booking_and_is_retried(
    service_area, idem, web_push_service, celery_eager, django_capture_on_commit_callbacks
):
    rider = RiderFactory()
    _subscribe(rider, web_push_service)
    web_push_service.statuses = [500]
    with django_capture_on_commit_callbacks(execute=True):
        answer = auth_client_for(rider).post(
            "/api/v1/trips",
            {
                "pickup": PICKUP,
                "dropoff": DROPOFF,
                "scheduled_for": (timezone.now() + timedelta(days=2)).isoformat(),
            },
            format="json",
            **idem(),
        )
    assert answer.status_code == 201, answer.content
    rows = {row.channel: row for row in _rows(rider, "reservation_confirmed")}
    push, sms = rows["web_push"], rows["sms"]
    assert (
        push.channel == "web_push" and push.status == NotificationStatus.PENDING and "500" in push.last_error
    )
    assert sms.status == NotificationStatus.SENT  # one channel failing holds no other back
    assert notifications_deliver_due(now=push.next_attempt_at + timedelta(seconds=1)) == 1
    push.refresh_from_db()
    assert push.status == NotificationStatus.SENT
    [message] = web_push_service.received
    assert message["title"] == "Your ride is booked"


def test_the_rider_hears_once_that_the_driver_is_at_the_pickup(
    web_push_service, celery_eager, django_capture_on_commit_callbacks
):
    rider = RiderFactory()
    _subscribe(rider, web_push_service)
    trip = assigned_trip(rider)
    with django_capture_on_commit_callbacks(execute=True):
        trip_arrive(driver_id=trip.driver_id, trip_id=trip.id)
    told = _rows(rider, "driver_arriving")
    assert [row.channel for row in told] == ["sms", "web_push"]
    assert all(row.status == NotificationStatus.SENT for row in told)
    [message] = web_push_service.received
    assert message["title"] == "Your driver is here"
    assert message["body"].startswith(f"Rochdale: {trip.driver.name.split(' ')[0]} is at your pickup in a ")
    # A second notify for the same arrival (a retried request) writes nothing.
    from dispatch.services.ride_notices import driver_arriving_notify

    driver_arriving_notify(trip=trip)
    assert len(_rows(rider, "driver_arriving")) == 2


def test_an_offer_to_a_driver_whose_app_has_no_live_socket_is_pushed(
    seeded, rider, fcm_service, celery_eager, django_capture_on_commit_callbacks
):
    from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip
    from tests.dispatch.test_dispatch_rounds import _sweep_round

    away, here = DriverFactory(), DriverFactory()
    for driver in (away, here):
        PushDevice.objects.create(user=driver, platform="fcm", token=f"token-of-{driver.id}-xxxxxxxx")
    driver_online_at(away, CENTRE[0] + 0.002, CENTRE[1])
    driver_online_at(here, CENTRE[0] + 0.03, CENTRE[1])
    # The app went to the background: its socket closed, the driver is still online within the grace.
    DriverPresence.objects.filter(driver_id=away.id).update(connected=False, disconnected_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        result, _ranked = _sweep_round(make_trip(rider))
    assert str(result.driver_id) == str(away.id)
    [row] = _rows(away, "offer_while_away")
    assert row.channel == "mobile_push" and row.status == NotificationStatus.SENT
    [message] = fcm_service.received
    assert message["notification"]["title"] == "A ride is offered to you"
    assert "fare 15.00 USD" in message["notification"]["body"] and message["android"]["priority"] == "HIGH"
    # Kept by FCM no longer than the offer stands.
    assert message["android"]["ttl"] == f"{row.context['timeout_s']}s"

    # A driver whose socket is live sees the offer frame; no push.
    with django_capture_on_commit_callbacks(execute=True):
        result, _ranked = _sweep_round(make_trip(RiderFactory()))
    assert str(result.driver_id) == str(here.id)
    assert _rows(here, "offer_while_away") == []


def test_the_receipt_is_pushed_once_and_its_email_follows_the_rider_s_switch(
    smtp_server, web_push_service, celery_eager, django_capture_on_commit_callbacks
):
    rider = RiderFactory(email="ada@example.org")
    _subscribe(rider, web_push_service)
    with django_capture_on_commit_callbacks(execute=True):
        done = completed_trip(rider)
    [row] = _rows(rider, "trip_receipt")
    assert row.channel == "web_push" and row.status == NotificationStatus.SENT
    [message] = web_push_service.received
    assert message["title"] == f"Your receipt: {done.fare_minor / 100:.2f} USD"
    [email] = smtp_server.messages
    assert email["To"] == "ada@example.org"

    other = RiderFactory(email="bo@example.org")
    preferences_set(user_id=other.id, categories={"money": {"email": False}})
    with django_capture_on_commit_callbacks(execute=True):
        completed_trip(other)
    # The co-op's copy still goes; the rider who switched money emails off gets none.
    assert smtp_server.envelopes[-1][1] == ["books@coop.example"]


def test_a_driver_is_reminded_of_a_document_about_to_expire(
    smtp_server, celery_eager, settings, django_capture_on_commit_callbacks
):
    from backend.compliance.services import expiry_reminders_send
    from tests.compliance.document_builders import approved, in_days

    settings.ROCHDALE_REGULATOR_PROFILE = "nyc_tlc"
    driver = DriverFactory(email="driver@example.org")
    approved(driver, "insurance", StaffFactory(), expires_on=in_days(30))
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_reminders_send() == 1
    told = _rows(driver, "document_expiring")
    assert [row.channel for row in told] == ["email", "sms"]
    [message] = smtp_server.messages
    assert message["Subject"] == "A document expires soon"
    assert f"expires on {in_days(30).isoformat()}, in 30 days" in message.get_content()


def test_the_voter_roll_hears_of_a_proposal_once_and_of_its_decision(
    make_member, celery_eager, django_capture_on_commit_callbacks
):
    from governance import services

    members = [make_member() for _ in range(3)]
    closes = timezone.now() + timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        proposal = services.proposal_create(
            user=members[0].user,
            kind="bylaw",
            title="Bylaw 4: the pay floor",
            body="...",
            payload={},
            closes_at=closes,
        )
    for member in members:
        [row] = _rows(member.user, "proposal_opened")
        assert '"Bylaw 4: the pay floor"' in row.body and f"/members/proposals/{proposal.id}/" in row.body
    with django_capture_on_commit_callbacks(execute=True):
        services.close_due_proposals(now=closes + timedelta(seconds=1))
        services.close_due_proposals(now=closes + timedelta(seconds=2))  # a rerun tells nobody again
    for member in members:
        [row] = _rows(member.user, "proposal_failed")
        assert "(0 yes, 0 no, 0 abstain)" in row.body


def test_the_voter_roll_hears_of_an_election_its_ballot_and_its_count(
    make_member, celery_eager, django_capture_on_commit_callbacks
):
    from governance import services
    from governance.models import Election
    from governance.notices import ballots_open_notify

    members = [make_member() for _ in range(2)]
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        election = services.election_create(
            user=StaffFactory(),
            title="Board 2027",
            seats=1,
            nominations_close_at=now + timedelta(hours=1),
            voting_closes_at=now + timedelta(hours=2),
        )
        services.election_nominate(election_id=election.id, user=members[0].user)
    assert all(len(_rows(member.user, "election_called")) == 1 for member in members)
    assert ballots_open_notify() == 0  # still nominating

    # Nominations close: the sweep tells the roll once, however often it runs.
    Election.objects.filter(id=election.id).update(
        opens_at=now - timedelta(days=2), nominations_close_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert ballots_open_notify() == 1
        assert ballots_open_notify() == 0
    for member in members:
        [row] = _rows(member.user, "ballot_open")
        assert row.subject == "Your ballot is open" and '"Board 2027"' in row.body
    services.election_ballot_cast(election_id=election.id, user=members[1].user, ranking=[str(members[0].id)])

    Election.objects.filter(id=election.id).update(
        nominations_close_at=now - timedelta(days=1), voting_closes_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.election_close(election_id=election.id)
    for member in members:
        [row] = _rows(member.user, "election_results")
        assert f"elected: {members[0].user.name}." in row.body
