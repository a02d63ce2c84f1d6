"""The double-entry ledger: the one way money is recorded.

Amounts are integer minor units. Entries are append-only (database triggers refuse UPDATE and DELETE on
accounts, entries and postings); a mistake is corrected by a new, reversing entry. Posting is idempotent by
`key`: posting the same key twice returns the first entry and records nothing more, even when two
transactions race (the unique index on `key` decides).

Balances are derived, never stored: an account's balance is the sum of its postings (`balance_minor`, on the
(account, entry) index). There is no running-total row to UPDATE, so posting an entry only INSERTs rows.

One lock order for money. Every transaction that writes the ledger or a payment capture (fare settlement,
share withholding, cancellation fee, tip, refund, capture outcome, weekly floor top-up, membership and
dividend entries) takes its row locks in this order, and only then writes ledger rows:

1. the trip row: FOR UPDATE (or the UPDATE of a status move) to change the trip or its money (completion,
   cancellation, tip, refund); FOR KEY SHARE to record a capture's outcome. KEY SHARE is the lock the
   deferred foreign-key check of `JournalEntry.trip` takes at COMMIT anyway: taken first, it can no longer
   be the last lock of a transaction that already holds others;
2. the capture row (`PaymentCapture`, FOR UPDATE): recording an attempt's outcome, or a refund reducing a
   charge not captured yet;
3. the member row (governance: share withholding, joining, withdrawing), then the governance rows after it
   (proposal, election, seats);
4. ledger rows, INSERT only: the entry, its postings, and on first use an account (created in a fixed
   (kind, owner) order);
5. the audit head, last of all (governance acts collect their audit entries and append them at their end).

Why this cannot deadlock: a deadlock is a cycle of transactions, each waiting for a lock another holds.
Step 4 never waits for a row lock (nothing UPDATEs, DELETEs or locks a ledger row). An INSERT waits only
for another open transaction that inserted the same unique value: the same entry key, which belongs to a
row of steps 1-3 (`trip:{id}:*`, `tip:{id}` and `refund:{trip}:*` under the trip; `capture:*` and
`refund-payout:*` under the capture row; `member:{id}:*` under the member; `dividend:{proposal}` under the
proposal; `invoice-payment:{id}` under the organisation's invoice row, which a payment locks and no other
row with it), so a second poster of a key already waits at that row and never reaches the INSERT while the
first is open (a weekly top-up `floor:*` is one entry in a transaction that holds nothing else); or the same
new account, which only a transaction in step 4 creates, and a transaction in step 4 takes no further lock
from steps 1-3, and a transaction holding the audit head (step 5) waits for nothing more. Steps 1-3 are
taken in one order by every writer, so every wait points forward along it and
no cycle can close. At COMMIT, the balanced-entry trigger only reads, and the deferred foreign-key checks
take KEY SHARE on the trip (already held, step 1), on accounts and entries (never locked FOR UPDATE), and on
users (no money transaction locks a user).

A transaction that posts several entries (a completion posts the share instalment and the fare) needs no
care beyond this: entries lock nothing. The fault and lock-order tests (tests/fares/test_lock_order.py,
tests/faults/test_capture_tip_interleaving.py) hold a capture mid-commit and run tips and refunds against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from backend.errors import Conflict
from backend.fares.models import (
    DEBIT_NORMAL_KINDS,
    AccountKind,
    CaptureStatus,
    JournalEntry,
    LedgerAccount,
    PaymentCapture,
    Posting,
)


class UnbalancedEntry(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    """One side of an entry: `amount_minor` > 0 on the debit or the credit side of an account.

    `code` names the fee of a `pass_through` account (each fee has its own); it is empty for other kinds."""

    kind: AccountKind
    owner_id: uuid.UUID | None
    debit_minor: int = 0
    credit_minor: int = 0
    code: str = ""


def debit(kind: AccountKind, owner_id: uuid.UUID | None, amount_minor: int, *, code: str = "") -> Line:
    return Line(kind=kind, owner_id=owner_id, debit_minor=amount_minor, code=code)


def credit(kind: AccountKind, owner_id: uuid.UUID | None, amount_minor: int, *, code: str = "") -> Line:
    return Line(kind=kind, owner_id=owner_id, credit_minor=amount_minor, code=code)


def account_for(
    *, kind: AccountKind, owner_id: uuid.UUID | None, currency: str, code: str = ""
) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(
        kind=kind, owner_id=owner_id, currency=currency, code=code
    )
    return account


def post_entry(
    *,
    key: str,
    kind: str,
    currency: str,
    lines: Sequence[Line],
    memo: str = "",
    trip_id: uuid.UUID | None = None,
    reverses_id: uuid.UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[JournalEntry, bool]:
    """Post one balanced entry under an idempotency key; returns (entry, created).

    Lines with a zero amount are dropped (a trip with no top-up has no top-up line). A key already used
    returns the existing entry; if its lines differ from these, that is a bug in the caller: Conflict.
    """
    kept = [line for line in lines if line.debit_minor or line.credit_minor]
    for line in kept:
        if line.debit_minor < 0 or line.credit_minor < 0 or (line.debit_minor and line.credit_minor):
            raise UnbalancedEntry(f"a line must have one positive side: {line}")
    debits = sum(line.debit_minor for line in kept)
    credits = sum(line.credit_minor for line in kept)
    if debits != credits:
        raise UnbalancedEntry(f"entry {key} does not balance: debits {debits} != credits {credits}")
    if not kept:
        raise UnbalancedEntry(f"entry {key} moves no money")

    existing = JournalEntry.objects.filter(key=key).first()
    if existing is not None:
        _check_same_lines(existing, kept)
        return existing, False
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                key=key,
                kind=kind,
                memo=memo[:300],
                trip_id=trip_id,
                reverses_id=reverses_id,
                metadata=metadata or {},
            )
            accounts = _accounts_for(kept, currency)
            Posting.objects.bulk_create(
                Posting(
                    entry=entry, account=account, debit_minor=line.debit_minor, credit_minor=line.credit_minor
                )
                for account, line in zip(accounts, kept, strict=True)
            )
    except IntegrityError:
        # Another transaction posted this key first; ours rolled back to the savepoint, theirs stands.
        entry = JournalEntry.objects.get(key=key)
        _check_same_lines(entry, kept)
        return entry, False
    return entry, True


def _accounts_for(lines: Sequence[Line], currency: str) -> list[LedgerAccount]:
    """The account of each line, found in one query; missing ones are created, in (kind, owner, code) order
    so two entries creating the same new accounts wait for each other in one order."""
    wanted = {(str(line.kind), line.owner_id, line.code) for line in lines}
    match = Q()
    for kind, owner_id, code in wanted:
        owner = Q(owner_id=owner_id) if owner_id is not None else Q(owner__isnull=True)
        match |= Q(kind=kind, code=code) & owner
    found = {(a.kind, a.owner_id, a.code): a for a in LedgerAccount.objects.filter(match, currency=currency)}
    for kind, owner_id, code in sorted(
        wanted - set(found), key=lambda key: (key[0], str(key[1] or ""), key[2])
    ):
        found[(kind, owner_id, code)] = account_for(
            kind=AccountKind(kind), owner_id=owner_id, currency=currency, code=code
        )
    return [found[(str(line.kind), line.owner_id, line.code)] for line in lines]


def _check_same_lines(entry: JournalEntry, lines: Sequence[Line]) -> None:
    stored = sorted(
        (p.account.kind, str(p.account.owner_id), p.account.code, p.debit_minor, p.credit_minor)
        for p in entry.postings.select_related("account")
    )
    wanted = sorted(
        (str(line.kind.value), str(line.owner_id), line.code, line.debit_minor, line.credit_minor)
        for line in lines
    )
    if stored != wanted:
        raise Conflict(
            gettext("This ledger key was already used for a different movement of money."),
            code="ledger_key_conflict",
            details={"key": entry.key},
        )


def reverse_entry(*, entry_id: uuid.UUID, key: str, memo: str) -> tuple[JournalEntry, bool]:
    """Post the mirror image of an entry (corrections are new entries, never edits)."""
    original = JournalEntry.objects.get(id=entry_id)
    postings = list(original.postings.select_related("account"))
    currency = postings[0].account.currency
    lines = [
        Line(
            kind=AccountKind(p.account.kind),
            owner_id=p.account.owner_id,
            debit_minor=p.credit_minor,
            credit_minor=p.debit_minor,
            code=p.account.code,
        )
        for p in postings
    ]
    return post_entry(
        key=key,
        kind="reversal",
        currency=currency,
        lines=lines,
        memo=memo,
        trip_id=original.trip_id,
        reverses_id=original.id,
        metadata={"reverses_key": original.key, "reverses_kind": original.kind},
    )


def balance_minor(*, kind: AccountKind, owner_id: uuid.UUID | None, currency: str, code: str = "") -> int:
    """Signed balance in the account's normal direction (positive = what the kind normally holds).
    `code` picks one pass-through fee's account."""
    totals = Posting.objects.filter(
        account__kind=kind, account__owner_id=owner_id, account__currency=currency, account__code=code
    ).aggregate(d=Sum("debit_minor"), c=Sum("credit_minor"))
    debits, credits = totals["d"] or 0, totals["c"] or 0
    return debits - credits if kind in DEBIT_NORMAL_KINDS else credits - debits


