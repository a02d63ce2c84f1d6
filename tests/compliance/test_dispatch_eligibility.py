"""Eligibility in dispatch under New York's profile: documents and hours limits stop offers at the next
round (never a trip under way), going online is refused with the problem's code, and `GET /driver/state`
shows what is missing and the hours left. Documents go through the real upload and review services, trips
through the real offer and driving services or the one status writer and settlement (tests/fares/builders.py),
with their times in the past where the story needs it."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from backend.compliance.eligibility import local_day
from backend.compliance.services import document_review, document_upload
from backend.errors import PermissionDenied
from backend.fares.models import FarePolicyVersion
from backend.fares.pay import local_zone
from tests.conftest import auth_client_for
from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip, region_lease
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import complete_trip, in_progress_trip

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NYC_KINDS = [
    "tlc_driver_license",
    "state_driver_license",
    "background_check",
    "vehicle_registration",
    "insurance",
    "inspection",
    "tlc_vehicle_license",
]


def pdf_file():
    return SimpleUploadedFile("scan.pdf", PDF_BYTES, content_type="application/pdf")


def upload(driver, kind: str, *, expires_on: date | None = None, now: datetime | None = None):
    """A document sent through the real upload service (pending review)."""
    return document_upload(
        driver=driver,
        kind=kind,
        number=f"N-{uuid.uuid4().hex[:8]}",
        issuer="",
        expires_on=expires_on or local_day(timezone.now()) + timedelta(days=365),
        file=pdf_file(),
        now=now,
    )


def approved(driver, kind: str, staff, *, expires_on: date | None = None, sent: datetime | None = None):
    document = upload(driver, kind, expires_on=expires_on, now=sent)
    return document_review(document_id=document.id, reviewer=staff, decision="approved")


def sweep_round(trip):
    """One offer round as the sweeper runs it (candidates from Redis's geo set)."""
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services.dispatching import (
        by_road,
        candidates_from_redis,
        dispatch_round,
        rank_candidates,
        trip_info,
    )

    policy = dispatch_policy_in_force()
    info = trip_info(trip_id=trip.id)
    found = by_road(candidates_from_redis(info, policy=policy), pickup=(info.lat, info.lng))
    ranked = rank_candidates(found, policy=policy, wheelchair_required=info.wav)
    return dispatch_round(trip_id=trip.id, ranked=ranked, policy=policy, lease=region_lease())


def approve_all_but(driver, staff, *, skip: tuple[str, ...] = ()):
    return [approved(driver, kind, staff) for kind in NYC_KINDS if kind not in skip]


def go_online(driver):
    from dispatch.services.presence import presence_go_online

    return presence_go_online(driver_id=driver.id)


def refusal_of(driver) -> PermissionDenied:
    with pytest.raises(PermissionDenied) as refused:
        go_online(driver)
    return refused.value


def tomorrow_morning() -> datetime:
    day = local_day(timezone.now()) + timedelta(days=1)
    return datetime.combine(day, time(0, 5), tzinfo=local_zone())


def test_with_no_profile_nothing_is_checked_and_nothing_changes(rider):
    from dispatch.services.eligibility import driver_eligibility, eligibility_checked

    driver = DriverFactory()
    assert not eligibility_checked()
    assert driver_eligibility(driver_id=driver.id, at=timezone.now(), wheelchair_accessible=True) == []
    driver_online_at(driver, CENTRE[0] + 0.002, CENTRE[1])
    result = sweep_round(make_trip(rider))
    assert result.kind == "offered" and result.driver_id == str(driver.id)


def test_an_expired_insurance_stops_offers_at_the_next_round_not_mid_trip(nyc, monkeypatch):
    from dispatch.models import Offer
    from dispatch.services import driving
    from dispatch.services.offers import offer_accept

    # The co-op's clock: late evening, then just past midnight (Redis's fix ages stay on the real clock).
    evening = datetime.combine(local_day(timezone.now()), time(23, 40), tzinfo=local_zone())
    clock = {"now": evening}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    staff = StaffFactory()
    insured, other = DriverFactory(), DriverFactory()
    approve_all_but(insured, staff, skip=("insurance",))
    approve_all_but(other, staff)
    # The insurance is valid through today (sent yesterday, approved tonight): at midnight it expires.
    today = local_day(evening)
    approved(insured, "insurance", staff, expires_on=today, sent=evening - timedelta(days=1))
    driver_online_at(insured, CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(other, CENTRE[0] + 0.01, CENTRE[1])

    first = make_trip(RiderFactory(), requested_at=evening)
    offered = sweep_round(first)
    assert offered.kind == "offered" and offered.driver_id == str(insured.id)
    offer_accept(driver_id=insured.id, offer_id=offered.offer_id)
    driving.trip_arrive(driver_id=insured.id, trip_id=first.id)
    driving.trip_start(driver_id=insured.id, trip_id=first.id)

    # Midnight passes during the ride: the insurance expires with the rider aboard.
    after_midnight = datetime.combine(today + timedelta(days=1), time(0, 5), tzinfo=local_zone())
    clock["now"] = after_midnight
    second = make_trip(RiderFactory(), requested_at=after_midnight)
    # Never mid-trip: the ride goes on and completes as any other (meanwhile the driver is busy).
    assert sweep_round(second).driver_id == str(other.id)
    done = driving.trip_complete(driver_id=insured.id, trip_id=first.id)
    assert done.status == "completed" and done.fare_minor is not None

    # At the next round the free, nearest driver is passed over with `document_expired`.
    third = make_trip(RiderFactory(), requested_at=after_midnight)
    assert sweep_round(third).kind == "waiting"
    assert not Offer.objects.filter(trip=third, driver=insured).exists()
    refusal = refusal_of(insured)
    assert refusal.code == "document_expired"
    assert refusal.details["kind"] == "insurance" and refusal.details["subject"] == "vehicle"
    assert refusal.details["expires_on"] == today.isoformat()
    assert [p["code"] for p in refusal.details["problems"]] == ["document_expired"]


def test_a_new_approved_document_restores_eligibility(nyc, rider, monkeypatch):
    staff = StaffFactory()
    driver = DriverFactory()
    approve_all_but(driver, staff, skip=("insurance",))
    today = local_day(timezone.now())
    approved(driver, "insurance", staff, expires_on=today, sent=timezone.now() - timedelta(days=1))
    driver_online_at(driver, CENTRE[0] + 0.001, CENTRE[1])
    later = tomorrow_morning()
    monkeypatch.setattr(timezone, "now", lambda: later)

    trip = make_trip(rider, requested_at=later)
    assert sweep_round(trip).kind == "waiting"
    # A renewal waiting for review does not let the driver work on it yet.
    renewal = upload(driver, "insurance", expires_on=local_day(later) + timedelta(days=365))
    assert sweep_round(trip).kind == "waiting"
    assert refusal_of(driver).code == "document_expired"
    document_review(document_id=renewal.id, reviewer=staff, decision="approved")
    result = sweep_round(trip)
    assert result.kind == "offered" and result.driver_id == str(driver.id)
    go_online(driver)


def test_a_wheelchair_accessible_trip_also_needs_the_wav_certificate(nyc, rider):
    staff = StaffFactory()
    uncertified = DriverFactory(profile__wheelchair_accessible=True)
    certified = DriverFactory(profile__wheelchair_accessible=True)
    approve_all_but(uncertified, staff)
    approve_all_but(certified, staff)
    approved(certified, "wav_certificate", staff)
    # Both may go online: the certificate is needed for wheelchair-accessible trips only.
    driver_online_at(uncertified, CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(certified, CENTRE[0] + 0.01, CENTRE[1])
    result = sweep_round(make_trip(rider, wav=True))
    assert result.kind == "offered" and result.driver_id == str(certified.id)
    ordinary = sweep_round(make_trip(RiderFactory()))
    assert ordinary.kind == "offered" and ordinary.driver_id == str(uncertified.id)


def passenger_hours(
    driver, *, trips: int, each: timedelta, first_start: datetime, every: timedelta = timedelta(0)
):
    """Completed trips with the rider aboard for `each`, in the past, through the one status writer."""
    policy = FarePolicyVersion.objects.order_by("-version").first()
    rider = RiderFactory()
    for index in range(trips):
        started = first_start + index * every
        trip = in_progress_trip(rider=rider, driver=driver, policy_version=policy, started_at=started)
        complete_trip(trip, distance_m=20_000, duration_s=int(each.total_seconds()), at=started + each)


def test_a_driver_past_ten_hours_in_twenty_four_gets_no_offer(nyc, rider):
    from dispatch.models import Offer
    from dispatch.services.hours import hours_left

    staff = StaffFactory()
    tired, rested = DriverFactory(), DriverFactory()
    approve_all_but(tired, staff)
    approve_all_but(rested, staff)
    now = timezone.now()
    # Five rides of 1 h 54 min in the last day: 9 h 30 min with passengers.
    passenger_hours(
        tired,
        trips=5,
        each=timedelta(minutes=114),
        first_start=now - timedelta(hours=23),
        every=timedelta(hours=3),
    )
    [day, week] = hours_left(driver_id=tired.id, at=now)
    assert (day.limit.code, day.usage.max_s, day.usage.left_s) == ("tlc_24h", 36_000, 1_800)
    assert week.usage.used_s <= 34_200  # the week may have begun within the day
    driver_online_at(tired, CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(rested, CENTRE[0] + 0.01, CENTRE[1])

    # A 45-minute ride still going (counted up to now) takes them past the limit; they finish it.
    policy = FarePolicyVersion.objects.order_by("-version").first()
    ride = in_progress_trip(
        rider=rider, driver=tired, policy_version=policy, started_at=now - timedelta(minutes=45)
    )
    during = sweep_round(make_trip(RiderFactory()))
    assert during.driver_id == str(rested.id)  # busy anyway
    complete_trip(ride, distance_m=15_000, duration_s=2_700)

    result = sweep_round(make_trip(RiderFactory()))
    assert result.kind == "waiting" and not Offer.objects.filter(driver=tired).exists()
    refusal = refusal_of(tired)
    assert refusal.code == "hours_limit_reached" and refusal.details["limit"] == "tlc_24h"
    assert refusal.details["max_s"] == 36_000 and refusal.details["used_s"] >= 36_000 + 15 * 60
    # Time is left again once the excess (15 min and the seconds since) has slid out of the oldest ride.
    available = datetime.fromisoformat(refusal.details["available_at"])
    oldest_start = now - timedelta(hours=23)
    assert oldest_start + timedelta(hours=24, minutes=15) < available
    assert available < oldest_start + timedelta(hours=24, minutes=17)


def test_going_online_while_on_a_trip_is_allowed_past_the_limit(nyc, rider):
    staff = StaffFactory()
    driver = DriverFactory()
    approve_all_but(driver, staff)
    policy = FarePolicyVersion.objects.order_by("-version").first()
    in_progress_trip(
        rider=rider, driver=driver, policy_version=policy, started_at=timezone.now() - timedelta(hours=11)
    )
    # Coming back online after a dropped connection, with the rider aboard: they finish the ride.
    assert go_online(driver).status == "online"


def test_going_online_is_refused_with_the_first_problems_code(nyc):
    staff = StaffFactory()
    driver = DriverFactory()
    missing = refusal_of(driver)
    assert missing.code == "document_missing" and missing.details["kind"] == "tlc_driver_license"
    assert [p["details"]["kind"] for p in missing.details["problems"]] == NYC_KINDS
    pending = upload(driver, "tlc_driver_license")
    approve_all_but(driver, staff, skip=("tlc_driver_license",))
    waiting = refusal_of(driver)
    assert waiting.code == "document_pending" and waiting.details["kind"] == "tlc_driver_license"
    assert len(waiting.details["problems"]) == 1
    document_review(document_id=pending.id, reviewer=staff, decision="approved")
    assert go_online(driver).status == "online"


def test_driver_state_shows_what_is_missing_and_the_hours_left(nyc):
    staff = StaffFactory()
    driver = DriverFactory()
    client = auth_client_for(driver)
    state = client.get("/api/v1/driver/state").json()
    eligibility = state["eligibility"]
    assert eligibility["eligible"] is False
    assert [(p["code"], p["details"]["kind"]) for p in eligibility["problems"]] == [
        ("document_missing", kind) for kind in NYC_KINDS
    ]
    assert eligibility["wheelchair_accessible_problems"] is None
    assert [(h["limit"], h["used_s"], h["max_s"], h["left_s"]) for h in eligibility["hours"]] == [
        ("tlc_24h", 0, 36_000, 36_000),
        ("tlc_week", 0, 216_000, 216_000),
    ]

    approve_all_but(driver, staff, skip=("inspection",))
    now = timezone.now()
    passenger_hours(driver, trips=1, each=timedelta(hours=1), first_start=now - timedelta(hours=2))
    eligibility = client.get("/api/v1/driver/state").json()["eligibility"]
    assert [(p["code"], p["details"]["kind"]) for p in eligibility["problems"]] == [
        ("document_missing", "inspection")
    ]
    day = eligibility["hours"][0]
    assert (day["used_s"], day["left_s"], day["available_at"]) == (3_600, 32_400, None)
    assert day["label"] == "10 hours with passengers in any 24 hours" and day["counts"] == "passenger"


def test_driver_state_lists_what_only_wheelchair_accessible_trips_need(nyc):
    staff = StaffFactory()
    driver = DriverFactory(profile__wheelchair_accessible=True)
    approve_all_but(driver, staff)
    eligibility = auth_client_for(driver).get("/api/v1/driver/state").json()["eligibility"]
    assert eligibility["eligible"] is True and eligibility["problems"] == []
    assert [(p["code"], p["details"]["kind"]) for p in eligibility["wheelchair_accessible_problems"]] == [
        ("document_missing", "wav_certificate")
    ]


def test_engaged_time_counts_from_acceptance_under_a_profile_that_says_so(settings, tmp_path, rider):
    from dispatch.services.hours import hours_problems

    profile = tmp_path / "engaged.json"
    profile.write_text(
        '{"code": "engaged_city", "name": "A city counting engaged time", '
        '"hours_limits": [{"code": "shift", "label": "2 hours engaged in 12", "window_hours": 12, '
        '"max_hours": "2", "counts": "engaged"}]}'
    )
    settings.ROCHDALE_REGULATOR_PROFILE = str(profile)
    driver = DriverFactory()
    policy = FarePolicyVersion.objects.order_by("-version").first()
    now = timezone.now()
    # Accepted 2 h 10 min ago, the rider aboard for the last hour and still riding.
    in_progress_trip(
        rider=rider,
        driver=driver,
        policy_version=policy,
        assigned_at=now - timedelta(minutes=130),
        started_at=now - timedelta(hours=1),
    )
    [problem] = hours_problems(driver_id=driver.id, at=now)
    assert problem.code == "hours_limit_reached" and problem.details["limit"] == "shift"
    assert problem.details["used_s"] == 130 * 60 and problem.details["max_s"] == 7_200


def test_the_hours_query_reads_the_drivers_trips_through_an_index(nyc):
    from dispatch.services.hours import trips_counted

    driver = DriverFactory()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = trips_counted(driver_id=driver.id, at=now, since=now - timedelta(days=7)).explain()
    assert "Seq Scan" not in plan, plan
    assert "trip_driver_recent" in plan, plan
