"""A stateful property test of the money: random trips (distances, durations, WAV), tips, late and free
rider cancellations and the weekly floor job, on the real database through the real services, keeping
every invariant after every step:

- every entry balances (the commit-time trigger is fired at each step) and the journal balances overall;
- `ledger_verify` finds nothing wrong (entries, the journal per currency, captures against the journal);
- per-trip floor: every completed trip paid at least its floor; weekly floor: every settled driver-week
  received at least the week's floor, with exactly one top-up of exactly the shortfall;
- tips go in full to the driver; a late cancellation pays the driver the fee less the commission;
- captures, attempted (and sometimes declined) in any order between the other steps, charge the rider at
  most once per capture at the provider, once per idempotency key, and a succeeded one exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from backend.fares import ledger
from backend.fares.models import AccountKind, CaptureStatus, JournalEntry, PaymentCapture, Posting
from backend.fares.payments import TestModeProvider, capture_attempt
from backend.fares.pricing import PeriodTrip, cancellation_split, period_top_up, trip_floor
from backend.fares.selectors import policy_of
from dispatch.money.weekly import week_bounds, week_start_of, week_top_up_key, weekly_top_ups_post
from tests.factories import DriverFactory, RiderFactory
from tests.fares.builders import (
    adopt_policy,
    assert_ledger_consistent,
    cancel_by_rider,
    complete_trip,
    ensure_seed_policy,
    in_progress_trip,
    tip_trip,
)

WEEKS_BACK = 4


def event(note: str) -> None:
    """Tally what the examples covered (shown with --hypothesis-show-statistics); a no-op outside them."""
    if currently_in_test_context():
        hypothesis_event(note)


class MoneyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        # A Saturday morning: the first week ends soon, and it holds the 2025 US DST change (a 167-hour week).
        self.clock = datetime(2025, 3, 8, 8, 0, tzinfo=ZoneInfo(django_settings.TIME_ZONE))
        self.completed: list = []
        self.cancelled: list = []
        self.settled_weeks: set[date] = set()
        self.checked = 0  # trips and cancellations are immutable once posted: each is checked once
        self.checked_cancellations = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)

    @initialize(period=st.sampled_from(["trip", "week"]), per_trip=st.sampled_from(["0.00", "9.00"]))
    def adopt(self, period: str, per_trip: str) -> None:
        ensure_seed_policy()
        self.period = period
        self.version = adopt_policy(period, per_trip=per_trip)
        self.policy = policy_of(self.version)
        self.drivers = [DriverFactory(), DriverFactory(profile__wheelchair_accessible=True)]
        self.riders = [RiderFactory(), RiderFactory()]

    @rule(
        driver=st.integers(0, 1),
        rider=st.integers(0, 1),
        distance_m=st.integers(0, 40_000),
        duration_s=st.integers(0, 7_200),
        wav=st.booleans(),
        quoted_share=st.sampled_from([0.5, 1.0, 1.6]),
    )
    def complete_a_trip(self, driver, rider, distance_m, duration_s, wav, quoted_share) -> None:
        trip = in_progress_trip(
            rider=self.riders[rider],
            driver=self.drivers[driver],
            policy_version=self.version,
            wav=wav,
            estimated_distance_m=max(int(distance_m * quoted_share), 200),
            estimated_duration_s=max(int(duration_s * quoted_share), 60),
            started_at=self.clock - timedelta(seconds=duration_s),
        )
        done = complete_trip(trip, distance_m=distance_m, duration_s=duration_s, at=self.clock)
        subsidy = done.driver_pay_minor > done.fare_minor
        event(f"floor applied: {done.fare_breakdown['floor_applied']}; co-op subsidy: {subsidy}")
        self.completed.append(done)

    @precondition(lambda self: self.completed)
    @rule(data=st.data(), amount=st.integers(1, 5_000))
    def tip(self, data, amount) -> None:
        tip_trip(data.draw(st.sampled_from(self.completed)), amount)

    @rule(driver=st.integers(0, 1), rider=st.integers(0, 1), waited_s=st.integers(0, 400))
    def rider_cancels(self, driver, rider, waited_s) -> None:
        trip = in_progress_trip(
            rider=self.riders[rider],
            driver=self.drivers[driver],
            policy_version=self.version,
            status="assigned",
            started_at=self.clock,
            assigned_at=self.clock - timedelta(seconds=waited_s),
        )
        self.cancelled.append(cancel_by_rider(trip, at=self.clock))

    @precondition(lambda self: self.completed or self.cancelled)
    @rule(data=st.data(), declined=st.booleans())
    def a_capture_is_attempted(self, data, declined) -> None:
        open_captures = list(
            PaymentCapture.objects.exclude(
                status__in=[CaptureStatus.SUCCEEDED, CaptureStatus.VOIDED]
            ).order_by("created_at", "id")
        )
        if not open_captures:
            return
        capture = data.draw(st.sampled_from(open_captures))
        if declined:
            TestModeProvider.fail_for(rider_id=capture.rider_id, times=1)
        # Past any backoff (captures run on the wall clock, not the machine's).
        attempted = capture_attempt(capture_id=capture.id, now=timezone.now() + timedelta(days=1))
        TestModeProvider.clear(rider_id=capture.rider_id)
        event(f"capture {attempted.status}")

    @rule(hours=st.integers(1, 120))
    def time_passes(self, hours) -> None:
        before = self.clock
        self.clock += timedelta(hours=hours)
        if week_start_of(self.clock) != week_start_of(before):
            self._weekly_job()  # the hourly beat would have run it after midnight

    @rule()
    def weekly_job_runs_again(self) -> None:
        self._weekly_job()

    def _weekly_job(self) -> None:
        posted = weekly_top_ups_post(now=self.clock, weeks_back=WEEKS_BACK, grace=timedelta(0))
        event(f"weekly job posted {'some' if posted else 'no'} top-ups")
        current = week_start_of(self.clock)
        self.settled_weeks.update(current - timedelta(weeks=n) for n in range(1, WEEKS_BACK + 1))

    # --- Invariants ---------------------------------------------------------------------------------------

    @invariant()
    def journal_balances_and_balances_replay(self) -> None:
        assert_ledger_consistent()

    @invariant()
    def every_trip_pays_at_least_its_floor(self) -> None:
        if not hasattr(self, "policy"):
            return
        for trip in self.completed[self.checked :]:
            entry = JournalEntry.objects.get(key=f"trip:{trip.id}:fare")
            amounts = {
                (p.account.kind, p.debit_minor > 0): p.debit_minor + p.credit_minor
                for p in entry.postings.select_related("account")
            }
            pay = amounts.get((AccountKind.DRIVER_PAYABLE, False), 0)
            assert pay == trip.driver_pay_minor
            assert amounts.get((AccountKind.RIDER_RECEIVABLE, True), 0) == trip.fare_minor
            if self.period == "trip":
                floor = trip_floor(
                    self.policy,
                    distance_m=trip.measured_distance_m,
                    duration_s=trip.measured_duration_s,
                    wheelchair_accessible=trip.wheelchair_accessible,
                )
                assert pay >= floor, (trip.id, pay, floor)
        self.checked = len(self.completed)

    @invariant()
    def every_settled_week_pays_at_least_the_weekly_floor(self) -> None:
        if getattr(self, "period", None) != "week":
            return
        by_driver_week: dict[tuple, list] = defaultdict(list)
        for trip in self.completed:
            by_driver_week[(trip.driver_id, week_start_of(trip.completed_at))].append(trip)
        for (driver_id, week), trips in by_driver_week.items():
            key = week_top_up_key(driver_id, week)
            top_ups = (
                Posting.objects.filter(
                    entry__key=key, account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=driver_id
                ).aggregate(total=Sum("credit_minor"))["total"]
                or 0
            )
            if week not in self.settled_weeks:
                assert top_ups == 0  # nothing is paid for a week before it ends
                continue
            start, end = week_bounds(week)
            assert all(start <= trip.completed_at < end for trip in trips)
            period = period_top_up(
                self.policy,
                [
                    PeriodTrip(
                        distance_m=trip.measured_distance_m,
                        duration_s=trip.measured_duration_s,
                        pay=trip.driver_pay_minor,
                        wheelchair_accessible=trip.wheelchair_accessible,
                    )
                    for trip in trips
                ],
            )
            assert period.received + top_ups >= period.floor
            assert top_ups == period.top_up

    @invariant()
    def tips_go_in_full_to_the_driver(self) -> None:
        from dispatch.models import Tip

        for driver in getattr(self, "drivers", []):
            tipped = Tip.objects.filter(driver=driver).aggregate(total=Sum("amount_minor"))["total"] or 0
            held = ledger.balance_minor(kind=AccountKind.TIPS_HELD, owner_id=driver.id, currency="USD")
            assert held == tipped

    @invariant()
    def the_provider_charges_each_capture_at_most_once(self) -> None:
        for capture in PaymentCapture.objects.all():
            history = TestModeProvider.history(reference=capture.id)
            charged = [charge.amount_minor for charge in history.charges]
            assert len(set(charge.idempotency_key for charge in history.charges)) == len(charged)
            if capture.status == CaptureStatus.SUCCEEDED:
                assert charged == [capture.amount_minor]
            else:
                assert charged == []

    @invariant()
    def late_cancellations_pay_the_driver_less_commission(self) -> None:
        for trip in self.cancelled[self.checked_cancellations :]:
            split = cancellation_split(self.policy)
            late = (trip.ended_at - trip.assigned_at).total_seconds() > self.policy.rider.free_cancellation_s
            entry = JournalEntry.objects.filter(key=f"trip:{trip.id}:cancellation").first()
            assert (entry is not None) == late
            if late:
                paid = entry.postings.get(account__kind=AccountKind.DRIVER_PAYABLE).credit_minor
                assert (trip.cancellation_fee_minor, paid) == (split.fee, split.driver)
        self.checked_cancellations = len(self.cancelled)


def test_money_invariants_hold_under_random_operations(db):
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


@pytest.mark.parametrize("period", ["trip", "week"])
def test_a_busy_driver_week_keeps_the_invariants(db, period):
    """A deterministic long run: many trips over two weeks, the job run twice after each week."""
    machine = MoneyMachine()
    try:
        machine.adopt(period=period, per_trip="6.00")
        for day in range(14):
            for n in range(2):
                machine.complete_a_trip(
                    driver=n % 2,
                    rider=n % 2,
                    distance_m=800 + 1500 * n,
                    duration_s=400 + 300 * day,
                    wav=day % 3 == 0,
                    quoted_share=1.0,
                )
            machine.time_passes(hours=24)
            machine.weekly_job_runs_again()
        for check in (
            machine.journal_balances_and_balances_replay,
            machine.every_trip_pays_at_least_its_floor,
            machine.every_settled_week_pays_at_least_the_weekly_floor,
        ):
            check()
        weekly = JournalEntry.objects.filter(kind="weekly_floor_top_up").count()
        if period == "week":
            assert (
                weekly > 0
                and len(machine.settled_weeks & {week_start_of(t.completed_at) for t in machine.completed})
                == 2
            )
        else:
            assert weekly == 0
    finally:
        machine.teardown()
