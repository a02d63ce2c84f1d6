"""The fare policy object of docs/contract.md ("The fare policy object"), as frozen values, and its
validation.

Pure: no Django import. Rates are ``Decimal`` in major units; the document form is the wire form
(decimal strings, at most 4 decimal places). :meth:`FarePolicy.from_document` is the single gate every
policy passes through, whether it comes from a board proposal's payload, the database or a seed: it lists
every bad field at once in :class:`PolicyValidationError` (``details`` maps a field path such as
``"rider.base"`` to its messages), so the API can answer one 400 naming all of them.

Beyond the contract's object, three optional sections (docs/fares.md, "Pass-through fees"):

* ``fees``: pass-through items the board or the law sets (a congestion surcharge, a fund, sales tax,
  airport fees, tolls), charged on top of the fare, each to its own ledger account, never from driver pay;
* ``payments.authorization_margin_rate``: the card hold at request is the quoted total x (1 + margin);
* ``refunds.driver_pay``: ``kept`` (the co-op bears a refund) or ``shared_above_floor``.

Absent, they default to no fees, a zero margin and ``kept``: today's behaviour, and ``to_document`` leaves
them out, so a policy without them is exactly the contract's object.

The default policy (:data:`DEFAULT_POLICY_DOCUMENT`) and how its numbers were chosen
-------------------------------------------------------------------------------------
The driver floor is the New York City TLC minimum pay rate for app-dispatched drivers in force from
March 2024 (time and distance with a passenger aboard): $1.360 per mile and $0.583 per minute, and
$1.760 per mile for a wheelchair-accessible vehicle. The cooperative's floor is 10% above it:

* ``per_distance``     = 1.360 x 1.10 = 1.496 per mile
* ``per_minute``       = 0.583 x 1.10 = 0.6413 per minute
* ``wav_per_distance`` = 1.760 x 1.10 = 1.936 per mile

(docs/contract.md's example object shows 1.357/0.620; it is an illustration of the shape, not these numbers.)

The commission is 15%, so the driver's share of a fare is 85%. The rider rates are chosen so that the
share alone already meets the standard floor on *every* trip, not just typical ones: each rider rate is
at least the matching floor rate divided by 0.85, rounded up to the cent.

* ``per_distance`` = 1.496 / 0.85 = 1.76 exactly          -> "1.76"
* ``per_minute``   = 0.6413 / 0.85 = 0.75447...           -> "0.76"
* ``base`` 2.50 and ``minimum_fare`` 10.00 only add to the share, so
  0.85 x fare >= 1.496 x miles + 0.6413 x minutes for any distance and duration at surge 1.

So for a standard vehicle the floor is a guarantee that never has to be topped up under the default
rates; it binds only when the board lowers rider rates, or on wheelchair-accessible trips. A rider who
needs a wheelchair-accessible vehicle pays the same fare as anyone else (no surcharge), and the higher
WAV floor (1.936 per mile) is met out of the commission: on the 7.5 mile, 30 minute reference trip the
fare is $38.50, the share $32.725 -> $32.73 and the WAV floor $33.759 -> $33.76, a top-up of $1.03.
There is no surge (``surge_cap`` 1.00), no booking fee, and a $5.00 cancellation fee after 2 minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from backend.fares.money import ISO_4217_CURRENCIES

DistanceUnit = Literal["mile", "km"]
FloorPeriod = Literal["trip", "week"]
FeeKind = Literal["flat", "percentage", "trip_amount"]
ZoneTouch = Literal["pickup", "dropoff", "pickup_or_dropoff", "route"]
RefundDriverPay = Literal["kept", "shared_above_floor"]
# How the validators report a problem: `fail(path, message)`, collected into one PolicyValidationError.
ReportProblem = Callable[[str, str], None]

DISTANCE_UNITS: tuple[str, ...] = ("mile", "km")
FLOOR_PERIODS: tuple[str, ...] = ("trip", "week")
FEE_KINDS: tuple[str, ...] = ("flat", "percentage", "trip_amount")
ZONE_TOUCHES: tuple[str, ...] = ("pickup", "dropoff", "pickup_or_dropoff", "route")
REFUND_DRIVER_PAY_RULES: tuple[str, ...] = ("kept", "shared_above_floor")
# A percentage fee's base: the fare, or the amount of a fee listed before it.
FEE_BASE_FARE = "fare"
METRES_PER_UNIT: dict[str, Decimal] = {"mile": Decimal("1609.344"), "km": Decimal("1000")}

MAX_RATE_DECIMAL_PLACES = 4
# A bound well above any real fare in any currency (VND and IDR fares run to six digits) that keeps
# every amount comfortably inside a 64-bit integer of minor units.
MAX_RATE = Decimal("1000000000")
MAX_COMMISSION_RATE = Decimal("0.5")
MIN_SURGE_CAP = Decimal(1)
MAX_FREE_CANCELLATION_S = 3600
# Tax rates run to thousandths of a percent (New York City's 8.875% is 0.08875), so a fee's rate may have
# more places than a fare rate.
MAX_FEE_RATE_DECIMAL_PLACES = 6
MAX_FEE_RATE = Decimal(1)
MAX_FEES = 20
MAX_FEE_LABEL_LENGTH = 80
MAX_ZONE_NAME_LENGTH = 120  # dispatch.models.ServiceArea.name
MAX_AUTHORIZATION_MARGIN_RATE = Decimal(1)
DEFAULT_AUTHORIZATION_MARGIN_RATE = Decimal("0.00")
DEFAULT_REFUND_DRIVER_PAY: RefundDriverPay = "kept"
_FEE_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}", re.ASCII)

DEFAULT_POLICY_DOCUMENT: dict[str, Any] = {
    "currency": "USD",
    "distance_unit": "mile",
    "rider": {
        "base": "2.50",
        "per_distance": "1.76",
        "per_minute": "0.76",
        "booking_fee": "0.00",
        "minimum_fare": "10.00",
        "surge_cap": "1.00",
        "cancellation_fee": "5.00",
        "free_cancellation_s": 120,
    },
    "commission_rate": "0.15",
    "driver_minimum": {
        "per_distance": "1.496",
        "per_minute": "0.6413",
        "per_trip": "0.00",
        "wav_per_distance": "1.936",
        "period": "trip",
    },
}

_RIDER_RATE_FIELDS = ("base", "per_distance", "per_minute", "booking_fee", "minimum_fare", "surge_cap")
_RIDER_FIELDS = (*_RIDER_RATE_FIELDS, "cancellation_fee", "free_cancellation_s")
_DRIVER_MINIMUM_RATE_FIELDS = ("per_distance", "per_minute", "per_trip", "wav_per_distance")
_DRIVER_MINIMUM_FIELDS = (*_DRIVER_MINIMUM_RATE_FIELDS, "period")
_REQUIRED_TOP_LEVEL = ("currency", "distance_unit", "rider", "commission_rate", "driver_minimum")
_OPTIONAL_TOP_LEVEL = ("version", "effective_at", "fees", "payments", "refunds", "reservations")
_FEE_FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "flat": ("amount",),
    "percentage": ("rate", "of"),
    "trip_amount": (),
}

_DECIMAL_STRING = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
_NEGATIVE_DECIMAL_STRING = re.compile(r"-[0-9]+(\.[0-9]+)?", re.ASCII)


class PolicyValidationError(ValueError):
    """A fare policy document that breaks one or more rules; ``details`` names every bad field."""

    code = "invalid_fare_policy"

    def __init__(self, details: dict[str, list[str]]) -> None:
        self.details = details
        fields = ", ".join(sorted(details))
        super().__init__(f"The fare policy is not valid: {fields}.")


@dataclass(frozen=True)
class RiderRates:
    base: Decimal
    per_distance: Decimal
    per_minute: Decimal
    booking_fee: Decimal
    minimum_fare: Decimal
    surge_cap: Decimal
    cancellation_fee: Decimal
    free_cancellation_s: int


@dataclass(frozen=True)
class DriverMinimum:
    per_distance: Decimal
    per_minute: Decimal
    per_trip: Decimal
    wav_per_distance: Decimal
    period: FloorPeriod


@dataclass(frozen=True)
class FeeZone:
    """A zone condition: the fee applies when the trip touches the service area named ``area``.

    ``touch`` says how: ``pickup`` or ``dropoff`` inside it, ``pickup_or_dropoff`` either, ``route`` the
    pickup, the dropoff or the planned route crossing it (New York's congestion surcharge: trips that
    start in, end in or pass through Manhattan south of 96th Street)."""

    area: str
    touch: ZoneTouch = "pickup_or_dropoff"


@dataclass(frozen=True)
class FeeConditions:
    """When a fee applies; every condition given must hold, and no condition means every trip."""

    zone: FeeZone | None = None
    wheelchair_accessible: bool | None = None


@dataclass(frozen=True)
class PassThroughFee:
    """A charge the board or the law sets that the co-op collects for someone else (a tax, a surcharge,
    a fund, a toll): added to the rider's total, never part of the fare, never taken from driver pay.

    * ``flat``: ``amount`` per trip;
    * ``percentage``: ``rate`` x the sum of the bases in ``of`` (``"fare"``, the fare charged, and/or the
      codes of fees listed before this one), in minor units, rounded once;
    * ``trip_amount``: the amount the trip itself records under this fee's code (a toll), passed through
      unchanged.
    """

    code: str
    label: str
    kind: FeeKind
    amount: Decimal | None = None
    rate: Decimal | None = None
    of: tuple[str, ...] = ()
    when: FeeConditions = FeeConditions()


@dataclass(frozen=True)
class PaymentRules:
    """``authorization_margin_rate``: the card hold at request is the quoted total x (1 + margin)."""

    authorization_margin_rate: Decimal = DEFAULT_AUTHORIZATION_MARGIN_RATE


@dataclass(frozen=True)
class RefundRules:
    """Who bears a refund of the fare: ``kept`` (the co-op; the driver keeps the pay) or
    ``shared_above_floor`` (the driver's share of it, from pay above the trip's floor only)."""

    driver_pay: RefundDriverPay = DEFAULT_REFUND_DRIVER_PAY


@dataclass(frozen=True)
class ReservationRules:
    """What the board allows for rides booked ahead (docs/scheduling.md). Seconds unless named otherwise.

    A rider books at least ``min_lead_s`` and at most ``max_ahead_days`` ahead, with a pickup window of
    ``default_window_s`` (at most ``max_window_s``) either side of the time asked for. Cancelling is free
    until ``free_cancellation_until_s`` before the pickup time, and costs the policy's cancellation fee
    after. A driver may hold ``max_claims_per_driver`` claims at once, on reservations starting within
    ``claim_horizon_s``, and give one back until ``claim_release_until_s`` before it. Dispatch of an
    unclaimed reservation starts early enough for the road ETA plus ``dispatch_margin_s``; a claimed driver
    who is not on the way by then is warned, and ``claim_grace_s`` later the ride is re-dispatched."""

    min_lead_s: int = 3600
    max_ahead_days: int = 6
    default_window_s: int = 900
    max_window_s: int = 1800
    free_cancellation_until_s: int = 7200
    max_claims_per_driver: int = 4
    claim_horizon_s: int = 259200
    claim_release_until_s: int = 7200
    dispatch_margin_s: int = 300
    claim_grace_s: int = 300


# Bounds a board's reservation rules must respect: each field's (least, most).
RESERVATION_RULE_BOUNDS: dict[str, tuple[int, int]] = {
    "min_lead_s": (600, 7 * 86400),
    # The rider's card is authorised at booking, and an authorisation lasts seven days at Stripe (about as
    # long at other processors); the fare is captured after the ride, so a ride is booked at most six days
    # ahead and its hold still stands when it is captured (docs/scheduling.md).
    "max_ahead_days": (1, 6),
    "default_window_s": (0, 3600),
    "max_window_s": (0, 3600),
    "free_cancellation_until_s": (0, 7 * 86400),
    "max_claims_per_driver": (0, 50),
    "claim_horizon_s": (3600, 14 * 86400),
    "claim_release_until_s": (0, 7 * 86400),
    "dispatch_margin_s": (0, 3600),
    "claim_grace_s": (60, 3600),
}


@dataclass(frozen=True)
class FarePolicy:
    currency: str
    distance_unit: DistanceUnit
    rider: RiderRates
    commission_rate: Decimal
    driver_minimum: DriverMinimum
    version: int | None = None
    effective_at: datetime | None = None
    fees: tuple[PassThroughFee, ...] = ()
    payments: PaymentRules = PaymentRules()
    refunds: RefundRules = RefundRules()
    reservations: ReservationRules = ReservationRules()

    def __post_init__(self) -> None:
        # A policy built in code must obey the same rules as one read from a document.
        _check_field_types(self)
        _validate_document(self.to_document())

    @classmethod
    def from_document(
        cls,
        doc: Mapping[str, Any],
        *,
        version: int | None = None,
        effective_at: datetime | None = None,
    ) -> FarePolicy:
        """Validate a policy document and build the policy.

        ``version`` and ``effective_at`` may be in the document; when passed here they win, because the
        server, not the proposer, numbers versions and decides when a passed policy takes effect.
        """
        if version is not None:
            _require_version(version)
        if effective_at is not None:
            _require_aware(effective_at)
        parsed = _validate_document(doc)
        rider = doc["rider"]
        minimum = doc["driver_minimum"]
        return cls(
            currency=doc["currency"],
            distance_unit=doc["distance_unit"],
            rider=RiderRates(
                **{name: Decimal(rider[name]) for name in _RIDER_RATE_FIELDS},
                cancellation_fee=Decimal(rider["cancellation_fee"]),
                free_cancellation_s=rider["free_cancellation_s"],
            ),
            commission_rate=Decimal(doc["commission_rate"]),
            driver_minimum=DriverMinimum(
                **{name: Decimal(minimum[name]) for name in _DRIVER_MINIMUM_RATE_FIELDS},
                period=minimum["period"],
            ),
            version=version if version is not None else doc.get("version"),
            effective_at=effective_at if effective_at is not None else parsed.effective_at,
            fees=tuple(_fee_from_document(item) for item in doc.get("fees", ())),
            payments=PaymentRules(
                authorization_margin_rate=Decimal(
                    doc.get("payments", {}).get(
                        "authorization_margin_rate", str(DEFAULT_AUTHORIZATION_MARGIN_RATE)
                    )
                )
            ),
            refunds=RefundRules(
                driver_pay=doc.get("refunds", {}).get("driver_pay", DEFAULT_REFUND_DRIVER_PAY)
            ),
            reservations=ReservationRules(**doc.get("reservations", {})),
        )

    def to_document(self) -> dict[str, Any]:
        """The contract's policy object, decimals as normalised strings ("2.50", "1.496").

        The extension sections (``fees``, ``payments``, ``refunds``, ``reservations``) appear only when they
        differ from their defaults, so a policy without them has exactly the contract's object."""
        document = self._contract_document()
        if self.fees:
            document["fees"] = [_fee_document(fee) for fee in self.fees]
        if self.payments != PaymentRules():
            document["payments"] = {
                "authorization_margin_rate": format_decimal(self.payments.authorization_margin_rate)
            }
        if self.refunds != RefundRules():
            document["refunds"] = {"driver_pay": self.refunds.driver_pay}
        if self.reservations != ReservationRules():
            document["reservations"] = asdict(self.reservations)
        return document

    def _contract_document(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "effective_at": format_datetime(self.effective_at) if self.effective_at else None,
            "currency": self.currency,
            "distance_unit": self.distance_unit,
            "rider": {
                **{name: format_decimal(getattr(self.rider, name)) for name in _RIDER_RATE_FIELDS},
                "cancellation_fee": format_decimal(self.rider.cancellation_fee),
                "free_cancellation_s": self.rider.free_cancellation_s,
            },
            "commission_rate": format_decimal(self.commission_rate),
            "driver_minimum": {
                **{
                    name: format_decimal(getattr(self.driver_minimum, name))
                    for name in _DRIVER_MINIMUM_RATE_FIELDS
                },
                "period": self.driver_minimum.period,
            },
        }


