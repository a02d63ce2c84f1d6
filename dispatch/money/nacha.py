"""A NACHA (ACH) PPD credit file: the bank file a co-op's bank accepts to pay its drivers.

Pure: plain values in, the file's text out (no Django, no I/O), so the same batch always renders to the same
bytes and a file lost after it was made can be made again. The layout is the NACHA Operating Rules' fixed-
width format, every record 94 characters:

    1 file header      immediate destination (the co-op's bank) and origin, creation date and time
    5 batch header     service class 220 (credits only), company name and id, SEC code PPD, effective date
    6 entry detail     one per payout: transaction code 22 (checking credit) or 32 (savings credit), the
                       receiving bank's 8-digit id and check digit, account number, amount in cents,
                       the driver's id and name, trace number (originating bank's id + sequence)
    8 batch control    entry count, entry hash (the receiving ids summed, last 10 digits), debit/credit totals
    9 file control     batch count, block count, entry count, entry hash, totals

padded with records of nines to a whole number of blocks of ten. Alphanumeric fields are upper-case ASCII,
left-justified and space-filled; numeric fields are right-justified and zero-filled.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from dispatch.bank_details import aba_routing_number_valid, account_number_valid

RECORD_LENGTH = 94
BLOCKING_FACTOR = 10
SERVICE_CLASS_CREDITS_ONLY = "220"
STANDARD_ENTRY_CLASS = "PPD"
CHECKING_CREDIT = "22"
SAVINGS_CREDIT = "32"
TRANSACTION_CODES = {"checking": CHECKING_CREDIT, "savings": SAVINGS_CREDIT}
MAX_ENTRY_AMOUNT_MINOR = 99_999_999_99  # the entry's amount field: ten digits of cents
MAX_ENTRIES_PER_BATCH = 9_999_999  # the trace number's sequence: seven digits


class NachaError(ValueError):
    """A value that cannot go in a NACHA file (a bad routing number, an amount too large, ...)."""


@dataclass(frozen=True)
class NachaOriginator:
    """Who sends the file and through which bank (the co-op's ACH agreement gives each of these)."""

    destination_routing_number: str  # the bank the file goes to (immediate destination), 9 digits
    destination_name: str
    origin_id: str  # immediate origin: 10 characters, often "1" + the co-op's EIN, or 9 digits
    origin_name: str
    company_name: str
    company_id: str  # company identification, 10 characters (often "1" + EIN)
    originating_dfi: str  # the co-op's bank's 8-digit id: the first 8 digits of its routing number
    entry_description: str = "PAYOUT"


@dataclass(frozen=True)
class NachaCredit:
    """One credit to one account."""

    routing_number: str
    account_number: str
    account_type: str  # "checking" or "savings"
    amount_minor: int
    individual_id: str
    individual_name: str
    sequence: int  # 1.., the trace number's last 7 digits


def _alpha(value: str, width: int) -> str:
    """Upper-case printable ASCII, left-justified, space-filled, cut to `width` (accents dropped: É -> E)."""
    ascii_only = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    printable = "".join(ch for ch in ascii_only.upper() if " " <= ch <= "~")
    return printable[:width].ljust(width)


def _num(value: int, width: int) -> str:
    if value < 0 or len(str(value)) > width:
        raise NachaError(f"{value} does not fit a {width}-digit field")
    return str(value).zfill(width)


def _digits(value: str, width: int, what: str) -> str:
    if len(value) != width or not value.isdigit():
        raise NachaError(f"{what} must be {width} digits, not {value!r}")
    return value


def _immediate(value: str, what: str) -> str:
    """A 10-character immediate destination or origin: 9 digits get the conventional leading blank."""
    if len(value) == 9 and value.isdigit():
        return " " + value
    if len(value) == 10 and value[1:].isdigit() and (value[0] == " " or value[0].isalnum()):
        return value
    raise NachaError(f"{what} must be 9 digits or 10 characters, not {value!r}")


def entry_hash(routing_numbers: Sequence[str]) -> int:
    """The receiving banks' 8-digit ids summed, keeping the last 10 digits (the batch and file checks)."""
    return sum(int(routing[:8]) for routing in routing_numbers) % 10**10


def ppd_credit_file(
    *,
    originator: NachaOriginator,
    credits: Sequence[NachaCredit],
    created_at: datetime,
    effective_date: date,
    descriptive_date: date,
    file_id_modifier: str = "A",
    batch_number: int = 1,
    reference_code: str = "",
) -> str:
    """The whole file, lines of 94 characters ending in a newline, blocked to tens."""
    if not credits:
        raise NachaError("a bank file needs at least one entry")
    if len(credits) > MAX_ENTRIES_PER_BATCH:
        raise NachaError("too many entries for one batch")
    if len(file_id_modifier) != 1 or not ("A" <= file_id_modifier <= "Z" or file_id_modifier.isdigit()):
        raise NachaError("the file id modifier is one upper-case letter or digit")
    if not aba_routing_number_valid(originator.destination_routing_number):
        raise NachaError("the immediate destination is not a valid routing number")
    odfi = _digits(originator.originating_dfi, 8, "the originating DFI id")
    company_id = originator.company_id
    if not 1 <= len(company_id) <= 10:
        raise NachaError("the company id is 1 to 10 characters")

    records = [
        "1"
        + "01"
        + _immediate(originator.destination_routing_number, "the immediate destination")
        + _immediate(originator.origin_id, "the immediate origin")
        + created_at.strftime("%y%m%d")
        + created_at.strftime("%H%M")
        + file_id_modifier
        + "094"
        + f"{BLOCKING_FACTOR:02d}"
        + "1"
        + _alpha(originator.destination_name, 23)
        + _alpha(originator.origin_name, 23)
        + _alpha(reference_code, 8)
    ]
    records.append(
        "5"
        + SERVICE_CLASS_CREDITS_ONLY
        + _alpha(originator.company_name, 16)
        + _alpha("", 20)
        + _alpha(company_id, 10)
        + STANDARD_ENTRY_CLASS
        + _alpha(originator.entry_description, 10)
        + descriptive_date.strftime("%y%m%d")
        + effective_date.strftime("%y%m%d")
        + "   "  # settlement date: the ACH operator fills it in
        + "1"
        + odfi
        + _num(batch_number, 7)
    )
    total_minor = 0
    for credit in sorted(credits, key=lambda c: c.sequence):
        if not aba_routing_number_valid(credit.routing_number):
            raise NachaError(f"entry {credit.sequence}: {credit.routing_number!r} is not a routing number")
        if not account_number_valid(credit.account_number):
            raise NachaError(f"entry {credit.sequence}: the account number is not 4 to 17 digits")
        if not 0 < credit.amount_minor <= MAX_ENTRY_AMOUNT_MINOR:
            raise NachaError(f"entry {credit.sequence}: the amount must be 1 to {MAX_ENTRY_AMOUNT_MINOR}c")
        if credit.account_type not in TRANSACTION_CODES:
            raise NachaError(f"entry {credit.sequence}: unknown account type {credit.account_type!r}")
        total_minor += credit.amount_minor
        records.append(
            "6"
            + TRANSACTION_CODES[credit.account_type]
            + credit.routing_number[:8]
            + credit.routing_number[8]
            + credit.account_number.ljust(17)
            + _num(credit.amount_minor, 10)
            + _alpha(credit.individual_id, 15)
            + _alpha(credit.individual_name, 22)
            + "  "  # discretionary data
            + "0"  # no addenda record
            + odfi
            + _num(credit.sequence, 7)
        )
    hashed = entry_hash([credit.routing_number for credit in credits])
    records.append(
        "8"
        + SERVICE_CLASS_CREDITS_ONLY
        + _num(len(credits), 6)
        + _num(hashed, 10)
        + _num(0, 12)
        + _num(total_minor, 12)
        + _alpha(company_id, 10)
        + " " * 19  # message authentication code
        + " " * 6  # reserved
        + odfi
        + _num(batch_number, 7)
    )
    lines_with_control = len(records) + 1
    blocks = -(-lines_with_control // BLOCKING_FACTOR)
    records.append(
        "9"
        + _num(1, 6)
        + _num(blocks, 6)
        + _num(len(credits), 8)
        + _num(hashed, 10)
        + _num(0, 12)
        + _num(total_minor, 12)
        + " " * 39
    )
    records.extend(["9" * RECORD_LENGTH] * (blocks * BLOCKING_FACTOR - len(records)))
    for record in records:
        assert len(record) == RECORD_LENGTH, (len(record), record)
    return "\n".join(records) + "\n"
