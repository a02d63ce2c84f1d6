"""Pass-through fees have one ledger account per fee code; every other kind keeps the one account it had.
The database holds the rule (a check constraint and the unique index include the code)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from backend.errors import Conflict
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import DEBIT_NORMAL_KINDS, AccountKind, LedgerAccount
from tests.factories import RiderFactory


def _post(key: str, rider_id, *, tax: int, fund: int):
    return ledger.post_entry(
        key=key,
        kind="test",
        currency="USD",
        lines=[
            debit(AccountKind.RIDER_RECEIVABLE, rider_id, tax + fund),
            credit(AccountKind.PASS_THROUGH, None, tax, code="sales_tax"),
            credit(AccountKind.PASS_THROUGH, None, fund, code="black_car_fund"),
        ],
    )


@pytest.mark.django_db
def test_each_fee_code_posts_to_its_own_account():
    rider = RiderFactory()
    _, created = _post("fees:1", rider.id, tax=178, fund=50)
    assert created
    _post("fees:2", rider.id, tax=100, fund=25)
    accounts = LedgerAccount.objects.filter(kind=AccountKind.PASS_THROUGH).order_by("code")
    assert [(a.code, a.owner_id) for a in accounts] == [("black_car_fund", None), ("sales_tax", None)]
    assert str(accounts[1]) == "pass_through:sales_tax:coop:USD"
    balance = ledger.balance_minor
    assert balance(kind=AccountKind.PASS_THROUGH, owner_id=None, currency="USD", code="sales_tax") == 278
    assert balance(kind=AccountKind.PASS_THROUGH, owner_id=None, currency="USD", code="black_car_fund") == 75
    assert balance(kind=AccountKind.RIDER_RECEIVABLE, owner_id=rider.id, currency="USD") == 353


@pytest.mark.django_db
def test_a_replay_with_the_fee_on_another_account_is_a_conflict():
    rider = RiderFactory()
    _post("fees:1", rider.id, tax=178, fund=50)
    assert _post("fees:1", rider.id, tax=178, fund=50)[1] is False
    with pytest.raises(Conflict) as caught:
        ledger.post_entry(
            key="fees:1",
            kind="test",
            currency="USD",
            lines=[
                debit(AccountKind.RIDER_RECEIVABLE, rider.id, 228),
                credit(AccountKind.PASS_THROUGH, None, 50, code="sales_tax"),
                credit(AccountKind.PASS_THROUGH, None, 178, code="black_car_fund"),
            ],
        )
    assert caught.value.code == "ledger_key_conflict"


@pytest.mark.django_db
def test_a_reversal_returns_each_fee_to_its_own_account():
    rider = RiderFactory()
    entry, _ = _post("fees:1", rider.id, tax=178, fund=50)
    ledger.reverse_entry(entry_id=entry.id, key="fees:1:reversal", memo="test")
    for code in ("sales_tax", "black_car_fund"):
        assert (
            ledger.balance_minor(kind=AccountKind.PASS_THROUGH, owner_id=None, currency="USD", code=code) == 0
        )
    assert LedgerAccount.objects.filter(kind=AccountKind.PASS_THROUGH).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (AccountKind.PASS_THROUGH, ""),
        (AccountKind.ORGANISATION_RECEIVABLE, ""),
        (AccountKind.COOP_REVENUE, "sales_tax"),
    ],
)
def test_the_database_refuses_a_code_on_the_wrong_kind(kind, code):
    with pytest.raises(IntegrityError, match="ledger_account_code_iff_coded_kind"), transaction.atomic():
        LedgerAccount.objects.create(kind=kind, owner=None, currency="USD", code=code)


@pytest.mark.django_db
def test_one_account_per_kind_owner_currency_and_code():
    LedgerAccount.objects.create(kind=AccountKind.PASS_THROUGH, currency="USD", code="sales_tax")
    LedgerAccount.objects.create(kind=AccountKind.PASS_THROUGH, currency="EUR", code="sales_tax")
    with pytest.raises(IntegrityError, match="ledger_account_unique"), transaction.atomic():
        LedgerAccount.objects.create(kind=AccountKind.PASS_THROUGH, currency="USD", code="sales_tax")
    LedgerAccount.objects.create(kind=AccountKind.COOP_REVENUE, currency="USD")
    with pytest.raises(IntegrityError, match="ledger_account_unique"), transaction.atomic():
        LedgerAccount.objects.create(kind=AccountKind.COOP_REVENUE, currency="USD")


def test_chargebacks_are_an_expense_and_pass_through_a_liability():
    assert AccountKind.CHARGEBACKS.label == "Card disputes and chargebacks (expense)"
    assert AccountKind.CHARGEBACKS in DEBIT_NORMAL_KINDS
    assert AccountKind.PASS_THROUGH not in DEBIT_NORMAL_KINDS
