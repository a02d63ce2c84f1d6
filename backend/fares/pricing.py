"""The fare and pay rules of docs/contract.md as pure functions: no Django, no I/O, no settings.

Every amount is computed exactly and rounded half-up to the currency's minor unit once, at the end, by
:func:`backend.fares.money.to_minor_units`. Rates are ``Decimal``; the distance in the policy's unit
(metres / 1609.344 or metres / 1000) and the minutes (seconds / 60) do not always terminate in decimal,
so the arithmetic between the rates and that single rounding is done in ``fractions.Fraction``, built
exactly from the ``Decimal`` values. Amounts that are already money (a fare in minor units) stay integers.

The formulas (see docs/fares.md for the worked reasoning):

* fare = max(minimum_fare, (base + per_distance x distance + per_minute x minutes) x surge) + booking_fee,
  surge clamped to [1, surge_cap];
* trip floor = max(per_distance x distance + per_minute x minutes, per_trip), with ``wav_per_distance``
  for a wheelchair-accessible trip, distance and minutes being those with the rider aboard;
* per-trip pay = max(fare x (1 - commission_rate), trip floor); with ``period == "week"`` the per-trip pay
  is the share alone and :func:`period_top_up` makes the week whole;
* cancellation: the rider pays ``cancellation_fee``, the driver gets it less the commission;
* pass-through fees (``policy.fees``: taxes, surcharges, funds, tolls) come on top of the fare: the rider's
  total = fare + fees. A flat fee is its amount, a percentage fee rate x the sum of its bases (the fare
  charged, in minor units, and/or earlier fees' amounts) rounded once, a trip amount what the trip
  recorded. Pay and commission are computed on the fare alone, so fees never touch driver pay;
* the card hold at request = quoted total x (1 + ``payments.authorization_margin_rate``), rounded once;
* a refund of the fare splits into the co-op's and the driver's part under ``refunds.driver_pay``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from backend.fares.money import minor_unit_exponent, to_minor_units
from backend.fares.policy import (
    DISTANCE_UNITS,
    FEE_BASE_FARE,
    METRES_PER_UNIT,
    DriverMinimum,
    FarePolicy,
    PassThroughFee,
)

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600

LINE_BASE = "Base fare"
LINE_DISTANCE = "Distance"
LINE_TIME = "Time"
LINE_SURGE = "Surge"
LINE_MINIMUM = "Minimum fare adjustment"
LINE_BOOKING_FEE = "Booking fee"


@dataclass(frozen=True)
class BreakdownLine:
    label: str
    amount: int

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "amount": self.amount}


@dataclass(frozen=True)
class FareQuote:
    """A fare in minor units, and the lines that explain it; the lines' amounts sum to ``fare``."""

    fare: int
    currency: str
    breakdown: tuple[BreakdownLine, ...]
    surge: Decimal
    minimum_fare_applied: bool
    policy_version: int | None

    def breakdown_document(self) -> list[dict[str, Any]]:
        """The contract's ``breakdown``: ``[{"label": str, "amount": int}]``."""
        return [line.as_dict() for line in self.breakdown]


@dataclass(frozen=True)
class TripPay:
    """What a driver is paid for one trip (tips excluded, they are always added on top in full).

    ``share`` is fare x (1 - commission_rate) rounded; ``floor`` the trip floor rounded; ``pay`` the
    exact maximum of the two rounded once (for a weekly floor, the share alone); ``floor_top_up`` =
    max(pay - share, 0); ``commission`` = max(fare - pay, 0), what the cooperative keeps, so
    pay + commission == fare whenever pay <= fare. When the floor exceeds the whole fare the cooperative
    pays ``pay - fare`` out of its own funds (``coop_subsidy``).
    """

    fare: int
    pay: int
    share: int
    commission: int
    floor: int
    floor_top_up: int
    floor_applied: bool
    currency: str

    @property
    def coop_subsidy(self) -> int:
        return max(self.pay - self.fare, 0)


@dataclass(frozen=True)
class FeeLine:
    """One pass-through fee charged on a trip, in minor units: ``{"code", "label", "amount"}`` on the wire."""

    code: str
    label: str
    amount: int

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "amount": self.amount}


