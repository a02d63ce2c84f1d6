"""New York's High-Volume For-Hire Vehicle (HVFHV) trip-record format, as data and pure functions.

The TLC publishes every high-volume base's trips with the fields of its "High Volume FHV Trips Data
Dictionary"; `HVFHV_FIELDS` is that list in the order the TLC's published files carry it. The co-op's
monthly file uses the same names and order, one row a completed trip:

- times are local (the co-op's `TIME_ZONE`, New York's), `YYYY-MM-DD HH:MM:SS`, no offset, as the TLC's
  CSV files were;
- `PULocationID`/`DOLocationID` are taxi-zone LocationIDs (dispatch/compliance/zones.py); a dropoff outside
  every loaded zone is `OUTSIDE_NYC_LOCATION_ID` (the zone lookup table's "Outside of NYC");
- `trip_miles` to two decimals, `trip_time` in whole seconds, with the passenger aboard;
- money in dollars with two decimals; `Y`/`N` flags.

Which pass-through fee (the fare policy's `fees[].code`) fills which money column is `DEFAULT_FEE_COLUMNS`,
which a profile replaces with its own `trip_report_fee_columns` object.

No Django here (only the money helper, backend/fares/money.py): the report
(dispatch/compliance/trip_records.py) loads the values and calls these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from backend.fares.money import minor_to_decimal

HVFHV_FIELDS: tuple[str, ...] = (
    "hvfhs_license_num",
    "dispatching_base_num",
    "originating_base_num",
    "request_datetime",
    "on_scene_datetime",
    "pickup_datetime",
    "dropoff_datetime",
    "PULocationID",
    "DOLocationID",
    "trip_miles",
    "trip_time",
    "base_passenger_fare",
    "tolls",
    "bcf",
    "sales_tax",
    "congestion_surcharge",
    "airport_fee",
    "tips",
    "driver_pay",
    "shared_request_flag",
    "shared_match_flag",
    "access_a_ride_flag",
    "wav_request_flag",
    "wav_match_flag",
)
# The money columns fed by pass-through fee postings, and every money column of a row.
FEE_COLUMNS: tuple[str, ...] = ("tolls", "bcf", "sales_tax", "congestion_surcharge", "airport_fee")
MONEY_COLUMNS: tuple[str, ...] = ("base_passenger_fare", *FEE_COLUMNS, "tips", "driver_pay")
# The New York example policy's fee codes (docs/examples/fare-policy-new-york.json), and `tolls` for a
# `trip_amount` fee of that code once tolls are recorded.
DEFAULT_FEE_COLUMNS: Mapping[str, str] = {
    "nys_congestion": "congestion_surcharge",
    "black_car_fund": "bcf",
    "sales_tax": "sales_tax",
    "airport_access": "airport_fee",
    "tolls": "tolls",
}
FEE_COLUMNS_PROFILE_KEY = "trip_report_fee_columns"
# taxi_zone_lookup.csv: 264 "Unknown", 265 "Outside of NYC"; neither has a polygon in the shapefile.
OUTSIDE_NYC_LOCATION_ID = 265
METRES_PER_MILE = Decimal("1609.344")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
REPORT_CURRENCY = "USD"
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class TripRecord:
    """One row of the file, before formatting: times aware, money in minor units by column."""

    trip_id: str
    hvfhs_license_num: str
    dispatching_base_num: str
    originating_base_num: str
    request_datetime: datetime
    on_scene_datetime: datetime | None
    pickup_datetime: datetime
    dropoff_datetime: datetime
    pickup_location_id: int
    dropoff_location_id: int
    trip_distance_m: int
    trip_time_s: int
    money_minor: Mapping[str, int]  # every column of MONEY_COLUMNS
    shared_request: bool
    shared_match: bool
    access_a_ride: bool
    wav_request: bool
    wav_match: bool


def parse_month(text: str) -> date:
    """`YYYY-MM` as the month's first day; ValueError otherwise."""
    match = MONTH_PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a month: write YYYY-MM, e.g. 2026-10")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 2000:
        raise ValueError(f"{text!r} is not a month: the month is 01 to 12, the year 2000 or later")
    return date(year, month, 1)


def fee_columns(profile_extra: Mapping[str, object]) -> dict[str, str]:
    """The map from fee code to money column: the profile's `trip_report_fee_columns` if it has one (it
    replaces the default whole), else `DEFAULT_FEE_COLUMNS`. ValueError names what is wrong."""
    given = profile_extra.get(FEE_COLUMNS_PROFILE_KEY)
    if given is None:
        return dict(DEFAULT_FEE_COLUMNS)
    if not isinstance(given, dict) or not all(isinstance(code, str) and code for code in given):
        raise ValueError(f"{FEE_COLUMNS_PROFILE_KEY} must be an object from fee code to column")
    wrong = {code: column for code, column in given.items() if column not in FEE_COLUMNS}
    if wrong:
        raise ValueError(
            f"{FEE_COLUMNS_PROFILE_KEY}: {', '.join(f'{c} -> {v!r}' for c, v in sorted(wrong.items()))}: "
            f"a fee fills one of {', '.join(FEE_COLUMNS)}"
        )
    return {code: str(column) for code, column in given.items()}


def local_timestamp(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(TIMESTAMP_FORMAT)


def miles(distance_m: int) -> str:
    """Metres as miles, two decimals, half-up (a distance, not money: the money helper is not for it)."""
    return str((Decimal(distance_m) / METRES_PER_MILE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def dollars(amount_minor: int) -> str:
    """US cents as dollars with two decimals (`-96` -> `-0.96`): exact, nothing to round."""
    return str(minor_to_decimal(amount_minor, REPORT_CURRENCY))


def flag(value: bool) -> str:
    return "Y" if value else "N"


def csv_row(record: TripRecord, *, zone: ZoneInfo) -> list[str]:
    """The record's values in `HVFHV_FIELDS` order."""
    money = record.money_minor
    return [
        record.hvfhs_license_num,
        record.dispatching_base_num,
        record.originating_base_num,
        local_timestamp(record.request_datetime, zone),
        local_timestamp(record.on_scene_datetime, zone) if record.on_scene_datetime else "",
        local_timestamp(record.pickup_datetime, zone),
        local_timestamp(record.dropoff_datetime, zone),
        str(record.pickup_location_id),
        str(record.dropoff_location_id),
        miles(record.trip_distance_m),
        str(record.trip_time_s),
        *(dollars(money[column]) for column in MONEY_COLUMNS),
        flag(record.shared_request),
        flag(record.shared_match),
        flag(record.access_a_ride),
        flag(record.wav_request),
        flag(record.wav_match),
    ]