def _fee_from_document(item: Mapping[str, Any]) -> PassThroughFee:
    when = item.get("when", {})
    zone = when.get("zone")
    return PassThroughFee(
        code=item["code"],
        label=item["label"],
        kind=item["kind"],
        amount=Decimal(item["amount"]) if "amount" in item else None,
        rate=Decimal(item["rate"]) if "rate" in item else None,
        of=tuple(item.get("of", ())),
        when=FeeConditions(
            zone=FeeZone(area=zone["area"], touch=zone.get("touch", "pickup_or_dropoff")) if zone else None,
            wheelchair_accessible=when.get("wheelchair_accessible"),
        ),
    )


def _fee_document(fee: PassThroughFee) -> dict[str, Any]:
    document: dict[str, Any] = {"code": fee.code, "label": fee.label, "kind": fee.kind}
    if fee.amount is not None:
        document["amount"] = format_decimal(fee.amount)
    if fee.rate is not None:
        document["rate"] = format_decimal(fee.rate)
    if fee.kind == "percentage" or fee.of:
        document["of"] = list(fee.of)
    when: dict[str, Any] = {}
    if fee.when.zone is not None:
        when["zone"] = {"area": fee.when.zone.area, "touch": fee.when.zone.touch}
    if fee.when.wheelchair_accessible is not None:
        when["wheelchair_accessible"] = fee.when.wheelchair_accessible
    if when:
        document["when"] = when
    return document


