"""Every rule of the fare policy object refuses a bad value with an error naming the field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backend.fares.policy import (
    DEFAULT_POLICY_DOCUMENT,
    DriverMinimum,
    FarePolicy,
    PolicyValidationError,
    RiderRates,
    default_policy,
)

RIDER_RATES = [
    "base",
    "per_distance",
    "per_minute",
    "booking_fee",
    "minimum_fare",
    "surge_cap",
    "cancellation_fee",
]
MINIMUM_RATES = ["per_distance", "per_minute", "per_trip", "wav_per_distance"]
RATE_PATHS = (
    [f"rider.{name}" for name in RIDER_RATES]
    + [f"driver_minimum.{name}" for name in MINIMUM_RATES]
    + ["commission_rate"]
)


def document() -> dict:
    return copy.deepcopy(DEFAULT_POLICY_DOCUMENT)


def set_path(doc: dict, path: str, value: object) -> dict:
    *parents, leaf = path.split(".")
    target = doc
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    return doc


def delete_path(doc: dict, path: str) -> dict:
    *parents, leaf = path.split(".")
    target = doc
    for parent in parents:
        target = target[parent]
    del target[leaf]
    return doc


def errors_for(doc: object) -> dict[str, list[str]]:
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy.from_document(doc)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_fare_policy"
    return caught.value.details


def test_the_default_document_is_valid_and_matches_the_contract_shape():
    policy = FarePolicy.from_document(document(), version=1, effective_at=datetime(2026, 1, 1, tzinfo=UTC))
    out = policy.to_document()
    assert out["version"] == 1
    assert out["effective_at"] == "2026-01-01T00:00:00Z"
    assert set(out) == {"version", "effective_at", "currency", "distance_unit", "rider", "commission_rate",
                        "driver_minimum"}  # fmt: skip
    assert out["rider"]["base"] == "2.50"
    assert out["driver_minimum"]["per_minute"] == "0.6413"
    assert policy.rider.free_cancellation_s == 120
    assert isinstance(policy.rider.base, Decimal)


def test_the_contract_example_is_valid_and_normalised():
    example = {
        "version": 7,
        "effective_at": "2026-11-21T14:03:00Z",
        "currency": "USD",
        "distance_unit": "mile",
        "rider": {"base": "2.5", "per_distance": "1.75", "per_minute": "0.35", "booking_fee": "0",
                  "minimum_fare": "8.00", "surge_cap": "1.00", "cancellation_fee": "5.00",
                  "free_cancellation_s": 120},
        "commission_rate": "0.15",
        "driver_minimum": {"per_distance": "1.357", "per_minute": "0.620", "per_trip": "0.00",
                           "wav_per_distance": "1.760", "period": "trip"},
    }  # fmt: skip
    policy = FarePolicy.from_document(example)
    assert policy.version == 7
    assert policy.effective_at == datetime(2026, 11, 21, 14, 3, tzinfo=UTC)
    out = policy.to_document()
    assert out["rider"]["base"] == "2.50"
    assert out["rider"]["booking_fee"] == "0.00"
    assert out["driver_minimum"]["per_distance"] == "1.357"
    assert out["driver_minimum"]["per_minute"] == "0.62"
    assert out["effective_at"] == "2026-11-21T14:03:00Z"


def test_server_assigned_version_and_effective_at_win_over_the_document():
    doc = document() | {"version": 3, "effective_at": "2026-01-01T00:00:00+00:00"}
    moment = datetime(2027, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=-4)))
    policy = FarePolicy.from_document(doc, version=9, effective_at=moment)
    assert (policy.version, policy.effective_at) == (9, moment)
    assert policy.to_document()["effective_at"] == "2027-05-01T09:30:00-04:00"


@pytest.mark.parametrize("path", RATE_PATHS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2.5, "decimal string"),
        (2, "decimal string"),
        (True, "decimal string"),
        (None, "decimal string"),
        ("", "decimal string"),
        ("abc", "decimal string"),
        ("1e3", "decimal string"),
        (" 1.00", "decimal string"),
        (".5", "decimal string"),
        ("NaN", "decimal string"),
        ("Infinity", "decimal string"),
        ("1,50", "decimal string"),
        ("٣.٠٠", "decimal string"),  # non-ASCII digits
        ("-0.01", "negative"),
        ("0.12345", "at most 4 decimal places"),
        ("1000000000", "less than"),
    ],
)
def test_a_bad_rate_is_refused_naming_its_field(path, value, message):
    details = errors_for(set_path(document(), path, value))
    assert list(details) == [path]
    assert message in details[path][0]


@pytest.mark.parametrize("value", ["0.5001", "0.51", "1", "1.00"])
def test_commission_above_half_is_refused(value):
    details = errors_for(set_path(document(), "commission_rate", value))
    assert details == {"commission_rate": ["must be between 0 and 0.5 inclusive"]}


@pytest.mark.parametrize("value", ["0", "0.0000", "0.25", "0.5", "0.5000"])
def test_commission_from_zero_to_half_inclusive_is_accepted(value):
    assert FarePolicy.from_document(
        set_path(document(), "commission_rate", value)
    ).commission_rate == Decimal(value)


@pytest.mark.parametrize("value", ["0", "0.99", "0.9999"])
def test_surge_cap_below_one_is_refused(value):
    details = errors_for(set_path(document(), "rider.surge_cap", value))
    assert list(details) == ["rider.surge_cap"]
    assert "at least 1.00" in details["rider.surge_cap"][0]


@pytest.mark.parametrize("value", ["usd", "US", "USDX", "XXX", "XAU", "ABC", 840, None, "HRK"])
def test_currency_must_be_iso_4217(value):
    details = errors_for(set_path(document(), "currency", value))
    assert list(details) == ["currency"]
    assert "ISO 4217" in details["currency"][0]


@pytest.mark.parametrize("value", ["USD", "EUR", "GBP", "CAD", "JPY", "KWD", "CHF", "INR", "MXN"])
def test_common_currencies_are_accepted(value):
    assert FarePolicy.from_document(set_path(document(), "currency", value)).currency == value


@pytest.mark.parametrize("value", ["miles", "MILE", "kilometre", "", None, 1])
def test_distance_unit_must_be_mile_or_km(value):
    assert errors_for(set_path(document(), "distance_unit", value)) == {
        "distance_unit": ['must be "mile" or "km"']
    }


@pytest.mark.parametrize("value", ["month", "Week", "day", None])
def test_period_must_be_trip_or_week(value):
    assert errors_for(set_path(document(), "driver_minimum.period", value)) == {
        "driver_minimum.period": ['must be "trip" or "week"']
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "between 0 and 3600"),
        (3601, "between 0 and 3600"),
        (120.0, "whole number"),
        ("120", "whole number"),
        (True, "whole number"),
        (None, "whole number"),
    ],
)
def test_free_cancellation_seconds_is_a_bounded_whole_number(value, message):
    details = errors_for(set_path(document(), "rider.free_cancellation_s", value))
    assert list(details) == ["rider.free_cancellation_s"]
    assert message in details["rider.free_cancellation_s"][0]


@pytest.mark.parametrize("value", [0, 3600])
def test_free_cancellation_bounds_are_inclusive(value):
    policy = FarePolicy.from_document(set_path(document(), "rider.free_cancellation_s", value))
    assert policy.rider.free_cancellation_s == value


@pytest.mark.parametrize("path", ["surcharge", "rider.tip", "driver_minimum.per_hour"])
def test_unknown_keys_are_refused(path):
    assert errors_for(set_path(document(), path, "1.00")) == {path: ["unknown field"]}


@pytest.mark.parametrize(
    "path",
    ["currency", "distance_unit", "rider", "commission_rate", "driver_minimum"]
    + [f"rider.{name}" for name in [*RIDER_RATES, "free_cancellation_s"]]
    + [f"driver_minimum.{name}" for name in [*MINIMUM_RATES, "period"]],
)
def test_missing_keys_are_refused(path):
    assert errors_for(delete_path(document(), path)) == {path: ["this field is required"]}


@pytest.mark.parametrize("section", ["rider", "driver_minimum"])
@pytest.mark.parametrize("value", [None, "x", [], 5])
def test_sections_must_be_objects(section, value):
    assert errors_for(set_path(document(), section, value)) == {section: ["must be an object"]}


@pytest.mark.parametrize("value", [None, [], "policy", 7])
def test_the_document_must_be_an_object(value):
    assert errors_for(value) == {"policy": ["must be a JSON object"]}


@pytest.mark.parametrize("value", [0, -1, "7", 1.0, True])
def test_version_must_be_a_positive_whole_number(value):
    assert errors_for(set_path(document(), "version", value)) == {
        "version": ["must be a positive whole number"]
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [("2026-11-21T14:03:00", "time zone"), ("yesterday", "ISO 8601"), (1700000000, "ISO 8601")],
)
def test_effective_at_must_be_an_iso_datetime_with_a_zone(value, message):
    details = errors_for(set_path(document(), "effective_at", value))
    assert list(details) == ["effective_at"]
    assert message in details["effective_at"][0]


def test_version_and_effective_at_may_be_null_or_absent():
    policy = FarePolicy.from_document(document() | {"version": None, "effective_at": None})
    assert (policy.version, policy.effective_at) == (None, None)


def test_keyword_version_and_naive_effective_at_are_refused():
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy.from_document(document(), version=0)
    assert list(caught.value.details) == ["version"]
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy.from_document(document(), effective_at=datetime(2026, 1, 1))
    assert list(caught.value.details) == ["effective_at"]


def test_every_bad_field_is_listed_at_once():
    doc = document()
    doc["currency"] = "usd"
    doc["commission_rate"] = "0.6"
    doc["rider"]["base"] = "-1"
    doc["rider"]["surge_cap"] = "0.5"
    doc["rider"]["extra"] = "1"
    del doc["driver_minimum"]["per_trip"]
    doc["driver_minimum"]["period"] = "month"

    details = errors_for(doc)

    assert set(details) == {
        "currency",
        "commission_rate",
        "rider.base",
        "rider.surge_cap",
        "rider.extra",
        "driver_minimum.per_trip",
        "driver_minimum.period",
    }
    assert all(isinstance(messages, list) and messages for messages in details.values())


def test_error_message_names_the_fields():
    with pytest.raises(PolicyValidationError, match=r"commission_rate, rider\.base"):
        FarePolicy.from_document(set_path(set_path(document(), "rider.base", "x"), "commission_rate", "2"))


def test_a_policy_built_in_code_obeys_the_same_rules():
    good = default_policy()
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy(
            currency=good.currency,
            distance_unit=good.distance_unit,
            rider=good.rider,
            commission_rate=Decimal("0.75"),
            driver_minimum=good.driver_minimum,
        )
    assert list(caught.value.details) == ["commission_rate"]

    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy(
            currency=good.currency,
            distance_unit=good.distance_unit,
            rider=RiderRates(**{**good.rider.__dict__, "base": 2.5}),
            commission_rate=good.commission_rate,
            driver_minimum=DriverMinimum(**{**good.driver_minimum.__dict__, "period": "day"}),
        )
    assert set(caught.value.details) == {"rider.base"}


def test_policies_are_immutable():
    policy = default_policy()
    with pytest.raises(AttributeError):
        policy.commission_rate = Decimal("0.5")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        policy.rider.base = Decimal(0)  # type: ignore[misc]


def test_from_document_does_not_change_its_input():
    doc = document()
    FarePolicy.from_document(doc)
    assert doc == DEFAULT_POLICY_DOCUMENT
