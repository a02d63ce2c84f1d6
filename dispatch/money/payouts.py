"""The weekly payout run: what each driver had payable at a week's end becomes one payout, paid once.

What is paid. A driver's payable balance is their `driver_payable` plus `tips_held` ledger balances
(`ledger.balance_minor`'s sign: what the co-op owes them). The payout for the week starting Monday
`week_start` pays what was payable **at the week's cut-off** (`week_bounds(week_start)[1]`, Monday 00:00
local, from dispatch/money/weekly.py: one definition of a week):

* every entry the ledger had recorded before the cut-off (by `created_at`: the ledger is append-only and
  nothing is posted with a past date, so this figure never changes once the week is over),
* plus the week's floor top-up and those of earlier weeks (`floor:{driver}:{iso-week}`), which are posted
  after the week ends: the run posts this week's first (`weekly_top_ups_post`), then reads the balance;
* less every earlier payout (kind `driver_payout`) and plus every return of one (their reversals), whenever
  they were posted.

So payouts are cumulative: each pays everything owed up to its cut-off that no payout has paid yet. A week
skipped (a worker outage) is paid by the next one; a payout refused by the bank goes back to the balance
(its entry is reversed) and is paid with the next week. A driver whose figure is zero or negative (a
reversal after their last payout) gets no payout; the balance carries forward. A negative `driver_payable`
is netted against the driver's tips held, as the balance that defines what is payable does.

Idempotent per driver-week. A `Payout` row is unique on (driver, week_start) and its ledger entry's key is
`payout:{driver_id}:{week_start}` (kind `driver_payout`: Dr driver_payable, Dr tips_held, Cr cash_clearing;
metadata `week_start, payable, tips, method, payout_id`), written in one transaction. Running the job twice,
or twice at once, pays nothing twice: the second finds the row. The provider is called after that commit,
with the payout's `idempotency_key`, fixed for its life: a crash between the entry and the call, a timeout
or a 5xx is retried (after the claim's lease) with the same key, so the provider answers the retry with the
first transfer instead of making a second one. Only a definitive refusal fails the payout.

Why cash_clearing and no "in transit" account: the ledger's account kinds belong to backend/fares (not this
module's to extend), and cash_clearing is where card captures land; a payout leaves it when it is sent. A
bank file's payouts are money in transit until the bank settles them; should the treasurer want that split,
a `payouts_in_transit` kind in backend/fares/models.py would take the credit here and a settlement entry
would move it to cash_clearing when staff mark the payout paid.

Lock order (backend/fares/ledger.py): a payout's creation holds no trip, capture or member row. It takes a
transaction-scoped advisory lock named after the driver, first and alone, so two runs (or two weeks) for
one driver read the balance one after the other, then INSERTs the payout row and the ledger rows. Recording
an outcome locks the payout row (FOR UPDATE) and then only INSERTs ledger rows (a return). Neither waits
for a lock while holding one another writer could want first, so neither can deadlock with the others.

Status: pending (in the ledger, not sent) -> submitted (claimed for a call or in a bank file) -> paid or
failed (`PAYOUT_TRANSITIONS`). Adapters: dispatch/money/payout_adapters.py. Reconciliation against the
ledger: `payouts_reconcile`. docs/payouts.md is the operator's page.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from backend.errors import InvalidInput, NotFound, ServiceUnavailable, Unprocessable
from backend.fares import ledger
from backend.fares.ledger import Line, credit, debit
from backend.fares.models import AccountKind, JournalEntry, LedgerAccount, Posting
from backend.fares.pay import CANCELLATION_FEE, TRIP_FARE, WEEKLY_FLOOR_TOP_UP
from dispatch.models import (
    DriverBankAccount,
    DriverStripeAccount,
    Payout,
    PayoutMethod,
    PayoutStatus,
    Trip,
    payout_ledger_key,
)
from dispatch.money.payout_adapters import (
    AchFileAdapter,
    BankDestination,
    OnboardingLink,
    PayoutAdapter,
    PayoutBatch,
    PayoutOutcome,
    PayoutRequest,
    PayoutResult,
    StripeConnect,
    payout_adapter,
)
from dispatch.money.weekly import (
    DEFAULT_GRACE,
    WEEK,
    driver_week_compute,
    iso_week_label,
    week_bounds,
    week_start_of,
    week_top_up_key,
    weekly_top_ups_post,
)

logger = logging.getLogger(__name__)

PAYOUT_ENTRY_KIND = "driver_payout"
PAYABLE_KINDS = (AccountKind.DRIVER_PAYABLE, AccountKind.TIPS_HELD)
AUTO = "auto"
# A claim outlasts the provider's timeout by this much; a payout still claimed after it has no live worker.
LEASE_MARGIN_S = 5.0
BACKOFF_BASE_S = 60
BACKOFF_CAP_S = 3600

PAYOUT_TRANSITIONS: dict[str, frozenset[str]] = {
    PayoutStatus.PENDING: frozenset({PayoutStatus.SUBMITTED, PayoutStatus.FAILED}),
    # submitted -> submitted: another attempt of an unknown outcome, with the same key.
    PayoutStatus.SUBMITTED: frozenset({PayoutStatus.SUBMITTED, PayoutStatus.PAID, PayoutStatus.FAILED}),
    PayoutStatus.PAID: frozenset(),
    PayoutStatus.FAILED: frozenset(),
}


def payout_return_key(payout: Payout) -> str:
    """The key of the reversal that gives a failed payout's amount back to the driver's balance."""
    return f"{payout.ledger_key}:returned"


def week_cut_off(week_start: date) -> datetime:
    return week_bounds(week_start)[1]


def _require_week_start(week_start: date) -> None:
    if week_start.weekday() != 0:
        raise InvalidInput(
            gettext("A payout week starts on a Monday."),
            code="invalid_week",
            details={
                "week": [gettext("%(week_start)s is not a Monday") % {"week_start": week_start.isoformat()}]
            },
        )


def last_finished_week(now: datetime | None = None) -> date:
    """The Monday of the latest week that ended at least the weekly floor's grace period ago."""
    return week_start_of((now or timezone.now()) - DEFAULT_GRACE) - WEEK


