"""Dispatch rounds on real Redis + PostGIS without sockets: filters, the fairness rule, the sweeper path."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.dispatch.conftest import CENTRE, driver_online_at, make_trip, region_lease

pytestmark = pytest.mark.django_db


@pytest.fixture
def drivers(seeded):
    from tests.factories import DriverFactory

    return [DriverFactory() for _ in range(4)]


def _sweep_round(trip):
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services.dispatching import (
        candidates_from_redis,
        dispatch_round,
        rank_candidates,
        trip_info,
    )

    policy = dispatch_policy_in_force()
    info = trip_info(trip_id=trip.id)
    ranked = rank_candidates(candidates_from_redis(info, policy=policy), policy=policy)
    return dispatch_round(trip_id=trip.id, ranked=ranked, policy=policy, lease=region_lease()), ranked


def test_the_nearest_driver_gets_the_offer_with_its_reason_recorded(seeded, rider, drivers):
    from dispatch.models import Offer

    near, far = drivers[0], drivers[1]
    driver_online_at(near, CENTRE[0] + 0.002, CENTRE[1])
    driver_online_at(far, CENTRE[0] + 0.03, CENTRE[1])
    trip = make_trip(rider)
    result, _ranked = _sweep_round(trip)
    assert result.kind == "offered" and result.driver_id == str(near.id)
    offer = Offer.objects.get(id=result.offer_id)
    assert offer.rank == 1 and offer.candidates_considered == 2
    assert offer.dispatch_policy_version == 1
    assert offer.reason["rule"] == "idle_within_eta_band"
    assert offer.reason["eta_s"] == offer.pickup_eta_s and 150 < offer.pickup_distance_m < 300
    assert "fastest pickup" in offer.reason["explanation"] and offer.reason["basis"] in (
        "eta",
        "eta_and_idle",
    )
    # One driver at a time: a second round keeps the running offer.
    again, _ = _sweep_round(trip)
    assert again.kind == "open" and again.offer_id == offer.id


def test_fairness_prefers_the_longest_idle_driver_within_the_eta_band(seeded, rider, drivers):
    from dispatch.models import DriverPresence, Offer

    nearest, waited_long = drivers[0], drivers[1]
    driver_online_at(nearest, CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(waited_long, CENTRE[0] + 0.003, CENTRE[1])
    # The second driver has waited 40 minutes since their last trip.
    from backend.redis import get_redis
    from dispatch.live import driver_key

    get_redis().hset(driver_key(waited_long.id), "idle", repr(time.time() - 2400))
    trip = make_trip(rider)
    result, _ranked = _sweep_round(trip)
    assert result.driver_id == str(waited_long.id)
    offer = Offer.objects.get(id=result.offer_id)
    assert offer.reason["basis"] == "idle" and offer.idle_s >= 2400
    assert "idle longest" in offer.reason["explanation"] and offer.reason["drivers_in_window"] == 2
    assert DriverPresence.objects.filter(driver_id=nearest.id).exists()


def test_filters_wav_stale_fix_offline_and_busy_drivers(seeded, rider, drivers):
    from tests.factories import DriverFactory

    regular, stale, offline = drivers[0], drivers[1], drivers[2]
    wav_driver = DriverFactory(profile__wheelchair_accessible=True)
    driver_online_at(regular, CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(stale, CENTRE[0] + 0.0005, CENTRE[1], age_s=45)  # no fix for over 30 s
    driver_online_at(offline, CENTRE[0] + 0.0002, CENTRE[1])
    from django.test import TestCase

    from dispatch.services.presence import presence_go_offline

    with TestCase.captureOnCommitCallbacks(execute=True):
        presence_go_offline(driver_id=offline.id)
    driver_online_at(wav_driver, CENTRE[0] + 0.01, CENTRE[1])

    wav_trip = make_trip(rider, wav=True)
    result, ranked = _sweep_round(wav_trip)
    assert [r.candidate.driver_id for r in ranked] == [str(wav_driver.id)]
    assert result.driver_id == str(wav_driver.id)

    from tests.factories import RiderFactory

    other_trip = make_trip(RiderFactory())
    result, ranked = _sweep_round(other_trip)
    # The WAV driver holds an offer already; the stale and the offline driver are never candidates.
    assert result.driver_id == str(regular.id)
    assert str(stale.id) not in {r.candidate.driver_id for r in ranked}
    assert str(offline.id) not in {r.candidate.driver_id for r in ranked}


def test_expiry_moves_on_to_the_next_and_a_decliner_is_never_asked_again(seeded, rider, drivers):
    from dispatch.models import Offer, Trip
    from dispatch.services.offers import offer_decline

    first, second = drivers[0], drivers[1]
    driver_online_at(first, CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(second, CENTRE[0] + 0.004, CENTRE[1])
    trip = make_trip(rider)
    result, _ = _sweep_round(trip)
    assert result.driver_id == str(first.id)
    Offer.objects.filter(id=result.offer_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    result, _ = _sweep_round(trip)
    assert result.kind == "offered" and result.driver_id == str(second.id)
    assert result.expired_offer[1] == str(first.id)
    assert Offer.objects.get(driver=first, trip=trip).status == "expired"
    offer_decline(driver_id=second.id, offer_id=result.offer_id)
    result, ranked = _sweep_round(trip)
    assert result.kind == "waiting" and ranked == []
    assert Trip.objects.get(id=trip.id).next_dispatch_at == result.next_at


def test_the_search_budget_running_out_makes_the_trip_unfulfilled(seeded, rider):
    from dispatch.models import Trip

    trip = make_trip(rider, requested_at=timezone.now() - timedelta(seconds=200))
    result, _ = _sweep_round(trip)
    assert result.kind == "unfulfilled"
    trip.refresh_from_db()
    assert trip.status == "unfulfilled" and trip.cancelled_by is None and trip.ended_at is not None
    assert list(trip.events.values_list("status", flat=True)) == ["requested", "unfulfilled"]
    assert Trip.objects.get(id=trip.id).next_dispatch_at is None


def test_sweeper_expires_overdue_offers_and_dispatches_when_no_worker_is_alive(seeded, rider, drivers):
    from dispatch.models import Offer
    from dispatch.services.dispatching import sweep_dispatch

    driver_online_at(drivers[0], CENTRE[0] + 0.001, CENTRE[1])
    driver_online_at(drivers[1], CENTRE[0] + 0.002, CENTRE[1])
    trip = make_trip(
        rider, requested_at=timezone.now() - timedelta(seconds=5), next_dispatch_at=timezone.now()
    )
    assert sweep_dispatch() == {"expired": 0, "rounds": 1}
    offer = Offer.objects.get(trip=trip)
    assert offer.driver_id == drivers[0].id
    Offer.objects.filter(id=offer.id).update(expires_at=timezone.now() - timedelta(seconds=5))
    from dispatch.models import Trip

    Trip.objects.filter(id=trip.id).update(next_dispatch_at=timezone.now() - timedelta(seconds=3))
    outcome = sweep_dispatch()
    assert outcome["expired"] == 1 and outcome["rounds"] == 1
    assert Offer.objects.get(trip=trip, status="open").driver_id == drivers[1].id


def test_sweeper_leaves_rounds_to_a_live_worker(seeded, rider, drivers):
    from backend.redis import get_redis
    from dispatch.live import worker_heartbeat_key
    from dispatch.models import Offer
    from dispatch.services.dispatching import sweep_dispatch

    get_redis().set(worker_heartbeat_key(), "1", ex=5)
    driver_online_at(drivers[0], CENTRE[0] + 0.001, CENTRE[1])
    make_trip(rider, requested_at=timezone.now() - timedelta(seconds=5))
    assert sweep_dispatch() == {"expired": 0, "rounds": 0}
    assert not Offer.objects.exists()


def test_nearest_pickup_eta_for_estimates(seeded, drivers):
    from dispatch.eta_model import pickup_eta_s
    from dispatch.services.estimates import Place, pickup_eta_near
    from tests.factories import DriverFactory

    pickup = Place(*CENTRE)
    assert pickup_eta_near(pickup=pickup, wheelchair_accessible=False) is None
    driver_online_at(drivers[0], CENTRE[0] + 0.01, CENTRE[1])
    eta = pickup_eta_near(pickup=pickup, wheelchair_accessible=False)
    # On the model the road ETA is the model's pickup ETA for the straight line (1,112 m north).
    assert eta is not None and abs(eta - pickup_eta_s(1112.0)) <= 2
    assert pickup_eta_near(pickup=pickup, wheelchair_accessible=True) is None
    driver_online_at(DriverFactory(profile__wheelchair_accessible=True), CENTRE[0] + 0.02, CENTRE[1])
    wav_eta = pickup_eta_near(pickup=pickup, wheelchair_accessible=True)
    assert wav_eta is not None and wav_eta > eta
    # Far outside the search radius: nobody.
    assert pickup_eta_near(pickup=Place(41.5, -73.0), wheelchair_accessible=False) is None


def test_requests_in_one_batch_window_are_assigned_for_the_least_total_pickup(seeded):
    from dispatch.eta_model import pickup_eta_s
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services.dispatching import Candidate, TripInfo
    from dispatch.worker import DispatchWorker

    def candidate(driver, metres):
        return Candidate(driver, metres, pickup_eta_s(metres), 0, 1.0)

    # d1 is nearest to both trips; first come, first served would send d2 1.5 km to the second trip.
    trips = [TripInfo("t1", 40.0, -73.0, False), TripInfo("t2", 40.0, -72.99, False)]
    lists = [[candidate("d1", 400), candidate("d2", 500)], [candidate("d1", 600), candidate("d2", 1500)]]
    plans = DispatchWorker(batch_window_ms=500).plan(trips, lists, policy=dispatch_policy_in_force())
    (first, first_batch), (second, second_batch) = plans
    assert [r.candidate.driver_id for r in first] == ["d2"]
    assert [r.candidate.driver_id for r in second] == ["d1"]
    assert first_batch == {"size": 2, "position": 0, "assigned_driver": "d2"}
    assert second_batch["assigned_driver"] == "d1"
