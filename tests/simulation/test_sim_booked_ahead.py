"""The summary's rides booked ahead, from the trip objects the simulated apps saw (no database, no server):
how each left `scheduled`, arrivals against the pickup window, what the organisation was billed, the
claims; and who books ahead in a run (the demo's shares, the organisation's key from seed_demo's file)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from rich.console import Console

from dispatch.simulation.agents.context import SimContext
from dispatch.simulation.city import City
from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.report import SimulationSummary, summary_table
from dispatch.simulation.runner import SimulationConfig, configure_booking_ahead

WINDOW_START = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (WINDOW_START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def trip(
    trip_id: str,
    statuses: list[tuple[str, float]],
    *,
    claimed: bool = False,
    total: int | None = None,
    fee: int | None = None,
) -> dict:
    """A trip object as the wire contract shapes it, with a window of 17:00-17:30 UTC."""
    return {
        "id": trip_id,
        "status": statuses[-1][0],
        "events": [{"status": status, "at": at(minutes)} for status, minutes in statuses],
        "reservation": {
            "scheduled_for": at(15),
            "window_start": at(0),
            "window_end": at(30),
            "claimed": claimed,
            "series_id": None,
        },
        "fare": None if total is None else {"amount": total - 50, "currency": "USD"},
        "total": None if total is None else {"amount": total, "currency": "USD"},
        "cancellation_fee": None if fee is None else {"amount": fee, "currency": "USD"},
        "cancelled_by": "rider" if statuses[-1][0] == "cancelled" else None,
    }


def ridden(trip_id: str, arrived_min: float, *, via: str = "requested", **kwargs) -> dict:
    """A ride that left `scheduled` `via` dispatch (requested) or its claimer's set-off (assigned)."""
    assigned = [("assigned", arrived_min - 2)] if via == "requested" else []
    return trip(
        trip_id,
        [("scheduled", -20), (via, arrived_min - 3), *assigned, ("arrived", arrived_min),
         ("in_progress", arrived_min + 1), ("completed", arrived_min + 9)],
        **kwargs,
    )  # fmt: skip


def test_booked_ahead_rides_are_counted_from_what_their_trips_show():
    summary = SimulationSummary(organisation_name="Harlem Dialysis Center")
    booked = [("r1", "rider"), ("r2", "rider"), ("r3", "rider"), ("o1", "organisation"),
              ("o2", "organisation"), ("o3", "organisation")]  # fmt: skip
    for trip_id, booker in booked:
        summary.observe_booked_ahead(trip(trip_id, [("scheduled", -20)]), booker=booker)
    # A push of a trip nobody booked ahead in this run changes nothing.
    summary.observe_booked_ahead(trip("elsewhere", [("scheduled", -20)]))
    summary.claims_won.add("r2")
    summary.count_claim_refusal("reservation_already_claimed")
    summary.count_booking_refusal(booker="organisation", code="reservation_overlaps")

    summary.observe_booked_ahead(ridden("r1", 10))  # released into dispatch, inside the window
    summary.observe_booked_ahead(ridden("r2", -4, via="assigned", claimed=True))  # set off to its claimer
    summary.observe_booked_ahead(ridden("o1", 31, total=2400))  # late
    summary.observe_booked_ahead(ridden("o2", 5, via="assigned", claimed=True, total=3100))
    summary.observe_booked_ahead(trip("o3", [("scheduled", -20), ("cancelled", -10)], fee=500))

    riders = summary.booked_ahead_figures("rider")
    assert riders == {
        "booked": 3, "claimed": 1, "dispatched": 1, "set_off_to_claimer": 1, "completed": 2,
        "unfulfilled": 0, "cancelled": 0, "still_scheduled": 1, "arrived": 2, "arrived_in_window": 1,
        "arrived_early": 1, "arrived_late": 0, "in_window_share": 0.5, "billed_cents": 2 * 0, "refused": {},
    }  # fmt: skip
    organisation = summary.booked_ahead_figures("organisation")
    assert (organisation["booked"], organisation["dispatched"], organisation["set_off_to_claimer"]) == (
        3,
        1,
        1,
    )
    assert (organisation["completed"], organisation["cancelled"], organisation["claimed"]) == (2, 1, 1)
    assert (organisation["arrived_in_window"], organisation["arrived_late"]) == (1, 1)
    # Billed: the completed rides' totals (fare and fees) and the late cancellation's fee.
    assert organisation["billed_cents"] == 2400 + 3100 + 500
    assert organisation["refused"] == {"reservation_overlaps": 1}
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["booked_ahead"]["organisation"]["name"] == "Harlem Dialysis Center"
    assert data["booked_ahead"]["claims_won"] == 1
    assert data["booked_ahead"]["claims_refused"] == {"reservation_already_claimed": 1}

    console = Console(record=True, width=160)
    console.print(summary_table(summary))
    text = console.export_text()
    for expected in (
        "booked ahead by riders",
        "claimed / dispatched / set off",
        "1 / 1 / 1",
        "completed / still to come",
        "pickups inside the window",
        "1 of 2 (50%; 1 early, 0 late)",
        "1 of 2 (50%; 0 early, 1 late)",
        "booked ahead by the organisation",
        "3 (Harlem Dialysis Center)",
        "billed to the organisation",
        "$60.00",
        "bookings refused",
        "1 (reservation_overlaps 1)",
        "reservations claimed by drivers",
        "1 (refused: reservation_already_claimed 1)",
    ):
        assert expected in text, expected


