"""What the portal's pages draw, shaped from the selectors' answers: amounts already formatted, counts named
by the people in them, a driver's earnings grouped by week. No query here that a selector could own; the
ones here are the pages' arrangement of selectors' reads.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from backend.accounts.models import User
from backend.compliance.eligibility import document_standing, local_day
from backend.compliance.selectors import regulator_profile
from dispatch.money.earnings import EarningsLine, current_week, driver_earnings
from dispatch.money.payouts import driver_payouts
from dispatch.money.receipts import format_money
from dispatch.money.weekly import driver_week_compute, iso_week_label, week_start_of
from governance import selectors
from governance.models import Election

WEEKS_SHOWN = 8
PAYOUTS_SHOWN = 12
# Without a regulator's reminder days, a document is "due" this many days before it expires.
DEFAULT_DUE_WINDOW_DAYS = 30


def choice_label(choice: str) -> str:
    return {
        "yes": pgettext("vote", "Yes"),
        "no": pgettext("vote", "No"),
        "abstain": pgettext("vote", "Abstain"),
    }.get(choice, choice)


def proposal_status_label(status: str) -> str:
    return {
        "open": pgettext("proposal status", "Open"),
        "passed": pgettext("proposal status", "Passed"),
        "failed": pgettext("proposal status", "Failed"),
    }.get(status, status)


def proposal_kind_label(kind: str) -> str:
    return {
        "fare_policy": _("Fare policy (the board votes)"),
        "bylaw": _("Bylaw amendment"),
        "dividend": _("Patronage dividend"),
        "general": _("General resolution"),
    }.get(kind, kind)


def election_phase_label(phase: str) -> str:
    return {
        "nominating": _("Taking nominations"),
        "voting": _("Voting open"),
        "counting": _("Being counted"),
        "closed": _("Counted"),
    }.get(phase, phase)


# --- Elections ------------------------------------------------------------------------------------------


def count_method_label(method: str) -> str:
    return {
        "irv": _("instant-runoff voting"),
        "scottish-stv-2007": _("single transferable vote (the Scottish rules of 2007)"),
    }.get(method, method)


@dataclass(frozen=True)
class CountRow:
    name: str
    votes: str


@dataclass(frozen=True)
class CountStage:
    number: int
    action: str
    subject: str
    rows: list[CountRow]
    threshold: str
    elected: list[str]
    excluded: list[str]


def _action_label(action: str) -> str:
    # governance/counting.py's StageAction.
    return {
        "first_preferences": _("First preferences"),
        "surplus": _("Surplus transferred"),
        "exclusion": _("Excluded, votes transferred"),
    }.get(action, action.replace("_", " "))


def count_stages(election: Election) -> tuple[list[str], list[CountStage]]:
    """The elected (by name, in order of election) and each stage of the count, candidates by name."""
    result: dict[str, Any] = election.result or {}
    ids = [str(c) for c in result.get("candidates", [])]
    names = {str(k): v for k, v in selectors.member_names([uuid.UUID(c) for c in ids]).items()}

    def name(member_id: str | None) -> str:
        return names.get(str(member_id), _("unknown candidate")) if member_id else ""

    stages = []
    for stage in result.get("rounds", []):
        tallies: dict[str, str] = stage.get("tallies", {})
        rows = sorted(
            (CountRow(name=name(member_id), votes=votes) for member_id, votes in tallies.items()),
            key=lambda row: (-float(row.votes), row.name),
        )
        stages.append(
            CountStage(
                number=stage.get("number", 0),
                action=_action_label(str(stage.get("action", ""))),
                subject=name(stage.get("subject")),
                rows=rows,
                threshold=str(stage.get("threshold", "")),
                elected=[name(m) for m in stage.get("elected", [])],
                excluded=[name(m) for m in stage.get("excluded", [])],
            )
        )
    return [name(m) for m in result.get("elected", [])], stages


def ballots_by_name(record: dict[str, Any]) -> list[list[str]]:
    """The anonymous ballot record's rankings with candidates' names for their member ids (still sorted
    as published, so the order says nothing of who voted when)."""
    names = {
        str(k): v for k, v in selectors.member_names([uuid.UUID(c) for c in record["candidates"]]).items()
    }
    return [[names.get(str(c), str(c)) for c in ballot] for ballot in record["ballots"]]


# --- My work --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekEarnings:
    """One week of a driver's pay, against the floor: what the floor added to trips (per trip, and the
    weekly top-up) and, where the board's floor is weekly, the week's floor and what the trips paid."""

    label: str
    week_start: date
    week_end: date
    trips: int
    pay: str
    tips: str
    floor_top_ups: str
    topped_up: bool
    lifted_trips: int
    weekly_floor: str | None
    weekly_received: str | None


def weekly_earnings(*, driver_id: uuid.UUID, today: date | None = None) -> list[WeekEarnings]:
    """The last `WEEKS_SHOWN` weeks (Monday to Sunday, local), newest first, from one earnings read."""
    this_monday, _sunday = current_week(today)
    first_monday = this_monday - timedelta(weeks=WEEKS_SHOWN - 1)
    earnings = driver_earnings(
        driver_id=driver_id, date_from=first_monday, date_to=this_monday + timedelta(6)
    )
    currency = earnings.currency
    lines_by_week: dict[date, list[EarningsLine]] = defaultdict(list)
    for line in earnings.lines:
        lines_by_week[week_start_of(line.at)].append(line)
    weekly_top_up = {top_up.week_start: top_up.amount for top_up in earnings.top_ups}
    weeks = []
    for index in range(WEEKS_SHOWN):
        monday = this_monday - timedelta(weeks=index)
        lines = lines_by_week.get(monday, [])
        per_trip = sum(line.floor_top_up for line in lines)
        week_top_up = weekly_top_up.get(monday, 0)
        week = driver_week_compute(driver_id=driver_id, week_start=monday)
        weeks.append(
            WeekEarnings(
                label=iso_week_label(monday),
                week_start=monday,
                week_end=monday + timedelta(days=6),
                trips=sum(1 for line in lines if line.kind == "trip"),
                pay=format_money(sum(line.pay for line in lines) + week_top_up, currency),
                tips=format_money(sum(line.tip for line in lines), currency),
                floor_top_ups=format_money(per_trip + week_top_up, currency),
                topped_up=per_trip + week_top_up > 0,
                lifted_trips=sum(1 for line in lines if line.floor_top_up > 0),
                weekly_floor=format_money(week.floor, week.currency) if week else None,
                weekly_received=format_money(week.received, week.currency) if week else None,
            )
        )
    return weeks


@dataclass(frozen=True)
class PayoutRow:
    week_start: date
    amount: str
    status: str
    status_code: str
    paid_at: datetime | None


def payout_status_label(status: str) -> str:
    return {
        "pending": pgettext("payout status", "Pending"),
        "submitted": pgettext("payout status", "Sent"),
        "paid": pgettext("payout status", "Paid"),
        "failed": pgettext("payout status", "Failed: back in your balance"),
    }.get(status, status)


def payout_rows(*, driver_id: uuid.UUID) -> list[PayoutRow]:
    return [
        PayoutRow(
            week_start=payout.week_start,
            amount=format_money(payout.amount_minor, payout.currency),
            status=payout_status_label(payout.status),
            status_code=payout.status,
            paid_at=payout.paid_at,
        )
        for payout in driver_payouts(driver_id=driver_id).order_by("-week_start")[:PAYOUTS_SHOWN]
    ]


@dataclass(frozen=True)
class DocumentDue:
    label: str
    standing: str
    explanation: str
    expires_on: date | None


def documents_due(*, user: User, now: datetime | None = None) -> list[DocumentDue]:
    """The documents the driver must send or renew: missing, expired, waiting for review, or expiring
    within the regulator's earliest reminder (30 days without one)."""
    moment = now or timezone.now()
    profile = user.driver_profile
    vehicle = profile.active_vehicle
    standings = document_standing(
        driver_id=user.pk,
        vehicle_id=vehicle.id if vehicle else None,
        wheelchair_accessible=bool(vehicle and vehicle.wheelchair_accessible),
        at=moment,
    )
    reminder_days = regulator_profile().expiry_reminder_days
    window = timedelta(days=max(reminder_days) if reminder_days else DEFAULT_DUE_WINDOW_DAYS)
    today = local_day(moment)
    due = []
    for standing in standings:
        expires = standing.expires_on
        if standing.standing == "ok" and expires is not None and expires - today > window:
            continue
        explanation = {
            "missing": _("Not sent yet: send it before you can drive."),
            "expired": _("Expired: send the renewed document."),
            "pending": _("Sent, waiting for the co-op's review."),
            "ok": _("Expires soon: send the renewal now."),
        }[standing.standing]
        due.append(
            DocumentDue(
                label=standing.requirement.label,
                standing=standing.standing,
                explanation=explanation,
                expires_on=expires,
            )
        )
    return due


