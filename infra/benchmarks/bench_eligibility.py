"""What eligibility adds to a dispatch round: the regulator profile's documents and hours limits.

    .venv/bin/python infra/benchmarks/bench_eligibility.py [--drivers 8] [--trips-per-driver 150]
                                                           [--rounds 200] [--ineligible-first 0]

Against a scratch database `rochdale_bench_eligibility` (recreated and migrated) and Redis db 12, with the
document files in a temporary directory. It makes `--drivers` approved drivers, each with every New York
document approved through the real upload and review services and `--trips-per-driver` completed trips
over the last week (bulk-inserted: a week of a busy driver's history for the hours query to read), puts
them online near one pickup through the real presence and location services, and then times:

1. `driver_eligibility` for one driver (the documents query, the vehicle lookup and the one hours query),
   under `none` and under `nyc_tlc`;
2. a whole `dispatch_round` on the same ranked candidates under `none` and under `nyc_tlc`, each round in
   a transaction rolled back afterwards (so every round offers the same trip again, and nothing is
   pushed); with `--ineligible-first N` the N best-ranked drivers are past the 24-hour limit, so the round
   checks N + 1 drivers before it offers.

Figures (median, 95th percentile and mean, in milliseconds) print as a table; the difference between the
two profiles' rounds is what eligibility adds per round. The round checks only the driver about to be
offered, so the cost does not grow with the number of candidates ranked, only with the ineligible ones
passed over. Nothing is asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DB_NAME = "rochdale_bench_eligibility"
CENTRE = (40.7580, -73.9855)
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _setup_django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ["DJANGO_SETTINGS_MODULE"] = "backend.settings"
    os.environ["DATABASE_URL"] = os.environ.get(
        "BENCH_DATABASE_URL", f"postgis://postgres@localhost:5432/{DB_NAME}"
    )
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/12")
    os.environ.setdefault("ROCHDALE_ROUTER", "model")
    import psycopg

    with psycopg.connect("postgresql://postgres@localhost:5432/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tempfile.mkdtemp(prefix="bench-documents-")},
        },
    }
    call_command("migrate", verbosity=0)


def _figures(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{name:<48} {statistics.median(ordered) * 1000:8.2f} {p95 * 1000:8.2f} "
        f"{statistics.fmean(ordered) * 1000:8.2f}"
    )


def _timed(call, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drivers", type=int, default=8)
    parser.add_argument("--trips-per-driver", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--ineligible-first", type=int, default=0)
    args = parser.parse_args()
    _setup_django()

    from django.conf import settings
    from django.contrib.gis.geos import Point
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction
    from django.utils import timezone

    from backend.compliance.eligibility import local_day
    from backend.compliance.profile import load_profile
    from backend.compliance.services import document_review, document_upload
    from backend.fares.models import FarePolicyVersion
    from backend.redis import get_redis
    from dispatch.models import Trip
    from dispatch.policy import dispatch_policy_in_force
    from dispatch.services import locations, presence
    from dispatch.services.dispatching import (
        by_road,
        candidates_from_redis,
        dispatch_round,
        rank_candidates,
        trip_info,
    )
    from dispatch.services.eligibility import driver_eligibility
    from tests.factories import DriverFactory, RiderFactory, StaffFactory

    get_redis().flushdb()
    settings.ROCHDALE_REGULATOR_PROFILE = "nyc_tlc"
    staff, rider = StaffFactory(), RiderFactory()
    policy_version = FarePolicyVersion.objects.order_by("-version").first()
    now = timezone.now()
    drivers = []
    for index in range(args.drivers):
        driver = DriverFactory()
        for requirement in load_profile("nyc_tlc").documents:
            if requirement.only_for:
                continue
            document = document_upload(
                driver=driver,
                kind=requirement.kind,
                number=f"N-{uuid.uuid4().hex[:8]}",
                issuer="",
                expires_on=local_day(now) + timedelta(days=300),
                file=SimpleUploadedFile("scan.pdf", PDF_BYTES, content_type="application/pdf"),
            )
            document_review(document_id=document.id, reviewer=staff, decision="approved")
        presence.presence_go_online(driver_id=driver.id)
        # The week's history: trips of 20 minutes, spread over the last 7 days; the first drivers ranked
        # (nearest) get theirs packed into the last 24 hours when they are to be past the limit.
        tired = index < args.ineligible_first
        span = timedelta(hours=23) if tired else timedelta(days=7)
        each = timedelta(minutes=20) if not tired else max(timedelta(minutes=5), span / args.trips_per_driver)
        trips = []
        for number in range(args.trips_per_driver):
            started = now - span + number * (span / args.trips_per_driver)
            trips.append(
                Trip(
                    rider=rider,
                    driver=driver,
                    status="completed",
                    pickup=Point(CENTRE[1], CENTRE[0], srid=4326),
                    dropoff=Point(CENTRE[1] + 0.02, CENTRE[0] + 0.02, srid=4326),
                    policy_version=policy_version,
                    currency="USD",
                    fare_estimate_minor=1500,
                    estimated_distance_m=3000,
                    estimated_duration_s=600,
                    requested_at=started - timedelta(minutes=8),
                    assigned_at=started - timedelta(minutes=6),
                    arrived_at=started - timedelta(minutes=1),
                    started_at=started,
                    completed_at=started + each,
                    ended_at=started + each,
                )
            )
        Trip.objects.bulk_create(trips)
        drivers.append(driver)
    # Nearest first in the order made, so `--ineligible-first` puts the tired ones on top of the ranking.
    for index, driver in enumerate(drivers):
        fix = locations.Fix(CENTRE[0] + 0.001 * (index + 1), CENTRE[1], None, None, 5.0, time.time())

        async def record(driver_id=driver.id, fix=fix) -> None:
            recorder = locations.LocationRecorder()
            try:
                await recorder.record(driver_id=driver_id, fix=fix)
            finally:
                await recorder.close()

        asyncio.run(record())
    trip = Trip.objects.create(
        rider=RiderFactory(),
        pickup=Point(CENTRE[1], CENTRE[0], srid=4326),
        dropoff=Point(CENTRE[1] + 0.02, CENTRE[0] + 0.02, srid=4326),
        policy_version=policy_version,
        currency="USD",
        fare_estimate_minor=1500,
        estimated_distance_m=3000,
        estimated_duration_s=600,
    )
    policy = dispatch_policy_in_force()
    info = trip_info(trip_id=trip.id)
    found = by_road(candidates_from_redis(info, policy=policy), pickup=(info.lat, info.lng))
    ranked = rank_candidates(found, policy=policy)
    print(
        f"{len(drivers)} drivers ({args.ineligible_first} past the 24-hour limit ranked first), "
        f"{args.trips_per_driver} trips each in their history, {len(ranked)} candidates ranked, "
        f"{args.rounds} rounds per figure"
    )

    def one_round() -> None:
        with transaction.atomic():
            result = dispatch_round(trip_id=trip.id, ranked=ranked, policy=policy)
            assert result.kind == "offered", result
            transaction.set_rollback(True)

    checked = drivers[args.ineligible_first] if args.ineligible_first < len(drivers) else drivers[0]
    rows = []
    for profile in ("none", "nyc_tlc"):
        settings.ROCHDALE_REGULATOR_PROFILE = profile
        one_round()  # warm the connection, the profile cache and the plans
        rows.append(
            _figures(
                f"driver_eligibility, one driver ({profile})",
                _timed(lambda: driver_eligibility(driver_id=checked.id, at=timezone.now()), args.rounds),
            )
        )
        rows.append(_figures(f"dispatch_round ({profile})", _timed(one_round, args.rounds)))
    print(f"{'':<48} {'median':>8} {'p95':>8} {'mean':>8}   (ms)")
    for row in rows:
        print(row)
    get_redis().flushdb()


if __name__ == "__main__":
    main()
