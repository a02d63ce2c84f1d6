"""Accessibility figures: WAV requests against standard ones for the requests made in a month: how many
were matched (and in a WAV), completed, cancelled, unfulfilled, and the median and 90th percentile of the
time to assignment and to arrival on scene."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.gis.geos import Point

from dispatch.compliance.accessibility import ResponseTimes, accessibility_figures
from dispatch.models import Trip
from dispatch.services.transitions import trip_transition
from dispatch.state import TripStatus
from tests.compliance.report_builders import MIDTOWN, UPPER_EAST_SIDE, new_york_policy, new_york_trip
from tests.compliance.test_trip_records import local
from tests.factories import DriverFactory, RiderFactory

pytestmark = pytest.mark.django_db


def test_response_times_interpolate_between_ranks():
    times = ResponseTimes.of([60, 120, 180, 240, 600])
    assert (times.count, times.median_s, times.p90_s) == (5, 180.0, 456.0)  # 240 + 0.6 x 360
    assert ResponseTimes.of([]) == ResponseTimes(count=0, median_s=None, p90_s=None)


def test_wav_requests_are_counted_and_timed_against_standard_ones(settings):
    settings.TIME_ZONE = "America/New_York"
    policy = new_york_policy()
    rider, driver, wav_driver = (
        RiderFactory(),
        DriverFactory(),
        DriverFactory(profile__wheelchair_accessible=True),
    )
    common = dict(pickup=MIDTOWN, dropoff=UPPER_EAST_SIDE, distance_m=3000, duration_s=600)
    # WAV: assigned after 4, 6 and 14 minutes, on scene 6 minutes after each.
    for day, assigned_min in ((3, 4), (10, 6), (17, 14)):
        new_york_trip(
            policy, rider=rider, driver=wav_driver, wav=True, started_at=local(2026, 10, day, 10, 0),
            assigned_after_s=assigned_min * 60, arrived_after_s=assigned_min * 60 + 360, **common,
        )  # fmt: skip
    # Standard: assigned after 1 and 2 minutes.
    for day, assigned_min in ((4, 1), (11, 2)):
        new_york_trip(
            policy, rider=rider, driver=driver, started_at=local(2026, 10, day, 10, 0),
            assigned_after_s=assigned_min * 60, arrived_after_s=assigned_min * 60 + 300, **common,
        )  # fmt: skip
    # A WAV request no driver took, made in October.
    lonely = Trip.objects.create(
        rider=RiderFactory(),
        pickup=Point(*MIDTOWN, srid=4326),
        dropoff=Point(*UPPER_EAST_SIDE, srid=4326),
        wheelchair_accessible=True,
        policy_version=policy,
        currency="USD",
        fare_estimate_minor=1000,
        estimated_distance_m=3000,
        estimated_duration_s=600,
        requested_at=local(2026, 10, 20, 9, 0),
    )
    trip_transition(trip_id=lonely.id, to=TripStatus.UNFULFILLED, actor_id=None)

    figures = accessibility_figures(month=date(2026, 10, 1))
    wav, standard = figures.wav, figures.standard
    assert (wav.requests, wav.matched, wav.matched_in_wav, wav.completed, wav.unfulfilled) == (4, 3, 3, 3, 1)
    assert wav.to_assigned == ResponseTimes(count=3, median_s=360.0, p90_s=744.0)  # 6 min; 6 + 0.8 x 8 min
    assert wav.to_on_scene == ResponseTimes(count=3, median_s=720.0, p90_s=1104.0)
    assert (standard.requests, standard.matched, standard.matched_in_wav) == (2, 2, 0)
    assert standard.to_assigned == ResponseTimes(count=2, median_s=90.0, p90_s=114.0)
    assert figures.as_document()["wav"]["to_assigned"]["p90_s"] == 744.0
    assert accessibility_figures(month=date(2026, 11, 1)).wav.requests == 0
