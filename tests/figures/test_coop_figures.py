"""The co-op's public figures for a month worked by hand: trips completed and settled through the real
services (status writer and settlement, so the ledger holds the money), offers, presence sessions and a late
cancellation, with trips, offers and online time on both sides of the month's edges. Every figure is
computed by hand below; the endpoint must answer exactly that, anonymously, cacheably and throttled."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point

from backend.fares.services import policy_version_create
from dispatch.figures import SUPPRESSIBLE, coop_figures, current_month, figures_months, last_complete_month
from dispatch.models import Offer, OfferStatus, PresenceSession, Trip
from dispatch.services.transitions import trip_transition
from dispatch.state import TripStatus
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import cancel_by_rider, complete_trip, ensure_seed_policy, in_progress_trip

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
URL = "/api/v1/coop/figures"

# Fares a hand can work: $2.00 + $1.00 a km, nothing a minute; the driver's share is 80%; the floor $6.00 a
# trip. So a 1 km trip (S) fares $3.00: share $2.40, floor $6.00, pay $6.00 (the floor added $3.60, $3.00
# of it beyond the fare), commission $0. A 5 km trip (M) fares $7.00: share $5.60, pay $6.00 (the floor
# added $0.40), commission $1.00. A 10 km trip (L) fares $12.00: share $9.60, over the floor, commission
# $2.40. A late cancellation costs the rider $5.00: $4.00 to the driver, $1.00 to the co-op.
SIMPLE_POLICY = {
    "currency": "USD",
    "distance_unit": "km",
    "rider": {
        "base": "2.00",
        "per_distance": "1.00",
        "per_minute": "0.00",
        "booking_fee": "0.00",
        "minimum_fare": "0.00",
        "surge_cap": "1.00",
        "cancellation_fee": "5.00",
        "free_cancellation_s": 120,
    },
    "commission_rate": "0.20",
    "driver_minimum": {
        "per_distance": "0.00",
        "per_minute": "0.00",
        "per_trip": "6.00",
        "wav_per_distance": "0.00",
        "period": "trip",
    },
}
KM = {"S": 1_000, "M": 5_000, "L": 10_000}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


@pytest.fixture
def policy(settings):
    settings.TIME_ZONE = "America/New_York"
    settings.ROCHDALE_FIGURES_MIN_DRIVERS = 5
    ensure_seed_policy()
    return policy_version_create(document=SIMPLE_POLICY, effective_at=None, source="founding")


def drive(policy, driver, size: str, *, started_at: datetime, wav_timing: tuple[int, int] | None = None):
    """A trip of `size` completed 10 minutes after pickup and settled; with `wav_timing` (seconds from the
    request to the assignment and to the driver's arrival) a wheelchair-accessible one timed so. Every trip
    the driver completes was offered to them and accepted, 10 seconds before the assignment."""
    trip = in_progress_trip(
        rider=RiderFactory(),
        driver=driver,
        policy_version=policy,
        wav=wav_timing is not None,
        estimated_distance_m=KM[size],
        estimated_duration_s=600,
        started_at=started_at,
    )
    if wav_timing is not None:
        to_assigned, to_arrived = wav_timing
        requested_at = started_at - timedelta(seconds=to_arrived + 60)
        Trip.objects.filter(id=trip.id).update(
            requested_at=requested_at,
            assigned_at=requested_at + timedelta(seconds=to_assigned),
            arrived_at=requested_at + timedelta(seconds=to_arrived),
        )
        trip.refresh_from_db()
    done = complete_trip(trip, distance_m=KM[size], duration_s=600, at=started_at + timedelta(minutes=10))
    offer(done, driver, at=done.assigned_at - timedelta(seconds=10), status=OfferStatus.ACCEPTED)
    return done


def offer(trip: Trip, driver, *, at: datetime, status: str = OfferStatus.EXPIRED) -> Offer:
    return Offer.objects.create(
        trip=trip,
        driver=driver,
        status=status,
        created_at=at,
        expires_at=at + timedelta(seconds=15),
        responded_at=at + timedelta(seconds=5),
        pickup_distance_m=800,
        pickup_eta_s=180,
        rank=1,
        candidates_considered=3,
    )


def online(driver, start: datetime, end: datetime) -> None:
    PresenceSession.objects.create(driver=driver, started_at=start, ended_at=end)


def build_october(policy) -> dict[str, object]:
    """October 2026, in New York. Returns the drivers by letter."""
    a, b, c, d, e, f, g = (DriverFactory() for _ in range(7))

    # Online time in October (hours): A 2 (from 30 September) + 98 = 100; B 100; C 80; D 120; E 60;
    # F 200; G 10 (until midnight on the 31st of a session that runs into November).
    online(a, local(2026, 9, 30, 22), local(2026, 10, 1, 2))
    online(a, local(2026, 10, 5, 8), local(2026, 10, 9, 10))
    online(b, local(2026, 10, 12), local(2026, 10, 16, 4))
    online(c, local(2026, 10, 2), local(2026, 10, 5, 8))
    online(d, local(2026, 10, 20), local(2026, 10, 25))
    online(e, local(2026, 10, 27), local(2026, 10, 29, 12))
    online(f, local(2026, 10, 1), local(2026, 10, 9, 8))
    online(g, local(2026, 10, 31, 14), local(2026, 11, 1, 6))

    # The month's trips: A L L M (pay 960 + 960 + 600 = 2520), B L (960), C M M (1200), D L L L (2880),
    # E S (600), F L L (1920). Five are wheelchair-accessible, one each for A to E.
    trips = {
        "a1": drive(policy, a, "L", started_at=local(2026, 10, 6, 9), wav_timing=(60, 300)),
        "a2": drive(policy, a, "L", started_at=local(2026, 10, 7, 9)),
        "a3": drive(policy, a, "M", started_at=local(2026, 10, 8, 9)),
        "b1": drive(policy, b, "L", started_at=local(2026, 10, 13, 9), wav_timing=(120, 420)),
        "c1": drive(policy, c, "M", started_at=local(2026, 10, 3, 9), wav_timing=(180, 480)),
        "c2": drive(policy, c, "M", started_at=local(2026, 10, 4, 9)),
        "d1": drive(policy, d, "L", started_at=local(2026, 10, 21, 9), wav_timing=(240, 600)),
        "d2": drive(policy, d, "L", started_at=local(2026, 10, 22, 9)),
        "d3": drive(policy, d, "L", started_at=local(2026, 10, 23, 9)),
        "e1": drive(policy, e, "S", started_at=local(2026, 10, 28, 9), wav_timing=(600, 900)),
        "f1": drive(policy, f, "L", started_at=local(2026, 10, 2, 9)),
        "f2": drive(policy, f, "L", started_at=local(2026, 10, 3, 12)),
    }
    # Offers the drivers did not take, on others' trips: A 1 (so 4 in all), B 3 (4), D 1 (4), F 4 (6).
    october_15 = local(2026, 10, 15, 12)
    offer(trips["b1"], a, at=october_15, status=OfferStatus.DECLINED)
    for key in ("a1", "a2", "a3"):
        offer(trips[key], b, at=october_15)
    offer(trips["e1"], d, at=october_15, status=OfferStatus.DECLINED)
    for key in ("c1", "c2", "d1", "d2"):
        offer(trips[key], f, at=october_15)

    # A late cancellation by F's rider: $1.00 to the co-op, $4.00 to F (outside the band, so no Gini change).
    assigned = in_progress_trip(
        rider=RiderFactory(),
        driver=f,
        policy_version=policy,
        started_at=local(2026, 10, 5, 9),
        assigned_at=local(2026, 10, 5, 8, 50),
        status="assigned",
    )
    cancel_by_rider(assigned, at=local(2026, 10, 5, 8, 55))

    # A WAV request nobody took, made in October.
    unfulfilled = Trip.objects.create(
        rider=RiderFactory(),
        pickup=Point(-73.98, 40.75, srid=4326),
        dropoff=Point(-73.95, 40.77, srid=4326),
        wheelchair_accessible=True,
        policy_version=policy,
        currency="USD",
        fare_estimate_minor=700,
        estimated_distance_m=5000,
        estimated_duration_s=600,
        requested_at=local(2026, 10, 20, 9),
    )
    trip_transition(trip_id=unfulfilled.id, to=TripStatus.UNFULFILLED, actor_id=None)

    # Just outside the month: a WAV trip F completed at 23:50 on 30 September (offered to G that evening),
    # and one F completed at 00:05 on 1 November (offered to E just after midnight).
    september = drive(policy, f, "L", started_at=local(2026, 9, 30, 23, 40), wav_timing=(60, 120))
    Offer.objects.filter(trip=september).delete()
    offer(september, g, at=local(2026, 9, 30, 23, 30))
    november = drive(policy, f, "L", started_at=local(2026, 10, 31, 23, 55))
    Offer.objects.filter(trip=november).delete()
    offer(november, e, at=local(2026, 11, 1, 0, 1), status=OfferStatus.DECLINED)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g}


OCTOBER = {
    "month": "2026-10",
    "from": "2026-10-01",
    "to": "2026-10-31",
    "time_zone": "America/New_York",
    "complete": True,
    "min_drivers": 5,
    "trips_completed": 12,
    "drivers_who_drove": 6,
    # 8 L x 240 + 3 M x 100 + 1 S x 0 + the cancellation's 100.
    "commission_kept": {"amount": 2320, "currency": "USD"},
    # What the floor added: 3 M x 40 + 1 S x 360.
    "floor_top_ups_paid": {"amount": 480, "currency": "USD"},
    # The 8 L trips of 12 paid over their floor (M and S trips were paid the floor itself).
    "trips_over_floor_share": 0.667,
    "hourly_earnings_gini": {
        # Online 10, 60, 80, 100, 100, 120, 200 hours: the median 100, the band 50 to 150 (A to E).
        # Cents an hour: A 2520/100 = 25.2, B 9.6, C 1200/80 = 15, D 2880/120 = 24, E 600/60 = 10.
        # Sorted 9.6, 10, 15, 24, 25.2, mean 16.76; the pairs' differences add up to 90.4:
        # G = 2 x 90.4 / (2 x 5^2 x 16.76) = 90.4 / 419 = 0.2157...
        "gini": 0.216,
        "band_hours": {"from": 50.0, "to": 150.0},
        "drivers_online": 7,
        "drivers_included": 5,
    },
    "offer_share_by_decile": {
        # Offers: F 6, A 4, B 4, D 4, C 2, E 1, G 0 (21). Seven drivers over ten tenths, on a scale of 70:
        # 4.2, 3.4, 2.8, 2.8, 2.8, 2.4, 1.4, 0.8, 0.4, 0 offers, over 21.
        "shares": [0.2, 0.162, 0.133, 0.133, 0.133, 0.114, 0.067, 0.038, 0.019, 0.0],
        "drivers": 7,
        "offers": 21,
    },
    "wav_response_times": {
        # Six WAV requests (the unfulfilled one too), five timed, by five drivers.
        "requests": 6,
        "drivers": 5,
        # 60, 120, 180, 240, 600 s: the median the third; p90 at rank 3.6: 240 + 0.6 x 360 = 456.
        "request_to_assignment_s": {"count": 5, "median": 180.0, "p90": 456.0},
        # 300, 420, 480, 600, 900 s: 480; 600 + 0.6 x 300 = 780.
        "request_to_pickup_s": {"count": 5, "median": 480.0, "p90": 780.0},
    },
    "suppressed": [],
}


def test_a_month_worked_by_hand(policy, api_client):
    build_october(policy)
    assert coop_figures(month=local(2026, 10, 17).date()) == OCTOBER

    response = api_client.get(URL, {"month": "2026-10"})
    assert response.status_code == 200
    assert response.json() == OCTOBER
    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=3600"}
    # The months with trips requested in them, newest first (the trip completed on 1 November was requested
    # on 31 October).
    assert figures_months() == [local(2026, 10, 1).date(), local(2026, 9, 1).date()]


def test_a_month_of_too_few_drivers_shows_its_counts_and_withholds_the_rest(policy, api_client, settings):
    # Three drivers: each drives and is online; one of them takes a WAV trip.
    drivers = [DriverFactory() for _ in range(3)]
    for day, driver in enumerate(drivers, start=2):
        online(driver, local(2026, 8, day), local(2026, 8, day, 10))
        drive(
            policy, driver, "L", started_at=local(2026, 8, day, 9), wav_timing=(60, 300) if day == 2 else None
        )

    body = api_client.get(URL, {"month": "2026-08"}).json()
    assert (body["trips_completed"], body["drivers_who_drove"]) == (3, 3)
    assert body["commission_kept"] is None and body["floor_top_ups_paid"] is None
    assert body["trips_over_floor_share"] is None
    assert body["hourly_earnings_gini"] == {
        "gini": None,
        "band_hours": None,
        "drivers_online": 3,
        "drivers_included": 3,
    }
    assert body["offer_share_by_decile"] == {"shares": None, "drivers": 3, "offers": 3}
    assert body["wav_response_times"] == {
        "requests": 1,
        "drivers": 1,
        "request_to_assignment_s": {"count": 1, "median": None, "p90": None},
        "request_to_pickup_s": {"count": 1, "median": None, "p90": None},
    }
    assert (
        body["suppressed"]
        == list(SUPPRESSIBLE)
        == [
            "commission_kept",
            "floor_top_ups_paid",
            "trips_over_floor_share",
            "hourly_earnings_gini",
            "offer_share_by_decile",
            "wav_response_times",
        ]
    )

    # With a minimum of three, the same month shows everything the three drivers' work makes.
    settings.ROCHDALE_FIGURES_MIN_DRIVERS = 3
    shown = api_client.get(URL, {"month": "2026-08"}).json()
    assert shown["commission_kept"] == {"amount": 720, "currency": "USD"}
    assert shown["hourly_earnings_gini"]["gini"] == 0.0  # 960 cents in 10 hours each
    assert shown["suppressed"] == ["wav_response_times"]


def test_a_month_with_nothing_in_it_answers_zeros(policy, api_client):
    body = api_client.get(URL, {"month": "2019-02"}).json()
    assert body["month"] == "2019-02" and body["to"] == "2019-02-28"
    assert (body["trips_completed"], body["drivers_who_drove"]) == (0, 0)
    assert body["hourly_earnings_gini"]["drivers_online"] == 0
    assert body["offer_share_by_decile"] == {"shares": None, "drivers": 0, "offers": 0}
    assert body["suppressed"] == list(SUPPRESSIBLE)
    assert figures_months() == []


def test_the_default_is_the_last_complete_month_and_the_current_one_is_marked_incomplete(policy, api_client):
    default = api_client.get(URL)
    assert default.status_code == 200
    assert default.json()["month"] == last_complete_month().strftime("%Y-%m")
    assert default.json()["complete"] is True

    running = api_client.get(URL, {"month": current_month().strftime("%Y-%m")})
    assert running.status_code == 200 and running.json()["complete"] is False
    assert set(running["Cache-Control"].split(", ")) == {"public", "max-age=300"}


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-00", "26-10", "2026/10", "october", "1999-12", "2026-10-01"]
)
def test_a_bad_month_is_refused_with_the_field_named(policy, api_client, month):
    response = api_client.get(URL, {"month": month})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "month" in error["details"]


def test_a_month_not_begun_is_refused(policy, api_client):
    after = current_month() + timedelta(days=32)
    response = api_client.get(URL, {"month": after.strftime("%Y-%m")})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["month"] == [
        "There are no figures yet for a month that has not begun."
    ]
    assert api_client.get(URL, {"month": "2999-01"}).status_code == 400


def test_the_figures_need_no_sign_in_ignore_a_bad_token_and_are_throttled_per_address(
    policy, api_client, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "coop_figures": "3/min",
        },
    }
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    answers = [api_client.get(URL, {"month": "2026-10"}, REMOTE_ADDR="198.51.100.7") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited"
    assert int(answers[3]["Retry-After"]) >= 1
    # Another address has its own allowance.
    assert api_client.get(URL, {"month": "2026-10"}, REMOTE_ADDR="198.51.100.8").status_code == 200


def test_the_figures_are_answered_unthrottled_while_redis_is_unreachable(policy, api_client, settings):
    from mobile_api.views_coop import CoopFiguresRateThrottle

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "coop_figures": "1/min",
        },
    }
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused
    try:
        answers = [api_client.get(URL, {"month": "2026-10"}) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert CoopFiguresRateThrottle.redis_outage.down
    finally:
        # The outage is remembered per process; Redis is back for the next test (settings restores the URL).
        CoopFiguresRateThrottle.redis_outage.recovered()
