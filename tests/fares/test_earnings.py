"""A driver's earnings add up to the cent, against the ledger and the trips, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.fares import ledger
from backend.fares.models import AccountKind
from backend.fares.pay import local_zone
from backend.fares.pricing import driver_pay
from backend.fares.selectors import policy_of
from dispatch.models import PresenceSession
from dispatch.money.weekly import week_start_of, weekly_top_ups_post
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import (
    adopt_policy,
    cancel_by_rider,
    complete_trip,
    in_progress_trip,
    tip_trip,
)

# (distance_m, duration_s): a minimum-fare hop, an ordinary ride, and a slow crawl where the floor binds.
RIDES = [(1609, 240), (12070, 1800), (3000, 3600)]


def _money(amount: int) -> dict:
    return {"amount": amount, "currency": "USD"}


@pytest.fixture
def week():
    monday = week_start_of(timezone.now()) - timedelta(days=14)
    return monday, monday + timedelta(days=6)


def _at(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=local_zone())


@pytest.fixture
def driver_week(seeded_policy, week):
    """Three rides (one floored), two tips, one late rider cancellation, and online sessions."""
    monday, sunday = week
    version = adopt_policy("trip")
    driver, rider = DriverFactory(), RiderFactory()
    trips = []
    for index, (distance_m, duration_s) in enumerate(RIDES):
        at = _at(monday + timedelta(days=index), 10)
        trip = in_progress_trip(
            rider=rider,
            driver=driver,
            policy_version=version,
            estimated_distance_m=distance_m,
            estimated_duration_s=duration_s,
            started_at=at - timedelta(seconds=duration_s),
        )
        trips.append(complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=at))
    tip_trip(trips[0], 150)
    tip_trip(trips[1], 425)
    late = in_progress_trip(
        rider=rider, driver=driver, policy_version=version, status="assigned", started_at=_at(sunday, 9)
    )
    cancelled = cancel_by_rider(late, at=_at(sunday, 9))
    # A trip outside the range counts nowhere.
    outside = in_progress_trip(rider=rider, driver=driver, policy_version=version)
    complete_trip(outside, distance_m=5000, duration_s=600, at=_at(sunday + timedelta(days=1), 10))
    PresenceSession.objects.create(driver=driver, started_at=_at(monday, 8), ended_at=_at(monday, 12))
    PresenceSession.objects.create(  # straddles the start of the range: only its last hour counts
        driver=driver, started_at=_at(monday, 0) - timedelta(hours=1), ended_at=_at(monday, 1)
    )
    return driver, trips, cancelled, version


def test_earnings_add_up_to_the_cent(driver_week, week):
    driver, trips, cancelled, version = driver_week
    monday, sunday = week
    policy = policy_of(version)
    response = auth_client_for(driver).get(f"/api/v1/driver/earnings?from={monday}&to={sunday}")
    assert response.status_code == 200
    body = response.json()

    shares = [
        driver_pay(
            policy,
            fare_minor=t.fare_minor,
            distance_m=t.measured_distance_m,
            duration_s=t.measured_duration_s,
            wheelchair_accessible=False,
        ).share
        for t in trips
    ]
    fee, fee_to_driver = cancelled.cancellation_fee_minor, 425
    assert fee == 500
    gross = sum(t.fare_minor for t in trips) + fee
    commission = sum(t.fare_minor for t in trips) - sum(shares) + (fee - fee_to_driver)
    top_up = sum(t.driver_pay_minor for t in trips) - sum(shares)
    pay = sum(t.driver_pay_minor for t in trips) + fee_to_driver

    assert body["trips"] == 3
    assert body["gross_fares"] == _money(gross)
    assert body["commission"] == _money(commission)
    assert body["minimum_top_up"] == _money(top_up)
    assert top_up > 0  # the crawl was floored
    assert body["tips"] == _money(575)
    assert body["pay"] == _money(pay)
    assert body["total"] == _money(pay + 575)
    assert pay == gross - commission + top_up
    # The same money as the ledger holds for this driver (the trip outside the range aside).
    outside_pay = (
        ledger.balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=driver.id, currency="USD") - pay
    )
    assert outside_pay > 0
    assert ledger.balance_minor(kind=AccountKind.TIPS_HELD, owner_id=driver.id, currency="USD") == 575

    lines = body["lines"]
    assert [line["trip_id"] for line in lines] == [str(t.id) for t in trips] + [str(cancelled.id)]
    hop = lines[0]
    assert (hop["fare"], hop["commission"], hop["pay"], hop["tip"]) == (
        _money(800),
        _money(120),
        _money(680),
        _money(150),
    )
    assert hop["floor_applied"] is False and hop["kind"] == "trip"
    assert lines[2]["floor_applied"] is True
    assert lines[3]["kind"] == "cancellation" and lines[3]["pay"] == _money(fee_to_driver)
    for field in ("fare", "commission", "floor_top_up", "pay", "tip"):
        total_field = {"fare": "gross_fares", "floor_top_up": "minimum_top_up", "tip": "tips"}.get(
            field, field
        )
        assert sum(line[field]["amount"] for line in lines) == body[total_field]["amount"], field

    durations = sum(duration for _, duration in RIDES)
    assert body["engaged_seconds"] == durations + 3 * 360  # assigned six minutes before each start
    assert body["online_seconds"] == 5 * 3600
    per_engaged = (Decimal(pay + 575) * 3600 / body["engaged_seconds"]).quantize(Decimal(1), "ROUND_HALF_UP")
    assert body["hourly"]["per_engaged_hour"] == _money(int(per_engaged))
    assert body["hourly"]["per_online_hour"] == _money(round((pay + 575) / 5))


def test_earnings_csv_matches_the_json(driver_week, week):
    driver, _, _, _ = driver_week
    monday, sunday = week
    client = auth_client_for(driver)
    body = client.get(f"/api/v1/driver/earnings?from={monday}&to={sunday}").json()
    for path in (
        f"/api/v1/driver/earnings?from={monday}&to={sunday}&format=csv",
        f"/api/v1/driver/earnings.csv?from={monday}&to={sunday}",
    ):
        response = client.get(path)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        *lines, total = rows
        assert [row["trip_id"] for row in lines] == [line["trip_id"] for line in body["lines"]]
        assert total["kind"] == "total"
        for column, field in [
            ("fare", "gross_fares"),
            ("commission", "commission"),
            ("floor_top_up", "minimum_top_up"),
            ("pay", "pay"),
            ("tip", "tips"),
        ]:
            assert sum(Decimal(row[column]) for row in lines) == Decimal(total[column])
            assert Decimal(total[column]) == Decimal(body[field]["amount"]) / 100, column
        assert lines[0]["fare"] == "8.00" and lines[0]["commission"] == "1.20"


def test_weekly_top_ups_appear_in_earnings(seeded_policy, week):
    monday, sunday = week
    version = adopt_policy("week", per_trip="9.00")
    driver = DriverFactory()
    trip = in_progress_trip(
        rider=RiderFactory(),
        driver=driver,
        policy_version=version,
        estimated_distance_m=1609,
        estimated_duration_s=240,
    )
    complete_trip(trip, distance_m=1609, duration_s=240, at=_at(monday + timedelta(days=3), 15))
    weekly_top_ups_post()
    client = auth_client_for(driver)
    body = client.get(f"/api/v1/driver/earnings?from={monday}&to={sunday}").json()
    assert body["weekly_top_ups"] == [
        {
            "week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
            "week_start": str(monday),
            "amount": _money(220),
        }
    ]
    assert (body["pay"], body["minimum_top_up"], body["gross_fares"], body["commission"]) == (
        _money(900),
        _money(220),
        _money(800),
        _money(120),
    )
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/api/v1/driver/earnings.csv?from={monday}&to={sunday}").content.decode())
        )
    )
    assert [row["kind"] for row in rows] == ["trip", "weekly_top_up", "total"]
    assert rows[-1]["pay"] == "9.00"
    # A range that ends before the week's Sunday does not include its top-up.
    body = client.get(f"/api/v1/driver/earnings?from={monday}&to={sunday - timedelta(days=1)}").json()
    assert body["weekly_top_ups"] == [] and body["pay"] == _money(680)


def test_earnings_default_to_this_week(seeded_policy):
    driver = DriverFactory()
    body = auth_client_for(driver).get("/api/v1/driver/earnings").json()
    monday = week_start_of(timezone.now())
    assert (body["from"], body["to"]) == (str(monday), str(monday + timedelta(days=6)))
    assert body["trips"] == 0 and body["pay"] == _money(0) and body["lines"] == []
    assert body["hourly"] == {"per_engaged_hour": None, "per_online_hour": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-13-01", "from"),
        ("from=yesterday", "from"),
        ("to=2026-1-5", "to"),
        ("from=2026-03-10&to=2026-03-01", "to"),
        ("from=2025-01-01&to=2026-01-02", "to"),
    ],
)
def test_earnings_ranges_are_validated(seeded_policy, query, field):
    response = auth_client_for(DriverFactory()).get(f"/api/v1/driver/earnings?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and field in error["details"]
    csv_response = auth_client_for(DriverFactory()).get(f"/api/v1/driver/earnings?{query}&format=csv")
    assert csv_response.status_code == 400 and csv_response.json()["error"]["code"] == "invalid_input"


def test_earnings_are_for_drivers_only(seeded_policy, api_client):
    response = auth_client_for(RiderFactory()).get("/api/v1/driver/earnings")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert api_client.get("/api/v1/driver/earnings.csv").status_code == 401


def test_a_year_is_allowed(seeded_policy):
    response = auth_client_for(DriverFactory()).get("/api/v1/driver/earnings?from=2025-01-01&to=2026-01-01")
    assert response.status_code == 200


def test_openapi_documents_the_fares_routes(seeded_policy):
    schema = auth_client_for(RiderFactory()).get("/api/v1/schema?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/fare-policy",
        "/api/v1/fare-policy/history",
        "/api/v1/driver/earnings",
        "/api/v1/driver/earnings.csv",
        "/api/v1/staff/payments/failed",
    ):
        assert path in paths, path
