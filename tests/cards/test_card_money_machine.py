"""A stateful property test of card money: riders save cards (some declined whenever charged), request trips
through `trip_request` (the hold), are driven, completed (sometimes far past the quote and the hold),
cancelled late or free, tip; captures are attempted in any order between the other steps (some answers are
lost on the way back), holds lapse at Stripe, staff refund random amounts (some too much), Stripe's
webhook events arrive out of order and twice, time passes and the weekly payout run pays finished weeks.
Everything runs on the real database, the real services and a real localstripe (the Stripe provider);
after every step:

- `ledger_verify` finds nothing wrong and every entry balances;
- per trip, what Stripe kept (each intent's charge less what was refunded of it) is what the ledger says
  was collected less what it paid back, and no intent was refunded more than it took;
- a hold is never captured above its amount, and a released hold's intent keeps nothing;
- a refund never exceeds what the trip charged, and never takes a driver's pay below the trip's floor;
- each driver-week is paid once, and `payouts_reconcile` agrees with the ledger for every week run;
- each webhook event is stored once, counting every delivery.

Besides, each step checks its own outcome against the model: a capture succeeds exactly when the card it
needs can pay (an authorised hold covers it, or the rider's default card is good), a refused charge makes
the rider owe, and a rider who owes gets 402 `payment_overdue` on every request until they pay.

Why a sibling of tests/fares/test_ledger_machine.py rather than an extension: that machine's trips are
built rows settled on the `test` provider (its invariants read the provider's Redis history), with a
clock of its own passed as `at=`; here trips are requested through the real service against a real Stripe,
and the money's timestamps must move with the payout weeks. Both machines share the ledger invariants
through tests/fares/builders.py.

Time. Stripe (localstripe) and the webhook signatures run on the wall clock; everything Rochdale stamps
(`created_at` of every entry, hold and capture, the payout run's "now", the capture backoff) comes from
Django's `timezone.now`, which this test reads from `DjangoClock`: each example starts on the same Monday
morning (weeks ahead of today, so weeks and the policy in force are the same every run), the clock moves a
millisecond at each reading, and `time_passes` advances it. A hold's seven-day lapse at Stripe is modelled
by cancelling its intent at localstripe before the capture (`lapsed=True`), which is what Stripe does.

Determinism: derandomized examples, an empty localstripe and a database savepoint per example, and a clock
that does not depend on how fast the machine runs. Shrinking is off: it replays whole programs against real
services, past pytest's timeout; a failure prints its program as found.
localstripe never deduplicates by idempotency key, so answers are only lost for a hold's capture, whose
retry reads the intent and never captures twice (tests/cards/test_idempotency_keys.py shows the keys of the
others on the wire).
"""

from __future__ import annotations

import contextlib
import copy
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as time_of_day
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, Phase, settings
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
from rest_framework.test import APIClient

from backend.accounts.models import User
from backend.cards import customers
from backend.cards.holds import holds_release_due, trip_hold_release
from backend.cards.models import CardHold, HoldStatus, WebhookEvent
from backend.cards.webhooks import webhook_receive
from backend.errors import PaymentRequired, Unprocessable
from backend.fares.models import (
    AccountKind,
    CapturePurpose,
    CaptureStatus,
    JournalEntry,
    PaymentCapture,
    Posting,
)
from backend.fares.payments import capture_attempt, captures_retry_due, overdue_captures, overdue_pay
from backend.fares.policy import DEFAULT_POLICY_DOCUMENT
from backend.fares.selectors import policy_of
from backend.fares.services import policy_version_create
from dispatch.models import Payout, Trip
from dispatch.money.payouts import last_finished_week, payouts_reconcile, payouts_run
from dispatch.money.refunds import refund_post
from dispatch.money.weekly import WEEK, week_start_of
from dispatch.selectors import trip_load
from dispatch.services.transitions import trip_transition
from dispatch.services.trips import trip_cancel, trip_tip
from dispatch.state import TripStatus
from tests.cards.localstripe import DECLINED_WHEN_CHARGED, VISA, LocalStripe, signed_event
from tests.cards.recording_proxy import RecordingProxy, recording_proxy
from tests.cards.test_card_payments import save_card
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import assert_ledger_consistent, complete_trip, ensure_seed_policy, policy_document
from tests.mobile_api.builders import assign, ensure_service_area, requested_trip
from tests.payouts.builders import bank_account
from tests.payouts.conftest import ACH_SETTINGS
from tests.receipts.builders import NEW_YORK_FEES

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/payments/stripe/webhook"
CARDS = {"good": VISA, "declined": DECLINED_WHEN_CHARGED}
RIDERS, DRIVERS = 3, 2
MAX_CARDS_SAVED = 4  # per example: saving a card is eight calls to Stripe
# The third rider has no card until a rule saves one (good or declined).
STARTING_CARDS = ("good", "good", None)
# Whether the trip's hold lapsed at Stripe before its capture (one time in four).
LAPSED = st.sampled_from([False, False, False, True])
_OPEN = (CaptureStatus.PENDING, CaptureStatus.FAILED)
_FROM_HOLD = (CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE)
# Refunds Rochdale makes: staff refunds (rochdale_capture) and overcharges given back (rochdale_return).
_OUR_REFUND_TAGS = {"rochdale_capture", "rochdale_return"}


def event(note: str) -> None:
    """Tally what the examples covered (shown with --hypothesis-show-statistics); a no-op outside them."""
    if currently_in_test_context():
        hypothesis_event(note)


# --- Django's clock, moved ahead of the wall clock -------------------------------------------------------


