"""The month's HVFHV trip-record file: a month of New York trips made through the real services (the
example policy, its congestion and airport zones, TLC-like taxi zones), whose money columns sum to the
ledger's figures, whose header is the hand-written field list, and whose unproducible trips are listed."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from backend.errors import Unprocessable
from backend.fares.models import AccountKind, JournalEntry, Posting
from dispatch.compliance.trip_records import (
    ExceptionCode,
    regulator_report,
    regulator_report_build,
    regulator_report_reconcile,
    trip_records_csv,
)
from tests.compliance.report_builders import (
    CONGESTION_SQUARE,
    JERSEY_CITY,
    JFK,
    MIDTOWN,
    NEWARK,
    UPPER_EAST_SIDE,
    new_york_fee_zones,
    new_york_policy,
    new_york_trip,
    tlc_like_zones_file,
)
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import assert_ledger_consistent, tip_trip

pytestmark = pytest.mark.django_db

FIELDS_FIXTURE = Path(__file__).parent / "fixtures" / "hvfhv_fields.txt"
NEW_YORK = ZoneInfo("America/New_York")
OCTOBER = date(2026, 10, 1)


def hand_written_fields() -> list[str]:
    lines = FIELDS_FIXTURE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


@pytest.fixture
def new_york(settings, tmp_path):
    settings.TIME_ZONE = "America/New_York"
    settings.ROCHDALE_REGULATOR_PROFILE = "nyc_tlc"
    settings.ROCHDALE_REGULATOR_BASE_NUMBER = "B09999"
    settings.ROCHDALE_REGULATOR_HVFHS_LICENSE_NUMBER = "HV0099"
    new_york_fee_zones()
    call_command("regulator_zones_load", str(tlc_like_zones_file(tmp_path)), stdout=io.StringIO())
    return new_york_policy()


@pytest.fixture
def month_of_trips(new_york):
    """October 2026: the reference trip through the congestion zone, a JFK run, a WAV trip with a tip, a
    dropoff in New Jersey, a pickup in New Jersey (no zone: an exception), a completion whose fare entry is
    missing (an exception), one trip at 23:50 on the 31st (October, though November in UTC), and trips just
    outside the month on both sides."""
    policy = new_york
    rider, driver, wav_driver = (
        RiderFactory(),
        DriverFactory(),
        DriverFactory(profile__wheelchair_accessible=True),
    )
    trip = dict(policy=policy, rider=rider, driver=driver)
    made = {
        "reference": new_york_trip(
            **trip, pickup=MIDTOWN, dropoff=UPPER_EAST_SIDE, via=CONGESTION_SQUARE,
            started_at=local(2026, 10, 5, 8, 0), distance_m=12_070, duration_s=1800,
        ),
        "jfk": new_york_trip(
            **trip, pickup=MIDTOWN, dropoff=JFK, started_at=local(2026, 10, 9, 14, 0),
            distance_m=27_000, duration_s=2700,
        ),
        "wav": new_york_trip(
            policy=policy, rider=rider, driver=wav_driver, wav=True, pickup=UPPER_EAST_SIDE, dropoff=MIDTOWN,
            started_at=local(2026, 10, 12, 9, 30), distance_m=4_000, duration_s=900,
            assigned_after_s=300, arrived_after_s=900,
        ),
        "to_new_jersey": new_york_trip(
            **trip, pickup=MIDTOWN, dropoff=JERSEY_CITY, started_at=local(2026, 10, 20, 18, 0),
            distance_m=9_000, duration_s=1500,
        ),
        "from_new_jersey": new_york_trip(
            **trip, pickup=NEWARK, dropoff=MIDTOWN, started_at=local(2026, 10, 22, 7, 0),
            distance_m=22_000, duration_s=2400,
        ),
        "unsettled": new_york_trip(
            **trip, pickup=MIDTOWN, dropoff=UPPER_EAST_SIDE, started_at=local(2026, 10, 25, 11, 0),
            distance_m=5_000, duration_s=900, settle=False,
        ),
        "last_evening": new_york_trip(
            **trip, pickup=UPPER_EAST_SIDE, dropoff=MIDTOWN, started_at=local(2026, 10, 31, 23, 40),
            distance_m=3_000, duration_s=600,
        ),
        "september": new_york_trip(
            **trip, pickup=MIDTOWN, dropoff=UPPER_EAST_SIDE, started_at=local(2026, 9, 30, 23, 20),
            distance_m=3_000, duration_s=600,
        ),
        "november": new_york_trip(
            **trip, pickup=MIDTOWN, dropoff=UPPER_EAST_SIDE, started_at=local(2026, 11, 1, 0, 5),
            distance_m=3_000, duration_s=600,
        ),
    }  # fmt: skip
    tip_trip(made["wav"], 500)
    tip_trip(made["reference"], 300)
    tip_trip(made["from_new_jersey"], 200)
    tip_trip(made["november"], 100)
    assert_ledger_consistent()
    return made


def parsed(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def ledger_total(kind: AccountKind, trips, *, code: str = "", entry_kind: str = "trip_fare") -> int:
    """What the ledger moved on accounts of `kind` (credits less debits) in these trips' entries."""
    totals = Posting.objects.filter(
        entry__kind=entry_kind,
        entry__trip_id__in=[t.id for t in trips],
        account__kind=kind,
        account__code=code,
    ).aggregate(credits=Sum("credit_minor"), debits=Sum("debit_minor"))
    return int(totals["credits"] or 0) - int(totals["debits"] or 0)