# --- What is payable at a cut-off -------------------------------------------------------------------------


@dataclass(frozen=True)
class DriverPayable:
    driver_id: uuid.UUID
    currency: str
    payable: int = 0
    tips: int = 0

    @property
    def amount(self) -> int:
        return self.payable + self.tips


def payable_at_cut_off(
    *,
    week_start: date,
    driver_ids: Collection[uuid.UUID] | None = None,
    paid_week: date | None = None,
    payouts_before: datetime | None = None,
) -> dict[tuple[uuid.UUID, str], DriverPayable]:
    """Each (driver, currency)'s payable at `week_start`'s cut-off, less payouts (net of their returns).

    `paid_week`: that week's own payout and its return are left out (the figure its payout pays);
    `payouts_before`: only payouts posted before then count (the figure as its payout saw it). Drivers with
    no movement are absent."""
    entry_table = JournalEntry._meta.db_table
    posting_table = Posting._meta.db_table
    account_table = LedgerAccount._meta.db_table
    params: dict[str, object] = {
        "kinds": [str(kind) for kind in PAYABLE_KINDS],
        "payout_kind": PAYOUT_ENTRY_KIND,
        "top_up_kind": WEEKLY_FLOOR_TOP_UP,
        "week": week_start.isoformat(),
        "cut_off": week_cut_off(week_start),
        "paid_week": paid_week.isoformat() if paid_week else None,
        "payouts_before": payouts_before,
        "drivers": [str(driver_id) for driver_id in driver_ids] if driver_ids is not None else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.owner_id, a.currency, a.kind, COALESCE(SUM(p.credit_minor - p.debit_minor), 0)
            FROM {posting_table} p
            JOIN {account_table} a ON a.id = p.account_id
            JOIN {entry_table} e ON e.id = p.entry_id
            LEFT JOIN {entry_table} r ON r.id = e.reverses_id
            WHERE a.kind = ANY(%(kinds)s) AND a.owner_id IS NOT NULL
              AND (%(drivers)s::uuid[] IS NULL OR a.owner_id = ANY(%(drivers)s::uuid[]))
              AND CASE
                WHEN e.kind = %(payout_kind)s OR (e.kind = 'reversal' AND r.kind = %(payout_kind)s) THEN
                    (%(paid_week)s::text IS NULL
                     OR COALESCE(r.key, e.key) <> 'payout:' || a.owner_id::text || ':' || %(paid_week)s::text)
                    AND (%(payouts_before)s::timestamptz IS NULL OR e.created_at < %(payouts_before)s)
                WHEN e.kind = %(top_up_kind)s THEN (e.metadata ->> 'week_start') <= %(week)s
                ELSE e.created_at < %(cut_off)s
              END
            GROUP BY a.owner_id, a.currency, a.kind
            """,  # noqa: S608 - table names come from our own models, nothing from outside
            params,
        )
        rows = cursor.fetchall()
    figures: dict[tuple[uuid.UUID, str], DriverPayable] = {}
    for owner_id, currency, kind, balance in rows:
        key = (owner_id, currency)
        figure = figures.get(key, DriverPayable(driver_id=owner_id, currency=currency))
        if kind == AccountKind.DRIVER_PAYABLE:
            figure = DriverPayable(
                owner_id, currency, payable=figure.payable + int(balance), tips=figure.tips
            )
        else:
            figure = DriverPayable(
                owner_id, currency, payable=figure.payable, tips=figure.tips + int(balance)
            )
        figures[key] = figure
    return figures


def _one_currency(
    figures: dict[tuple[uuid.UUID, str], DriverPayable], driver_id: uuid.UUID
) -> DriverPayable | None:
    """The driver's figure; more than one currency with money in it cannot be one payout (refused)."""
    mine = [figure for (owner, _), figure in figures.items() if owner == driver_id and figure.amount != 0]
    if len(mine) > 1:
        raise Unprocessable(
            gettext("This driver has balances in several currencies; pay them by hand."),
            code="payout_several_currencies",
            details={"currencies": sorted(figure.currency for figure in mine)},
        )
    if mine:
        return mine[0]
    return next((figure for (owner, _), figure in figures.items() if owner == driver_id), None)


# --- Creating a payout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutDestination:
    method: str
    destination: str
    bank_account: DriverBankAccount | None = None


def _lock_driver_payouts(driver_id: uuid.UUID) -> None:
    digest = hashlib.blake2b(f"rochdale:payouts:{driver_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


def payout_destination(*, driver_id: uuid.UUID, method: str | None = None) -> PayoutDestination | None:
    """Where this driver's payout goes: `method`, else ROCHDALE_PAYOUT_METHOD; `auto` is their Stripe
    account if they onboarded, else their bank account on file. None: they have nowhere to be paid."""
    chosen = method or settings.ROCHDALE_PAYOUT_METHOD
    if chosen not in (AUTO, *PayoutMethod.values):
        raise InvalidInput(
            gettext("Unknown payout method %(chosen)r.") % {"chosen": chosen},
            code="unknown_payout_method",
            details={
                "method": [
                    gettext("one of %(auto)s, %(methods)s")
                    % {"auto": AUTO, "methods": ", ".join(PayoutMethod.values)}
                ]
            },
        )
    if chosen in (AUTO, PayoutMethod.STRIPE):
        account = DriverStripeAccount.objects.filter(driver_id=driver_id).first()
        if account is not None:
            return PayoutDestination(PayoutMethod.STRIPE, account.account_id)
    if chosen in (AUTO, PayoutMethod.ACH):
        bank = DriverBankAccount.objects.filter(driver_id=driver_id, is_active=True).first()
        if bank is not None:
            return PayoutDestination(PayoutMethod.ACH, bank.masked_account_number, bank)
    return None


@dataclass(frozen=True)
class PayoutCreation:
    driver_id: uuid.UUID
    outcome: str  # "created", "exists", "nothing_payable", "no_destination", "several_currencies"
    payout: Payout | None = None
    figure: DriverPayable | None = None


def payout_create(
    *, driver_id: uuid.UUID, week_start: date, method: str | None = None, now: datetime | None = None
) -> PayoutCreation:
    """Create the driver-week's payout and post its entry, once. The balance is read under the driver's
    payout lock, so a concurrent run (or another week's) never reads it before this one has committed."""
    _require_week_start(week_start)
    with transaction.atomic():
        _lock_driver_payouts(driver_id)
        existing = Payout.objects.filter(driver_id=driver_id, week_start=week_start).first()
        if existing is not None:
            return PayoutCreation(driver_id, "exists", existing)
        figures = payable_at_cut_off(week_start=week_start, driver_ids=[driver_id], paid_week=week_start)
        try:
            figure = _one_currency(figures, driver_id)
        except Unprocessable:
            return PayoutCreation(driver_id, "several_currencies")
        if figure is None or figure.amount <= 0:
            return PayoutCreation(driver_id, "nothing_payable", figure=figure)
        destination = payout_destination(driver_id=driver_id, method=method)
        if destination is None:
            return PayoutCreation(driver_id, "no_destination", figure=figure)
        payout_id = uuid.uuid4()
        key = payout_ledger_key(driver_id, week_start)
        ledger.post_entry(
            key=key,
            kind=PAYOUT_ENTRY_KIND,
            currency=figure.currency,
            memo=f"Payout {iso_week_label(week_start)} to driver {driver_id} by {destination.method}",
            lines=_payout_lines(driver_id, figure),
            metadata={
                "week_start": week_start.isoformat(),
                "payable": figure.payable,
                "tips": figure.tips,
                "method": destination.method,
                "payout_id": str(payout_id),
            },
        )
        payout = Payout.objects.create(
            id=payout_id,
            driver_id=driver_id,
            week_start=week_start,
            cut_off=week_cut_off(week_start),
            method=destination.method,
            amount_minor=figure.amount,
            payable_minor=figure.payable,
            tips_minor=figure.tips,
            currency=figure.currency,
            destination=destination.destination,
            bank_account=destination.bank_account,
            idempotency_key=f"rochdale:payout:{payout_id}:{figure.amount}{figure.currency}",
            created_at=now or timezone.now(),
        )
    return PayoutCreation(driver_id, "created", payout, figure)


def _payout_lines(driver_id: uuid.UUID, figure: DriverPayable) -> list[Line]:
    """Dr each of the driver's accounts what it held (Cr, if it was negative), Cr cash_clearing the total."""
    lines = []
    for kind, amount in ((AccountKind.DRIVER_PAYABLE, figure.payable), (AccountKind.TIPS_HELD, figure.tips)):
        if amount > 0:
            lines.append(debit(kind, driver_id, amount))
        elif amount < 0:
            lines.append(credit(kind, driver_id, -amount))
    lines.append(credit(AccountKind.CASH_CLEARING, None, figure.amount))
    return lines


# --- Sending: claim, call the adapter, record ---------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=settings.ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S + LEASE_MARGIN_S)


def _due(now: datetime) -> Q:
    """Never sent (pending), or an unknown outcome whose retry is due, or a claim whose lease ran out."""
    return Q(status=PayoutStatus.PENDING) | Q(status=PayoutStatus.SUBMITTED, next_attempt_at__lte=now)


def _claim(payout_ids: Iterable[uuid.UUID], *, now: datetime, batch: str | None) -> list[Payout]:
    """Claim the due ones of these payouts (guarded: a payout another worker holds is skipped), as
    submitted, with a lease. A new batch numbers its payouts; a batch sent before keeps its numbers."""
    with transaction.atomic():
        rows = list(
            Payout.objects.select_for_update(skip_locked=True)
            .filter(_due(now), id__in=list(payout_ids))
            .order_by("batch_sequence", "driver_id")
        )
        for position, payout in enumerate(rows, start=1):
            if batch is not None and not payout.batch:
                payout.batch, payout.batch_sequence = batch, position
            payout.status = PayoutStatus.SUBMITTED
            payout.attempts += 1
            payout.submitted_at = payout.submitted_at or now
            payout.next_attempt_at = now + _lease()
            payout.save(
                update_fields=[
                    "batch",
                    "batch_sequence",
                    "status",
                    "attempts",
                    "submitted_at",
                    "next_attempt_at",
                ]
            )
    return rows


def _request(payout: Payout) -> PayoutRequest:
    bank = payout.bank_account
    return PayoutRequest(
        payout_id=payout.id,
        driver_id=payout.driver_id,
        week_start=payout.week_start,
        amount_minor=payout.amount_minor,
        currency=payout.currency,
        destination=payout.destination,
        idempotency_key=payout.idempotency_key,
        ledger_key=payout.ledger_key,
        attempt=payout.attempts,
        sequence=payout.batch_sequence or 1,
        bank=BankDestination(bank.holder_name, bank.routing_number, bank.account_number, bank.account_type)
        if bank is not None
        else None,
    )


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_CAP_S))