# --- Verification: every entry balances, the journal balances, captures agree with it ----------------------

# The entry kinds a succeeded capture posts (backend/fares/payments.py): one per capture, under its key.
CAPTURE_ENTRY_KINDS = ("payment_capture", "refund_payout")


@dataclass(frozen=True)
class EntryImbalance:
    entry_id: uuid.UUID
    key: str
    debits: int
    credits: int
    postings: int
    currencies: int

    def describe(self) -> str:
        if self.postings == 0:
            return f"entry {self.key} ({self.entry_id}) has no postings"
        if self.currencies > 1:
            return f"entry {self.key} ({self.entry_id}) mixes {self.currencies} currencies"
        return (
            f"entry {self.key} ({self.entry_id}) does not balance: "
            f"debits {self.debits} != credits {self.credits}"
        )


@dataclass(frozen=True)
class CaptureMismatch:
    """A payment capture and the journal disagree: money collected twice, or collected and not recorded."""

    key: str
    capture_id: uuid.UUID | None
    status: str | None
    capture_minor: int | None
    posted_minor: int | None

    def describe(self) -> str:
        if self.capture_id is None:
            return f"capture entry {self.key} was posted with no payment capture behind it"
        if self.posted_minor is None:
            return f"capture {self.key} ({self.capture_id}) {self.status} but its entry was never posted"
        if self.status != CaptureStatus.SUCCEEDED:
            return f"capture {self.key} ({self.capture_id}) is {self.status} but its entry was posted"
        return (
            f"capture {self.key} ({self.capture_id}) collected {self.capture_minor} "
            f"but its entry posted {self.posted_minor}"
        )


