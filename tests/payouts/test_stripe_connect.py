"""The Stripe Connect adapter at the HTTP boundary: the official SDK talks to a real local server that answers
like Stripe (tests/payouts/fake_stripe.py). The transfer carries the payout's idempotency key, amount and
destination; a definitive refusal (402, 400) fails the payout and gives the amount back to the balance; no
answer (a timeout, a 500) keeps the payout submitted and the retry sends the same key, so Stripe answers
it with the first transfer and the driver is paid once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.fares import ledger
from backend.fares.models import AccountKind, JournalEntry
from dispatch.models import Payout, PayoutStatus
from dispatch.money.payouts import (
    payout_create,
    payout_retry_now,
    payout_statement,
    payouts_reconcile,
    payouts_run,
    payouts_send,
)
from tests.factories import DriverFactory
from tests.fares.builders import assert_ledger_consistent
from tests.payouts.builders import earn, stripe_account

pytestmark = pytest.mark.django_db


def payable(driver) -> int:
    return sum(
        ledger.balance_minor(kind=kind, owner_id=driver.id, currency="USD")
        for kind in (AccountKind.DRIVER_PAYABLE, AccountKind.TIPS_HELD)
    )


@pytest.fixture
def onboarded(seeded_policy):
    driver = DriverFactory()
    stripe_account(driver, "acct_1PayoutDriver")
    earn(seeded_policy, driver, trips=2, tip_minor=150)
    return driver


def test_a_transfer_carries_the_key_the_amount_and_the_destination(onboarded, this_week, fake_stripe):
    monday, after = this_week
    owed = payable(onboarded)

    report = payouts_run(week_start=monday, now=after)

    [payout] = Payout.objects.all()
    [call] = fake_stripe.calls("/v1/transfers")
    assert call.idempotency_key == payout.idempotency_key
    assert payout.idempotency_key == f"rochdale:payout:{payout.id}:{owed}USD"
    assert call.form["amount"] == str(owed) and call.form["currency"] == "usd"
    assert call.form["destination"] == "acct_1PayoutDriver"
    assert call.form["transfer_group"] == f"payout:{onboarded.id}:{monday.isoformat()}"
    assert call.form["metadata[payout_id]"] == str(payout.id)
    assert call.headers["authorization"] == "Bearer sk_test_payouts"
    [transfer_id] = fake_stripe.transfers
    assert (payout.status, payout.method, payout.provider_reference) == (
        PayoutStatus.PAID,
        "stripe",
        transfer_id,
    )
    assert payout.amount_minor == owed and payable(onboarded) == 0
    assert [result.outcome for result in report.results] == ["paid"]

    payouts_run(week_start=monday, now=after + timedelta(hours=1))
    assert len(fake_stripe.calls("/v1/transfers")) == 1  # paid: never sent again
    assert payouts_reconcile(week_start=monday).ok
    assert_ledger_consistent()


@pytest.mark.parametrize("refusal", ["card_declined", "invalid"])
def test_a_refusal_fails_the_payout_and_the_next_week_pays_it(onboarded, this_week, fake_stripe, refusal):
    monday, after = this_week
    owed = payable(onboarded)
    fake_stripe.script("/v1/transfers", refusal)

    payouts_run(week_start=monday, now=after)

    [payout] = Payout.objects.all()
    assert payout.status == PayoutStatus.FAILED and payout.next_attempt_at is None
    assert ("HTTP 402" if refusal == "card_declined" else "HTTP 400") in payout.last_error
    assert [error["outcome"] for error in payout.errors] == ["refused"]
    returned = JournalEntry.objects.get(key=f"{payout.ledger_key}:returned")
    assert returned.kind == "reversal" and returned.reverses.key == payout.ledger_key
    assert payable(onboarded) == owed  # nothing left: it is the driver's again
    assert fake_stripe.transfers == {}
    assert payouts_reconcile(week_start=monday).ok

    # A failed payout is never sent again for its week, whatever runs.
    payouts_run(week_start=monday, now=after + timedelta(hours=1))
    payouts_send(now=after + timedelta(days=1))
    assert len(fake_stripe.calls("/v1/transfers")) == 1

    # The next week's payout carries it, under a new key.
    following = monday + timedelta(days=7)
    payouts_run(week_start=following, now=after + timedelta(days=7))
    retry = Payout.objects.get(week_start=following)
    assert retry.amount_minor == owed and retry.status == PayoutStatus.PAID
    first, second = fake_stripe.calls("/v1/transfers")
    assert first.idempotency_key != second.idempotency_key == retry.idempotency_key
    assert payable(onboarded) == 0
    statement = payout_statement(payout=retry)
    assert (statement.brought_forward, statement.lines, statement.total) == (owed, [], owed)
    assert payouts_reconcile(week_start=following).ok
    assert_ledger_consistent()


@pytest.mark.parametrize("no_answer", ["slow", "server_error"])
def test_no_answer_is_retried_with_the_same_key_and_pays_once(onboarded, this_week, fake_stripe, no_answer):
    """`slow`: Stripe made the transfer but the answer came after the SDK's 0.5 s timeout; `server_error`:
    a 500. Either way the outcome is unknown: the payout stays submitted and the retry sends the same key."""
    monday, after = this_week
    fake_stripe.script("/v1/transfers", no_answer)

    [result] = payouts_run(week_start=monday, now=after).results
    assert result.outcome == "unknown"
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.SUBMITTED and payout.provider_reference == ""
    assert payout.next_attempt_at == after + timedelta(seconds=60)  # the first backoff
    assert ("APIConnectionError" if no_answer == "slow" else "HTTP 500") in payout.last_error
    assert payouts_send(now=after + timedelta(seconds=30)) == []  # not due yet

    [retried] = payouts_send(now=after + timedelta(seconds=61))
    assert retried.outcome == "paid"
    payout.refresh_from_db()
    calls = fake_stripe.calls("/v1/transfers")
    assert [call.idempotency_key for call in calls] == [payout.idempotency_key] * 2
    [transfer_id] = fake_stripe.transfers
    assert (payout.status, payout.provider_reference, payout.attempts) == (PayoutStatus.PAID, transfer_id, 2)
    assert payouts_reconcile(week_start=monday).ok


def test_a_crash_between_the_entry_and_the_call_is_sent_later_with_the_same_key(
    onboarded, this_week, fake_stripe
):
    monday, after = this_week
    # The run died right after committing the payout and its entry, before any call.
    created = payout_create(driver_id=onboarded.id, week_start=monday, now=after)
    assert created.outcome == "created" and created.payout.status == PayoutStatus.PENDING
    assert JournalEntry.objects.filter(key=created.payout.ledger_key).exists()
    assert fake_stripe.calls("/v1/transfers") == []

    # A worker claimed it and died mid-call: the claim's lease (timeout + 5 s) must run out first.
    from dispatch.money.payouts import _claim

    [claimed] = _claim([created.payout.id], now=after, batch=None)
    assert claimed.status == PayoutStatus.SUBMITTED and claimed.attempts == 1
    assert payouts_send(now=after + timedelta(seconds=3)) == []

    [result] = payouts_send(now=after + timedelta(seconds=6))
    assert result.outcome == "paid"
    [call] = fake_stripe.calls("/v1/transfers")
    assert call.idempotency_key == created.payout.idempotency_key
    assert Payout.objects.get().attempts == 2
    assert payouts_reconcile(week_start=monday).ok


def test_after_the_last_attempt_staff_retry_it_by_hand(onboarded, this_week, fake_stripe, settings):
    monday, after = this_week
    settings.ROCHDALE_PAYOUT_MAX_ATTEMPTS = 2
    fake_stripe.script("/v1/transfers", "server_error", "server_error", "ok")
    payouts_run(week_start=monday, now=after)
    payouts_send(now=after + timedelta(minutes=2))
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.SUBMITTED and payout.attempts == 2 and payout.next_attempt_at is None
    assert payouts_send(now=after + timedelta(days=1)) == []  # given up: staff look at Stripe first

    assert payout_retry_now(payout_id=payout.id, now=after + timedelta(days=1))
    [result] = payouts_send(now=after + timedelta(days=1))
    assert result.outcome == "paid"
    assert {call.idempotency_key for call in fake_stripe.calls("/v1/transfers")} == {payout.idempotency_key}


def test_without_a_key_stripe_payouts_wait(onboarded, this_week, fake_stripe, settings):
    monday, after = this_week
    settings.STRIPE_API_KEY = ""
    [result] = payouts_run(week_start=monday, now=after).results
    assert result.outcome == "unknown" and "STRIPE_API_KEY" in result.error
    assert Payout.objects.get().status == PayoutStatus.PENDING  # sent once Stripe is configured
    settings.STRIPE_API_KEY = "sk_test_payouts"
    [result] = payouts_run(week_start=monday, now=after + timedelta(hours=1)).results
    assert result.outcome == "paid"