def payout_result_record(*, result: PayoutResult, now: datetime | None = None) -> Payout:
    """Record what the adapter answered, under the payout's row lock; a settled payout stays settled."""
    moment = now or timezone.now()
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(id=result.payout_id)
        if payout.status in (PayoutStatus.PAID, PayoutStatus.FAILED):
            if result.outcome == PayoutOutcome.PAID and payout.status == PayoutStatus.FAILED:
                logger.error("payout %s was paid (%s) after it failed", payout.id, result.provider_reference)
            return payout
        if result.outcome == PayoutOutcome.PAID:
            _move(payout, PayoutStatus.PAID)
            payout.paid_at = moment
            payout.provider_reference = result.provider_reference
            payout.next_attempt_at = None
        elif result.outcome == PayoutOutcome.SUBMITTED:
            _move(payout, PayoutStatus.SUBMITTED)
            payout.provider_reference = result.provider_reference
            payout.next_attempt_at = None
        elif result.outcome == PayoutOutcome.REFUSED:
            _fail(payout, error=result.error, now=moment)
        else:
            _note_error(payout, result.error, outcome="unknown", now=moment)
            gave_up = payout.attempts >= settings.ROCHDALE_PAYOUT_MAX_ATTEMPTS
            payout.next_attempt_at = None if gave_up else moment + _backoff(payout.attempts)
            if gave_up:
                logger.error(
                    "payout %s: no answer after %d attempts; staff must check", payout.id, payout.attempts
                )
        payout.save()
    return payout


