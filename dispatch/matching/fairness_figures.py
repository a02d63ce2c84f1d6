"""The arithmetic of the co-op's public fairness figures (docs/figures.md): the Gini coefficient, the band of
comparable online hours, hourly earnings among the drivers inside it, and the share of offers each tenth of
the drivers received.

Pure: plain numbers in, exact fractions out, no rounding until `rounded`. The monthly figures
(dispatch/figures.py) and the simulator's summary (dispatch/simulation/report.py) both call
`hourly_earnings_gini`, so the board can try a fairness rule in the simulator and read the very number the
members will read once the rule is in force.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

# Comparable online hours: from half to one and a half times the median driver's online time in the period.
# Wide enough to take in most of a co-op's regular drivers, narrow enough that a driver online a few hours
# (who may have picked only the best ones) is not compared with one who drove every day.
BAND_LOW = Fraction(1, 2)
BAND_HIGH = Fraction(3, 2)
DECILES = 10

Number = int | float | Fraction


def _exact(value: Number, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be finite, not {value}")
    exact = Fraction(value)
    if exact < 0:
        raise ValueError(f"{what} cannot be negative ({value})")
    return exact


def gini(values: Sequence[Number]) -> Fraction:
    """The Gini coefficient of non-negative `values`: the mean absolute difference between every two of them
    (each value with itself included) over twice their mean,

        G = sum_i sum_j |x_i - x_j| / (2 n^2 mean),

    0 when all are equal (all zero included), (n - 1) / n when one holds everything. Computed exactly, in
    n log n, from the sorted values x_(1) <= ... <= x_(n): G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n.
    Floats are taken at their exact binary value. ValueError for no values or a negative one."""
    if not values:
        raise ValueError("the Gini coefficient of no values is undefined")
    ordered = sorted(_exact(value, "a value") for value in values)
    total = sum(ordered, Fraction(0))
    if total == 0:
        return Fraction(0)
    n = len(ordered)
    weighted = sum((rank * value for rank, value in enumerate(ordered, start=1)), Fraction(0))
    return 2 * weighted / (n * total) - Fraction(n + 1, n)


@dataclass(frozen=True, slots=True)
class HoursBand:
    """Online time comparable with the median driver's: [low_s, high_s], both ends included (seconds)."""

    median_s: Fraction
    low_s: Fraction
    high_s: Fraction

    def contains(self, online_s: Number) -> bool:
        return self.low_s <= _exact(online_s, "online time") <= self.high_s


def comparable_hours_band(online_s: Sequence[Number]) -> HoursBand | None:
    """The band of online times comparable with the median driver's, over the drivers with any online time:
    from BAND_LOW to BAND_HIGH times the median. The median is the lower middle value when the count is
    even, a real driver's time, so the band always holds at least that driver. None when nobody was online."""
    online = sorted(exact for exact in (_exact(s, "online time") for s in online_s) if exact > 0)
    if not online:
        return None
    median = online[(len(online) - 1) // 2]
    return HoursBand(median_s=median, low_s=median * BAND_LOW, high_s=median * BAND_HIGH)


@dataclass(frozen=True, slots=True)
class DriverTime:
    """One driver's period: seconds online and what they earned in it (minor units)."""

    online_s: Number
    earnings_minor: int


@dataclass(frozen=True, slots=True)
class HourlyEarningsGini:
    """The Gini of hourly earnings among the drivers online for comparable hours.

    `drivers_online` had any online time (the band is drawn from them); `drivers_included` are inside the
    band, the drivers the Gini is over. `gini` and `band` are None when nobody was online."""

    gini: Fraction | None
    band: HoursBand | None
    drivers_online: int
    drivers_included: int


def hourly_earnings_gini(drivers: Sequence[DriverTime]) -> HourlyEarningsGini:
    """Hourly earnings (earnings / online hours) of the drivers inside the comparable-hours band, and their
    Gini coefficient. A driver online who earned nothing counts, at zero an hour: being online and getting
    no work is exactly what a fairness figure must see. A driver with no online time has no hourly rate
    and is left out (their earnings, if any, cannot be set against time)."""
    online = [driver for driver in drivers if _exact(driver.online_s, "online time") > 0]
    for driver in online:
        _exact(driver.earnings_minor, "earnings")
    band = comparable_hours_band([driver.online_s for driver in online])
    if band is None:
        return HourlyEarningsGini(gini=None, band=None, drivers_online=0, drivers_included=0)
    included = [driver for driver in online if band.contains(driver.online_s)]
    hourly = [Fraction(driver.earnings_minor) * 3600 / Fraction(driver.online_s) for driver in included]
    return HourlyEarningsGini(
        gini=gini(hourly), band=band, drivers_online=len(online), drivers_included=len(included)
    )


def decile_shares(counts: Sequence[int]) -> list[Fraction]:
    """The share of the total each tenth of the drivers holds, drivers ranked by their count, most first
    (the first share is the busiest tenth's).

    Each driver is 1/n of the drivers; each tenth is a tenth of them, so with a number of drivers that ten
    does not divide, a driver on a boundary is split between the two tenths in proportion (the points of the
    ranked Lorenz curve at k/10, joined linearly). With 5 drivers each one is two tenths; with 20, each
    tenth is two drivers. The shares add up to exactly 1. ValueError for no drivers, a negative count or a
    total of zero (a share of nothing is undefined)."""
    if not counts:
        raise ValueError("no drivers to rank")
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"a count must be a non-negative integer, not {count!r}")
    total = sum(counts)
    if total == 0:
        raise ValueError("no offers to share")
    ordered = sorted(counts, reverse=True)
    n = len(ordered)
    # On a scale of 10 n units: driver i holds units [10 i, 10 i + 10), each unit carrying count_i / 10;
    # tenth k holds units [n k, n k + n).
    shares: list[Fraction] = []
    for k in range(DECILES):
        start, stop = n * k, n * (k + 1)
        held = Fraction(0)
        for i in range(start // DECILES, min((stop - 1) // DECILES, n - 1) + 1):
            overlap = min(stop, DECILES * (i + 1)) - max(start, DECILES * i)
            if overlap > 0:
                held += Fraction(overlap * ordered[i], DECILES)
        shares.append(held / total)
    return shares


def rounded(value: Fraction, places: int = 3) -> float:
    """`value` rounded half up to `places` decimals, as the figures print it."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