class _DatetimeType(type):
    """Keeps `isinstance(x, datetime)` true for every datetime inside django.utils.timezone."""

    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, datetime)


class DjangoClock:
    """While installed, `django.utils.timezone.now` (every default `now` of the models and services) reads
    this clock instead of the wall clock: it stands where the machine put it and moves a millisecond at each
    reading, so stamps stay in order and a replayed example sees the same times (the wall clock would make
    backoffs and due dates depend on how fast the machine ran). `time.time()` is left alone, which
    localstripe and the webhook signatures share."""

    TICK = timedelta(milliseconds=1)

    def __init__(self) -> None:
        self.moment = datetime.now(tz=UTC)

    def now(self) -> datetime:
        return django_timezone.now()

    def move_to(self, moment: datetime) -> None:
        self.moment = moment.astimezone(UTC)

    def advance(self, by: timedelta) -> None:
        self.moment += by

    def _read(self, tz: tzinfo | None) -> datetime:
        self.moment += self.TICK
        return self.moment.astimezone(tz) if tz is not None else self.moment.astimezone().replace(tzinfo=None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[DjangoClock]:
        clock = self

        class ClockDatetime(datetime, metaclass=_DatetimeType):
            @classmethod
            def now(cls, tz: tzinfo | None = None) -> datetime:
                return clock._read(tz)

        with mock.patch.object(django_timezone, "datetime", ClockDatetime):
            yield self


def example_start() -> datetime:
    """10:00 on a Monday at least two weeks ahead: the same weekday and hour for every example and run."""
    local = ZoneInfo(django_settings.TIME_ZONE)
    monday = week_start_of(datetime.now(tz=local) + timedelta(days=14))
    return datetime.combine(monday, time_of_day(10, 0), tzinfo=local)


# --- The model ---------------------------------------------------------------------------------------------


@dataclass
class RiderModel:
    user: User
    card: str | None = None  # the default card's kind: "good", "declined", or no card
    refused: bool = False  # refused at their last request, and nothing changed since: they wait


@dataclass
class TripModel:
    id: uuid.UUID
    rider: int
    status: str = TripStatus.REQUESTED
    driver: int | None = None
    charged: int = 0  # what the trip charged the rider (fare and fees, or the late-cancellation fee)
    refunded: int = 0
    fare: int = 0
    tips: int = 0

    @property
    def refundable(self) -> int:
        return self.charged - self.refunded


class CardMoneyMachine(RuleBasedStateMachine):
    def __init__(self, localstripe: LocalStripe, proxy: RecordingProxy, clock: DjangoClock) -> None:
        super().__init__()
        self.localstripe = localstripe
        self.proxy = proxy
        self.clock = clock
        localstripe.flush()
        clock.move_to(example_start())
        self.start_week: date = week_start_of(clock.now())
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.riders: list[RiderModel] = []
        self.trips: list[TripModel] = []
        self.paid_weeks: set[date] = set()
        self.deliveries: dict[str, int] = defaultdict(int)
        self.refund_events: dict[str, dict] = {}
        self.cards_saved = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)

    @initialize(
        driver_pay=st.sampled_from(["kept", "shared_above_floor"]),
        floor_binds=st.booleans(),
        fees=st.booleans(),
        margin=st.sampled_from(["0.00", "0.25"]),
    )
    def adopt(self, driver_pay: str, floor_binds: bool, fees: bool, margin: str) -> None:
        ensure_seed_policy()
        ensure_service_area()
        document = policy_document("trip") if floor_binds else copy.deepcopy(DEFAULT_POLICY_DOCUMENT)
        document["refunds"] = {"driver_pay": driver_pay}
        document["payments"] = {"authorization_margin_rate": margin}
        if fees:
            document["fees"] = NEW_YORK_FEES
        policy_version_create(document=document, effective_at=None, source="founding")
        self.drivers = [DriverFactory() for _ in range(DRIVERS)]
        for driver in self.drivers:
            bank_account(driver)
        self.riders = [RiderModel(RiderFactory()) for _ in range(RIDERS)]
        for model, kind in zip(self.riders, STARTING_CARDS, strict=True):
            if kind is not None:
                save_card(self.localstripe, model.user, number=CARDS[kind])
                model.card = kind
        self.staff = StaffFactory()

    # --- Riders and trips ------------------------------------------------------------------------------

    @precondition(lambda self: self.cards_saved < MAX_CARDS_SAVED)
    @rule(rider=st.integers(0, RIDERS - 1), kind=st.sampled_from(["good", "good", "declined"]))
    def a_rider_saves_a_card(self, rider: int, kind: str) -> None:
        """A new card becomes the rider's default (a good one pays what they owe on the next try)."""
        self.cards_saved += 1
        model = self.riders[rider]
        card = save_card(self.localstripe, model.user, number=CARDS[kind])
        customers.payment_method_default_set(rider_id=model.user.id, payment_method_id=card.id)
        model.card, model.refused = kind, False

    @precondition(lambda self: any(self._free_rider(n) for n in range(len(self.riders))))
    @rule(data=st.data())
    def a_rider_requests_a_trip(self, data: st.DataObject) -> None:
        rider = data.draw(st.sampled_from([n for n in range(len(self.riders)) if self._free_rider(n)]))
        model = self.riders[rider]
        owes = overdue_captures(rider_id=model.user.id).exists()
        expected = (
            "payment_overdue"
            if owes
            else "payment_method_required"
            if model.card is None
            else "payment_declined"
            if model.card == "declined"
            else None
        )
        holds_before = CardHold.objects.filter(rider_id=model.user.id).count()
        try:
            trip = requested_trip(model.user)
        except PaymentRequired as refused:
            model.refused = True
            event(f"request refused: {refused.code}")
            assert refused.code == expected, (refused.code, expected)
            made = CardHold.objects.filter(rider_id=model.user.id).count() - holds_before
            # A rider who owes is refused before any card is asked; a declined card leaves a declined hold.
            assert made == (1 if expected == "payment_declined" else 0)
            return
        assert expected is None, f"the request went ahead where {expected} was due"
        hold = CardHold.objects.get(trip_id=trip.id)
        assert hold.status == HoldStatus.AUTHORIZED, hold.last_error
        self.trips.append(TripModel(id=trip.id, rider=rider))

    @precondition(lambda self: self._trips("requested") and self._free_drivers())
    @rule(data=st.data(), waited_s=st.sampled_from([0, 30, 600]))
    def a_driver_takes_a_trip(self, data: st.DataObject, waited_s: int) -> None:
        model = data.draw(st.sampled_from(self._trips("requested")))
        driver = data.draw(st.sampled_from(self._free_drivers()))
        assign(
            trip_load(model.id),
            self.drivers[driver],
            assigned_at=self.clock.now() - timedelta(seconds=waited_s),
        )
        model.status, model.driver = TripStatus.ASSIGNED, driver

    @precondition(lambda self: self._trips("assigned") or (self._trips("requested") and self._free_drivers()))
    @rule(data=st.data(), stretch=st.sampled_from([0.7, 1.0, 1.0, 1.3, 4.0]), lapsed=LAPSED)
    def a_trip_is_completed(self, data: st.DataObject, stretch: float, lapsed: bool) -> None:
        """Driven (taken now by a free driver if nobody had it) and completed; a stretch above 1 is a detour
        past the quote (4: past any hold). The fare is captured later, by a rule: a hold that lapses before
        it is captured lapsed before or after the completion alike."""
        takeable = self._trips("requested") if self._free_drivers() else []
        model = data.draw(st.sampled_from(self._trips("assigned") + takeable))
        if model.status == TripStatus.REQUESTED:
            model.driver = data.draw(st.sampled_from(self._free_drivers()))
            assign(trip_load(model.id), self.drivers[model.driver])
        if lapsed:
            self._lapse_hold(model)
        driver = self.drivers[model.driver].id
        for status in (TripStatus.ARRIVED, TripStatus.IN_PROGRESS):
            trip_transition(trip_id=model.id, to=status, actor_id=driver)
        trip = trip_load(model.id)
        done = complete_trip(
            trip,
            distance_m=int(trip.estimated_distance_m * stretch),
            duration_s=int(trip.estimated_duration_s * stretch),
        )
        model.status, model.charged, model.fare = (
            TripStatus.COMPLETED,
            done.fare_breakdown["total"],
            done.fare_minor,
        )
        capture = PaymentCapture.objects.get(trip_id=model.id, purpose=CapturePurpose.FARE)
        assert capture.amount_minor == model.charged

    @precondition(lambda self: self._trips("requested", "assigned"))
    @rule(data=st.data(), lapsed=LAPSED)
    def the_rider_cancels(self, data: st.DataObject, lapsed: bool) -> None:
        model = data.draw(st.sampled_from(self._trips("requested", "assigned")))
        if lapsed:
            self._lapse_hold(model)
        trip = trip_load(model.id)
        free_s = policy_of(trip.policy_version).rider.free_cancellation_s
        late = trip.assigned_at is not None and (self.clock.now() - trip.assigned_at).total_seconds() > free_s
        cancelled = trip_cancel(trip_id=model.id, actor_id=self.riders[model.rider].user.id)
        assert bool(cancelled.cancellation_fee_minor) == late
        model.status, model.charged = TripStatus.CANCELLED, cancelled.cancellation_fee_minor or 0

    @precondition(lambda self: self._trips("completed"))
    @rule(data=st.data(), share=st.sampled_from([0.05, 0.2, 1.0]))
    def the_rider_tips(self, data: st.DataObject, share: float) -> None:
        model = data.draw(st.sampled_from(self._trips("completed")))
        amount = max(1, int((model.fare - model.tips) * share))
        if model.tips + amount > model.fare:
            return
        trip_tip(
            trip_id=model.id, rider_id=self.riders[model.rider].user.id, amount_minor=amount, currency="USD"
        )
        model.tips += amount

    @precondition(lambda self: self._trips("completed", "cancelled"))
    @rule(data=st.data(), share=st.sampled_from([0.1, 0.5, 1.0]), too_much=st.sampled_from([0, 0, 1, 250]))
    def staff_refund(self, data: st.DataObject, share: float, too_much: int) -> None:
        ended = self._trips("completed", "cancelled")
        model = data.draw(st.sampled_from([trip for trip in ended if trip.refundable] or ended))
        amount = max(int(model.refundable * share), 1) + too_much
        try:
            refund_post(trip_id=model.id, amount_minor=amount, reason="Staff refund", staff_id=self.staff.id)
        except Unprocessable as refused:
            event("refund refused: exceeds the charge")
            assert refused.code == "refund_exceeds_charge"
            assert amount > model.refundable, (amount, model.refundable)
            assert refused.details["refundable"] == model.refundable
            return
        assert amount <= model.refundable, (amount, model.refundable)
        model.refunded += amount
        event(f"refund of a {model.status} trip")

    # --- Stripe and the capture machinery --------------------------------------------------------------

    @precondition(lambda self: self._trips("completed", "cancelled"))
    @rule(data=st.data())
    def a_capture_is_attempted(self, data: st.DataObject) -> None:
        due = list(
            PaymentCapture.objects.filter(
                trip_id__in=[t.id for t in self.trips],
                status__in=_OPEN,
                next_attempt_at__lte=self.clock.now(),
            ).order_by("created_at", "id")
        )
        if not due:
            return
        capture = data.draw(st.sampled_from(due))
        expected_ok = self._capture_would_succeed(capture)
        attempted = capture_attempt(capture_id=capture.id, now=self.clock.now())
        event(f"{capture.purpose} capture {attempted.status}")
        if expected_ok:
            assert attempted.status == CaptureStatus.SUCCEEDED, attempted.last_error
        else:
            assert attempted.status == CaptureStatus.FAILED, attempted.status
            assert attempted.provider_refusals == capture.provider_refusals + 1  # a refusal: the rider owes
        self._note_refund_events()

    @precondition(lambda self: self._trips("completed", "cancelled"))
    @rule(data=st.data())
    def a_hold_capture_answer_is_lost(self, data: st.DataObject) -> None:
        """Stripe captures the hold, then the connection drops before its answer: the attempt cannot tell,
        and a retry must neither capture twice nor be taken for a refusal."""
        candidates = []
        for capture in PaymentCapture.objects.filter(
            trip_id__in=[t.id for t in self.trips],
            purpose__in=_FROM_HOLD,
            status__in=_OPEN,
            next_attempt_at__lte=self.clock.now(),
        ).order_by("created_at", "id"):
            hold = CardHold.objects.filter(trip_id=capture.trip_id, status=HoldStatus.AUTHORIZED).first()
            if (
                hold is not None
                and capture.amount_minor <= hold.amount_minor
                and self.localstripe.payment_intent(hold.payment_intent_id)["status"] == "requires_capture"
            ):
                candidates.append((capture, hold))
        if not candidates:
            return
        capture, hold = data.draw(st.sampled_from(candidates))
        self.proxy.lose_answers(rf"^/v1/payment_intents/{hold.payment_intent_id}/capture$")
        with override_settings(STRIPE_API_BASE=self.proxy.url):
            attempted = capture_attempt(capture_id=capture.id, now=self.clock.now())
        assert attempted.status == CaptureStatus.FAILED
        assert attempted.provider_refusals == capture.provider_refusals  # unknown, not refused
        assert self.localstripe.captured_minor(hold.payment_intent_id) == capture.amount_minor
        event("a hold capture's answer was lost")

    @precondition(lambda self: self._trips("completed", "cancelled"))
    @rule()
    def the_retry_sweep_runs(self) -> None:
        captures_retry_due(now=self.clock.now())
        self._note_refund_events()

    @precondition(lambda self: any(self._owes(n) for n in range(len(self.riders))))
    @rule(data=st.data())
    def a_rider_pays_what_they_owe(self, data: st.DataObject) -> None:
        rider = data.draw(st.sampled_from([n for n in range(len(self.riders)) if self._owes(n)]))
        model = self.riders[rider]
        owed = list(overdue_captures(rider_id=model.user.id))
        expected = {capture.id for capture in owed if not self._capture_would_succeed(capture)}
        still = overdue_pay(rider_id=model.user.id)
        model.refused = bool(still)
        assert {capture.id for capture in still} == expected
        self._note_refund_events()

    @precondition(lambda self: self._trips("completed", "cancelled"))
    @rule(data=st.data(), sweep=st.booleans())
    def holds_are_released(self, data: st.DataObject, sweep: bool) -> None:
        """The release after a trip ends (its task), or the sweep a few minutes later."""
        if sweep:
            holds_release_due(now=self.clock.now() + timedelta(minutes=5))
        else:
            trip_hold_release(trip_id=data.draw(st.sampled_from(self._trips("completed", "cancelled"))).id)

    @precondition(lambda self: self.trips)
    @rule(data=st.data(), over_http=st.booleans(), twice=st.booleans())
    def stripe_delivers_an_event(self, data: st.DataObject, over_http: bool, twice: bool) -> None:
        events = self._stripe_events()
        if not events:
            return
        chosen = data.draw(st.sampled_from(events))
        event(f"webhook {chosen['type']} delivered {'twice' if twice else 'once'}")
        for _ in range(2 if twice else 1):
            body, signature = signed_event(chosen)
            if over_http:
                response = APIClient().post(
                    WEBHOOK, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
                )
                assert response.status_code == 200, response.content
            else:
                webhook_receive(payload=body, signature=signature)
            self.deliveries[chosen["id"]] += 1

    # --- Time and the weekly payout ----------------------------------------------------------------------

    @precondition(lambda self: self.trips)
    @rule(hours=st.sampled_from([1, 6, 30, 80, 170]))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))
        for rider in self.riders:
            rider.refused = rider.refused and rider.card != "good"  # the sweep may have collected a debt

    @precondition(lambda self: last_finished_week(self.clock.now()) >= self.start_week)
    @rule()
    def the_weekly_payout_runs(self) -> None:
        week = self.start_week
        while week <= last_finished_week(self.clock.now()):
            report = payouts_run(week_start=week, now=self.clock.now())
            event(f"payout run: {report.count('created')} created")
            self.paid_weeks.add(week)
            week += WEEK

    # --- Invariants ----------------------------------------------------------------------------------------

    @invariant()
    def the_ledger_verifies(self) -> None:
        assert_ledger_consistent()

    @invariant()
    def stripe_kept_what_the_ledger_collected(self) -> None:
        if not self.trips:
            return
        holds = {str(hold.id): hold for hold in CardHold.objects.filter(rider__in=self._rider_ids())}
        trip_of_capture = {
            str(capture_id): trip_id
            for capture_id, trip_id in PaymentCapture.objects.filter(rider__in=self._rider_ids()).values_list(
                "id", "trip_id"
            )
        }
        kept: dict[uuid.UUID, int] = defaultdict(int)
        intents = self._stripe_intents()
        for intent in intents:
            metadata = intent.get("metadata") or {}
            hold = holds.get(metadata.get("rochdale_hold", ""))
            trip_id = (
                hold.trip_id if hold is not None else trip_of_capture.get(metadata.get("rochdale_capture"))
            )
            charge = intent.get("latest_charge")
            if hold is not None:
                assert intent["amount"] == hold.amount_minor
                assert hold.captured_minor <= hold.amount_minor
                if hold.status == HoldStatus.RELEASED:  # cancelled, or captured and then given back in full
                    assert intent["status"] == "canceled" or _kept(intent) == 0, (hold.id, intent["status"])
            if intent["status"] != "succeeded" or not charge:
                continue
            assert charge["amount_refunded"] <= charge["amount"], f"{intent['id']} refunded more than it took"
            assert trip_id is not None, f"{intent['id']} took money for nothing of ours"
            kept[trip_id] += _kept(intent)
        collected = defaultdict(int)
        for trip_id, debit, credit in Posting.objects.filter(
            entry__trip_id__in=[t.id for t in self.trips],
            entry__kind__in=["payment_capture", "refund_payout"],
            account__kind=AccountKind.CASH_CLEARING,
        ).values_list("entry__trip_id", "debit_minor", "credit_minor"):
            collected[trip_id] += debit - credit
        # Money Stripe took from a hold for a capture the ledger has not recorded is in flight: the answer
        # was lost (the retry or the event records it), or the fare's excess was refused (the retry takes
        # the rest), or a refund voided the capture meanwhile and the hold awaits its release (which gives it
        # back). A voided capture whose hold is no longer authorised has nothing in flight.
        by_id = {intent["id"]: intent for intent in intents}
        from_hold = PaymentCapture.objects.filter(
            trip_id__in=[t.id for t in self.trips], purpose__in=_FROM_HOLD
        )
        recorded = set(
            from_hold.filter(status=CaptureStatus.SUCCEEDED).values_list("trip_id", "provider_reference")
        )
        in_flight = set()
        for capture in from_hold.exclude(status=CaptureStatus.SUCCEEDED):
            hold = CardHold.objects.filter(trip_id=capture.trip_id).exclude(payment_intent_id="").first()
            if hold is None or hold.payment_intent_id not in by_id or capture.trip_id in in_flight:
                continue
            if (capture.trip_id, hold.payment_intent_id) in recorded:
                continue  # the hold's part is recorded by a capture of its own
            if capture.status == CaptureStatus.VOIDED and hold.status != HoldStatus.AUTHORIZED:
                continue
            in_flight.add(capture.trip_id)
            collected[capture.trip_id] += _kept(by_id[hold.payment_intent_id])
        for model in self.trips:
            assert kept[model.id] == collected[model.id], self._money_of(model, intents, kept, collected)

    @invariant()
    def refunds_stay_within_the_charge_and_above_the_floor(self) -> None:
        for model in self.trips:
            if not model.charged:
                continue
            refunds = Posting.objects.filter(entry__trip_id=model.id, entry__kind="refund")
            given = refunds.filter(account__kind=AccountKind.RIDER_RECEIVABLE).aggregate(
                total=Sum("credit_minor")
            )
            assert (given["total"] or 0) == model.refunded <= model.charged
            if model.status != TripStatus.COMPLETED or model.driver is None:
                continue
            fare = JournalEntry.objects.get(key=f"trip:{model.id}:fare").metadata
            taken = refunds.filter(
                account__kind=AccountKind.DRIVER_PAYABLE, account__owner_id=self.drivers[model.driver].id
            ).aggregate(total=Sum("debit_minor"))["total"]
            assert fare["pay"] - (taken or 0) >= min(fare["pay"], fare["floor"]), (model, fare, taken)

    @invariant()
    def each_driver_week_is_paid_once_and_reconciles(self) -> None:
        for week in sorted(self.paid_weeks):
            per_driver = defaultdict(int)
            for entry in JournalEntry.objects.filter(
                kind="driver_payout", metadata__week_start=week.isoformat()
            ):
                per_driver[entry.key] += 1
            assert all(count == 1 for count in per_driver.values())
            assert Payout.objects.filter(week_start=week).count() == len(per_driver)
            report = payouts_reconcile(week_start=week)
            assert report.ok, [problem.describe() for problem in report.discrepancies]

    @invariant()
    def webhook_events_are_stored_once_with_every_delivery(self) -> None:
        if not self.deliveries:
            return
        stored = dict(
            WebhookEvent.objects.filter(event_id__in=list(self.deliveries)).values_list(
                "event_id", "deliveries"
            )
        )
        assert stored == dict(self.deliveries)

    # --- Helpers -----------------------------------------------------------------------------------------

    def _lapse_hold(self, model: TripModel) -> None:
        """Stripe cancels an authorisation left uncaptured for seven days."""
        self.localstripe.cancel(CardHold.objects.get(trip_id=model.id).payment_intent_id)
        event("a hold lapsed at Stripe")

    def _trips(self, *statuses: str) -> list[TripModel]:
        return [trip for trip in self.trips if trip.status in statuses]

    def _free_rider(self, rider: int) -> bool:
        """No trip open, and not just refused (a rider tries again after something changed: a card
        saved, a debt paid, or time for the retry sweep to collect it)."""
        return not self.riders[rider].refused and not any(
            t.rider == rider for t in self._trips("requested", "assigned")
        )

    def _free_drivers(self) -> list[int]:
        busy = {t.driver for t in self._trips("assigned")}
        return [n for n in range(len(getattr(self, "drivers", []))) if n not in busy]

    def _owes(self, rider: int) -> bool:
        return overdue_captures(rider_id=self.riders[rider].user.id).exists()

    def _rider_ids(self) -> list[uuid.UUID]:
        return [rider.user.id for rider in self.riders]

    def _capture_would_succeed(self, capture: PaymentCapture) -> bool:
        """The model's answer: a charge succeeds when an authorised hold covers it or the rider's default
        card is good (a declined card refuses every charge made off-session)."""
        card_good = self.riders[self._rider_index(capture.rider_id)].card == "good"
        if capture.purpose == CapturePurpose.REFUND:
            return True
        if capture.purpose not in _FROM_HOLD:
            return card_good
        hold = CardHold.objects.filter(
            trip_id=capture.trip_id, status__in=[HoldStatus.AUTHORIZED, HoldStatus.CAPTURED]
        ).first()
        if hold is None:
            return card_good
        intent = self.localstripe.payment_intent(hold.payment_intent_id)
        if intent["status"] not in ("requires_capture", "succeeded"):
            return card_good  # lapsed: charged off-session
        return capture.amount_minor <= hold.amount_minor or card_good  # the excess is charged off-session

    def _money_of(self, model: TripModel, intents: list[dict], kept: dict, collected: dict) -> str:
        """What a trip's money looks like on both sides, for a failure's message."""
        captures = [
            (c.purpose, c.status, c.amount_minor, c.provider_refusals, c.provider_reference)
            for c in PaymentCapture.objects.filter(trip_id=model.id).order_by("created_at")
        ]
        hold = CardHold.objects.filter(trip_id=model.id).first()
        ids = {str(c.id) for c in PaymentCapture.objects.filter(trip_id=model.id)} | {
            str(hold.id) if hold else ""
        }
        at_stripe = [
            (
                i["id"],
                i["status"],
                i["amount"],
                (i.get("latest_charge") or {}).get("amount_refunded"),
                i["metadata"],
            )
            for i in intents
            if set((i.get("metadata") or {}).values()) & ids
        ]
        return (
            f"trip {model}: Stripe kept {kept[model.id]}, the ledger collected {collected[model.id]}; "
            f"captures {captures}; hold {hold and (hold.status, hold.amount_minor, hold.payment_intent_id)}; "
            f"intents {at_stripe}"
        )

    def _rider_index(self, rider_id: uuid.UUID) -> int:
        return next(n for n, rider in enumerate(self.riders) if rider.user.id == rider_id)

    def _stripe_intents(self) -> list[dict]:
        intents, after = [], None
        with self.localstripe.api() as client:
            while True:
                page = client.get(
                    "/v1/payment_intents",
                    params={"limit": 100, **({"starting_after": after} if after else {})},
                ).json()
                intents.extend(page["data"])
                if not page.get("has_more") or not page["data"]:
                    return intents
                after = page["data"][-1]["id"]

    def _stripe_events(self) -> list[dict]:
        """The events localstripe made (each with the intent as it was then), and `charge.refunded` for our
        refunds (localstripe sends none of those)."""
        events = []
        with self.localstripe.api() as client:
            for kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
                events.extend(client.get("/v1/events", params={"type": kind, "limit": 100}).json()["data"])
        return events + [self.refund_events[key] for key in sorted(self.refund_events)]

    def _note_refund_events(self) -> None:
        """A `charge.refunded` event for every refund payout that succeeded since the last look: the charge
        as Stripe holds it now, with only our refunds (localstripe makes a partial capture by refunding the
        rest, which real Stripe does not; such refunds would read as refunds made in the dashboard)."""
        for capture in PaymentCapture.objects.filter(
            trip_id__in=[t.id for t in self.trips],
            purpose=CapturePurpose.REFUND,
            status=CaptureStatus.SUCCEEDED,
        ):
            refund_id = capture.provider_reference
            if refund_id in self.refund_events:
                continue
            with self.localstripe.api() as client:
                refund = client.get(f"/v1/refunds/{refund_id}").json()
                charge = client.get(f"/v1/charges/{refund['charge']}").json()
            ours = [r for r in charge["refunds"]["data"] if set(r.get("metadata") or {}) & _OUR_REFUND_TAGS]
            self.refund_events[refund_id] = {
                "id": f"evt_refunded_{refund_id}",
                "object": "event",
                "type": "charge.refunded",
                "created": int(time.time()),
                "livemode": False,
                "data": {"object": {**charge, "refunds": {**charge["refunds"], "data": ours}}},
            }