def default_policy() -> FarePolicy:
    """The seeded default policy (see the module docstring for where its numbers come from)."""
    return FarePolicy.from_document(DEFAULT_POLICY_DOCUMENT)


def format_decimal(value: Decimal) -> str:
    """At least two decimal places, no trailing zeros beyond them: 2.5 -> "2.50", 0.620 -> "0.62"."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"expected a finite Decimal, not {value!r}")
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(2, -exponent)
    return f"{value:.{places}f}"


def format_datetime(value: datetime) -> str:
    text = value.isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True)
class _ParsedExtras:
    effective_at: datetime | None


def _validate_document(doc: object) -> _ParsedExtras:
    errors: dict[str, list[str]] = {}

    def fail(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    if not isinstance(doc, Mapping):
        raise PolicyValidationError({"policy": ["must be a JSON object"]})

    _check_keys(doc, "", _REQUIRED_TOP_LEVEL, _OPTIONAL_TOP_LEVEL, fail)

    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        fail("version", "must be a positive whole number")

    effective_at: datetime | None = None
    if "effective_at" in doc and doc["effective_at"] is not None:
        effective_at = _parse_datetime(doc["effective_at"], "effective_at", fail)

    if "currency" in doc:
        currency = doc["currency"]
        if not isinstance(currency, str) or currency not in ISO_4217_CURRENCIES:
            fail("currency", 'must be an ISO 4217 currency code in capitals, such as "USD"')

    if "distance_unit" in doc and doc["distance_unit"] not in DISTANCE_UNITS:
        fail("distance_unit", 'must be "mile" or "km"')

    if "commission_rate" in doc:
        rate = _parse_rate(doc["commission_rate"], "commission_rate", fail)
        if rate is not None and rate > MAX_COMMISSION_RATE:
            fail("commission_rate", "must be between 0 and 0.5 inclusive")

    rider = doc.get("rider")
    if "rider" in doc and not isinstance(rider, Mapping):
        fail("rider", "must be an object")
    elif isinstance(rider, Mapping):
        _check_keys(rider, "rider.", _RIDER_FIELDS, (), fail)
        for name in (*_RIDER_RATE_FIELDS, "cancellation_fee"):
            if name in rider:
                value = _parse_rate(rider[name], f"rider.{name}", fail)
                if name == "surge_cap" and value is not None and value < MIN_SURGE_CAP:
                    fail("rider.surge_cap", "must be at least 1.00 (1.00 means no surge)")
        if "free_cancellation_s" in rider:
            seconds = rider["free_cancellation_s"]
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                fail("rider.free_cancellation_s", "must be a whole number of seconds")
            elif not 0 <= seconds <= MAX_FREE_CANCELLATION_S:
                fail("rider.free_cancellation_s", f"must be between 0 and {MAX_FREE_CANCELLATION_S} seconds")

    minimum = doc.get("driver_minimum")
    if "driver_minimum" in doc and not isinstance(minimum, Mapping):
        fail("driver_minimum", "must be an object")
    elif isinstance(minimum, Mapping):
        _check_keys(minimum, "driver_minimum.", _DRIVER_MINIMUM_FIELDS, (), fail)
        for name in _DRIVER_MINIMUM_RATE_FIELDS:
            if name in minimum:
                _parse_rate(minimum[name], f"driver_minimum.{name}", fail)
        if "period" in minimum and minimum["period"] not in FLOOR_PERIODS:
            fail("driver_minimum.period", 'must be "trip" or "week"')

    if "fees" in doc:
        _validate_fees(doc["fees"], fail)
    if "payments" in doc:
        _validate_payments(doc["payments"], fail)
    if "refunds" in doc:
        _validate_refunds(doc["refunds"], fail)
    if "reservations" in doc:
        _validate_reservations(doc["reservations"], fail)

    if errors:
        raise PolicyValidationError(errors)
    return _ParsedExtras(effective_at=effective_at)


def _validate_fees(fees: object, fail: ReportProblem) -> None:
    if not isinstance(fees, list):
        fail("fees", "must be a list of fee items")
        return
    if len(fees) > MAX_FEES:
        fail("fees", f"must have at most {MAX_FEES} items")
    earlier_codes: set[str] = set()
    for index, item in enumerate(fees):
        path = f"fees[{index}]"
        if not isinstance(item, Mapping):
            fail(path, "must be an object")
            continue
        code = item.get("code")
        kind = item.get("kind")
        kind_fields = _FEE_FIELDS_BY_KIND.get(kind, ()) if isinstance(kind, str) else ()
        _check_keys(item, f"{path}.", ("code", "label", "kind", *kind_fields), ("when",), fail)
        if "code" in item:
            if not isinstance(code, str) or not _FEE_CODE.fullmatch(code):
                fail(
                    f"{path}.code", "must be 1 to 40 lower-case letters, digits or _, starting with a letter"
                )
            elif code == FEE_BASE_FARE:
                fail(f"{path}.code", f'"{FEE_BASE_FARE}" is the fare itself; choose another code')
            elif code in earlier_codes:
                fail(f"{path}.code", "is used by an earlier fee; codes must be unique")
        if "label" in item:
            label = item["label"]
            if not isinstance(label, str) or not label.strip():
                fail(f"{path}.label", "must be a non-empty string")
            elif len(label) > MAX_FEE_LABEL_LENGTH or label != label.strip():
                fail(
                    f"{path}.label",
                    f"must be at most {MAX_FEE_LABEL_LENGTH} characters, without outer spaces",
                )
        if "kind" in item and kind not in FEE_KINDS:
            fail(f"{path}.kind", 'must be "flat", "percentage" or "trip_amount"')
        if kind == "flat" and "amount" in item:
            _parse_rate(item["amount"], f"{path}.amount", fail)
        if kind == "percentage":
            if "rate" in item:
                rate = _parse_rate(item["rate"], f"{path}.rate", fail, places=MAX_FEE_RATE_DECIMAL_PLACES)
                if rate is not None and rate > MAX_FEE_RATE:
                    fail(f"{path}.rate", "must be between 0 and 1 inclusive (0.045 is 4.5%)")
            if "of" in item:
                _validate_fee_bases(item["of"], f"{path}.of", earlier_codes, fail)
        if "when" in item:
            _validate_fee_conditions(item["when"], f"{path}.when", fail)
        if isinstance(code, str):
            earlier_codes.add(code)


def _validate_fee_bases(bases: object, path: str, earlier_codes: set[str], fail: ReportProblem) -> None:
    if not isinstance(bases, list) or not bases:
        fail(path, f'must be a non-empty list of bases: "{FEE_BASE_FARE}" and/or codes of earlier fees')
        return
    seen: set[object] = set()
    for position, base in enumerate(bases):
        where = f"{path}[{position}]"
        if not isinstance(base, str) or (base != FEE_BASE_FARE and base not in earlier_codes):
            fail(where, f'must be "{FEE_BASE_FARE}" or the code of a fee listed before this one')
        elif base in seen:
            fail(where, "is listed twice")
        seen.add(base if isinstance(base, str) else repr(base))


def _validate_fee_conditions(when: object, path: str, fail: ReportProblem) -> None:
    if not isinstance(when, Mapping):
        fail(path, "must be an object")
        return
    _check_keys(when, f"{path}.", (), ("zone", "wheelchair_accessible"), fail)
    if "wheelchair_accessible" in when and not isinstance(when["wheelchair_accessible"], bool):
        fail(f"{path}.wheelchair_accessible", "must be true or false")
    if "zone" not in when:
        return
    zone = when["zone"]
    if not isinstance(zone, Mapping):
        fail(
            f"{path}.zone",
            'must be an object such as {"area": "Manhattan south of 96th St", "touch": "route"}',
        )
        return
    _check_keys(zone, f"{path}.zone.", ("area",), ("touch",), fail)
    if "area" in zone:
        area = zone["area"]
        if not isinstance(area, str) or not area.strip() or len(area) > MAX_ZONE_NAME_LENGTH:
            fail(
                f"{path}.zone.area", f"must be a service area's name (1 to {MAX_ZONE_NAME_LENGTH} characters)"
            )
    if "touch" in zone and zone["touch"] not in ZONE_TOUCHES:
        fail(f"{path}.zone.touch", 'must be "pickup", "dropoff", "pickup_or_dropoff" or "route"')


def _validate_payments(payments: object, fail: ReportProblem) -> None:
    if not isinstance(payments, Mapping):
        fail("payments", "must be an object")
        return
    _check_keys(payments, "payments.", (), ("authorization_margin_rate",), fail)
    if "authorization_margin_rate" in payments:
        margin = _parse_rate(
            payments["authorization_margin_rate"], "payments.authorization_margin_rate", fail
        )
        if margin is not None and margin > MAX_AUTHORIZATION_MARGIN_RATE:
            fail("payments.authorization_margin_rate", "must be between 0 and 1 inclusive (0.25 holds 125%)")


def _validate_refunds(refunds: object, fail: ReportProblem) -> None:
    if not isinstance(refunds, Mapping):
        fail("refunds", "must be an object")
        return
    _check_keys(refunds, "refunds.", (), ("driver_pay",), fail)
    if "driver_pay" in refunds and refunds["driver_pay"] not in REFUND_DRIVER_PAY_RULES:
        fail("refunds.driver_pay", 'must be "kept" or "shared_above_floor"')


def _validate_reservations(reservations: object, fail: ReportProblem) -> None:
    if not isinstance(reservations, Mapping):
        fail("reservations", "must be an object")
        return
    _check_keys(reservations, "reservations.", (), tuple(RESERVATION_RULE_BOUNDS), fail)
    for name, (least, most) in RESERVATION_RULE_BOUNDS.items():
        if name not in reservations:
            continue
        value = reservations[name]
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"reservations.{name}", "must be a whole number")
        elif not least <= value <= most:
            fail(f"reservations.{name}", f"must be between {least} and {most}")
    rules = ReservationRules(
        **{
            name: value
            for name, value in reservations.items()
            if name in RESERVATION_RULE_BOUNDS and isinstance(value, int) and not isinstance(value, bool)
        }
    )
    if rules.default_window_s > rules.max_window_s:
        fail("reservations.default_window_s", "must not be wider than max_window_s")
    if rules.min_lead_s > rules.max_ahead_days * 86400:
        fail("reservations.min_lead_s", "must be shorter than max_ahead_days")


def _check_keys(
    mapping: Mapping[str, Any],
    prefix: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    fail: ReportProblem,
) -> None:
    for name in required:
        if name not in mapping:
            fail(f"{prefix}{name}", "this field is required")
    for key in mapping:
        if key not in required and key not in optional:
            fail(f"{prefix}{key}", "unknown field")


def _parse_rate(
    raw: object, path: str, fail: ReportProblem, *, places: int = MAX_RATE_DECIMAL_PLACES
) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, str):
        kind = "a number" if isinstance(raw, int | float) and not isinstance(raw, bool) else "this value"
        fail(path, f'must be a decimal string such as "2.50", not {kind}')
        return None
    if _NEGATIVE_DECIMAL_STRING.fullmatch(raw):
        fail(path, "must not be negative")
        return None
    if not _DECIMAL_STRING.fullmatch(raw):
        fail(path, 'must be a decimal string such as "2.50"')
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern above admits only valid decimals
        fail(path, 'must be a decimal string such as "2.50"')
        return None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        fail(path, f"must have at most {places} decimal places")
        return None
    if value >= MAX_RATE:
        fail(path, f"must be less than {MAX_RATE}")
        return None
    return value


def _parse_datetime(raw: object, path: str, fail: ReportProblem) -> datetime | None:
    if not isinstance(raw, str):
        fail(path, "must be an ISO 8601 date-time string with a zone, or null")
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        fail(path, "must be an ISO 8601 date-time string with a zone, or null")
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        fail(path, "must include a time zone, such as 2026-11-21T14:03:00Z")
        return None
    return value


def _require_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PolicyValidationError({"version": ["must be a positive whole number"]})


def _require_aware(moment: object) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise PolicyValidationError({"effective_at": ["must be a datetime with a time zone"]})


def _check_field_types(policy: FarePolicy) -> None:
    errors: dict[str, list[str]] = {}
    decimal_fields = [("commission_rate", policy.commission_rate)]
    if isinstance(policy.rider, RiderRates):
        decimal_fields += [
            (f"rider.{name}", getattr(policy.rider, name))
            for name in (*_RIDER_RATE_FIELDS, "cancellation_fee")
        ]
    else:
        errors["rider"] = ["must be a RiderRates"]
    if isinstance(policy.driver_minimum, DriverMinimum):
        decimal_fields += [
            (f"driver_minimum.{name}", getattr(policy.driver_minimum, name))
            for name in _DRIVER_MINIMUM_RATE_FIELDS
        ]
    else:
        errors["driver_minimum"] = ["must be a DriverMinimum"]
    if isinstance(policy.fees, tuple):
        for index, fee in enumerate(policy.fees):
            if not isinstance(fee, PassThroughFee):
                errors[f"fees[{index}]"] = ["must be a PassThroughFee"]
                continue
            for name in ("amount", "rate"):
                if getattr(fee, name) is not None:
                    decimal_fields.append((f"fees[{index}].{name}", getattr(fee, name)))
            if not isinstance(fee.of, tuple):
                errors[f"fees[{index}].of"] = ["must be a tuple"]
            if not isinstance(fee.when, FeeConditions) or not (
                fee.when.zone is None or isinstance(fee.when.zone, FeeZone)
            ):
                errors[f"fees[{index}].when"] = ["must be FeeConditions (with a FeeZone or None)"]
    else:
        errors["fees"] = ["must be a tuple of PassThroughFee"]
    if isinstance(policy.payments, PaymentRules):
        decimal_fields.append(
            ("payments.authorization_margin_rate", policy.payments.authorization_margin_rate)
        )
    else:
        errors["payments"] = ["must be a PaymentRules"]
    if not isinstance(policy.refunds, RefundRules):
        errors["refunds"] = ["must be a RefundRules"]
    for path, value in decimal_fields:
        if not isinstance(value, Decimal) or not value.is_finite():
            errors[path] = ["must be a finite Decimal"]
    if policy.version is not None:
        try:
            _require_version(policy.version)
        except PolicyValidationError as error:
            errors.update(error.details)
    if policy.effective_at is not None:
        try:
            _require_aware(policy.effective_at)
        except PolicyValidationError as error:
            errors.update(error.details)
    if errors:
        raise PolicyValidationError(errors)
