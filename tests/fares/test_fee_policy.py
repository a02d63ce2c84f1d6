"""The policy document's pass-through fees, card authorisation margin and refund rule: validated field by
field (every bad path named at once), defaults that leave a policy without them exactly as before."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from backend.fares.policy import (
    DEFAULT_POLICY_DOCUMENT,
    FarePolicy,
    FeeConditions,
    FeeZone,
    PassThroughFee,
    PaymentRules,
    PolicyValidationError,
    RefundRules,
    default_policy,
)

CONGESTION_ZONE = "Manhattan south of 96th St"
NEW_YORK_FEES = [
    {
        "code": "nys_congestion",
        "label": "NYS congestion surcharge",
        "kind": "flat",
        "amount": "2.75",
        "when": {"zone": {"area": CONGESTION_ZONE, "touch": "route"}},
    },
    {
        "code": "black_car_fund",
        "label": "Black Car Fund",
        "kind": "percentage",
        "rate": "0.025",
        "of": ["fare"],
    },
    {"code": "sales_tax", "label": "Sales tax", "kind": "percentage", "rate": "0.08875", "of": ["fare"]},
    {"code": "tolls", "label": "Tolls", "kind": "trip_amount"},
]


def document(**sections: object) -> dict:
    doc = copy.deepcopy(DEFAULT_POLICY_DOCUMENT)
    doc.update(copy.deepcopy(sections))
    return doc


def errors_for(doc: dict) -> dict[str, list[str]]:
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy.from_document(doc)
    assert caught.value.code == "invalid_fare_policy"
    return caught.value.details


def test_a_policy_without_the_new_sections_has_the_defaults_and_the_contract_object_unchanged():
    policy = default_policy()
    assert policy.fees == ()
    assert policy.payments == PaymentRules(authorization_margin_rate=Decimal("0.00"))
    assert policy.refunds == RefundRules(driver_pay="kept")
    out = policy.to_document()
    assert "fees" not in out and "payments" not in out and "refunds" not in out
    assert FarePolicy.from_document(out) == policy


def test_explicit_defaults_are_the_same_policy_as_none():
    explicit = FarePolicy.from_document(
        document(fees=[], payments={"authorization_margin_rate": "0.00"}, refunds={"driver_pay": "kept"})
    )
    assert explicit == default_policy()


def test_the_new_york_fees_parse_into_values_and_round_trip():
    doc = document(
        fees=NEW_YORK_FEES,
        payments={"authorization_margin_rate": "0.25"},
        refunds={"driver_pay": "shared_above_floor"},
    )
    policy = FarePolicy.from_document(doc)
    congestion, black_car_fund, sales_tax, tolls = policy.fees
    assert congestion == PassThroughFee(
        code="nys_congestion",
        label="NYS congestion surcharge",
        kind="flat",
        amount=Decimal("2.75"),
        when=FeeConditions(zone=FeeZone(area=CONGESTION_ZONE, touch="route")),
    )
    assert black_car_fund.rate == Decimal("0.025") and black_car_fund.of == ("fare",)
    assert sales_tax.rate == Decimal("0.08875")
    assert tolls.kind == "trip_amount" and tolls.amount is None and tolls.rate is None
    assert policy.payments.authorization_margin_rate == Decimal("0.25")
    assert policy.refunds.driver_pay == "shared_above_floor"

    out = policy.to_document()
    assert out["fees"] == NEW_YORK_FEES
    assert out["payments"] == {"authorization_margin_rate": "0.25"}
    assert out["refunds"] == {"driver_pay": "shared_above_floor"}
    assert FarePolicy.from_document(out) == policy


def test_a_zone_without_touch_means_pickup_or_dropoff_and_is_written_out():
    fee = {"code": "airport", "label": "Airport access fee", "kind": "flat", "amount": "2.50",
           "when": {"zone": {"area": "JFK and LaGuardia"}}}  # fmt: skip
    policy = FarePolicy.from_document(document(fees=[fee]))
    assert policy.fees[0].when.zone == FeeZone(area="JFK and LaGuardia", touch="pickup_or_dropoff")
    assert policy.to_document()["fees"][0]["when"]["zone"]["touch"] == "pickup_or_dropoff"


def test_a_percentage_may_be_of_the_fare_and_earlier_fees():
    fees = [
        NEW_YORK_FEES[1],
        {
            "code": "tax",
            "label": "Tax",
            "kind": "percentage",
            "rate": "0.045",
            "of": ["fare", "black_car_fund"],
        },
    ]
    assert FarePolicy.from_document(document(fees=fees)).fees[1].of == ("fare", "black_car_fund")


@pytest.mark.parametrize(
    ("fees", "expected"),
    [
        ({"code": "x"}, {"fees": ["must be a list of fee items"]}),
        (["tax"], {"fees[0]": ["must be an object"]}),
        (
            [{"kind": "flat", "amount": "1.00"}],
            {"fees[0].code": ["this field is required"], "fees[0].label": ["this field is required"]},
        ),
        (
            [{"code": "Sales Tax", "label": "Sales tax", "kind": "flat", "amount": "1.00"}],
            {"fees[0].code": ["must be 1 to 40 lower-case letters, digits or _, starting with a letter"]},
        ),
        (
            [{"code": "fare", "label": "Fare", "kind": "flat", "amount": "1.00"}],
            {"fees[0].code": ['"fare" is the fare itself; choose another code']},
        ),
        (
            [NEW_YORK_FEES[1], {**NEW_YORK_FEES[1], "label": "Again"}],
            {"fees[1].code": ["is used by an earlier fee; codes must be unique"]},
        ),
        (
            [{"code": "a", "label": " padded ", "kind": "flat", "amount": "1.00"}],
            {"fees[0].label": ["must be at most 80 characters, without outer spaces"]},
        ),
        (
            [{"code": "a", "label": "", "kind": "flat", "amount": "1.00"}],
            {"fees[0].label": ["must be a non-empty string"]},
        ),
        (
            [{"code": "a", "label": "A", "kind": "per_mile", "amount": "1.00"}],
            {
                "fees[0].kind": ['must be "flat", "percentage" or "trip_amount"'],
                "fees[0].amount": ["unknown field"],
            },
        ),
        ([{"code": "a", "label": "A", "kind": "flat"}], {"fees[0].amount": ["this field is required"]}),
        (
            [{"code": "a", "label": "A", "kind": "flat", "amount": 2.75}],
            {"fees[0].amount": ['must be a decimal string such as "2.50", not a number']},
        ),
        (
            [{"code": "a", "label": "A", "kind": "flat", "amount": "2.75", "rate": "0.1"}],
            {"fees[0].rate": ["unknown field"]},
        ),
        (
            [{"code": "a", "label": "A", "kind": "percentage", "rate": "1.01", "of": ["fare"]}],
            {"fees[0].rate": ["must be between 0 and 1 inclusive (0.045 is 4.5%)"]},
        ),
        (
            [{"code": "a", "label": "A", "kind": "percentage", "rate": "0.0888751", "of": ["fare"]}],
            {"fees[0].rate": ["must have at most 6 decimal places"]},
        ),
        (
            [{"code": "a", "label": "A", "kind": "percentage", "rate": "0.1", "of": []}],
            {"fees[0].of": ['must be a non-empty list of bases: "fare" and/or codes of earlier fees']},
        ),
        (
            [
                {"code": "a", "label": "A", "kind": "percentage", "rate": "0.1", "of": ["fare", "b", "fare"]},
                {"code": "b", "label": "B", "kind": "flat", "amount": "1.00"},
            ],
            {
                "fees[0].of[1]": ['must be "fare" or the code of a fee listed before this one'],
                "fees[0].of[2]": ["is listed twice"],
            },
        ),
        (
            [{"code": "a", "label": "A", "kind": "trip_amount", "amount": "1.00"}],
            {"fees[0].amount": ["unknown field"]},
        ),
        (
            [
                {
                    "code": "a",
                    "label": "A",
                    "kind": "trip_amount",
                    "when": {"zone": "Manhattan", "shared": True},
                }
            ],
            {
                "fees[0].when.zone": [
                    'must be an object such as {"area": "Manhattan south of 96th St", "touch": "route"}'
                ],
                "fees[0].when.shared": ["unknown field"],
            },
        ),
        (
            [{"code": "a", "label": "A", "kind": "trip_amount", "when": {"zone": {"touch": "near"}}}],
            {
                "fees[0].when.zone.area": ["this field is required"],
                "fees[0].when.zone.touch": ['must be "pickup", "dropoff", "pickup_or_dropoff" or "route"'],
            },
        ),
        (
            [{"code": "a", "label": "A", "kind": "trip_amount", "when": {"wheelchair_accessible": "yes"}}],
            {"fees[0].when.wheelchair_accessible": ["must be true or false"]},
        ),
        (
            [{"code": f"f{n}", "label": "F", "kind": "flat", "amount": "1.00"} for n in range(21)],
            {"fees": ["must have at most 20 items"]},
        ),
    ],
)
def test_every_bad_fee_field_is_named(fees, expected):
    assert errors_for(document(fees=fees)) == expected


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"payments": "0.25"}, {"payments": ["must be an object"]}),
        ({"payments": {"margin": "0.25"}}, {"payments.margin": ["unknown field"]}),
        (
            {"payments": {"authorization_margin_rate": 0.25}},
            {"payments.authorization_margin_rate": ['must be a decimal string such as "2.50", not a number']},
        ),
        (
            {"payments": {"authorization_margin_rate": "1.5"}},
            {"payments.authorization_margin_rate": ["must be between 0 and 1 inclusive (0.25 holds 125%)"]},
        ),
        ({"refunds": []}, {"refunds": ["must be an object"]}),
        (
            {"refunds": {"driver_pay": "shared"}},
            {"refunds.driver_pay": ['must be "kept" or "shared_above_floor"']},
        ),
        ({"refunds": {"driver": "kept"}}, {"refunds.driver": ["unknown field"]}),
    ],
)
def test_bad_payments_and_refunds_fields_are_named(sections, expected):
    assert errors_for(document(**sections)) == expected


def test_all_bad_fields_are_reported_at_once_with_the_old_ones():
    doc = document(
        fees=[{"code": "a", "label": "A", "kind": "flat", "amount": "-1"}],
        refunds={"driver_pay": "no"},
    )
    doc["rider"]["base"] = "abc"
    assert set(errors_for(doc)) == {"rider.base", "fees[0].amount", "refunds.driver_pay"}


def test_a_policy_built_in_code_is_checked_by_the_same_rules():
    base = default_policy()
    fields = {name: getattr(base, name) for name in ("currency", "distance_unit", "rider", "commission_rate")}
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy(
            **fields,
            driver_minimum=base.driver_minimum,
            fees=(
                PassThroughFee(code="tax", label="Tax", kind="percentage", rate=Decimal("2"), of=("fare",)),
            ),
        )
    assert caught.value.details == {"fees[0].rate": ["must be between 0 and 1 inclusive (0.045 is 4.5%)"]}
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy(
            **fields,
            driver_minimum=base.driver_minimum,
            fees=(PassThroughFee(code="tax", label="Tax", kind="flat", amount=2.75),),  # type: ignore[arg-type]
        )
    assert caught.value.details == {"fees[0].amount": ["must be a finite Decimal"]}
    with pytest.raises(PolicyValidationError) as caught:
        FarePolicy(**fields, driver_minimum=base.driver_minimum, payments=PaymentRules(Decimal("1.01")))
    assert caught.value.details == {
        "payments.authorization_margin_rate": ["must be between 0 and 1 inclusive (0.25 holds 125%)"]
    }