# --- The co-op's numbers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureRow:
    key: str
    label: str
    value: str


def _withheld() -> str:
    return _("withheld: too few drivers to publish it without singling anyone out")


def _share(value: object) -> str:
    if value is None:
        return _withheld()
    return f"{Decimal(str(value)) * 100:.1f}%"


def _seconds(value: object) -> str:
    if value is None:
        return _withheld()
    minutes, seconds = divmod(int(Decimal(str(value))), 60)
    return _("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": seconds}


def _amount(value: object) -> str:
    if not isinstance(value, dict):
        return _withheld()
    return format_money(int(value["amount"]), str(value["currency"]))


def figure_rows(figures: dict[str, Any]) -> list[FigureRow]:
    """The month's figures (dispatch/figures.py `coop_figures`, the body of `GET /api/v1/coop/figures`) as
    labelled rows; a figure the month withholds (computed over too few drivers) says so."""
    gini: dict[str, Any] = figures.get("hourly_earnings_gini") or {}
    wav: dict[str, Any] = figures.get("wav_response_times") or {}
    band = gini.get("band_hours")
    gini_value = gini.get("gini")
    gini_text = _withheld() if gini_value is None else str(gini_value)
    if gini_value is not None and isinstance(band, dict):
        gini_text = _("%(gini)s (%(drivers)s drivers online %(low)s to %(high)s hours)") % {
            "gini": gini_value,
            "drivers": gini.get("drivers_included", 0),
            "low": band.get("from"),
            "high": band.get("to"),
        }
    return [
        FigureRow("trips_completed", _("Trips completed"), str(figures.get("trips_completed", 0))),
        FigureRow("drivers_who_drove", _("Drivers who drove"), str(figures.get("drivers_who_drove", 0))),
        FigureRow("commission_kept", _("Commission the co-op kept"), _amount(figures.get("commission_kept"))),
        FigureRow(
            "floor_top_ups_paid",
            _("Floor top-ups paid to drivers"),
            _amount(figures.get("floor_top_ups_paid")),
        ),
        FigureRow(
            "trips_over_floor_share",
            _("Trips that paid the driver more than the floor"),
            _share(figures.get("trips_over_floor_share")),
        ),
        FigureRow(
            "hourly_earnings_gini",
            _("Inequality of hourly earnings (Gini: 0 is equal, 1 is unequal)"),
            gini_text,
        ),
        FigureRow("wav_requests", _("Wheelchair-accessible requests"), str(wav.get("requests", 0))),
        FigureRow(
            "wav_assignment_median",
            _("Wheelchair-accessible: median wait for a driver"),
            _seconds((wav.get("request_to_assignment_s") or {}).get("median")),
        ),
        FigureRow(
            "wav_pickup_median",
            _("Wheelchair-accessible: median wait for the pickup"),
            _seconds((wav.get("request_to_pickup_s") or {}).get("median")),
        ),
    ]


def offer_decile_shares(figures: dict[str, Any]) -> list[tuple[int, str]]:
    """Offer share by driver decile ((decile, share) pairs, the fewest offers first), empty when withheld."""
    shares = (figures.get("offer_share_by_decile") or {}).get("shares")
    if not isinstance(shares, list):
        return []
    return [(index + 1, _share(share)) for index, share in enumerate(shares)]
