"""The NACHA PPD credit file, parsed back field by field by a reader written from the NACHA record layouts
(independently of the writer), with the checks a bank's ACH processor makes: record lengths, blocking,
counts, the entry hash and the totals. Pure: no database."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch.bank_details import aba_routing_number_valid, account_number_valid, mask_account_number
from dispatch.money.nacha import NachaCredit, NachaError, NachaOriginator, ppd_credit_file
from tests.payouts.conftest import COOP_BANK_ROUTING, DRIVER_BANK_ROUTING, OTHER_BANK_ROUTING

# (name, first column, last column) as the NACHA Operating Rules number them (1-based, inclusive).
LAYOUTS = {
    "1": [
        ("record_type", 1, 1), ("priority_code", 2, 3), ("immediate_destination", 4, 13),
        ("immediate_origin", 14, 23), ("file_creation_date", 24, 29), ("file_creation_time", 30, 33),
        ("file_id_modifier", 34, 34), ("record_size", 35, 37), ("blocking_factor", 38, 39),
        ("format_code", 40, 40), ("destination_name", 41, 63), ("origin_name", 64, 86),
        ("reference_code", 87, 94),
    ],
    "5": [
        ("record_type", 1, 1), ("service_class", 2, 4), ("company_name", 5, 20),
        ("discretionary", 21, 40), ("company_id", 41, 50), ("sec_code", 51, 53),
        ("entry_description", 54, 63), ("descriptive_date", 64, 69), ("effective_date", 70, 75),
        ("settlement_date", 76, 78), ("originator_status", 79, 79), ("odfi", 80, 87),
        ("batch_number", 88, 94),
    ],
    "6": [
        ("record_type", 1, 1), ("transaction_code", 2, 3), ("rdfi", 4, 11), ("check_digit", 12, 12),
        ("account_number", 13, 29), ("amount", 30, 39), ("individual_id", 40, 54),
        ("individual_name", 55, 76), ("discretionary", 77, 78), ("addenda_indicator", 79, 79),
        ("trace_number", 80, 94),
    ],
    "8": [
        ("record_type", 1, 1), ("service_class", 2, 4), ("entry_count", 5, 10), ("entry_hash", 11, 20),
        ("total_debits", 21, 32), ("total_credits", 33, 44), ("company_id", 45, 54),
        ("authentication_code", 55, 73), ("reserved", 74, 79), ("odfi", 80, 87), ("batch_number", 88, 94),
    ],
    "9": [
        ("record_type", 1, 1), ("batch_count", 2, 7), ("block_count", 8, 13), ("entry_count", 14, 21),
        ("entry_hash", 22, 31), ("total_debits", 32, 43), ("total_credits", 44, 55), ("reserved", 56, 94),
    ],
}  # fmt: skip


def parse_nacha(text: str) -> dict:
    """Records by type, each a dict of its fields; filler records counted apart."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    parsed: dict = {"lines": lines, "filler": 0, "1": [], "5": [], "6": [], "8": [], "9": []}
    for line in lines:
        assert len(line) == 94, (len(line), line)
        if line == "9" * 94:
            parsed["filler"] += 1
            continue
        fields = {name: line[first - 1 : last] for name, first, last in LAYOUTS[line[0]]}
        parsed[line[0]].append(fields)
    return parsed


ORIGINATOR = NachaOriginator(
    destination_routing_number=COOP_BANK_ROUTING,
    destination_name="JPMorgan Chase",
    origin_id="1123456789",
    origin_name="Rochdale Drivers Coop",
    company_name="Rochdale Coop",
    company_id="1123456789",
    originating_dfi="02100002",
)
CREATED = datetime(2026, 11, 23, 2, 15, tzinfo=ZoneInfo("America/New_York"))


def credits(*amounts: int) -> list[NachaCredit]:
    banks = [DRIVER_BANK_ROUTING, OTHER_BANK_ROUTING, DRIVER_BANK_ROUTING]
    return [
        NachaCredit(
            routing_number=banks[n % 3],
            account_number=f"00012345{n:04d}",
            account_type="checking" if n % 2 == 0 else "savings",
            amount_minor=amount,
            individual_id=f"driver{n:09d}",
            individual_name=["José Peña", "Ana O'Neil", "Ngozi Okonjo-Iweala and a long name"][n % 3],
            sequence=n + 1,
        )
        for n, amount in enumerate(amounts)
    ]