def cents(text: str) -> int:
    whole, _, fraction = text.partition(".")
    assert len(fraction) == 2, text  # dollars with two decimals
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(fraction))


def test_the_header_is_the_tlc_field_list_in_its_order(month_of_trips):
    report = regulator_report_build(month=OCTOBER)
    text = trip_records_csv(report)
    header = text.split("\r\n", 1)[0].split(",")
    assert header == hand_written_fields()
    assert all(len(row) == len(header) for row in csv.reader(io.StringIO(text)))


def test_a_month_of_trips_one_row_each_and_the_columns_sum_to_the_ledger(month_of_trips):
    made = month_of_trips
    report, reconciliation = regulator_report(month=OCTOBER)
    rows = parsed(trip_records_csv(report))

    # One row a trip completed in October (local), in pickup order; the two exceptions are not rows.
    in_rows = ["reference", "jfk", "wav", "to_new_jersey", "last_evening"]
    assert [r["pickup_datetime"] for r in rows] == [
        made[name].started_at.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S") for name in in_rows
    ]
    assert {(e.trip_id, e.code) for e in report.exceptions} == {
        (made["from_new_jersey"].id, ExceptionCode.NO_PICKUP_ZONE),
        (made["unsettled"].id, ExceptionCode.NO_FARE_ENTRY),
    }

    # The reference trip, by hand (docs/fares.md, "A New York fare, by hand"): 7.5 miles, 30 minutes,
    # fare 38.50, congestion 2.75, Black Car Fund 0.96, sales tax 3.42, pay 32.73, and the 3.00 tip.
    reference = rows[0]
    assert reference == {
        "hvfhs_license_num": "HV0099",
        "dispatching_base_num": "B09999",
        "originating_base_num": "B09999",
        "request_datetime": "2026-10-05 07:52:00",
        "on_scene_datetime": "2026-10-05 07:59:00",
        "pickup_datetime": "2026-10-05 08:00:00",
        "dropoff_datetime": "2026-10-05 08:30:00",
        "PULocationID": "161",
        "DOLocationID": "236",
        "trip_miles": "7.50",
        "trip_time": "1800",
        "base_passenger_fare": "38.50",
        "tolls": "0.00",
        "bcf": "0.96",
        "sales_tax": "3.42",
        "congestion_surcharge": "2.75",
        "airport_fee": "0.00",
        "tips": "3.00",
        "driver_pay": "32.73",
        "shared_request_flag": "N",
        "shared_match_flag": "N",
        "access_a_ride_flag": "N",
        "wav_request_flag": "N",
        "wav_match_flag": "N",
    }
    jfk, wav, to_new_jersey, last_evening = rows[1:]
    assert (jfk["DOLocationID"], jfk["airport_fee"], jfk["congestion_surcharge"]) == ("132", "2.50", "0.00")
    assert (wav["wav_request_flag"], wav["wav_match_flag"], wav["tips"]) == ("Y", "Y", "5.00")
    assert to_new_jersey["DOLocationID"] == "265"  # outside every zone: "Outside of NYC"
    assert report.dropoffs_outside_zones == 1
    assert last_evening["dropoff_datetime"] == "2026-10-31 23:50:00"

    # Every money column, summed over the rows and the exceptions, is the ledger's figure for October's
    # trips, computed here straight from the postings.
    october = [made[name] for name in (*in_rows, "from_new_jersey")]
    ledger = {
        "bcf": ledger_total(AccountKind.PASS_THROUGH, october, code="black_car_fund"),
        "sales_tax": ledger_total(AccountKind.PASS_THROUGH, october, code="sales_tax"),
        "congestion_surcharge": ledger_total(AccountKind.PASS_THROUGH, october, code="nys_congestion"),
        "airport_fee": ledger_total(AccountKind.PASS_THROUGH, october, code="airport_access"),
        "tolls": 0,
        "tips": ledger_total(AccountKind.TIPS_HELD, october, entry_kind="tip"),
        "driver_pay": ledger_total(AccountKind.DRIVER_PAYABLE, october),
        "base_passenger_fare": sum(
            JournalEntry.objects.get(key=f"trip:{t.id}:fare").metadata["fare"] for t in october
        ),
    }
    exception = next(e for e in report.exceptions if e.code == ExceptionCode.NO_PICKUP_ZONE)
    for column, expected in ledger.items():
        in_file = sum(cents(row[column]) for row in rows)
        assert in_file + exception.money_minor[column] == expected, column
        assert reconciliation.column(column).ledger_minor == expected, column
    # Three routes cross the congestion square (Midtown and the Upper East Side either way), one ends at JFK.
    assert (ledger["tips"], ledger["airport_fee"], ledger["congestion_surcharge"]) == (1000, 250, 3 * 275)
    assert reconciliation.ok
    assert reconciliation.ledger_fare_entries == reconciliation.report_fare_entries == 6


