"""Money in Rochdale: integer minor units on the wire and in the ledger, exact values in the rules.

The pricing rules compute every amount exactly (``Decimal`` rates, and ``Fraction`` where a metre-to-mile
or second-to-minute conversion does not terminate in decimal) and turn the exact value into minor units
exactly once, with :func:`to_minor_units`, rounding half-up (half away from zero, like
``decimal.ROUND_HALF_UP``). There is deliberately no other rounding helper in the project.

Minor-unit exponents are those of ISO 4217 (list one, "Current currency & funds code list"). Codes whose
minor unit is "N.A." (precious metals, SDR, the test and "no currency" codes) are left out: no fare can be
priced in them.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TypedDict

# Active ISO 4217 codes whose minor unit is not 2 decimal places.
_ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
        "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
_THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_FOUR_DECIMAL_CURRENCIES = frozenset({"CLF", "UYW"})

# Active ISO 4217 currency and fund codes that have a minor unit.
ISO_4217_CURRENCIES: frozenset[str] = frozenset(
    {
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN",
        "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV",
        "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF",
        "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK",
        "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP",
        "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL",
        "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
        "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
        "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
        "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR",
        "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
        "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF",
        "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
        "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP",
        "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU",
        "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG",
        "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
    }
)  # fmt: skip


class UnknownCurrencyError(ValueError):
    """Raised for a code that is not an active ISO 4217 currency with a minor unit."""


class Money(TypedDict):
    amount: int
    currency: str


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (2 for USD, 0 for JPY, 3 for KWD)."""
    if currency not in ISO_4217_CURRENCIES:
        raise UnknownCurrencyError(f"{currency!r} is not an ISO 4217 currency code")
    if currency in _ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in _THREE_DECIMAL_CURRENCIES:
        return 3
    if currency in _FOUR_DECIMAL_CURRENCIES:
        return 4
    return 2


def round_half_up(value: Fraction) -> int:
    """The integer nearest ``value``, halves away from zero. Exact for any rational."""
    magnitude = abs(value)
    rounded = (magnitude.numerator * 2 + magnitude.denominator) // (magnitude.denominator * 2)
    return -rounded if value < 0 else rounded


def to_minor_units(amount: Decimal | Fraction | int, currency: str) -> int:
    """Round an exact amount in major units to the currency's minor units, half-up, once.

    ``Fraction`` is accepted because the rules keep unit conversions exact until this single rounding.
    """
    if isinstance(amount, bool) or not isinstance(amount, Decimal | Fraction | int):
        raise TypeError(f"amount must be a Decimal, Fraction or int, not {type(amount).__name__}")
    if isinstance(amount, Decimal) and not amount.is_finite():
        raise ValueError(f"amount must be finite, not {amount}")
    exact = Fraction(amount)
    return round_half_up(exact * 10 ** minor_unit_exponent(currency))


def minor_to_decimal(amount_minor: int, currency: str) -> Decimal:
    """Minor units back to an exact ``Decimal`` in major units: 2301 USD -> Decimal("23.01")."""
    _require_minor_amount(amount_minor)
    return Decimal(amount_minor).scaleb(-minor_unit_exponent(currency))


def money(amount_minor: int, currency: str) -> Money:
    """The contract's money shape: ``{"amount": 2307, "currency": "USD"}``."""
    _require_minor_amount(amount_minor)
    minor_unit_exponent(currency)
    return {"amount": amount_minor, "currency": currency}


def _require_minor_amount(amount_minor: object) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"amount in minor units must be an int, not {type(amount_minor).__name__}")
