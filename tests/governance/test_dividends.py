"""Patronage dividend allocation: exact sums, the cash minimum, proportionality, validation."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.dividends import Allocation, allocate_patronage, largest_remainder_split


def by_member(allocations: list[Allocation]) -> dict[str, tuple[int, int, int]]:
    return {item.member_id: (item.total, item.cash, item.capital) for item in allocations}


def test_even_split_with_cash_and_capital() -> None:
    allocations = allocate_patronage(10_000, {"m1": 1, "m2": 1, "m3": 2}, Decimal("0.30"))

    assert by_member(allocations) == {
        "m1": (2_500, 750, 1_750),
        "m2": (2_500, 750, 1_750),
        "m3": (5_000, 1_500, 3_500),
    }
    assert allocations.reason is None
    assert allocations.cash_total == 3_000
    assert allocations.capital_total == 7_000


def test_leftover_cents_go_to_largest_remainders_then_smaller_member_id() -> None:
    # 100 cents over three equal patrons: 33.33 each, one cent left; all remainders equal, so "a" gets it.
    allocations = allocate_patronage(100, {"c": 5, "a": 5, "b": 5}, Decimal("1"))

    assert [item.member_id for item in allocations] == ["a", "b", "c"]
    assert [item.total for item in allocations] == [34, 33, 33]
    assert [item.cash for item in allocations] == [34, 33, 33]
    assert all(item.capital == 0 for item in allocations)


def test_largest_remainder_beats_member_id() -> None:
    # Exact shares 10 * 1/6 = 1.67 (z) and 10 * 5/6 = 8.33 (a): z has the larger remainder.
    assert largest_remainder_split(10, {"a": 5, "z": 1}) == {"a": 8, "z": 2}


def test_cash_total_is_rounded_half_up() -> None:
    # 25 cents at 30% is 7.5 cents of cash: rounded half up to 8.
    allocations = allocate_patronage(25, {"m1": 1}, Decimal("0.30"))
    assert by_member(allocations) == {"m1": (25, 8, 17)}


def test_decimal_patronage_is_exact() -> None:
    allocations = allocate_patronage(
        1_000, {"m1": Decimal("0.1"), "m2": Decimal("0.2"), "m3": Decimal("0.7")}, Decimal("0.2")
    )
    assert [item.total for item in allocations] == [100, 200, 700]
    assert [item.cash for item in allocations] == [20, 40, 140]


def test_members_with_zero_patronage_get_zero() -> None:
    allocations = allocate_patronage(999, {"active": 3, "idle": 0}, Decimal("0.5"))
    assert by_member(allocations)["idle"] == (0, 0, 0)
    assert by_member(allocations)["active"][0] == 999


def test_all_zero_patronage_allocates_nothing_and_says_why() -> None:
    allocations = allocate_patronage(5_000, {"m1": 0, "m2": Decimal("0")}, Decimal("0.2"))
    assert list(allocations) == []
    assert allocations.reason is not None and "no member has any patronage" in allocations.reason

    empty = allocate_patronage(5_000, {}, Decimal("0.2"))
    assert list(empty) == [] and empty.reason


def test_zero_surplus_gives_zero_to_everyone() -> None:
    allocations = allocate_patronage(0, {"m1": 5, "m2": 1}, Decimal("0.2"))
    assert by_member(allocations) == {"m1": (0, 0, 0), "m2": (0, 0, 0)}
    assert allocations.reason


def test_every_member_gets_at_least_whole_cents_of_twenty_percent_cash() -> None:
    # 12 cents at 20% is 2.4 cents, rounded to 2. Proportional cash for the two 5-cent members is 0.83
    # each; both are below floor(5 / 5) = 1, so both get a cent before anyone else.
    allocations = allocate_patronage(12, {"a": 5, "b": 5, "c": 2}, Decimal("0.20"))
    assert by_member(allocations) == {"a": (5, 1, 4), "b": (5, 1, 4), "c": (2, 0, 2)}


@pytest.mark.parametrize(
    ("surplus", "patronage", "share", "error", "message"),
    [
        (-1, {"m1": 1}, Decimal("0.5"), ValueError, "surplus_minor must not be negative"),
        (Decimal("10"), {"m1": 1}, Decimal("0.5"), ValueError, "integer number of minor units"),
        (True, {"m1": 1}, Decimal("0.5"), ValueError, "integer number of minor units"),
        (100, {"m1": -1}, Decimal("0.5"), ValueError, "patronage of member m1 must not be negative"),
        (100, {"m1": Decimal("NaN")}, Decimal("0.5"), ValueError, "finite"),
        (100, {"m1": 1.5}, Decimal("0.5"), TypeError, "not a float"),
        (100, {"": 1}, Decimal("0.5"), ValueError, "member ids"),
        (100, {"m1": 1}, Decimal("0.19"), ValueError, "at least 20%"),
        (100, {"m1": 1}, Decimal("1.01"), ValueError, "between 0.20 and 1"),
        (100, {"m1": 1}, 0.5, TypeError, "not a float"),
        (100, {"m1": 1}, "lots", ValueError, "decimal number"),
    ],
)
def test_invalid_inputs_are_refused_clearly(
    surplus: int, patronage: dict, share: Decimal, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        allocate_patronage(surplus, patronage, share)


member_ids = st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=6)
patronage_values = st.one_of(
    st.integers(0, 10**6),
    st.decimals(min_value=0, max_value=10**5, places=3, allow_nan=False, allow_infinity=False),
)
cash_shares = st.decimals(min_value=Decimal("0.20"), max_value=1, places=4)


@settings(max_examples=300, deadline=None)
@given(
    surplus=st.integers(0, 10**9),
    patronage=st.dictionaries(member_ids, patronage_values, min_size=1, max_size=25),
    share=cash_shares,
)
def test_allocation_properties(surplus: int, patronage: dict, share: Decimal) -> None:
    allocations = allocate_patronage(surplus, patronage, share)
    total_patronage = sum(Fraction(value) for value in patronage.values())

    if total_patronage == 0:
        assert list(allocations) == [] and allocations.reason
        return

    assert [item.member_id for item in allocations] == sorted(patronage)
    assert sum(item.total for item in allocations) == surplus
    expected_cash = int((Decimal(surplus) * share).to_integral_value(rounding=ROUND_HALF_UP))
    assert sum(item.cash for item in allocations) == expected_cash
    # At least 20% in cash, up to the half cent the half-up rounding may take off.
    assert expected_cash >= Fraction(surplus, 5) - Fraction(1, 2)
    for item in allocations:
        exact = Fraction(surplus) * Fraction(patronage[item.member_id]) / total_patronage
        assert abs(item.total - exact) < 1
        assert item.cash + item.capital == item.total
        assert item.capital >= 0 and item.total // 5 <= item.cash <= item.total
        if patronage[item.member_id] == 0:
            assert item.total == 0
        if surplus:
            exact_cash = Fraction(item.total * expected_cash, surplus)
            assert abs(item.cash - exact_cash) < 1


@settings(max_examples=200, deadline=None)
@given(
    surplus=st.integers(1, 10**7),
    patronage=st.dictionaries(member_ids, st.integers(1, 1000), min_size=1, max_size=10),
    share=cash_shares,
)
def test_allocation_does_not_depend_on_input_order(surplus: int, patronage: dict, share: Decimal) -> None:
    reversed_patronage = dict(reversed(list(patronage.items())))
    assert list(allocate_patronage(surplus, patronage, share)) == list(
        allocate_patronage(surplus, reversed_patronage, share)
    )
