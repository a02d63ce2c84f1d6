"""A driver's bank details as plain values: the ABA routing number's checksum and the masked forms.

Pure (no Django, no I/O) so the model's validators, the NACHA writer (dispatch/money/nacha.py) and the
admin share one definition. Bank details are personal: everything but the generated bank file shows an
account number masked (`mask_account_number`).
"""

from __future__ import annotations

import re

ROUTING_NUMBER_PATTERN = r"^[0-9]{9}$"
ACCOUNT_NUMBER_PATTERN = r"^[0-9]{4,17}$"
# An ABA routing number's digits weigh 3, 7, 1, 3, 7, 1, 3, 7, 1; the weighted sum is a multiple of 10.
_ABA_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)


def aba_routing_number_valid(routing_number: str) -> bool:
    """Nine digits whose weighted sum (3-7-1) is a multiple of ten: the checksum every ABA number carries,
    so a mistyped digit is caught before a bank file is sent."""
    if not re.fullmatch(ROUTING_NUMBER_PATTERN, routing_number):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(routing_number, _ABA_WEIGHTS, strict=True))
    return total % 10 == 0 and routing_number != "000000000"


def account_number_valid(account_number: str) -> bool:
    """4 to 17 digits: what fits the NACHA entry's DFI account number field (17 characters)."""
    return re.fullmatch(ACCOUNT_NUMBER_PATTERN, account_number) is not None


def mask_account_number(account_number: str) -> str:
    """`****6789`: the last four digits only, as a statement or an admin page may show it."""
    return "****" + account_number[-4:] if account_number else ""
