"""Rides booked ahead in a short simulation against a real server: riders who book ahead and an
organisation's system (its API key) book through the API, drivers claim some of the reservations, the
rides are dispatched or set off to their claimers and completed, and the summary's lines for them match
the database and the ledger.

The server's clock is real and the board's shortest lead is ten minutes, so a test cannot wait for a
reservation's time to come: a time machine (a thread of this test) moves each reservation's pickup time,
window and release to a minute from now some seconds after it is booked, as if the minutes had passed.
Everything else is the stack's own: the beat's reservation pass releases them or sets them off."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from tests.simulation.conftest import SPEEDUP, seed_service_area

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BOOKED_AGE_S = 6.0  # how long a reservation stays as booked (claimable) before the time machine moves it


def time_machine(stop: threading.Event) -> None:
    """Bring every reservation to a minute before its pickup time once it is BOOKED_AGE_S old."""
    from django.db import connection
    from django.utils import timezone

    from dispatch.models import Trip

    moved: set = set()
    try:
        while not stop.wait(0.5):
            now = timezone.now()
            due = Trip.objects.filter(
                status="scheduled", requested_at__lte=now - timedelta(seconds=BOOKED_AGE_S)
            ).exclude(id__in=moved)
            for trip in due:
                shift = (now + timedelta(seconds=60)) - trip.scheduled_for
                Trip.objects.filter(id=trip.id, status="scheduled").update(
                    scheduled_for=trip.scheduled_for + shift,
                    pickup_window_start=trip.pickup_window_start + shift,
                    pickup_window_end=trip.pickup_window_end + shift,
                    release_at=now,
                )
                moved.add(trip.id)
    finally:
        connection.close()


def next_status(trip) -> str | None:
    statuses = [event.status for event in trip.events.order_by("at", "id")]
    after = statuses[statuses.index("scheduled") + 1 :]
    return after[0] if after else None


def test_booked_ahead_rides_are_booked_claimed_ridden_and_counted(live_stack):
    from django.db.models import Sum

    from backend.fares.ledger import balance_minor
    from backend.fares.models import AccountKind, PolicySource
    from backend.fares.selectors import policy_document, policy_version_in_force
    from backend.fares.services import policy_version_create
    from backend.organisations import services as organisations
    from backend.organisations.models import OrganisationGuest
    from dispatch.models import Trip
    from dispatch.simulation.runner import Simulation, SimulationConfig
    from tests.factories import StaffFactory

    document = policy_document(policy_version_in_force())
    document.pop("version"), document.pop("effective_at")
    document["reservations"] = {"min_lead_s": 600}  # the board's least: seed_demo's demo policy
    policy_version_create(document=document, effective_at=None, source=PolicySource.FOUNDING)
    staff = StaffFactory()
    organisation = organisations.organisation_create(
        by=staff, name="Harlem Dialysis Center", changes={"kind": "clinic", "reference_required": True}
    )
    key = organisations.api_key_create(
        organisation_id=organisation.id, by=staff, name="system", scopes=["trips:read", "trips:write"]
    )

    config = SimulationConfig(
        base_url=live_stack.base_url,
        drivers=8,
        riders=6,
        duration_s=15.0,
        drain_s=60.0,
        speedup=SPEEDUP,
        accept_rate=1.0,
        requests_per_minute=20.0,
        seed=5,
        wheelchair_share=0.5,  # the organisation books some wheelchair-accessible rides
        city_width_m=2_000.0,
        city_height_m=3_000.0,
        token_cache=None,
        progress=False,
        scheduled_share=0.5,
        organisation_id=str(organisation.id),
        organisation_name=organisation.name,
        organisation_api_key=key.plaintext,
        organisation_bookings_per_minute=30.0,
        organisation_poll_s=5.0,
        claim_probability=0.2,
        claim_look_s=8.0,
    )
    simulation = Simulation(config)
    seed_service_area(simulation.city)
    stop = threading.Event()
    machine = threading.Thread(target=time_machine, args=(stop,), daemon=True)
    machine.start()
    try:
        result = asyncio.run(simulation.run())
    finally:
        stop.set()
        machine.join(10)
    summary = result.summary
    riders = summary.booked_ahead_figures("rider")
    booked = summary.booked_ahead_figures("organisation")

    # Booked through the API: the riders' own reservations, and the organisation's for its guests, with its
    # key, its reference and its narrower window, billed to it.
    ahead = Trip.objects.filter(scheduled_for__isnull=False, organisation__isnull=True)
    of_organisation = Trip.objects.filter(organisation=organisation)
    assert riders["booked"] == ahead.count() >= 1, live_stack.logs()
    assert booked["booked"] == of_organisation.count() >= 1, live_stack.logs()
    for trip in of_organisation:
        assert trip.booked_by_key_id == key.key.id and trip.booked_by_id is None
        assert trip.payer == "organisation" and trip.reference.startswith("DIALYSIS-")
        assert trip.pickup_window_end - trip.pickup_window_start == timedelta(seconds=1200)
        assert OrganisationGuest.objects.filter(organisation=organisation, user_id=trip.rider_id).exists()

    # Drivers claimed some: each claim the summary counts is the database's.
    claimed = Trip.objects.filter(claimed_by__isnull=False).values_list("id", flat=True)
    assert summary.claims_won == {str(trip_id) for trip_id in claimed}
    assert summary.claims_won, live_stack.logs()

    # Ridden to the end, by the driver app alone for the guests; counted as the database has them.
    for figures, trips in ((riders, ahead), (booked, of_organisation)):
        assert figures["completed"] == trips.filter(status="completed").count() >= 1, live_stack.logs()
        # How each left `scheduled`: its next event, released into dispatch or set off to its claimer.
        moves = [next_status(trip) for trip in trips]
        assert figures["dispatched"] == moves.count("requested")
        assert figures["set_off_to_claimer"] == moves.count("assigned")
        arrivals = [
            (trip.events.get(status="arrived").at, trip.pickup_window_start, trip.pickup_window_end)
            for trip in trips.filter(events__status="arrived")
        ]
        assert figures["arrived"] == len(arrivals)
        assert figures["arrived_in_window"] == sum(1 for at, start, end in arrivals if start <= at <= end)
    # Both ways out of `scheduled` were taken: into dispatch, and set off to a claiming driver.
    assert riders["dispatched"] + booked["dispatched"] >= 1
    assert riders["set_off_to_claimer"] + booked["set_off_to_claimer"] >= 1

    # What the organisation was billed is what its receivable in the ledger holds.
    receivable = balance_minor(
        kind=AccountKind.ORGANISATION_RECEIVABLE, owner_id=None, currency="USD", code=str(organisation.id)
    )
    assert booked["billed_cents"] == receivable > 0

    # The run's general lines still match the database, with every ride booked ahead in them.
    trips = Trip.objects.all()
    assert summary.trips_requested == trips.count()
    assert summary.trips_completed == trips.filter(status="completed").count()
    assert len(summary.pay) == summary.trips_completed and summary.trips_below_floor == 0
    completed = trips.filter(status="completed")
    assert sum(r.driver_pay_cents for r in summary.pay) == completed.aggregate(s=Sum("driver_pay_minor"))["s"]
    assert (
        result.trips_open_at_end
        == trips.filter(status__in=["requested", "assigned", "arrived", "in_progress"]).count()
    )
    steps = {s.step: s for s in result.metrics.summaries()}
    for step in ("book_ahead", "organisation_book", "reservations_list", "reservation_claim"):
        assert steps[step].count >= 1, step