INVARIANTS = (
    "the_ledger_verifies",
    "stripe_kept_what_the_ledger_collected",
    "refunds_stay_within_the_charge_and_above_the_floor",
    "each_driver_week_is_paid_once_and_reconciles",
    "webhook_events_are_stored_once_with_every_delivery",
)


def _kept(intent: dict) -> int:
    """What an intent took and kept: its charge less what was refunded of it (localstripe captures less
    than the hold by refunding the rest)."""
    charge = intent.get("latest_charge")
    if intent["status"] != "succeeded" or not charge:
        return 0
    return int(charge["amount"]) - int(charge["amount_refunded"])


@pytest.fixture
def machine_clock() -> Iterator[DjangoClock]:
    with DjangoClock().installed() as clock:
        yield clock


def test_card_money_invariants_hold_under_random_operations(localstripe, machine_clock, tmp_path):
    with (
        recording_proxy(localstripe.url) as proxy,
        override_settings(ROCHDALE_ACH=ACH_SETTINGS, ROCHDALE_PAYOUT_FILES_DIR=tmp_path / "payouts"),
    ):
        run_state_machine_as_test(
            lambda: CardMoneyMachine(localstripe, proxy, machine_clock),
            settings=settings(
                max_examples=6,
                stateful_step_count=50,
                deadline=None,
                derandomize=True,
                # Shrinking replays whole programs against real services: past pytest's timeout. A failure
                # is reported as found (every step, with its draws).
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )


class Picks:
    """Stands in for hypothesis' `data` in a scripted run: each draw from a sampled list takes the next
    pick, a function of the list's elements."""

    def __init__(self, *picks: Callable[[list], object]) -> None:
        self.picks = list(picks)

    def draw(self, strategy: st.SearchStrategy) -> object:
        elements = list(getattr(strategy, "wrapped_strategy", strategy).elements)
        return self.picks.pop(0)(elements)


def the(value: object) -> Callable[[list], object]:
    def pick(elements: list) -> object:
        assert value in elements, (value, elements)
        return value

    return pick


def capture_of(trip: TripModel) -> Callable[[list], object]:
    """The trip's first due capture (a fare above its hold may be collected as more than one)."""

    def pick(elements: list) -> object:
        return next(e for e in elements if e.trip_id == trip.id)

    return pick


def test_a_scripted_fortnight_of_card_money_keeps_the_invariants(localstripe, machine_clock, tmp_path):
    """A long deterministic run through every rule, so each path is walked whatever the examples above
    draw: a fare far above its hold, a late cancellation's fee and its refund, a lapsed hold charged to a
    card that is then declined (the rider owes, is refused, pays), a hold captured while its answer was lost
    and then partly refunded, tips, every webhook event twice, and two weeks paid out."""
    with (
        recording_proxy(localstripe.url) as proxy,
        override_settings(ROCHDALE_ACH=ACH_SETTINGS, ROCHDALE_PAYOUT_FILES_DIR=tmp_path / "payouts"),
    ):
        machine = CardMoneyMachine(localstripe, proxy, machine_clock)
        checks = [getattr(machine, name) for name in INVARIANTS]

        def step(action: Callable[[], object]) -> None:
            action()
            for check in checks:
                check()

        def attempt_captures(trip: TripModel) -> None:
            """Every capture of the trip that is due, once each (a refused one then waits its backoff)."""
            due = PaymentCapture.objects.filter(
                trip_id=trip.id, status__in=_OPEN, next_attempt_at__lte=machine_clock.now()
            )
            for _ in range(due.count()):
                step(lambda: machine.a_capture_is_attempted(Picks(capture_of(trip))))

        try:
            step(
                lambda: machine.adopt(
                    driver_pay="shared_above_floor", floor_binds=False, fees=True, margin="0.25"
                )
            )
            r0, r1, r2 = 0, 1, 2
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r2))))  # no card: refused
            step(lambda: machine.a_rider_saves_a_card(rider=r2, kind="declined"))
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r2))))  # declined: refused
            # A fare far above its hold: the hold and an excess intent; a refund within the hold's part.
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r0))))
            far = machine.trips[-1]
            step(lambda: machine.a_trip_is_completed(Picks(the(far), the(0)), stretch=4.0, lapsed=False))
            attempt_captures(far)
            step(lambda: machine.staff_refund(Picks(the(far)), share=1.0, too_much=250))  # too much: refused
            step(lambda: machine.staff_refund(Picks(the(far)), share=0.1, too_much=0))
            attempt_captures(far)
            # A late cancellation: the fee from the hold, then refunded in full.
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r1))))
            late = machine.trips[-1]
            step(lambda: machine.a_driver_takes_a_trip(Picks(the(late), the(1)), waited_s=600))
            step(lambda: machine.the_rider_cancels(Picks(the(late)), lapsed=False))
            attempt_captures(late)
            step(lambda: machine.staff_refund(Picks(the(late)), share=1.0, too_much=0))
            step(lambda: machine.the_retry_sweep_runs())
            step(lambda: machine.time_passes(hours=1))
            step(lambda: machine.the_retry_sweep_runs())  # the refund payout's enqueue was lost: swept
            # A lapsed hold charged off-session to a card declined meanwhile: the rider owes until paid.
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r0))))
            lapsed = machine.trips[-1]
            step(lambda: machine.a_trip_is_completed(Picks(the(lapsed), the(0)), stretch=1.0, lapsed=True))
            step(lambda: machine.a_rider_saves_a_card(rider=r0, kind="declined"))
            attempt_captures(lapsed)
            machine.riders[r0].refused = False  # tries again at once (the random model would have them wait)
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r0))))  # owes: payment_overdue
            step(lambda: machine.a_rider_saves_a_card(rider=r0, kind="good"))
            step(lambda: machine.a_rider_pays_what_they_owe(Picks(the(r0))))
            # A hold captured while its answer was lost, refunded in part before the retry hears of it.
            step(lambda: machine.a_rider_requests_a_trip(Picks(the(r1))))
            lost = machine.trips[-1]
            step(lambda: machine.a_trip_is_completed(Picks(the(lost), the(1)), stretch=1.0, lapsed=False))
            step(lambda: machine.a_hold_capture_answer_is_lost(Picks(lambda pairs: pairs[0])))
            step(lambda: machine.staff_refund(Picks(the(lost)), share=0.5, too_much=0))
            step(lambda: machine.time_passes(hours=1))
            attempt_captures(lost)
            step(lambda: machine.the_rider_tips(Picks(the(lost)), share=0.2))
            attempt_captures(lost)
            step(lambda: machine.holds_are_released(Picks(), sweep=True))
            for n, chosen in enumerate(machine._stripe_events()):
                step(
                    lambda chosen=chosen, n=n: machine.stripe_delivers_an_event(
                        Picks(the(chosen)), over_http=n % 2 == 0, twice=True
                    )
                )
            # Two weeks: the first paid, a refund that takes from the driver's pay after it, the second.
            step(lambda: machine.time_passes(hours=170))
            step(lambda: machine.the_weekly_payout_runs())
            step(lambda: machine.staff_refund(Picks(the(lost)), share=1.0, too_much=0))
            step(lambda: machine.time_passes(hours=170))
            step(lambda: machine.the_weekly_payout_runs())
            step(lambda: machine.the_weekly_payout_runs())

            assert [m.user.id for m in machine.riders if overdue_captures(rider_id=m.user.id).exists()] == []
            assert len(machine.paid_weeks) == 2
            assert Payout.objects.filter(week_start=machine.start_week).count() == 2
            assert machine.deliveries and all(count == 2 for count in machine.deliveries.values())
        finally:
            machine.teardown()


