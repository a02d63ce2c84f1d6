"""Patronage dividends: sharing a year's surplus among members in proportion to their patronage.

Pure Python, no Django. Amounts are integer minor units (cents); patronage is whatever measure the bylaws
name (fares driven, trips, hours) as a non-negative ``Decimal`` or ``int``.

How the split works, so a member can check it by hand:

1. Each member's exact share is ``surplus * patronage / total patronage`` (a fraction). Everyone gets the
   whole cents of their share; the cents still missing are handed out one each to the members with the
   largest fractional remainders (largest-remainder / Hamilton method), equal remainders going to the
   smaller member id first. The totals add up to the surplus exactly and nobody is more than one cent
   from their exact share.
2. The cash part of the whole surplus is ``round_half_up(surplus * cash_share)`` cents; the bylaws may set
   ``cash_share`` anywhere from 0.20 to 1 because a patronage dividend must be paid at least 20% in cash
   (US Internal Revenue Code section 1388(c), "qualified written notice of allocation"). That cash is split
   across members in proportion to their totals by the same largest-remainder rule, so the cash column adds
   up exactly too; the rest of each member's total is credited to their capital account
   (``capital = total - cash``).

Integer cents cannot always give every member 20% exactly (a member allocated one cent gets that cent or
nothing), so the cash split also guarantees each member at least the whole cents of 20% of their total:
``floor(total / 5) <= cash <= total``. Only when ``round_half_up`` took the cash column a little under 20%
of the surplus can that minimum bind; members below it are then served first from the leftover cents
(there are always enough), and everyone stays within one cent of their exact proportional cash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

__all__ = [
    "MINIMUM_CASH_SHARE",
    "Allocation",
    "AllocationList",
    "allocate_patronage",
    "largest_remainder_split",
]

MINIMUM_CASH_SHARE = Decimal("0.20")


@dataclass(frozen=True)
class Allocation:
    """One member's patronage dividend, in minor units: ``cash + capital == total``."""

    member_id: str
    total: int
    cash: int
    capital: int


class AllocationList(list[Allocation]):
    """The allocations, sorted by member id, plus why nothing was allocated when that is the case.

    It is a plain list of ``Allocation`` for every other purpose; ``reason`` is ``None`` when the surplus
    was allocated.
    """

    reason: str | None
    cash_total: int
    capital_total: int

    def __init__(self, allocations: list[Allocation], *, reason: str | None = None) -> None:
        super().__init__(allocations)
        self.reason = reason
        self.cash_total = sum(allocation.cash for allocation in allocations)
        self.capital_total = sum(allocation.capital for allocation in allocations)


def largest_remainder_split(
    amount: int,
    weights: Mapping[str, Fraction | Decimal | int],
    *,
    minimums: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Split ``amount`` whole units across keys in proportion to ``weights``, summing exactly to it.

    Whole parts first, then one unit each to the largest remainders; equal remainders go to the smaller
    key first. Keys with zero weight get zero. ``weights`` must be non-negative with a positive sum.
    A key whose whole part is below its entry in ``minimums`` is served before the others (the caller
    makes sure the minimums are reachable by rounding up: each is at most the exact share rounded up).
    """
    total_weight = sum((Fraction(weight) for weight in weights.values()), Fraction(0))
    if total_weight <= 0:
        raise ValueError("weights must have a positive sum")
    shares: dict[str, int] = {}
    remainders: list[tuple[Fraction, str]] = []
    for key, weight in weights.items():
        exact = Fraction(amount) * Fraction(weight) / total_weight
        whole = exact.numerator // exact.denominator
        shares[key] = whole
        remainders.append((exact - whole, key))
    missing = amount - sum(shares.values())
    below_minimum = {key for key, whole in shares.items() if minimums and whole < minimums.get(key, 0)}
    # Keys below their minimum first, then the largest remainder, then the smaller key.
    remainders.sort(key=lambda item: (item[1] not in below_minimum, -item[0], item[1]))
    for _, key in remainders[:missing]:
        shares[key] += 1
    return shares


def allocate_patronage(
    surplus_minor: int,
    patronage: Mapping[str, Decimal | int],
    cash_share: Decimal,
) -> AllocationList:
    """Allocate ``surplus_minor`` cents across members by patronage; see the module doc for the rule.

    Raises ``ValueError`` for a negative or non-integer surplus, a negative or non-finite patronage, an
    empty member id, or a ``cash_share`` outside [0.20, 1]; ``TypeError`` for floats (no floats near money).
    With no patronage at all nothing is allocated and ``reason`` says so.
    """
    _check_surplus(surplus_minor)
    share = _check_cash_share(cash_share)
    weights = _check_patronage(patronage)

    if not weights or all(weight == 0 for weight in weights.values()):
        return AllocationList([], reason="no member has any patronage this period, so nothing is allocated")

    if surplus_minor == 0:
        zero = [Allocation(member_id, 0, 0, 0) for member_id in sorted(weights)]
        return AllocationList(zero, reason="the surplus is zero, so every allocation is zero")

    totals = largest_remainder_split(surplus_minor, weights)
    cash_total = int((Decimal(surplus_minor) * share).to_integral_value(rounding=ROUND_HALF_UP))
    cash = (
        largest_remainder_split(
            cash_total,
            {member_id: total for member_id, total in totals.items() if total},
            minimums={member_id: total // 5 for member_id, total in totals.items()},
        )
        if cash_total
        else {}
    )
    allocations = [
        Allocation(
            member_id=member_id,
            total=totals[member_id],
            cash=cash.get(member_id, 0),
            capital=totals[member_id] - cash.get(member_id, 0),
        )
        for member_id in sorted(weights)
    ]
    return AllocationList(allocations)


def _check_surplus(surplus_minor: int) -> None:
    if isinstance(surplus_minor, bool) or not isinstance(surplus_minor, int):
        raise ValueError(f"surplus_minor must be an integer number of minor units, got {surplus_minor!r}")
    if surplus_minor < 0:
        raise ValueError(f"surplus_minor must not be negative, got {surplus_minor}")


def _check_cash_share(cash_share: Decimal) -> Decimal:
    if isinstance(cash_share, float):
        raise TypeError("cash_share must be a Decimal (or int or decimal string), not a float")
    try:
        share = Decimal(cash_share)
    except (ArithmeticError, ValueError, TypeError) as error:
        raise ValueError(f"cash_share must be a decimal number, got {cash_share!r}") from error
    if not share.is_finite() or share < MINIMUM_CASH_SHARE or share > 1:
        raise ValueError(
            f"cash_share must be between {MINIMUM_CASH_SHARE} and 1 (at least 20% of a patronage "
            f"dividend is paid in cash), got {cash_share}"
        )
    return share


def _check_patronage(patronage: Mapping[str, Decimal | int]) -> dict[str, Decimal]:
    weights: dict[str, Decimal] = {}
    for member_id, amount in patronage.items():
        if not isinstance(member_id, str) or not member_id:
            raise ValueError(f"member ids must be non-empty strings, got {member_id!r}")
        if isinstance(amount, float):
            raise TypeError(f"patronage of member {member_id} must be a Decimal or int, not a float")
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise ValueError(f"patronage of member {member_id} must be a Decimal or int, got {amount!r}")
        value = Decimal(amount)
        if not value.is_finite():
            raise ValueError(f"patronage of member {member_id} must be a finite number, got {amount}")
        if value < 0:
            raise ValueError(f"patronage of member {member_id} must not be negative, got {amount}")
        weights[member_id] = value
    return weights