def test_a_run_without_rides_booked_ahead_says_nothing_of_them():
    console = Console(record=True, width=160)
    console.print(summary_table(SimulationSummary(trips_requested=3)))
    assert "booked ahead" not in console.export_text()


def test_rides_are_booked_just_beyond_the_boards_shortest_lead_in_real_time():
    context = SimContext(
        base_url="http://127.0.0.1:1", http=None, city=City.generate(width_m=1500, height_m=2000),
        router=None, metrics=MetricsRecorder(), summary=SimulationSummary(),
    )  # fmt: skip
    rng = random.Random(3)
    assert context.reservation_rules()["min_lead_s"] == 3600  # the board's default, before the policy is read
    context.fare_policy = {"reservations": {"min_lead_s": 600, "dispatch_margin_s": 120}}
    before = datetime.now(UTC)
    for _ in range(20):
        lead = (context.booking_time(rng) - before).total_seconds()
        assert 600 + 30 - 1 <= lead <= 600 + 120 + 1
    # The arrival target: the margin before the pickup time, never before the window opens.
    assert context.arrival_target(
        {"scheduled_for": at(15), "window_start": at(0)}
    ) == WINDOW_START + timedelta(minutes=13)
    assert context.arrival_target({"scheduled_for": at(1), "window_start": at(0)}) == WINDOW_START


def test_who_books_ahead_the_demo_by_default_none_in_the_load_mode(tmp_path):
    credentials = tmp_path / "demo-credentials.json"
    credentials.write_text(
        json.dumps(
            {"password": "x" * 12, "organisation": {"id": "org-1", "name": "Clinic", "api_key": "rk_abc_def"}}
        )
    )
    demo = SimulationConfig()
    assert configure_booking_ahead(
        demo, scheduled_share=None, organisation_bookings_per_minute=None, claim_probability=None,
        credentials=credentials, load=False,
    ) is None  # fmt: skip
    assert (demo.scheduled_share, demo.claim_probability) == (0.2, 0.1)
    assert (demo.organisation_id, demo.organisation_name, demo.organisation_api_key) == (
        "org-1",
        "Clinic",
        "rk_abc_def",
    )
    assert demo.organisation_bookings_per_minute == 1.0

    load = SimulationConfig()
    configure_booking_ahead(
        load, scheduled_share=None, organisation_bookings_per_minute=None, claim_probability=None,
        credentials=credentials, load=True,
    )  # fmt: skip
    assert (load.scheduled_share, load.claim_probability, load.organisation_id) == (0.0, 0.0, None)

    nothing = SimulationConfig()
    note = configure_booking_ahead(
        nothing, scheduled_share=0.5, organisation_bookings_per_minute=2.0, claim_probability=0.0,
        credentials=tmp_path / "missing.json", load=False,
    )  # fmt: skip
    assert note is not None and "seed_demo" in note
    assert (nothing.scheduled_share, nothing.organisation_id, nothing.organisation_bookings_per_minute) == (
        0.5,
        None,
        0.0,
    )