def _move(payout: Payout, to: str) -> None:
    if to not in PAYOUT_TRANSITIONS[payout.status]:
        raise Unprocessable(
            gettext("A %(status)s payout cannot become %(to)s.") % {"status": payout.status, "to": to},
            code="invalid_payout_transition",
            details={"status": payout.status, "to": to},
        )
    payout.status = to


def _note_error(payout: Payout, error: str, *, outcome: str, now: datetime) -> None:
    payout.last_error = error[:500]
    payout.errors = [
        *payout.errors,
        {"at": now.isoformat(), "attempt": payout.attempts, "outcome": outcome, "error": error[:500]},
    ]


def _fail(payout: Payout, *, error: str, now: datetime) -> None:
    """Failed: the money never left, so the entry is reversed and the amount is payable again (next week)."""
    _move(payout, PayoutStatus.FAILED)
    _note_error(payout, error, outcome="refused", now=now)
    payout.failed_at = now
    payout.next_attempt_at = None
    entry = JournalEntry.objects.get(key=payout.ledger_key)
    ledger.reverse_entry(
        entry_id=entry.id, key=payout_return_key(payout), memo=f"Payout {payout.id} failed: {error}"[:300]
    )


def payouts_send(
    *,
    week_start: date | None = None,
    payout_ids: Collection[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[PayoutResult]:
    """Send every due payout (of one week, or these ones): claim, call its adapter outside any
    transaction, record the answers. A method that cannot be used now (not configured) leaves its payouts
    pending for the next run; the error is returned as an unknown outcome."""
    moment = now or timezone.now()
    due = Payout.objects.filter(_due(moment))
    if week_start is not None:
        due = due.filter(week_start=week_start)
    if payout_ids is not None:
        due = due.filter(id__in=list(payout_ids))
    by_method: dict[str, list[Payout]] = defaultdict(list)
    for payout in due.order_by("created_at"):
        by_method[payout.method].append(payout)
    results: list[PayoutResult] = []
    for method, payouts in sorted(by_method.items()):
        try:
            adapter = payout_adapter(method)
        except (ServiceUnavailable, Unprocessable) as error:
            logger.error("payouts by %s cannot be sent: %s", method, error.message)
            results.extend(PayoutResult(p.id, PayoutOutcome.UNKNOWN, error=error.message) for p in payouts)
            continue
        results.extend(_send_with(adapter, payouts, now=moment))
    return results


def _send_with(adapter: PayoutAdapter, payouts: list[Payout], *, now: datetime) -> list[PayoutResult]:
    results = []
    if not adapter.batched:
        for payout in payouts:
            for claimed in _claim([payout.id], now=now, batch=None):
                batch = PayoutBatch(
                    batch_id=claimed.idempotency_key,
                    method=adapter.method,
                    created_at=now,
                    week_start=claimed.week_start,
                    requests=(_request(claimed),),
                    timeout_s=settings.ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S,
                )
                results.extend(_deliver(adapter, batch, now=now))
        return results
    # Batched (a bank file): payouts sent in a batch before are sent again with all of that batch, so the
    # file is the same file; the others make a new batch per week.
    earlier = defaultdict(list)
    fresh = defaultdict(list)
    for payout in payouts:
        (earlier[payout.batch] if payout.batch else fresh[payout.week_start]).append(payout.id)
    for batch_id, ids in sorted(earlier.items()):
        if _claim(ids, now=now, batch=batch_id):
            results.extend(_deliver(adapter, _batch_of(adapter, batch_id), now=now))
    for week_start, ids in sorted(fresh.items()):
        batch_id = f"{adapter.method}-{week_start:%Y%m%d}-{uuid.uuid4().hex[:8]}"
        if _claim(ids, now=now, batch=batch_id):
            results.extend(_deliver(adapter, _batch_of(adapter, batch_id), now=now))
    return results


def _batch_of(adapter: PayoutAdapter, batch_id: str) -> PayoutBatch:
    members = list(
        Payout.objects.filter(batch=batch_id).select_related("bank_account").order_by("batch_sequence")
    )
    return PayoutBatch(
        batch_id=batch_id,
        method=adapter.method,
        created_at=min(member.submitted_at or member.created_at for member in members),
        week_start=members[0].week_start,
        requests=tuple(_request(member) for member in members),
        timeout_s=settings.ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S,
    )


def _deliver(adapter: PayoutAdapter, batch: PayoutBatch, *, now: datetime) -> list[PayoutResult]:
    try:
        results = adapter.send(batch)
    except Exception as error:  # an adapter that raised: nobody knows what happened, so retry the same key
        logger.exception("payout adapter %s raised on %s", adapter.method, batch.batch_id)
        results = [
            PayoutResult(request.payout_id, PayoutOutcome.UNKNOWN, error=f"{type(error).__name__}: {error}")
            for request in batch.requests
        ]
    for result in results:
        payout_result_record(result=result, now=now)
    return results


def bank_files_write(*, week_start: date) -> list[Path]:
    """Write again every bank file of the week's batches that is missing (the same bytes: the rendering is
    a pure function of the batch). Returns the files of the week's batches."""
    batches = sorted(
        set(
            Payout.objects.filter(week_start=week_start, method=PayoutMethod.ACH)
            .exclude(batch="")
            .values_list("batch", flat=True)
        )
    )
    if not batches:
        return []
    adapter = AchFileAdapter()
    paths = []
    for batch_id in batches:
        files = adapter.files_for(batch_id)
        if not files.nacha.exists() or not files.summary.exists():
            adapter.send(_batch_of(adapter, batch_id))
        paths.append(files.nacha)
    return paths


# --- Staff acts --------------------------------------------------------------------------------------------


def payout_mark_paid(*, payout_id: uuid.UUID, reference: str = "", now: datetime | None = None) -> Payout:
    """Staff: the bank settled a bank-file payout."""
    payout = Payout.objects.filter(id=payout_id).first()
    if payout is None:
        raise NotFound(gettext("No such payout."), code="payout_not_found")
    if payout.status != PayoutStatus.SUBMITTED:
        raise Unprocessable(
            gettext("Only a submitted payout can be marked paid; this one is %(status)s.")
            % {"status": payout.status},
            code="invalid_payout_transition",
        )
    return payout_result_record(
        result=PayoutResult(
            payout.id, PayoutOutcome.PAID, provider_reference=reference or payout.provider_reference
        ),
        now=now,
    )


def payout_mark_failed(*, payout_id: uuid.UUID, reason: str, now: datetime | None = None) -> Payout:
    """Staff: the bank returned a payout (or it must not be sent): failed, and its amount is payable again."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().filter(id=payout_id).first()
        if payout is None:
            raise NotFound(gettext("No such payout."), code="payout_not_found")
        _fail(payout, error=f"staff: {reason}", now=now or timezone.now())
        payout.save()
    return payout


def payout_retry_now(*, payout_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Staff: retry an unknown outcome now (with its same key), even after the attempts ran out."""
    moment = now or timezone.now()
    return bool(
        Payout.objects.filter(id=payout_id, status=PayoutStatus.SUBMITTED, provider_reference="").update(
            next_attempt_at=moment
        )
    )


# --- The run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPayout:
    driver_id: uuid.UUID
    currency: str
    payable: int
    tips: int
    outcome: str
    method: str = ""
    payout_id: uuid.UUID | None = None

    @property
    def amount(self) -> int:
        return self.payable + self.tips


@dataclass
class PayoutRunReport:
    week_start: date
    cut_off: datetime
    dry_run: bool
    top_ups_posted: int = 0
    top_ups_planned: int = 0
    planned: list[PlannedPayout] = field(default_factory=list)
    results: list[PayoutResult] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for plan in self.planned if plan.outcome == outcome)


def payouts_run(
    *, week_start: date, method: str | None = None, dry_run: bool = False, now: datetime | None = None
) -> PayoutRunReport:
    """The weekly run for the week starting `week_start`, in this order:

    1. the week's floor top-ups are posted (`weekly_top_ups_post` for that week; idempotent), so what is
       payable at the cut-off includes them;
    2. every driver with a positive payable figure at the cut-off gets the week's payout (entry + row), once;
    3. the week's due payouts are sent (new ones, and unknown outcomes with their same key);
    4. the week's bank files that are missing are written again.

    `dry_run` writes nothing: it reports what would be paid, counting top-ups not posted yet."""
    _require_week_start(week_start)
    moment = now or timezone.now()
    cut_off = week_cut_off(week_start)
    if moment < cut_off + DEFAULT_GRACE:
        raise Unprocessable(
            gettext(
                "The week of %(week_start)s has not finished (it ends %(cut_off)s, and is paid from "
                "%(default_grace)s after)."
            )
            % {
                "week_start": week_start.isoformat(),
                "cut_off": cut_off.isoformat(),
                "default_grace": DEFAULT_GRACE,
            },
            code="week_not_finished",
        )
    if method not in (None, AUTO, *PayoutMethod.values):
        raise InvalidInput(
            gettext("Unknown payout method %(method)r.") % {"method": method}, code="unknown_payout_method"
        )
    report = PayoutRunReport(week_start=week_start, cut_off=cut_off, dry_run=dry_run)
    if not dry_run:
        # Step 1 first: the top-up for this week is posted before any balance is read.
        report.top_ups_posted = len(weekly_top_ups_post(now=cut_off + DEFAULT_GRACE, weeks_back=1))
    figures = payable_at_cut_off(week_start=week_start, paid_week=week_start)
    pending_top_ups = _unposted_top_ups(week_start, {driver for driver, _ in figures}) if dry_run else {}
    report.top_ups_planned = sum(pending_top_ups.values())
    existing = {payout.driver_id: payout for payout in Payout.objects.filter(week_start=week_start)}
    for driver_id in sorted({driver for driver, _ in figures}, key=str):
        try:
            figure = _one_currency(figures, driver_id)
        except Unprocessable:
            report.planned.append(PlannedPayout(driver_id, "", 0, 0, "several_currencies"))
            continue
        if figure is None:
            continue
        if dry_run:
            payable = figure.payable + pending_top_ups.get(driver_id, 0)
            report.planned.append(_plan(driver_id, figure, payable, existing.get(driver_id), method))
            continue
        if driver_id in existing or figure.amount <= 0:
            # Settled already, or nothing to pay by the figure read before any lock: no transaction for it
            # (the beat job runs hourly over every driver). A figure that grows meanwhile (a payout of
            # another week returned) is paid by the next run.
            done = existing.get(driver_id)
            outcome = "exists" if done is not None else "nothing_payable"
            report.planned.append(
                PlannedPayout(
                    driver_id,
                    done.currency if done else figure.currency,
                    done.payable_minor if done else figure.payable,
                    done.tips_minor if done else figure.tips,
                    outcome,
                    done.method if done else "",
                    done.id if done else None,
                )
            )
            continue
        created = payout_create(driver_id=driver_id, week_start=week_start, method=method, now=moment)
        done = created.payout
        report.planned.append(
            PlannedPayout(
                driver_id,
                done.currency if done else figure.currency,
                done.payable_minor if done else (created.figure or figure).payable,
                done.tips_minor if done else (created.figure or figure).tips,
                created.outcome,
                done.method if done else "",
                done.id if done else None,
            )
        )
    if not dry_run:
        report.results = payouts_send(week_start=week_start, now=moment)
        report.files = bank_files_write(week_start=week_start)
    return report


def _plan(
    driver_id: uuid.UUID, figure: DriverPayable, payable: int, existing: Payout | None, method: str | None
) -> PlannedPayout:
    if existing is not None:
        return PlannedPayout(
            driver_id, figure.currency, payable, figure.tips, "exists", payout_id=existing.id
        )
    if payable + figure.tips <= 0:
        return PlannedPayout(driver_id, figure.currency, payable, figure.tips, "nothing_payable")
    destination = payout_destination(driver_id=driver_id, method=method)
    if destination is None:
        return PlannedPayout(driver_id, figure.currency, payable, figure.tips, "no_destination")
    return PlannedPayout(driver_id, figure.currency, payable, figure.tips, "would_create", destination.method)


def _unposted_top_ups(week_start: date, driver_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    """For a dry run: the week's floor top-ups that the run would post first."""
    posted = set(JournalEntry.objects.filter(kind=WEEKLY_FLOOR_TOP_UP).values_list("key", flat=True))
    top_ups = {}
    for driver_id in driver_ids:
        if week_top_up_key(driver_id, week_start) in posted:
            continue
        week = driver_week_compute(driver_id=driver_id, week_start=week_start)
        if week is not None and week.top_up:
            top_ups[driver_id] = week.top_up
    return top_ups


def payouts_scheduled_run(*, now: datetime | None = None) -> PayoutRunReport | None:
    """The beat job: pay the last finished week (when ROCHDALE_PAYOUTS_AUTO_RUN), and retry every due
    payout of earlier weeks (unknown outcomes) with their same keys."""
    moment = now or timezone.now()
    report = None
    if settings.ROCHDALE_PAYOUTS_AUTO_RUN:
        report = payouts_run(week_start=last_finished_week(moment), now=moment)
    payouts_send(now=moment)
    return report


# --- Bank accounts and the driver's payouts -----------------------------------------------------------------


def bank_account_add(
    *,
    driver_id: uuid.UUID,
    holder_name: str,
    routing_number: str,
    account_number: str,
    account_type: str,
    created_by_id: uuid.UUID | None,
) -> DriverBankAccount:
    """Staff: the driver's new bank details (validated: the routing number's checksum, the number's digits).
    The previous active account is deactivated in the same transaction; payouts keep theirs."""
    account = DriverBankAccount(
        driver_id=driver_id,
        holder_name=holder_name.strip(),
        routing_number=routing_number.strip(),
        account_number=account_number.strip(),
        account_type=account_type,
        created_by_id=created_by_id,
    )
    try:
        account.full_clean(exclude=["driver", "created_by"])
    except ValidationError as error:
        raise InvalidInput(
            gettext("These bank details are not valid."), details=error.message_dict
        ) from error
    with transaction.atomic():
        DriverBankAccount.objects.select_for_update().filter(driver_id=driver_id, is_active=True).update(
            is_active=False, deactivated_at=timezone.now()
        )
        account.save()
    return account


def driver_payouts(*, driver_id: uuid.UUID) -> QuerySet[Payout]:
    """The driver's own payouts (every read of payouts for a driver goes through this filter)."""
    return Payout.objects.filter(driver_id=driver_id)


# --- Onboarding (Stripe Connect) --------------------------------------------------------------------------


def stripe_onboarding_link(*, driver_id: uuid.UUID) -> OnboardingLink:
    """The driver's Stripe onboarding link; their Express account is made on the first call (and once:
    Stripe answers a repeat of the account's idempotency key with the same account)."""
    connect = StripeConnect.from_settings()
    account = DriverStripeAccount.objects.filter(driver_id=driver_id).first()
    if account is None:
        account_id = connect.express_account_create(
            driver_id=driver_id, country=settings.ROCHDALE_STRIPE_CONNECT_COUNTRY
        )
        account, _ = DriverStripeAccount.objects.get_or_create(
            driver_id=driver_id, defaults={"account_id": account_id}
        )
    return connect.onboarding_link(
        account_id=account.account_id,
        refresh_url=settings.ROCHDALE_STRIPE_CONNECT_REFRESH_URL,
        return_url=settings.ROCHDALE_STRIPE_CONNECT_RETURN_URL,
    )


# --- Statements ---------------------------------------------------------------------------------------------

STATEMENT_KINDS = {
    TRIP_FARE: "trip",
    CANCELLATION_FEE: "cancellation",
    "tip": "tip",
    WEEKLY_FLOOR_TOP_UP: "weekly_top_up",
    "share_instalment": "share_instalment",
}


@dataclass(frozen=True)
class StatementLine:
    kind: str  # trip, cancellation, tip, weekly_top_up, share_instalment, adjustment
    at: datetime
    description: str
    pay: int  # what it moved on driver_payable (negative: withheld or reversed)
    tip: int  # what it moved on tips_held
    trip_id: uuid.UUID | None = None
    fare: int | None = None
    distance_m: int | None = None
    duration_s: int | None = None

    @property
    def amount(self) -> int:
        return self.pay + self.tip


@dataclass(frozen=True)
class PayoutStatement:
    """What a payout paid, line by line: the balance brought forward from before the week, then every
    movement of the week (by the same cut-off rules as the amount), so `total == payout.amount_minor`."""

    payout: Payout
    week_start: date
    week_end: date
    cut_off: datetime
    currency: str
    brought_forward: int
    lines: list[StatementLine]

    def sum_of(self, *kinds: str) -> int:
        return sum(line.amount for line in self.lines if line.kind in kinds)

    @property
    def trips(self) -> int:
        return sum(1 for line in self.lines if line.kind == "trip")

    @property
    def total(self) -> int:
        return self.brought_forward + sum(line.amount for line in self.lines)


def payout_statement(*, payout: Payout) -> PayoutStatement:
    entry = JournalEntry.objects.filter(key=payout.ledger_key).first()
    seen_before = entry.created_at if entry is not None else payout.created_at
    previous = payable_at_cut_off(
        week_start=payout.week_start - WEEK,
        driver_ids=[payout.driver_id],
        paid_week=payout.week_start,
        payouts_before=seen_before,
    ).get((payout.driver_id, payout.currency))
    start, cut_off = week_bounds(payout.week_start)
    week = payout.week_start.isoformat()
    postings = (
        Posting.objects.filter(
            account__owner_id=payout.driver_id,
            account__kind__in=PAYABLE_KINDS,
            account__currency=payout.currency,
        )
        .filter(
            Q(entry__kind=WEEKLY_FLOOR_TOP_UP, entry__metadata__week_start=week)
            | (
                ~Q(entry__kind=WEEKLY_FLOOR_TOP_UP)
                & Q(entry__created_at__gte=start, entry__created_at__lt=cut_off)
            )
        )
        .exclude(entry__kind=PAYOUT_ENTRY_KIND)
        .exclude(entry__kind="reversal", entry__reverses__kind=PAYOUT_ENTRY_KIND)
        .select_related("entry", "account")
    )
    moved: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    entries: dict[uuid.UUID, JournalEntry] = {}
    for posting in postings:
        side = 0 if posting.account.kind == AccountKind.DRIVER_PAYABLE else 1
        moved[posting.entry_id][side] += posting.credit_minor - posting.debit_minor
        entries[posting.entry_id] = posting.entry
    trips = Trip.objects.in_bulk([e.trip_id for e in entries.values() if e.trip_id])
    lines = []
    for entry_id, (pay, tip) in moved.items():
        line_entry = entries[entry_id]
        kind = STATEMENT_KINDS.get(line_entry.kind, "adjustment")
        trip = trips.get(line_entry.trip_id) if line_entry.trip_id else None
        metadata = line_entry.metadata or {}
        at = line_entry.created_at if kind != "weekly_top_up" else cut_off  # the week's, paid at its end
        lines.append(
            StatementLine(
                kind=kind,
                at=trip.completed_at if kind == "trip" and trip and trip.completed_at else at,
                description=_describe(kind, line_entry),
                pay=pay,
                tip=tip,
                trip_id=line_entry.trip_id,
                fare=int(metadata["fare"]) if kind == "trip" and "fare" in metadata else None,
                distance_m=trip.measured_distance_m if kind == "trip" and trip else None,
                duration_s=trip.measured_duration_s if kind == "trip" and trip else None,
            )
        )
    lines.sort(key=lambda line: (line.at, line.kind, str(line.trip_id)))
    return PayoutStatement(
        payout=payout,
        week_start=payout.week_start,
        week_end=payout.week_start + timedelta(days=6),
        cut_off=cut_off,
        currency=payout.currency,
        brought_forward=previous.amount if previous is not None else 0,
        lines=lines,
    )


def _describe(kind: str, entry: JournalEntry) -> str:
    if kind == "trip":
        return "Trip"
    if kind == "cancellation":
        return "Late cancellation fee"
    if kind == "tip":
        return "Tip"
    if kind == "weekly_top_up":
        return f"Weekly pay floor top-up {entry.metadata.get('week', '')}".strip()
    if kind == "share_instalment":
        return "Member share instalment withheld"
    return entry.memo or entry.kind


# --- Reconciliation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutDiscrepancy:
    kind: str  # missing_entry, entry_without_payout, amount_mismatch, paid_twice, underpaid, overpaid,
    # failed_not_returned, returned_not_failed, unpaid_balance
    driver_id: uuid.UUID | None
    payout_id: uuid.UUID | None
    key: str
    message: str

    def describe(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class PayoutReconciliation:
    week_start: date
    checked_at: datetime
    payouts: int = 0
    entries: int = 0
    paid_minor: int = 0
    discrepancies: list[PayoutDiscrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def summary(self) -> str:
        return (
            f"week of {self.week_start.isoformat()}: {self.payouts} payouts, {self.entries} payout entries, "
            f"{self.paid_minor} minor units paid out"
        )


def payouts_reconcile(*, week_start: date) -> PayoutReconciliation:
    """Check the week's payouts against the ledger, in one REPEATABLE READ snapshot:

    * every payout has its entry (`payout:{driver}:{week}`, kind driver_payout), for its amount, split and
      metadata, and every payout entry of the week has its payout row;
    * no driver was paid twice: one payout entry per driver-week, and each payout paid exactly what was
      payable at the cut-off less what earlier payouts had paid, so the driver's payable balance after it
      is what accrued after the cut-off;
    * a failed payout's entry was reversed, and only a failed one's;
    * no driver without a payout was left with a positive payable balance from before the cut-off."""
    _require_week_start(week_start)
    if connection.in_atomic_block:
        return _reconcile_in_snapshot(week_start)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _reconcile_in_snapshot(week_start)


def _reconcile_in_snapshot(week_start: date) -> PayoutReconciliation:
    report = PayoutReconciliation(week_start=week_start, checked_at=timezone.now())
    found = report.discrepancies
    payouts = list(Payout.objects.filter(week_start=week_start).order_by("driver_id"))
    report.payouts = len(payouts)
    week_entries = list(
        JournalEntry.objects.filter(kind=PAYOUT_ENTRY_KIND, metadata__week_start=week_start.isoformat())
    )
    report.entries = len(week_entries)
    keys = {payout.ledger_key for payout in payouts} | {payout_return_key(payout) for payout in payouts}
    by_key = {entry.key: entry for entry in JournalEntry.objects.filter(key__in=keys)}
    by_key.update({entry.key: entry for entry in week_entries})
    postings = defaultdict(list)
    for posting in Posting.objects.filter(entry__in=list(by_key.values())).select_related("account"):
        postings[posting.entry_id].append(posting)

    for payout in payouts:
        entry = by_key.get(payout.ledger_key)
        where = (payout.driver_id, payout.id, payout.ledger_key)
        if entry is None or entry.kind != PAYOUT_ENTRY_KIND:
            found.append(
                PayoutDiscrepancy("missing_entry", *where, f"payout {payout.id} has no ledger entry")
            )
            continue
        problems = _entry_disagreements(payout, entry, postings[entry.id])
        if problems:
            found.append(PayoutDiscrepancy("amount_mismatch", *where, "; ".join(problems)))
        returned = by_key.get(payout_return_key(payout))
        if payout.status == PayoutStatus.FAILED and returned is None:
            found.append(
                PayoutDiscrepancy(
                    "failed_not_returned", *where, f"payout {payout.id} failed but was not reversed"
                )
            )
        if payout.status != PayoutStatus.FAILED and returned is not None:
            found.append(
                PayoutDiscrepancy(
                    "returned_not_failed", *where, f"payout {payout.id} is {payout.status} but was reversed"
                )
            )
        if payout.status == PayoutStatus.FAILED:
            continue
        report.paid_minor += payout.amount_minor
        due = payable_at_cut_off(
            week_start=week_start,
            driver_ids=[payout.driver_id],
            paid_week=week_start,
            payouts_before=entry.created_at,
        ).get((payout.driver_id, payout.currency))
        due_amount = due.amount if due is not None else 0
        if due_amount != payout.amount_minor:
            kind = "overpaid" if payout.amount_minor > due_amount else "underpaid"
            found.append(
                PayoutDiscrepancy(
                    kind,
                    *where,
                    f"payout {payout.id} paid {payout.amount_minor} but {due_amount} was payable at the "
                    f"cut-off after earlier payouts: after it the driver's balance is "
                    f"{due_amount - payout.amount_minor} off what accrued after the cut-off",
                )
            )

    rows = {payout.ledger_key: payout for payout in payouts}
    per_driver: dict[uuid.UUID, list[JournalEntry]] = defaultdict(list)
    for entry in week_entries:
        owner = next(
            (p.account.owner_id for p in postings[entry.id] if p.account.kind in PAYABLE_KINDS), None
        )
        if owner is not None:
            per_driver[owner].append(entry)
        payout = rows.get(entry.key)
        if payout is None or (entry.metadata or {}).get("payout_id") != str(payout.id):
            found.append(
                PayoutDiscrepancy(
                    "entry_without_payout", owner, None, entry.key, f"entry {entry.key} has no payout row"
                )
            )
    for driver_id, entries in sorted(per_driver.items(), key=lambda item: str(item[0])):
        if len(entries) > 1:
            found.append(
                PayoutDiscrepancy(
                    "paid_twice",
                    driver_id,
                    None,
                    ", ".join(sorted(entry.key for entry in entries)),
                    f"driver {driver_id} has {len(entries)} payout entries for the week",
                )
            )

    paid = {payout.driver_id for payout in payouts}
    for (driver_id, currency), figure in sorted(
        payable_at_cut_off(week_start=week_start).items(), key=lambda item: str(item[0])
    ):
        if driver_id not in paid and figure.amount > 0:
            found.append(
                PayoutDiscrepancy(
                    "unpaid_balance",
                    driver_id,
                    None,
                    payout_ledger_key(driver_id, week_start),
                    f"driver {driver_id} had {figure.amount} {currency} payable at the cut-off and no payout",
                )
            )
    return report


def _entry_disagreements(payout: Payout, entry: JournalEntry, postings: list[Posting]) -> list[str]:
    moved: dict[str, int] = defaultdict(int)
    currencies = set()
    for posting in postings:
        account = posting.account
        currencies.add(account.currency)
        if account.kind in PAYABLE_KINDS and account.owner_id == payout.driver_id:
            moved[account.kind] += posting.debit_minor - posting.credit_minor
        elif account.kind == AccountKind.CASH_CLEARING:
            moved["cash"] += posting.credit_minor - posting.debit_minor
        else:
            moved["other"] += posting.debit_minor + posting.credit_minor
    metadata = entry.metadata or {}
    expected = {
        "cash_clearing credit": (moved["cash"], payout.amount_minor),
        "driver_payable debit": (moved[AccountKind.DRIVER_PAYABLE], payout.payable_minor),
        "tips_held debit": (moved[AccountKind.TIPS_HELD], payout.tips_minor),
        "other accounts": (moved["other"], 0),
        "metadata payable": (metadata.get("payable"), payout.payable_minor),
        "metadata tips": (metadata.get("tips"), payout.tips_minor),
        "metadata payout_id": (metadata.get("payout_id"), str(payout.id)),
        "metadata method": (metadata.get("method"), payout.method),
        "currency": (currencies, {payout.currency}),
    }
    return [
        f"{payout.ledger_key}: {name} is {actual}, the payout says {wanted}"
        for name, (actual, wanted) in expected.items()
        if actual != wanted
    ]