def test_a_file_parses_back_field_by_field():
    entries = credits(12345, 800, 99_999)
    text = ppd_credit_file(
        originator=ORIGINATOR,
        credits=entries,
        created_at=CREATED,
        effective_date=date(2026, 11, 24),
        descriptive_date=date(2026, 11, 16),
        reference_code="ab12cd34",
    )
    nacha = parse_nacha(text)
    [header], [batch], [control], [file_control] = nacha["1"], nacha["5"], nacha["8"], nacha["9"]

    assert header == {
        "record_type": "1",
        "priority_code": "01",
        "immediate_destination": " 021000021",
        "immediate_origin": "1123456789",
        "file_creation_date": "261123",
        "file_creation_time": "0215",
        "file_id_modifier": "A",
        "record_size": "094",
        "blocking_factor": "10",
        "format_code": "1",
        "destination_name": "JPMORGAN CHASE".ljust(23),
        "origin_name": "ROCHDALE DRIVERS COOP".ljust(23),
        "reference_code": "AB12CD34",
    }
    assert batch == {
        "record_type": "5",
        "service_class": "220",
        "company_name": "ROCHDALE COOP".ljust(16),
        "discretionary": " " * 20,
        "company_id": "1123456789",
        "sec_code": "PPD",
        "entry_description": "PAYOUT".ljust(10),
        "descriptive_date": "261116",
        "effective_date": "261124",
        "settlement_date": "   ",
        "originator_status": "1",
        "odfi": "02100002",
        "batch_number": "0000001",
    }
    first, second, third = nacha["6"]
    assert first == {
        "record_type": "6",
        "transaction_code": "22",
        "rdfi": "02600959",
        "check_digit": "3",
        "account_number": "000123450000".ljust(17),
        "amount": "0000012345",
        "individual_id": "DRIVER000000000",
        "individual_name": "JOSE PENA".ljust(22),
        "discretionary": "  ",
        "addenda_indicator": "0",
        "trace_number": "021000020000001",
    }
    assert second["transaction_code"] == "32"  # a savings account's credit
    assert (second["rdfi"], second["check_digit"]) == ("01100001", "5")
    assert second["individual_name"] == "ANA O'NEIL".ljust(22)
    assert third["individual_name"] == "NGOZI OKONJO-IWEALA AN"  # cut to its 22 characters
    assert [entry["trace_number"][-7:] for entry in nacha["6"]] == ["0000001", "0000002", "0000003"]

    rdfi_sum = 2600959 + 1100001 + 2600959
    assert control == {
        "record_type": "8",
        "service_class": "220",
        "entry_count": "000003",
        "entry_hash": f"{rdfi_sum:010d}",
        "total_debits": "0" * 12,
        "total_credits": f"{12345 + 800 + 99_999:012d}",
        "company_id": "1123456789",
        "authentication_code": " " * 19,
        "reserved": " " * 6,
        "odfi": "02100002",
        "batch_number": "0000001",
    }
    # 1 + 5 + three 6s + 8 + 9 = 7 records, blocked to 10 with 3 records of nines.
    assert len(nacha["lines"]) == 10 and nacha["filler"] == 3
    assert file_control == {
        "record_type": "9",
        "batch_count": "000001",
        "block_count": "000001",
        "entry_count": "00000003",
        "entry_hash": control["entry_hash"],
        "total_debits": "0" * 12,
        "total_credits": control["total_credits"],
        "reserved": " " * 39,
    }
    # What the bank recomputes: the hash and total from the entries themselves.
    assert int(control["entry_hash"]) == sum(int(entry["rdfi"]) for entry in nacha["6"]) % 10**10
    assert int(control["total_credits"]) == sum(int(entry["amount"]) for entry in nacha["6"])
    assert text.isascii()


@pytest.mark.parametrize(
    "entries, lines, blocks", [(1, 10, 1), (6, 10, 1), (7, 20, 2), (16, 20, 2), (17, 30, 3)]
)
def test_the_file_is_blocked_to_tens(entries, lines, blocks):
    text = ppd_credit_file(
        originator=ORIGINATOR,
        credits=credits(*[100 + n for n in range(entries)]),
        created_at=CREATED,
        effective_date=date(2026, 11, 24),
        descriptive_date=date(2026, 11, 16),
    )
    nacha = parse_nacha(text)
    assert len(nacha["lines"]) == lines
    assert nacha["filler"] == lines - entries - 4
    assert int(nacha["9"][0]["block_count"]) == blocks
    assert int(nacha["9"][0]["entry_count"]) == entries


def test_the_entry_hash_keeps_its_last_ten_digits():
    many = [
        NachaCredit("091000019", "123456", "checking", 1, "d", "d", sequence) for sequence in range(1, 1200)
    ]
    nacha = parse_nacha(
        ppd_credit_file(
            originator=ORIGINATOR,
            credits=many,
            created_at=CREATED,
            effective_date=date(2026, 11, 24),
            descriptive_date=date(2026, 11, 16),
        )
    )
    assert 9100001 * 1199 > 10**10
    assert nacha["8"][0]["entry_hash"] == f"{(9100001 * 1199) % 10**10:010d}"


def test_bad_values_are_refused_before_a_file_is_made():
    def make(**change):
        entry = {
            "routing_number": DRIVER_BANK_ROUTING,
            "account_number": "123456",
            "account_type": "checking",
            "amount_minor": 100,
            "individual_id": "x",
            "individual_name": "x",
            "sequence": 1,
            **change,
        }
        return ppd_credit_file(
            originator=ORIGINATOR,
            credits=[NachaCredit(**entry)],
            created_at=CREATED,
            effective_date=date(2026, 11, 24),
            descriptive_date=date(2026, 11, 16),
        )

    make()
    for change in (
        {"routing_number": "026009594"},  # check digit off by one
        {"account_number": "12-34"},
        {"amount_minor": 0},
        {"amount_minor": 10_000_000_000},
        {"account_type": "loan"},
    ):
        with pytest.raises(NachaError):
            make(**change)
    with pytest.raises(NachaError):
        ppd_credit_file(
            originator=ORIGINATOR,
            credits=[],
            created_at=CREATED,
            effective_date=date(2026, 11, 24),
            descriptive_date=date(2026, 11, 16),
        )


def test_aba_checksums_and_masking():
    for routing in (COOP_BANK_ROUTING, DRIVER_BANK_ROUTING, OTHER_BANK_ROUTING, "091000019", "121000358"):
        assert aba_routing_number_valid(routing), routing
    for routing in ("021000022", "12345678", "0210000210", "02100002a", "000000000", ""):
        assert not aba_routing_number_valid(routing), routing
    assert account_number_valid("1234") and account_number_valid("1" * 17)
    assert not account_number_valid("123") and not account_number_valid("1" * 18)
    assert mask_account_number("000123456789") == "****6789"