def test_the_reconciliation_finds_a_row_that_went_missing(month_of_trips):
    report = regulator_report_build(month=OCTOBER)
    dropped = report.records[0]
    short = dataclasses.replace(report, records=report.records[1:])
    reconciliation = regulator_report_reconcile(short)
    assert not reconciliation.ok
    assert reconciliation.column("driver_pay").difference_minor == dropped.money_minor["driver_pay"] == 3273
    assert reconciliation.column("congestion_surcharge").difference_minor == 275
    assert reconciliation.report_fare_entries == reconciliation.ledger_fare_entries - 1


def test_a_fee_no_column_takes_is_summed_apart_and_still_reconciles(month_of_trips, settings, tmp_path):
    profile = json.loads(
        (Path(__file__).resolve().parents[2] / "backend/compliance/profiles/nyc_tlc.json").read_text()
    )
    profile["trip_report_fee_columns"] = {"nys_congestion": "congestion_surcharge", "sales_tax": "sales_tax"}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    settings.ROCHDALE_REGULATOR_PROFILE = str(path)

    report, reconciliation = regulator_report(month=OCTOBER)
    assert set(report.unmapped_fees) == {"black_car_fund", "airport_access"}
    assert report.column_total("bcf") == report.column_total("airport_fee") == 0
    assert reconciliation.column("fee:airport_access").ledger_minor == 250
    assert reconciliation.ok
    assert any("black_car_fund" in warning for warning in report.warnings)


def test_without_the_new_york_profile_there_is_no_file(month_of_trips, settings):
    settings.ROCHDALE_REGULATOR_PROFILE = "none"
    with pytest.raises(Unprocessable) as refused:
        regulator_report_build(month=OCTOBER)
    assert refused.value.code == "trip_report_not_configured"


def test_the_command_writes_the_file_and_prints_the_exceptions_and_the_reconciliation(
    month_of_trips, tmp_path
):
    out, summary = tmp_path / "october.csv", tmp_path / "october.json"
    stderr = io.StringIO()
    call_command(
        "regulator_report", "--month", "2026-10", "--out", str(out), "--summary", str(summary), stderr=stderr
    )
    assert out.read_text().splitlines()[0].split(",") == hand_written_fields()
    assert len(parsed(out.read_text())) == 5
    printed = stderr.getvalue()
    assert "5 row(s)" in printed and "exceptions: 2" in printed
    assert str(month_of_trips["from_new_jersey"].id) in printed and "no_pickup_zone" in printed
    assert str(month_of_trips["unsettled"].id) in printed and "no_fare_entry" in printed
    assert "reconciliation with the ledger: ok" in printed
    assert "accessibility" in printed
    document = json.loads(summary.read_text())
    assert document["reconciliation"]["ok"] is True
    assert document["accessibility"]["wav"]["requests"] == 1
    assert {e["code"] for e in document["exceptions"]} == {"no_pickup_zone", "no_fare_entry"}


def test_the_command_refuses_a_month_it_cannot_read(new_york):
    with pytest.raises(CommandError, match="write YYYY-MM"):
        call_command("regulator_report", "--month", "October", stdout=io.StringIO())
    with pytest.raises(CommandError, match="the month is 01 to 12"):
        call_command("regulator_report", "--month", "2026-13", stdout=io.StringIO())


def test_a_trip_an_organisation_pays_for_has_its_fare_in_the_file_like_any_other(new_york):
    """The fare of an organisation's trip is posted to the organisation's receivable, not the rider's
    (docs/billing.md); the file's base fare reads both (it once read only the rider's and wrote 0)."""
    from backend.organisations.models import Organisation

    clinic = Organisation.objects.create(name="Clinic")
    rider, driver = RiderFactory(), DriverFactory()
    common = dict(
        rider=rider, driver=driver, pickup=MIDTOWN, dropoff=UPPER_EAST_SIDE, distance_m=5_000, duration_s=900
    )
    own = new_york_trip(new_york, **common, started_at=local(2026, 10, 6, 9, 0))
    billed = new_york_trip(new_york, **common, started_at=local(2026, 10, 7, 9, 0), organisation_id=clinic.id)
    report, reconciliation = regulator_report(month=OCTOBER)
    fares = {row.trip_id: row.money_minor["base_passenger_fare"] for row in report.records}
    assert fares[str(billed.id)] == fares[str(own.id)] > 0
    assert reconciliation.ok, reconciliation