def _fare_far_above_its_hold(localstripe: LocalStripe, *, excess_card: str = "good") -> Trip:
    """A trip completed at four times its quote (past any hold), its rider's default card then
    `excess_card`, and every due capture of it attempted once."""
    rider = RiderFactory()
    save_card(localstripe, rider)
    trip = assign(requested_trip(rider), DriverFactory())
    if excess_card != "good":
        card = save_card(localstripe, rider, number=CARDS[excess_card])
        customers.payment_method_default_set(rider_id=rider.id, payment_method_id=card.id)
    for status in (TripStatus.ARRIVED, TripStatus.IN_PROGRESS):
        trip_transition(trip_id=trip.id, to=status, actor_id=trip.driver_id)
    done = complete_trip(
        trip_load(trip.id), distance_m=trip.estimated_distance_m * 4, duration_s=trip.estimated_duration_s * 4
    )
    assert done.fare_breakdown["total"] > CardHold.objects.get(trip_id=done.id).amount_minor
    _attempt_due_captures(done)
    return done


def _attempt_due_captures(trip: Trip, *, later: timedelta = timedelta(0)) -> None:
    """Attempt the trip's due captures, and those the attempts made (an excess, a payout), a few rounds."""
    tried: set[uuid.UUID] = set()
    for _ in range(4):
        moment = django_timezone.now() + later
        due = PaymentCapture.objects.filter(trip_id=trip.id, status__in=_OPEN, next_attempt_at__lte=moment)
        for capture in due.exclude(id__in=tried):
            tried.add(capture.id)
            capture_attempt(capture_id=capture.id, now=moment)