@dataclass(frozen=True)
class TripFeeFacts:
    """What the fee conditions can be evaluated on, as the services found it.

    ``pickup_zones`` / ``dropoff_zones``: names of the zones (service areas) the pickup / dropoff lies in;
    ``route_zones``: names of the zones the planned route crosses; ``trip_amounts``: amounts the trip
    records for ``trip_amount`` fees, by fee code (minor units; a code absent is 0)."""

    pickup_zones: frozenset[str] = frozenset()
    dropoff_zones: frozenset[str] = frozenset()
    route_zones: frozenset[str] = frozenset()
    wheelchair_accessible: bool = False
    trip_amounts: Mapping[str, int] = field(default_factory=dict)


NO_FEE_FACTS = TripFeeFacts()


@dataclass(frozen=True)
class RiderCharge:
    """What the rider pays for a trip: the fare and the pass-through fees on top; ``total`` = their sum."""

    fare: int
    fees: tuple[FeeLine, ...]
    currency: str

    @property
    def fees_total(self) -> int:
        return sum(line.amount for line in self.fees)

    @property
    def total(self) -> int:
        return self.fare + self.fees_total

    def fees_document(self) -> list[dict[str, Any]]:
        """The wire's and the fare entry's ``fees``: ``[{"code", "label", "amount"}]``."""
        return [line.as_dict() for line in self.fees]


@dataclass(frozen=True)
class TripSettlement:
    """A completed trip's money: the driver's pay (on the fare alone) and the rider's charge (fare + fees)."""

    pay: TripPay
    charge: RiderCharge


@dataclass(frozen=True)
class RefundSplit:
    """Who bears a refund of (part of) a fare: ``coop + driver == refund``."""

    refund: int
    coop: int
    driver: int


@dataclass(frozen=True)
class CancellationSplit:
    fee: int
    driver: int
    coop: int


