"""The month's trip-record file for the regulator (New York's HVFHV format) and its reconciliation with the
ledger.

One row a trip completed in the month (local dates in `TIME_ZONE`), in pickup order. Times and miles come
from the trip; the pickup and dropoff zones from the regulator zones (zones.py); every money column from
the LEDGER, never from the trip row's copies:

- `base_passenger_fare`: the fare entry `trip:{id}:fare`, what it debited the rider less its pass-through
  fee credits (the fare charged);
- `tolls`, `bcf`, `sales_tax`, `congestion_surcharge`, `airport_fee`: the fare entry's `pass_through`
  credits, by fee code through the fee-to-column map (hvfhv.py);
- `tips`: the `tip:{id}` entries of the trip (`tips_held` credits), posted by the time the report is made;
- `driver_pay`: the fare entry's `driver_payable` credit.

Each is net of any reversal of its entry. A trip whose row cannot be produced (no fare entry, no zone for
its pickup, no pickup time, not in dollars) is an `exception` of the report, with what the ledger holds for
it, so it is listed and counted, never dropped. Fees whose code maps to no column are summed apart
(`unmapped_fees`).

`regulator_report_reconcile` sums each money column over the rows and the exceptions and compares it with
the ledger's own totals for the month's fare entries (by the `worked_at` they record, as driver pay for a
period is read, backend/fares/pay.py), aggregated in SQL, independently of the rows. `regulator_report`
builds and reconciles in one REPEATABLE READ snapshot so both see the same ledger.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, F, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.compliance.selectors import regulator_profile
from backend.errors import Unprocessable
from backend.fares.models import AccountKind, JournalEntry, Posting
from backend.fares.pay import TRIP_FARE, local_month_bounds, local_zone
from dispatch.compliance import hvfhv
from dispatch.compliance.zones import zone_of_points
from dispatch.models import Trip
from dispatch.money.payer import PAYER_RECEIVABLE_KINDS
from dispatch.state import TripStatus

TIP = "tip"
HVFHV_REPORT = "nyc_hvfhv"


class ExceptionCode:
    NO_FARE_ENTRY = "no_fare_entry"
    NO_PICKUP_ZONE = "no_pickup_zone"
    NO_PICKUP_TIME = "no_pickup_time"
    NOT_DOLLARS = "not_dollars"


@dataclass(frozen=True, slots=True)
class ReportException:
    """A trip completed in the month whose row could not be produced, and what the ledger holds for it
    (by money column, minor units; empty without a fare entry)."""

    trip_id: uuid.UUID
    code: str
    message: str
    completed_at: datetime
    money_minor: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TripRecordReport:
    month: date
    generated_at: datetime
    time_zone: str
    fee_columns: Mapping[str, str]
    records: tuple[hvfhv.TripRecord, ...]
    exceptions: tuple[ReportException, ...]
    unmapped_fees: Mapping[str, int]  # fee code -> minor units, over rows and exceptions
    dropoffs_outside_zones: int
    warnings: tuple[str, ...]

    @property
    def month_label(self) -> str:
        return self.month.strftime("%Y-%m")

    def column_total(self, column: str) -> int:
        return sum(record.money_minor[column] for record in self.records)


@dataclass(frozen=True, slots=True)
class ColumnReconciliation:
    column: str  # a money column, or `fee:{code}` for a fee no column takes
    rows_minor: int
    exceptions_minor: int
    ledger_minor: int

    @property
    def difference_minor(self) -> int:
        return self.ledger_minor - self.rows_minor - self.exceptions_minor

    @property
    def ok(self) -> bool:
        return self.difference_minor == 0


@dataclass(frozen=True)
class Reconciliation:
    month: date
    columns: tuple[ColumnReconciliation, ...]
    ledger_fare_entries: int
    report_fare_entries: int  # rows plus the exceptions that have a fare entry

    @property
    def ok(self) -> bool:
        return self.ledger_fare_entries == self.report_fare_entries and all(c.ok for c in self.columns)

    def column(self, name: str) -> ColumnReconciliation:
        return next(c for c in self.columns if c.column == name)


# -- building ---------------------------------------------------------------------------------------------


def report_fee_columns() -> dict[str, str]:
    """The fee-code-to-column map in force (the profile's `trip_report_fee_columns`, else the default)."""
    try:
        return hvfhv.fee_columns(regulator_profile().extra)
    except ValueError as error:
        raise Unprocessable(str(error), code="invalid_trip_report_fee_columns") from error


def regulator_report_build(*, month: date) -> TripRecordReport:
    """The HVFHV trip-record file of `month` (its first day), with its exceptions. Raises Unprocessable
    `trip_report_not_configured` when the regulator profile takes no such file."""
    profile = regulator_profile()
    if profile.trip_report != HVFHV_REPORT:
        raise Unprocessable(
            _(
                "The regulator profile %(code)r takes no HVFHV trip-record file (set "
                "ROCHDALE_REGULATOR_PROFILE, docs/compliance.md)."
            )
            % {"code": profile.code},
            code="trip_report_not_configured",
            details={"profile": profile.code},
        )
    columns = report_fee_columns()
    hvfhs_license = settings.ROCHDALE_REGULATOR_HVFHS_LICENSE_NUMBER
    base = profile.base_license_number
    warnings = []
    if not hvfhs_license:
        warnings.append("ROCHDALE_REGULATOR_HVFHS_LICENSE_NUMBER is not set: hvfhs_license_num is empty")
    if not base:
        warnings.append("the profile has no base licence number: the base columns are empty")

    start, end = local_month_bounds(month)
    month_trips = Trip.objects.filter(
        status=TripStatus.COMPLETED, completed_at__gte=start, completed_at__lt=end
    )
    trips = list(month_trips.select_related("vehicle").order_by(Coalesce("started_at", "completed_at"), "id"))
    trip_ids = month_trips.values("id")
    fares = _fare_money_by_trip(trip_ids)
    tips = _tips_by_trip(trip_ids)
    zones = zone_of_points([trip.pickup for trip in trips] + [trip.dropoff for trip in trips])
    pickup_zones, dropoff_zones = zones[: len(trips)], zones[len(trips) :]

    records: list[hvfhv.TripRecord] = []
    exceptions: list[ReportException] = []
    unmapped: dict[str, int] = defaultdict(int)
    outside = 0
    for trip, pickup_zone, dropoff_zone in zip(trips, pickup_zones, dropoff_zones, strict=True):
        assert trip.completed_at is not None  # completed trips have it (the status writer sets it)
        fare = fares.get(trip.id)
        if fare is None:
            exceptions.append(
                ReportException(
                    trip.id,
                    ExceptionCode.NO_FARE_ENTRY,
                    f"no fare entry trip:{trip.id}:fare in the ledger",
                    trip.completed_at,
                )
            )
            continue
        money = fare.columns(columns, tips=tips.get(trip.id, 0))
        for code, amount in fare.fees.items():
            if code not in columns:
                unmapped[code] += amount
        problem = _row_problem(trip, pickup_zone=pickup_zone, currency=fare.currency)
        if problem is not None:
            code, message = problem
            exceptions.append(ReportException(trip.id, code, message, trip.completed_at, money))
            continue
        if dropoff_zone is None:
            outside += 1
        assert trip.started_at is not None and pickup_zone is not None  # _row_problem checked them
        records.append(
            hvfhv.TripRecord(
                trip_id=str(trip.id),
                hvfhs_license_num=hvfhs_license,
                dispatching_base_num=base,
                # The co-op takes the request and dispatches it itself: one base for both.
                originating_base_num=base,
                request_datetime=trip.requested_at,
                on_scene_datetime=trip.arrived_at,
                pickup_datetime=trip.started_at,
                dropoff_datetime=trip.completed_at,
                pickup_location_id=pickup_zone,
                dropoff_location_id=dropoff_zone or hvfhv.OUTSIDE_NYC_LOCATION_ID,
                trip_distance_m=trip.measured_distance_m or 0,
                trip_time_s=trip.measured_duration_s
                if trip.measured_duration_s is not None
                else int((trip.completed_at - trip.started_at).total_seconds()),
                money_minor=money,
                # Rochdale has no pooled rides, and takes no trips for the MTA's Access-A-Ride.
                shared_request=False,
                shared_match=False,
                access_a_ride=False,
                wav_request=trip.wheelchair_accessible,
                wav_match=bool(trip.vehicle and trip.vehicle.wheelchair_accessible),
            )
        )
    if unmapped:
        warnings.append(
            "fees no column takes (summed apart): " + ", ".join(f"{code}" for code in sorted(unmapped))
        )
    return TripRecordReport(
        month=month,
        generated_at=timezone.now(),
        time_zone=settings.TIME_ZONE,
        fee_columns=columns,
        records=tuple(records),
        exceptions=tuple(exceptions),
        unmapped_fees=dict(unmapped),
        dropoffs_outside_zones=outside,
        warnings=tuple(warnings),
    )


def _row_problem(trip: Trip, *, pickup_zone: int | None, currency: str) -> tuple[str, str] | None:
    if currency != hvfhv.REPORT_CURRENCY:
        return ExceptionCode.NOT_DOLLARS, f"the fare entry is in {currency}, the file is in dollars"
    if trip.started_at is None:
        return ExceptionCode.NO_PICKUP_TIME, "the trip has no pickup time (started_at)"
    if pickup_zone is None:
        return (
            ExceptionCode.NO_PICKUP_ZONE,
            f"no regulator zone covers the pickup ({trip.pickup.y:.6f}, {trip.pickup.x:.6f})",
        )
    return None


@dataclass
class _FareMoney:
    """A fare entry's movements, net of reversals: rider debit, driver credit, each fee's credit."""

    currency: str = ""
    receivable: int = 0
    driver_payable: int = 0
    fees: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def columns(self, fee_columns: Mapping[str, str], *, tips: int) -> dict[str, int]:
        money = dict.fromkeys(hvfhv.MONEY_COLUMNS, 0)
        money["base_passenger_fare"] = self.receivable - sum(self.fees.values())
        for code, amount in self.fees.items():
            if code in fee_columns:
                money[fee_columns[code]] += amount
        money["tips"] = tips
        money["driver_pay"] = self.driver_payable
        return money


def _entry_postings(entries: QuerySet[JournalEntry]) -> QuerySet[Posting]:
    """The postings of `entries` and of every reversal of one of them."""
    return Posting.objects.filter(Q(entry__in=entries) | Q(entry__reverses__in=entries))


def _fare_money_by_trip(trip_ids: QuerySet[Trip]) -> dict[uuid.UUID, _FareMoney]:
    entries = JournalEntry.objects.filter(kind=TRIP_FARE, trip_id__in=trip_ids)
    found: dict[uuid.UUID, _FareMoney] = {}
    rows = _entry_postings(entries).values_list(
        Coalesce("entry__reverses__trip_id", "entry__trip_id"),
        "account__kind",
        "account__code",
        "account__currency",
        "debit_minor",
        "credit_minor",
    )
    for trip_id, kind, code, currency, debit_minor, credit_minor in rows:
        money = found.setdefault(trip_id, _FareMoney())
        money.currency = currency
        if kind in PAYER_RECEIVABLE_KINDS:
            money.receivable += debit_minor - credit_minor
        elif kind == AccountKind.DRIVER_PAYABLE:
            money.driver_payable += credit_minor - debit_minor
        elif kind == AccountKind.PASS_THROUGH:
            money.fees[code] += credit_minor - debit_minor
    return found


def _tips_by_trip(trip_ids: QuerySet[Trip]) -> dict[uuid.UUID, int]:
    entries = JournalEntry.objects.filter(kind=TIP, trip_id__in=trip_ids)
    tips: dict[uuid.UUID, int] = defaultdict(int)
    rows = _entry_postings(entries).filter(account__kind=AccountKind.TIPS_HELD)
    for trip_id, debit_minor, credit_minor in rows.values_list(
        Coalesce("entry__reverses__trip_id", "entry__trip_id"), "debit_minor", "credit_minor"
    ):
        tips[trip_id] += credit_minor - debit_minor
    return dict(tips)


# -- reconciling ------------------------------------------------------------------------------------------


def regulator_report_reconcile(report: TripRecordReport) -> Reconciliation:
    """Each money column (and each fee no column takes) summed over the report's rows and exceptions,
    against the ledger's totals for the month's fare entries and the tips on their trips."""
    start, end = local_month_bounds(report.month)
    worked_at = Coalesce(Cast(KT("metadata__worked_at"), DateTimeField()), F("created_at"))
    month_fares = JournalEntry.objects.annotate(worked_at=worked_at).filter(
        kind=TRIP_FARE, worked_at__gte=start, worked_at__lt=end
    )
    ledger: dict[str, int] = defaultdict(int)
    fees_by_code: dict[str, int] = defaultdict(int)
    totals = (
        _entry_postings(month_fares)
        .values("account__kind", "account__code")
        .annotate(debits=Sum("debit_minor"), credits=Sum("credit_minor"))
        .order_by()
    )
    for total in totals:
        kind, code = total["account__kind"], total["account__code"]
        debits, credits = int(total["debits"] or 0), int(total["credits"] or 0)
        if kind in PAYER_RECEIVABLE_KINDS:
            ledger["base_passenger_fare"] += debits - credits
        elif kind == AccountKind.DRIVER_PAYABLE:
            ledger["driver_pay"] += credits - debits
        elif kind == AccountKind.PASS_THROUGH:
            fees_by_code[code] += credits - debits
    ledger["base_passenger_fare"] -= sum(fees_by_code.values())
    for code, amount in fees_by_code.items():
        column = report.fee_columns.get(code)
        ledger[column if column else f"fee:{code}"] += amount
    tip_entries = JournalEntry.objects.filter(kind=TIP, trip_id__in=month_fares.values("trip_id"))
    tip_postings = _entry_postings(tip_entries).filter(account__kind=AccountKind.TIPS_HELD)
    tip_totals = tip_postings.aggregate(debits=Sum("debit_minor"), credits=Sum("credit_minor"))
    ledger["tips"] = int(tip_totals["credits"] or 0) - int(tip_totals["debits"] or 0)

    with_money = [e for e in report.exceptions if e.money_minor]
    columns = [
        ColumnReconciliation(
            column=column,
            rows_minor=report.column_total(column),
            exceptions_minor=sum(e.money_minor[column] for e in with_money),
            ledger_minor=ledger.get(column, 0),
        )
        for column in hvfhv.MONEY_COLUMNS
    ]
    # A fee no column takes is counted in the report apart (rows and exceptions together).
    for code in sorted(set(report.unmapped_fees) | {c for c in fees_by_code if c not in report.fee_columns}):
        columns.append(
            ColumnReconciliation(
                column=f"fee:{code}",
                rows_minor=report.unmapped_fees.get(code, 0),
                exceptions_minor=0,
                ledger_minor=ledger.get(f"fee:{code}", 0),
            )
        )
    return Reconciliation(
        month=report.month,
        columns=tuple(columns),
        ledger_fare_entries=month_fares.count(),
        report_fare_entries=len(report.records) + len(with_money),
    )


@contextmanager
def ledger_snapshot() -> Iterator[None]:
    """One REPEATABLE READ, read-only snapshot (or the caller's transaction, when already in one)."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def regulator_report(*, month: date) -> tuple[TripRecordReport, Reconciliation]:
    """The month's file and its reconciliation, from one snapshot of the database."""
    with ledger_snapshot():
        report = regulator_report_build(month=month)
        return report, regulator_report_reconcile(report)


# -- writing ----------------------------------------------------------------------------------------------


def trip_records_csv(report: TripRecordReport) -> str:
    """The file: the header (`HVFHV_FIELDS`), then a row a record; CRLF line ends, as RFC 4180 says."""
    zone = local_zone()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(hvfhv.HVFHV_FIELDS)
    for record in report.records:
        writer.writerow(hvfhv.csv_row(record, zone=zone))
    return out.getvalue()


def report_summary(report: TripRecordReport, reconciliation: Reconciliation) -> dict[str, object]:
    """The report's figures as JSON-ready data: counts, exceptions, fees apart, warnings, reconciliation."""
    return {
        "month": report.month_label,
        "generated_at": report.generated_at.isoformat(),
        "time_zone": report.time_zone,
        "rows": len(report.records),
        "dropoffs_outside_zones": report.dropoffs_outside_zones,
        "fee_columns": dict(report.fee_columns),
        "exceptions": [
            {
                "trip_id": str(e.trip_id),
                "code": e.code,
                "message": e.message,
                "completed_at": e.completed_at.isoformat(),
                "amounts": {column: hvfhv.dollars(amount) for column, amount in e.money_minor.items()},
            }
            for e in report.exceptions
        ],
        "unmapped_fees": {
            code: hvfhv.dollars(amount) for code, amount in sorted(report.unmapped_fees.items())
        },
        "warnings": list(report.warnings),
        "reconciliation": {
            "ok": reconciliation.ok,
            "ledger_fare_entries": reconciliation.ledger_fare_entries,
            "report_fare_entries": reconciliation.report_fare_entries,
            "columns": [
                {
                    "column": c.column,
                    "rows": hvfhv.dollars(c.rows_minor),
                    "exceptions": hvfhv.dollars(c.exceptions_minor),
                    "ledger": hvfhv.dollars(c.ledger_minor),
                    "difference": hvfhv.dollars(c.difference_minor),
                    "ok": c.ok,
                }
                for c in reconciliation.columns
            ],
        },
    }