def _intents(localstripe: LocalStripe) -> list[dict]:
    with localstripe.api() as stripe_api:
        return stripe_api.get("/v1/payment_intents", params={"limit": 100}).json()["data"]


def test_a_full_refund_of_a_fare_above_its_hold_gives_back_what_each_intent_took(localstripe):
    """The fare is taken as the whole hold plus an excess intent; a full refund must give back what each
    intent took. Real Stripe refuses a refund above what its charge has left (the payout would fail at every
    retry and the rider never get the excess back); localstripe accepts it, so the hold's intent ends
    refunded more than it took while the excess intent keeps its money."""
    done = _fare_far_above_its_hold(localstripe)
    assert sum(_kept(intent) for intent in _intents(localstripe)) == done.fare_breakdown["total"]

    total = done.fare_breakdown["total"]
    refund_post(trip_id=done.id, amount_minor=total, reason="Detour", staff_id=StaffFactory().id)
    _attempt_due_captures(done)

    intents = _intents(localstripe)
    for intent in intents:
        charge = intent["latest_charge"]
        assert charge is None or charge["amount_refunded"] <= charge["amount"], intent["id"]
    assert sum(_kept(intent) for intent in intents) == 0  # all of it went back to the rider


def test_a_full_refund_after_a_declined_excess_gives_back_the_hold_stripe_kept(localstripe):
    """The hold is captured in full and the excess, charged off-session to the rider's new default card, is
    declined. A staff refund of the whole fare must leave Stripe keeping nothing: the hold's part goes back
    too (on main the capture failed as a refusal of the whole fare, the refund voided it, and the hold's money
    stayed at Stripe for good while the rider was told it all came back)."""
    done = _fare_far_above_its_hold(localstripe, excess_card="declined")
    hold = CardHold.objects.get(trip_id=done.id)
    assert localstripe.captured_minor(hold.payment_intent_id) == hold.amount_minor  # the hold was taken

    total = done.fare_breakdown["total"]
    refund_post(trip_id=done.id, amount_minor=total, reason="Detour", staff_id=StaffFactory().id)
    holds_release_due(now=django_timezone.now() + timedelta(minutes=5))
    captures_retry_due(now=django_timezone.now() + timedelta(days=1))
    _attempt_due_captures(done, later=timedelta(days=2))

    assert sum(_kept(intent) for intent in _intents(localstripe)) == 0  # the rider was refunded everything