@dataclass(frozen=True)
class EngagedTimeFloor:
    """A Prop 22-style period floor over engaged time (from accepting a trip to completing it).

    floor = wage_multiplier x hourly_wage x engaged hours + per_distance x engaged distance.
    California's Proposition 22, for example, guarantees 120% of the local minimum wage for engaged time
    plus a per-mile amount for engaged miles, checked over each pay period, tips excluded.
    """

    hourly_wage: Decimal
    per_distance: Decimal
    wage_multiplier: Decimal = Decimal("1.20")
    distance_unit: str = "mile"
    currency: str = "USD"

    def __post_init__(self) -> None:
        for name in ("hourly_wage", "per_distance", "wage_multiplier"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative Decimal")
        if self.distance_unit not in DISTANCE_UNITS:
            raise ValueError('distance_unit must be "mile" or "km"')
        minor_unit_exponent(self.currency)


@dataclass(frozen=True)
class PeriodTrip:
    """One trip of a driver's period, as the period floor needs it.

    ``distance_m`` and ``duration_s`` are with the rider aboard; ``engaged_distance_m`` and
    ``engaged_s`` run from accepting the offer to completion and default to the aboard values.
    ``pay`` is what the trip paid the driver in minor units, tips excluded.
    """

    distance_m: int | Decimal
    duration_s: int
    pay: int
    wheelchair_accessible: bool = False
    engaged_distance_m: int | Decimal | None = None
    engaged_s: int | None = None


@dataclass(frozen=True)
class PeriodTopUp:
    floor: int
    received: int
    top_up: int
    currency: str
    trip_count: int

    @property
    def total_pay(self) -> int:
        return self.received + self.top_up


@dataclass(frozen=True)
class QuoteTolerance:
    """How far a completed trip may drift from its quote before the quote stops binding.

    A difference "exceeds the tolerance" when it is more than ``relative`` of the quoted amount AND more
    than ``absolute`` (major units of the policy's currency).
    """

    relative: Decimal = Decimal("0.25")
    absolute: Decimal = Decimal("5.00")


DEFAULT_QUOTE_TOLERANCE = QuoteTolerance()

ToleranceReason = Literal["quote_honoured", "shorter_than_quoted", "materially_longer_than_quoted"]


@dataclass(frozen=True)
class QuotedFareDecision:
    """The fare to charge at completion of a trip that was quoted, and why."""

    fare: int
    quoted_fare: int
    measured_fare: int
    reason: ToleranceReason
    measured: FareQuote = field(repr=False)


def quote_fare(
    policy: FarePolicy,
    *,
    distance_m: int | Decimal,
    duration_s: int,
    surge: Decimal = Decimal(1),
) -> FareQuote:
    """The rider's fare for a trip of this distance and duration, with its breakdown."""
    distance = _distance_in_unit(distance_m, policy.distance_unit, "distance_m")
    minutes = _minutes(duration_s, "duration_s")
    applied_surge = clamp_surge(policy, surge)
    rider = policy.rider

    base = Fraction(rider.base)
    distance_part = Fraction(rider.per_distance) * distance
    time_part = Fraction(rider.per_minute) * minutes
    metered = base + distance_part + time_part
    surge_part = metered * (Fraction(applied_surge) - 1)
    surged = metered + surge_part
    minimum = Fraction(rider.minimum_fare)
    minimum_part = max(minimum - surged, Fraction(0))
    booking_fee = Fraction(rider.booking_fee)
    exact_fare = max(minimum, surged) + booking_fee

    fare = to_minor_units(exact_fare, policy.currency)
    parts = [
        (LINE_BASE, base),
        (LINE_DISTANCE, distance_part),
        (LINE_TIME, time_part),
        (LINE_SURGE, surge_part),
        (LINE_MINIMUM, minimum_part),
        (LINE_BOOKING_FEE, booking_fee),
    ]
    scale = 10 ** minor_unit_exponent(policy.currency)
    amounts = _allocate(fare, [value * scale for _, value in parts])
    breakdown = tuple(
        BreakdownLine(label, amount) for (label, _), amount in zip(parts, amounts, strict=True) if amount
    )
    return FareQuote(
        fare=fare,
        currency=policy.currency,
        breakdown=breakdown,
        surge=applied_surge,
        minimum_fare_applied=minimum_part > 0,
        policy_version=policy.version,
    )


def clamp_surge(policy: FarePolicy, surge: Decimal) -> Decimal:
    """The surge multiplier actually applied: within [1, surge_cap]."""
    if isinstance(surge, bool) or not isinstance(surge, Decimal | int) or not Decimal(surge).is_finite():
        raise ValueError("surge must be a finite Decimal")
    return min(max(Decimal(surge), Decimal(1)), policy.rider.surge_cap)


def trip_floor(
    policy: FarePolicy,
    *,
    distance_m: int | Decimal,
    duration_s: int,
    wheelchair_accessible: bool,
) -> int:
    """The least a driver may be paid for this trip (rider aboard for this distance and duration)."""
    exact = _exact_trip_floor(
        policy.driver_minimum,
        distance=_distance_in_unit(distance_m, policy.distance_unit, "distance_m"),
        minutes=_minutes(duration_s, "duration_s"),
        wheelchair_accessible=wheelchair_accessible,
    )
    return to_minor_units(exact, policy.currency)


def driver_pay(
    policy: FarePolicy,
    *,
    fare_minor: int,
    distance_m: int | Decimal,
    duration_s: int,
    wheelchair_accessible: bool,
) -> TripPay:
    """The driver's pay for a completed trip that charged ``fare_minor``."""
    _require_minor_amount(fare_minor, "fare_minor")
    scale = 10 ** minor_unit_exponent(policy.currency)
    exact_share = Fraction(fare_minor, scale) * (1 - Fraction(policy.commission_rate))
    exact_floor = _exact_trip_floor(
        policy.driver_minimum,
        distance=_distance_in_unit(distance_m, policy.distance_unit, "distance_m"),
        minutes=_minutes(duration_s, "duration_s"),
        wheelchair_accessible=wheelchair_accessible,
    )
    floor_per_trip = policy.driver_minimum.period == "trip"
    floor_applied = floor_per_trip and exact_floor > exact_share
    exact_pay = exact_floor if floor_applied else exact_share

    share = to_minor_units(exact_share, policy.currency)
    pay = to_minor_units(exact_pay, policy.currency)
    return TripPay(
        fare=fare_minor,
        pay=pay,
        share=share,
        commission=max(fare_minor - pay, 0),
        floor=to_minor_units(exact_floor, policy.currency),
        floor_top_up=max(pay - share, 0),
        floor_applied=floor_applied,
        currency=policy.currency,
    )


def fee_applies(fee: PassThroughFee, facts: TripFeeFacts) -> bool:
    """Whether every condition of the fee holds for the trip these facts describe."""
    conditions = fee.when
    if (
        conditions.wheelchair_accessible is not None
        and conditions.wheelchair_accessible != facts.wheelchair_accessible
    ):
        return False
    zone = conditions.zone
    if zone is None:
        return True
    at_pickup = zone.area in facts.pickup_zones
    at_dropoff = zone.area in facts.dropoff_zones
    if zone.touch == "pickup":
        return at_pickup
    if zone.touch == "dropoff":
        return at_dropoff
    if zone.touch == "pickup_or_dropoff":
        return at_pickup or at_dropoff
    return at_pickup or at_dropoff or zone.area in facts.route_zones


def trip_fees(
    policy: FarePolicy, *, fare_minor: int, facts: TripFeeFacts = NO_FEE_FACTS
) -> tuple[FeeLine, ...]:
    """The pass-through fees on a trip that charged ``fare_minor``, in the policy's order.

    Each fee is computed exactly and rounded once: a flat fee is its amount; a percentage fee is its rate
    x the sum of its bases in minor units (``"fare"``: the fare charged; a code: that earlier fee's
    amount, 0 when it did not apply); a trip amount is ``facts.trip_amounts[code]``. Fees whose conditions
    do not hold, and fees worth nothing, are left out."""
    _require_minor_amount(fare_minor, "fare_minor")
    scale = 10 ** minor_unit_exponent(policy.currency)
    amounts: dict[str, int] = {FEE_BASE_FARE: fare_minor}
    lines: list[FeeLine] = []
    for fee in policy.fees:
        if not fee_applies(fee, facts):
            continue
        if fee.kind == "flat":
            assert fee.amount is not None  # the policy's validation requires it
            amount = to_minor_units(fee.amount, policy.currency)
        elif fee.kind == "percentage":
            assert fee.rate is not None
            base_minor = sum(amounts.get(base, 0) for base in fee.of)
            amount = to_minor_units(Fraction(base_minor, scale) * Fraction(fee.rate), policy.currency)
        else:
            amount = facts.trip_amounts.get(fee.code, 0)
            _require_minor_amount(amount, f"trip_amounts[{fee.code!r}]")
        amounts[fee.code] = amount
        if amount:
            lines.append(FeeLine(code=fee.code, label=fee.label, amount=amount))
    return tuple(lines)


def rider_charge(policy: FarePolicy, *, fare_minor: int, facts: TripFeeFacts = NO_FEE_FACTS) -> RiderCharge:
    """The rider's charge for a trip that charged ``fare_minor``: the fare, its fees, and their total."""
    return RiderCharge(
        fare=fare_minor, fees=trip_fees(policy, fare_minor=fare_minor, facts=facts), currency=policy.currency
    )


def trip_settlement(
    policy: FarePolicy,
    *,
    fare_minor: int,
    distance_m: int | Decimal,
    duration_s: int,
    wheelchair_accessible: bool,
    facts: TripFeeFacts = NO_FEE_FACTS,
) -> TripSettlement:
    """Pay and charge of a completed trip. Pay is :func:`driver_pay` on the fare alone: the fees are the
    rider's and go to their own accounts, so no fee ever raises or lowers pay or commission."""
    return TripSettlement(
        pay=driver_pay(
            policy,
            fare_minor=fare_minor,
            distance_m=distance_m,
            duration_s=duration_s,
            wheelchair_accessible=wheelchair_accessible,
        ),
        charge=rider_charge(policy, fare_minor=fare_minor, facts=facts),
    )


def authorization_amount(policy: FarePolicy, quoted_total_minor: int) -> int:
    """The card hold for a trip quoted ``quoted_total_minor`` (fare + fees): the total x (1 + the policy's
    ``payments.authorization_margin_rate``), rounded once, half-up."""
    _require_minor_amount(quoted_total_minor, "quoted_total_minor")
    scale = 10 ** minor_unit_exponent(policy.currency)
    margin = Fraction(policy.payments.authorization_margin_rate)
    return to_minor_units(Fraction(quoted_total_minor, scale) * (1 + margin), policy.currency)


def refund_split(
    policy: FarePolicy,
    *,
    refund_minor: int,
    fare_minor: int,
    pay_minor: int,
    share_minor: int,
    floor_minor: int,
    driver_refunded_minor: int = 0,
    fare_refunded_minor: int = 0,
) -> RefundSplit:
    """Split a refund of (part of) a trip's fare between the co-op and the driver.

    ``refund_minor`` is refunded against the fare (fees are refunded from their own accounts and never
    touch pay). Under ``refunds.driver_pay``:

    * ``kept`` (default): the co-op bears all of it; the driver keeps the pay;
    * ``shared_above_floor``: the driver bears the refund x share / fare (their standard share of the
      fare refunded), rounded once over all the trip's refunds: their share of everything refunded of the
      fare (``fare_refunded_minor``, earlier refunds, + this one) less what earlier refunds already took
      (``driver_refunded_minor``), so many small refunds cost the driver what one refund of their sum
      would; and only out of pay above the trip's floor: at most ``pay - floor - driver_refunded_minor``,
      so the trip never pays the driver less than its floor. The co-op bears the rest.
    """
    for name, value in (
        ("refund_minor", refund_minor),
        ("fare_minor", fare_minor),
        ("pay_minor", pay_minor),
        ("share_minor", share_minor),
        ("floor_minor", floor_minor),
        ("driver_refunded_minor", driver_refunded_minor),
        ("fare_refunded_minor", fare_refunded_minor),
    ):
        _require_minor_amount(value, name)
    if policy.refunds.driver_pay == "kept" or fare_minor == 0:
        return RefundSplit(refund=refund_minor, coop=refund_minor, driver=0)
    share_of_all_refunded = to_minor_units(
        Fraction(
            (fare_refunded_minor + refund_minor) * share_minor,
            fare_minor * 10 ** minor_unit_exponent(policy.currency),
        ),
        policy.currency,
    )
    proportional = max(share_of_all_refunded - driver_refunded_minor, 0)
    above_floor = max(pay_minor - floor_minor - driver_refunded_minor, 0)
    driver = min(proportional, above_floor, refund_minor)
    return RefundSplit(refund=refund_minor, coop=refund_minor - driver, driver=driver)


def cancellation_split(policy: FarePolicy) -> CancellationSplit:
    """The late-cancellation fee, the driver's part (fee less commission) and the cooperative's."""
    fee = to_minor_units(policy.rider.cancellation_fee, policy.currency)
    scale = 10 ** minor_unit_exponent(policy.currency)
    driver = to_minor_units(Fraction(fee, scale) * (1 - Fraction(policy.commission_rate)), policy.currency)
    return CancellationSplit(fee=fee, driver=driver, coop=fee - driver)


def rider_cancellation_fee_due(policy: FarePolicy, *, seconds_since_assigned: int) -> bool:
    """Whether a rider cancelling this long after a driver was assigned pays the cancellation fee."""
    if isinstance(seconds_since_assigned, bool) or not isinstance(seconds_since_assigned, int):
        raise TypeError("seconds_since_assigned must be an int")
    return seconds_since_assigned > policy.rider.free_cancellation_s


def engaged_seconds(
    *, assigned_at: datetime | None, started_at: datetime | None, completed_at: datetime
) -> int:
    """A completed trip's engaged time: from the driver's assignment to completion, in whole seconds.

    The one definition. A trip with no assignment time counts from its start (and one with neither counts
    nothing); clocks that disagree never make it negative. Settlement computes it once and records it in
    the fare entry (`engaged_s`), where earnings and patronage read it (backend/fares/pay.py); the weekly
    floor applies it to its trips."""
    began = assigned_at or started_at or completed_at
    return max(int((completed_at - began).total_seconds()), 0)


def period_top_up(
    rule: FarePolicy | DriverMinimum | EngagedTimeFloor,
    trips: Sequence[PeriodTrip],
    *,
    distance_unit: str | None = None,
    currency: str | None = None,
) -> PeriodTopUp:
    """The floor over a driver's period (e.g. a week) against the pay received, and the one top-up.

    With a policy's ``driver_minimum`` (or a bare :class:`DriverMinimum`, then ``distance_unit`` and
    ``currency`` are required) the period floor is the sum over the trips of each trip's floor: per
    distance and per minute with the rider aboard, the WAV rate on wheelchair-accessible trips, and at
    least ``per_trip`` for each ride. With an :class:`EngagedTimeFloor` it is the engaged-time floor.
    The exact floor is rounded once; ``top_up = max(floor - received, 0)``.
    """
    unit, money_currency = _period_unit_and_currency(rule, distance_unit, currency)
    received = 0
    for index, trip in enumerate(trips):
        _require_minor_amount(trip.pay, f"trips[{index}].pay")
        received += trip.pay

    if isinstance(rule, EngagedTimeFloor):
        exact_floor = _exact_engaged_floor(rule, trips)
    else:
        minimum = rule.driver_minimum if isinstance(rule, FarePolicy) else rule
        exact_floor = sum(
            (
                _exact_trip_floor(
                    minimum,
                    distance=_distance_in_unit(trip.distance_m, unit, f"trips[{index}].distance_m"),
                    minutes=_minutes(trip.duration_s, f"trips[{index}].duration_s"),
                    wheelchair_accessible=trip.wheelchair_accessible,
                )
                for index, trip in enumerate(trips)
            ),
            Fraction(0),
        )
    floor = to_minor_units(exact_floor, money_currency)
    return PeriodTopUp(
        floor=floor,
        received=received,
        top_up=max(floor - received, 0),
        currency=money_currency,
        trip_count=len(trips),
    )


def fare_with_quote_tolerance(
    policy: FarePolicy,
    *,
    quoted_fare: int,
    quoted_distance_m: int | Decimal,
    distance_m: int | Decimal,
    duration_s: int,
    surge: Decimal = Decimal(1),
    tolerance: QuoteTolerance = DEFAULT_QUOTE_TOLERANCE,
) -> QuotedFareDecision:
    """The fare to charge at completion of a quoted trip.

    ``policy`` and ``surge`` must be those the quote was made with. The measured fare is the fare of the
    route actually driven (rider aboard). The rule, in the rider's favour:

    1. By default the rider pays the quoted fare: traffic, a slower route or a detour the rider did not
       ask for never raise the price, and a slightly shorter trip does not lower it.
    2. If the measured fare is lower than the quote by more than the tolerance (the rider got out early),
       the rider pays the measured fare.
    3. The rider pays more than the quote only if the trip was materially longer than quoted: the
       distance driven is more than ``tolerance.relative`` longer than the quoted distance AND the
       measured fare is above the quote by more than the tolerance (both relative and absolute). Then the
       rider pays the measured fare.

    The driver is never the one who absorbs the difference: pay is ``driver_pay`` over the fare charged,
    and the floor uses the measured distance and time.
    """
    _require_minor_amount(quoted_fare, "quoted_fare")
    quoted_distance = _distance_in_unit(quoted_distance_m, "km", "quoted_distance_m")
    driven_distance = _distance_in_unit(distance_m, "km", "distance_m")
    measured = quote_fare(policy, distance_m=distance_m, duration_s=duration_s, surge=surge)
    measured_fare = measured.fare

    def exceeds_tolerance(difference: int) -> bool:
        absolute_minor = Fraction(tolerance.absolute) * 10 ** minor_unit_exponent(policy.currency)
        return difference > Fraction(tolerance.relative) * quoted_fare and difference > absolute_minor

    reason: ToleranceReason = "quote_honoured"
    fare = quoted_fare
    if measured_fare < quoted_fare and exceeds_tolerance(quoted_fare - measured_fare):
        reason, fare = "shorter_than_quoted", measured_fare
    elif measured_fare > quoted_fare and exceeds_tolerance(measured_fare - quoted_fare):
        materially_longer = driven_distance > quoted_distance * (1 + Fraction(tolerance.relative))
        if materially_longer:
            reason, fare = "materially_longer_than_quoted", measured_fare
    return QuotedFareDecision(
        fare=fare,
        quoted_fare=quoted_fare,
        measured_fare=measured_fare,
        reason=reason,
        measured=measured,
    )


def _exact_trip_floor(
    minimum: DriverMinimum,
    *,
    distance: Fraction,
    minutes: Fraction,
    wheelchair_accessible: bool,
) -> Fraction:
    per_distance = minimum.wav_per_distance if wheelchair_accessible else minimum.per_distance
    metered = Fraction(per_distance) * distance + Fraction(minimum.per_minute) * minutes
    return max(metered, Fraction(minimum.per_trip))


def _exact_engaged_floor(rule: EngagedTimeFloor, trips: Sequence[PeriodTrip]) -> Fraction:
    engaged_seconds = Fraction(0)
    engaged_distance = Fraction(0)
    for index, trip in enumerate(trips):
        seconds = trip.engaged_s if trip.engaged_s is not None else trip.duration_s
        metres = trip.engaged_distance_m if trip.engaged_distance_m is not None else trip.distance_m
        engaged_seconds += _seconds(seconds, f"trips[{index}].engaged_s")
        engaged_distance += _distance_in_unit(
            metres, rule.distance_unit, f"trips[{index}].engaged_distance_m"
        )
    hourly = Fraction(rule.wage_multiplier) * Fraction(rule.hourly_wage)
    return hourly * engaged_seconds / SECONDS_PER_HOUR + Fraction(rule.per_distance) * engaged_distance


def _period_unit_and_currency(
    rule: FarePolicy | DriverMinimum | EngagedTimeFloor,
    distance_unit: str | None,
    currency: str | None,
) -> tuple[str, str]:
    if isinstance(rule, FarePolicy):
        return rule.distance_unit, rule.currency
    if isinstance(rule, EngagedTimeFloor):
        return rule.distance_unit, rule.currency
    if not isinstance(rule, DriverMinimum):
        raise TypeError("rule must be a FarePolicy, DriverMinimum or EngagedTimeFloor")
    if distance_unit not in DISTANCE_UNITS or currency is None:
        raise ValueError('a bare DriverMinimum needs distance_unit ("mile" or "km") and currency')
    minor_unit_exponent(currency)
    return distance_unit, currency


def _distance_in_unit(distance_m: int | Decimal, unit: str, name: str) -> Fraction:
    if isinstance(distance_m, bool) or not isinstance(distance_m, int | Decimal):
        raise TypeError(f"{name} must be an int or Decimal number of metres")
    if isinstance(distance_m, Decimal) and not distance_m.is_finite():
        raise ValueError(f"{name} must be finite")
    if distance_m < 0:
        raise ValueError(f"{name} must not be negative")
    return Fraction(distance_m) / Fraction(METRES_PER_UNIT[unit])


def _seconds(duration_s: int, name: str) -> Fraction:
    if isinstance(duration_s, bool) or not isinstance(duration_s, int):
        raise TypeError(f"{name} must be an int number of seconds")
    if duration_s < 0:
        raise ValueError(f"{name} must not be negative")
    return Fraction(duration_s)


def _minutes(duration_s: int, name: str) -> Fraction:
    return _seconds(duration_s, name) / SECONDS_PER_MINUTE


def _require_minor_amount(amount: object, name: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"{name} must be an int amount in minor units")
    if amount < 0:
        raise ValueError(f"{name} must not be negative")


def _allocate(total: int, exact_parts: list[Fraction]) -> list[int]:
    """Whole minor units for each part, summing to ``total`` (largest remainders get the spare units).

    ``total`` is the once-rounded sum of the non-negative parts, so the floors fall short by between 0
    and len(parts) units.
    """
    floors = [part.numerator // part.denominator for part in exact_parts]
    spare = total - sum(floors)
    by_remainder = sorted(
        range(len(exact_parts)), key=lambda index: exact_parts[index] - floors[index], reverse=True
    )
    for index in by_remainder[:spare]:
        floors[index] += 1
    return floors
