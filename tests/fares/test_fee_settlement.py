"""A New York trip settled through the real completion path: the congestion surcharge, the Black Car Fund
and sales tax each posted to its own pass-through account, the driver's pay and the commission exactly as
without them, the capture collecting fare + fees, and `ledger_verify` balancing. The numbers are the hand
vector of docs/fares.md ("A New York fare, by hand")."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from django.contrib.gis.geos import LineString, MultiPolygon, Point, Polygon
from django.core.management import call_command
from django.utils import timezone

from backend.fares.ledger import balance_minor
from backend.fares.models import AccountKind, JournalEntry, PaymentCapture
from backend.fares.services import policy_version_create
from dispatch.models import ServiceArea, Trip
from dispatch.money.earnings import driver_earnings
from dispatch.money.fees import trip_quoted_charge
from dispatch.money.settlement import trip_completion_settle
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import (
    CENTRE,
    adopt_policy,
    assert_ledger_consistent,
    complete_trip,
    ensure_seed_policy,
    in_progress_trip,
)
from tests.mobile_api.builders import DROPOFF, PICKUP

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fare-policy-new-york.json"
ZONE = "Manhattan south of 96th St"
# 12,070 whole metres and 30 minutes: the reference trip's 7.5 miles to within 8 cm, the same cents.
DISTANCE_M, DURATION_S = 12_070, 1800


def square(lat: float, lng: float, half_deg: float) -> MultiPolygon:
    ring = [
        (lng - half_deg, lat - half_deg),
        (lng + half_deg, lat - half_deg),
        (lng + half_deg, lat + half_deg),
        (lng - half_deg, lat + half_deg),
        (lng - half_deg, lat - half_deg),
    ]
    return MultiPolygon(Polygon(ring, srid=4326), srid=4326)


@pytest.fixture
def new_york_version():
    ensure_seed_policy()
    return policy_version_create(
        document=json.loads(EXAMPLE.read_text()), effective_at=None, source="founding"
    )


@pytest.fixture
def congestion_zone():
    """A stand-in for the zone: a small square halfway between the builders' pickup and dropoff, which both
    lie outside it, so only the planned route touches it. Inactive: it prices, it does not serve."""
    lat, lng = CENTRE
    return ServiceArea.objects.create(name=ZONE, area=square(lat + 0.01, lng + 0.015, 0.002), is_active=False)


def new_york_trip(policy_version, *, through_zone: bool = True) -> Trip:
    trip = in_progress_trip(
        rider=RiderFactory(),
        driver=DriverFactory(),
        policy_version=policy_version,
        estimated_distance_m=DISTANCE_M,
        estimated_duration_s=DURATION_S,
    )
    pickup, dropoff = trip.pickup, trip.dropoff
    if through_zone:
        route = LineString([pickup.coords, dropoff.coords], srid=4326)
    else:  # north first, then east, then south: around the square
        corner_a = (pickup.x, dropoff.y + 0.01)
        corner_b = (dropoff.x, dropoff.y + 0.01)
        route = LineString([pickup.coords, corner_a, corner_b, dropoff.coords], srid=4326)
    Trip.objects.filter(id=trip.id).update(route_geometry=route)
    trip.refresh_from_db()
    return trip


def postings_of(entry: JournalEntry) -> set[tuple[str, str, object, int, int]]:
    return {
        (p.account.kind, p.account.code, p.account.owner_id, p.debit_minor, p.credit_minor)
        for p in entry.postings.select_related("account")
    }


def test_a_new_york_fare_posts_each_fee_to_its_own_account_and_leaves_pay_alone(
    new_york_version, congestion_zone, capsys
):
    trip = new_york_trip(new_york_version)
    assert trip_quoted_charge(trip).total == 4563  # what the hold at request is computed from
    done = complete_trip(trip, distance_m=DISTANCE_M, duration_s=DURATION_S)

    assert (done.fare_minor, done.driver_pay_minor, done.commission_minor) == (3850, 3273, 577)
    breakdown = done.fare_breakdown
    assert breakdown["lines"] == [
        {"label": "Base fare", "amount": 250},
        {"label": "Distance", "amount": 1320},
        {"label": "Time", "amount": 2280},
    ]
    fees = [
        {"code": "nys_congestion", "label": "NYS congestion surcharge", "amount": 275},
        {"code": "black_car_fund", "label": "NY Black Car Fund", "amount": 96},
        {"code": "sales_tax", "label": "NY sales tax", "amount": 342},
    ]
    assert breakdown["fees"] == fees
    assert breakdown["total"] == 4563
    assert (breakdown["share"], breakdown["floor"], breakdown["floor_top_up"]) == (3273, 3046, 0)

    entry = JournalEntry.objects.get(key=f"trip:{trip.id}:fare")
    assert entry.kind == "trip_fare"
    assert postings_of(entry) == {
        ("rider_receivable", "", trip.rider_id, 4563, 0),
        ("driver_payable", "", trip.driver_id, 0, 3273),
        ("coop_revenue", "", None, 0, 577),
        ("pass_through", "nys_congestion", None, 0, 275),
        ("pass_through", "black_car_fund", None, 0, 96),
        ("pass_through", "sales_tax", None, 0, 342),
    }
    assert entry.metadata["fees"] == fees
    assert (entry.metadata["fare"], entry.metadata["pay"], entry.metadata["total"]) == (3850, 3273, 4563)

    capture = PaymentCapture.objects.get(key=f"capture:{trip.id}")
    assert capture.amount_minor == 4563  # the fare capture collects fare + fees

    # Settling again (a retried completion) posts nothing more.
    trip_completion_settle(trip=done)
    assert JournalEntry.objects.filter(trip_id=trip.id, kind="trip_fare").count() == 1
    assert PaymentCapture.objects.filter(trip_id=trip.id).count() == 1

    assert_ledger_consistent()
    call_command("ledger_verify")
    assert "Ledger OK" in capsys.readouterr().out
    for code, amount in (("nys_congestion", 275), ("black_car_fund", 96), ("sales_tax", 342)):
        assert (
            balance_minor(kind=AccountKind.PASS_THROUGH, owner_id=None, currency="USD", code=code) == amount
        )
    assert balance_minor(kind=AccountKind.DRIVER_PAYABLE, owner_id=trip.driver_id, currency="USD") == 3273
    assert balance_minor(kind=AccountKind.COOP_REVENUE, owner_id=None, currency="USD") == 577

    # The rider sees the fees and the total on the trip.
    body = auth_client_for(done.rider).get(f"/api/v1/trips/{trip.id}").json()
    assert body["fare"] == {"amount": 3850, "currency": "USD"}
    assert body["driver_pay"] == {"amount": 3273, "currency": "USD"}
    assert body["total"] == {"amount": 4563, "currency": "USD"}
    assert body["fare_breakdown"]["fees"] == fees


def test_the_drivers_earnings_show_the_fare_and_commission_without_the_fees(
    new_york_version, congestion_zone
):
    trip = new_york_trip(new_york_version)
    done = complete_trip(trip, distance_m=DISTANCE_M, duration_s=DURATION_S)
    day = done.completed_at.astimezone(timezone.get_current_timezone()).date()
    earnings = driver_earnings(driver_id=done.driver_id, date_from=day, date_to=day)
    (line,) = earnings.lines
    # The fees are the rider's and the state's: not gross fares, not the co-op's commission.
    assert (line.fare, line.commission, line.pay) == (3850, 577, 3273)
    assert (earnings.gross_fares, earnings.commission, earnings.pay) == (3850, 577, 3273)


def test_a_route_around_the_zone_pays_no_congestion_surcharge(new_york_version, congestion_zone):
    trip = new_york_trip(new_york_version, through_zone=False)
    done = complete_trip(trip, distance_m=DISTANCE_M, duration_s=DURATION_S)
    assert [fee["code"] for fee in done.fare_breakdown["fees"]] == ["black_car_fund", "sales_tax"]
    assert done.fare_breakdown["total"] == 3850 + 96 + 342
    assert done.driver_pay_minor == 3273
    assert_ledger_consistent()


def test_a_zone_no_service_area_carries_charges_nothing_and_is_logged(new_york_version, caplog):
    trip = new_york_trip(new_york_version)
    with caplog.at_level(logging.WARNING, logger="dispatch.money.fees"):
        done = complete_trip(trip, distance_m=DISTANCE_M, duration_s=DURATION_S)
    assert [fee["code"] for fee in done.fare_breakdown["fees"]] == ["black_car_fund", "sales_tax"]
    assert any(ZONE in record.getMessage() for record in caplog.records)
    assert_ledger_consistent()


def test_a_policy_without_fees_posts_the_fare_entry_as_before(seeded_policy):
    trip = in_progress_trip(rider=RiderFactory(), driver=DriverFactory(), policy_version=adopt_policy())
    done = complete_trip(trip, distance_m=8000, duration_s=1500)
    entry = JournalEntry.objects.get(key=f"trip:{trip.id}:fare")
    kinds = {p.account.kind for p in entry.postings.select_related("account")}
    assert AccountKind.PASS_THROUGH not in kinds
    assert entry.metadata["fees"] == [] and entry.metadata["total"] == done.fare_minor
    assert PaymentCapture.objects.get(key=f"capture:{trip.id}").amount_minor == done.fare_minor
    assert done.fare_breakdown["fees"] == [] and done.fare_breakdown["total"] == done.fare_minor
    assert_ledger_consistent()


def test_an_estimate_lists_its_fees_and_total(new_york_version, service_area):
    # The model router's straight line from PICKUP to DROPOFF crosses a zone around its midpoint.
    mid_lat, mid_lng = (PICKUP["lat"] + DROPOFF["lat"]) / 2, (PICKUP["lng"] + DROPOFF["lng"]) / 2
    ServiceArea.objects.create(name=ZONE, area=square(mid_lat, mid_lng, 0.002), is_active=False)
    assert not square(mid_lat, mid_lng, 0.002).intersects(Point(PICKUP["lng"], PICKUP["lat"], srid=4326))
    rider = RiderFactory()
    response = auth_client_for(rider).post(
        "/api/v1/fares/estimate", {"pickup": PICKUP, "dropoff": DROPOFF}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    fare = body["fare"]["amount"]
    assert body["policy_version"] == new_york_version.version
    assert [fee["code"] for fee in body["fees"]] == ["nys_congestion", "black_car_fund", "sales_tax"]
    assert body["fees"][0]["amount"] == 275
    assert body["total"] == {"amount": fare + sum(fee["amount"] for fee in body["fees"]), "currency": "USD"}
    assert sum(line["amount"] for line in body["breakdown"]) == fare  # the fare's lines are the fare alone