@dataclass(frozen=True)
class LedgerVerification:
    checked_at: datetime
    entries: int
    postings: int
    accounts: int
    totals_by_currency: dict[str, tuple[int, int]]
    imbalances: list[EntryImbalance] = field(default_factory=list)
    capture_mismatches: list[CaptureMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.imbalances and not self.capture_mismatches and not self.unbalanced_currencies

    @property
    def unbalanced_currencies(self) -> list[str]:
        return sorted(cur for cur, (debits, credits) in self.totals_by_currency.items() if debits != credits)

    def problems(self) -> list[str]:
        found = [
            f"the journal does not balance in {cur}: debits {self.totals_by_currency[cur][0]} "
            f"!= credits {self.totals_by_currency[cur][1]}"
            for cur in self.unbalanced_currencies
        ]
        found += [imbalance.describe() for imbalance in self.imbalances]
        found += [mismatch.describe() for mismatch in self.capture_mismatches]
        return found

    def summary(self) -> str:
        totals = ", ".join(
            f"{cur} Dr {d} = Cr {c}" for cur, (d, c) in sorted(self.totals_by_currency.items())
        )
        return (
            f"{self.entries} entries, {self.postings} postings, {self.accounts} accounts checked; "
            f"{totals or 'no money recorded'}"
        )


def ledger_verify() -> LedgerVerification:
    """Check that every entry balances (and uses one currency, and has postings), that debits equal credits
    over the whole journal, per currency, and that payment captures agree with the journal: a succeeded
    capture posted its entry once, for the amount it collected, and no capture entry exists without a
    succeeded capture. (Balances are sums of postings, so there is no cached total to drift.)

    Runs in one REPEATABLE READ snapshot when called outside a transaction, so postings committed while it
    runs cannot show up half-seen."""
    if connection.in_atomic_block:
        return _verify_in_snapshot()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verify_in_snapshot()


def _verify_in_snapshot() -> LedgerVerification:
    entry_table = JournalEntry._meta.db_table
    posting_table = Posting._meta.db_table
    account_table = LedgerAccount._meta.db_table
    capture_table = PaymentCapture._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.id, e.key, COALESCE(SUM(p.debit_minor), 0), COALESCE(SUM(p.credit_minor), 0),
                   COUNT(p.id), COUNT(DISTINCT a.currency)
            FROM {entry_table} e
            LEFT JOIN {posting_table} p ON p.entry_id = e.id
            LEFT JOIN {account_table} a ON a.id = p.account_id
            GROUP BY e.id, e.key
            HAVING COALESCE(SUM(p.debit_minor), 0) <> COALESCE(SUM(p.credit_minor), 0)
                OR COUNT(p.id) = 0 OR COUNT(DISTINCT a.currency) > 1
            ORDER BY e.key
            """  # noqa: S608 - table names come from our own models, nothing from outside
        )
        imbalances = [EntryImbalance(*row) for row in cursor.fetchall()]
        # A capture entry has two lines of the same amount, so its debits are the amount collected.
        cursor.execute(
            f"""
            WITH posted AS (
                SELECT e.key, SUM(p.debit_minor) AS amount
                FROM {entry_table} e JOIN {posting_table} p ON p.entry_id = e.id
                WHERE e.kind = ANY(%s)
                GROUP BY e.key
            )
            SELECT COALESCE(c.key, posted.key), c.id, c.status, c.amount_minor, posted.amount
            FROM {capture_table} c FULL OUTER JOIN posted ON posted.key = c.key
            WHERE c.id IS NULL
               OR (c.status = %s AND (posted.key IS NULL OR posted.amount <> c.amount_minor))
               OR (c.status <> %s AND posted.key IS NOT NULL)
            ORDER BY 1
            """,  # noqa: S608
            [list(CAPTURE_ENTRY_KINDS), CaptureStatus.SUCCEEDED.value, CaptureStatus.SUCCEEDED.value],
        )
        capture_mismatches = [CaptureMismatch(*row) for row in cursor.fetchall()]
        cursor.execute(
            f"""
            SELECT a.currency, COALESCE(SUM(p.debit_minor), 0), COALESCE(SUM(p.credit_minor), 0)
            FROM {posting_table} p JOIN {account_table} a ON a.id = p.account_id
            GROUP BY a.currency
            """  # noqa: S608
        )
        totals = {currency: (int(debits), int(credits)) for currency, debits, credits in cursor.fetchall()}
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {entry_table}), (SELECT COUNT(*) FROM {posting_table}),"  # noqa: S608
            f" (SELECT COUNT(*) FROM {account_table})"
        )
        entries, postings, accounts = cursor.fetchone()
    return LedgerVerification(
        checked_at=timezone.now(),
        entries=entries,
        postings=postings,
        accounts=accounts,
        totals_by_currency=totals,
        imbalances=imbalances,
        capture_mismatches=capture_mismatches,
    )
