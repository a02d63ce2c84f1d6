"""The fare policy object of docs/contract.md ("The fare policy object"), as frozen values, and its
validation.

Pure: no Django import. Rates are ``Decimal`` in major units; the document form is the wire form
(decimal strings, at most 4 decimal places). :meth:`FarePolicy.from_document` is the single gate every
policy passes through, whether it comes from a board proposal's payload, the database or a seed: it lists
every bad field at once in :class:`PolicyValidationError` (``details`` maps a field path such as
``"rider.base"`` to its messages), so the API can answer one 400 naming all of them.

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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from backend.fares.money import ISO_4217_CURRENCIES

DistanceUnit = Literal["mile", "km"]
FloorPeriod = Literal["trip", "week"]

DISTANCE_UNITS: tuple[str, ...] = ("mile", "km")
FLOOR_PERIODS: tuple[str, ...] = ("trip", "week")
METRES_PER_UNIT: dict[str, Decimal] = {"mile": Decimal("1609.344"), "km": Decimal("1000")}

MAX_RATE_DECIMAL_PLACES = 4
# A bound well above any real fare in any currency (VND and IDR fares run to six digits) that keeps
# every amount comfortably inside a 64-bit integer of minor units.
MAX_RATE = Decimal("1000000000")
MAX_COMMISSION_RATE = Decimal("0.5")
MIN_SURGE_CAP = Decimal(1)
MAX_FREE_CANCELLATION_S = 3600

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
_OPTIONAL_TOP_LEVEL = ("version", "effective_at")

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
class FarePolicy:
    currency: str
    distance_unit: DistanceUnit
    rider: RiderRates
    commission_rate: Decimal
    driver_minimum: DriverMinimum
    version: int | None = None
    effective_at: datetime | None = None

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
        )

    def to_document(self) -> dict[str, Any]:
        """The contract's policy object, decimals as normalised strings ("2.50", "1.496")."""
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

    if errors:
        raise PolicyValidationError(errors)
    return _ParsedExtras(effective_at=effective_at)


def _check_keys(
    mapping: Mapping[str, Any],
    prefix: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    fail: Any,
) -> None:
    for name in required:
        if name not in mapping:
            fail(f"{prefix}{name}", "this field is required")
    for key in mapping:
        if key not in required and key not in optional:
            fail(f"{prefix}{key}", "unknown field")


def _parse_rate(raw: object, path: str, fail: Any) -> Decimal | None:
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
    if -exponent > MAX_RATE_DECIMAL_PLACES:
        fail(path, f"must have at most {MAX_RATE_DECIMAL_PLACES} decimal places")
        return None
    if value >= MAX_RATE:
        fail(path, f"must be less than {MAX_RATE}")
        return None
    return value


def _parse_datetime(raw: object, path: str, fail: Any) -> datetime | None:
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
