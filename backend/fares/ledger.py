"""The double-entry ledger: the one way money is recorded.

Amounts are integer minor units. Entries are append-only (database triggers refuse UPDATE and DELETE on
accounts, entries and postings); a mistake is corrected by a new, reversing entry. Posting is idempotent by
`key`: posting the same key twice returns the first entry and records nothing more, even when two
transactions race (the unique index on `key` decides).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from backend.errors import Conflict
from backend.fares.models import (
    DEBIT_NORMAL_KINDS,
    AccountBalance,
    AccountKind,
    JournalEntry,
    LedgerAccount,
    Posting,
)


class UnbalancedEntry(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    """One side of an entry: `amount_minor` > 0 on the debit or the credit side of an account."""

    kind: AccountKind
    owner_id: uuid.UUID | None
    debit_minor: int = 0
    credit_minor: int = 0


def debit(kind: AccountKind, owner_id: uuid.UUID | None, amount_minor: int) -> Line:
    return Line(kind=kind, owner_id=owner_id, debit_minor=amount_minor)


def credit(kind: AccountKind, owner_id: uuid.UUID | None, amount_minor: int) -> Line:
    return Line(kind=kind, owner_id=owner_id, credit_minor=amount_minor)


def account_for(*, kind: AccountKind, owner_id: uuid.UUID | None, currency: str) -> LedgerAccount:
    account, created = LedgerAccount.objects.get_or_create(kind=kind, owner_id=owner_id, currency=currency)
    if created:
        AccountBalance.objects.get_or_create(account=account)
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
            _apply_to_balances(accounts, kept)
    except IntegrityError:
        # Another transaction posted this key first; ours rolled back to the savepoint, theirs stands.
        entry = JournalEntry.objects.get(key=key)
        _check_same_lines(entry, kept)
        return entry, False
    return entry, True


def _accounts_for(lines: Sequence[Line], currency: str) -> list[LedgerAccount]:
    """The account of each line, found in one query; missing ones are created (with their balance row)."""
    wanted = {(str(line.kind), line.owner_id) for line in lines}
    match = Q()
    for kind, owner_id in wanted:
        match |= Q(kind=kind, owner_id=owner_id) if owner_id is not None else Q(kind=kind, owner__isnull=True)
    found = {(a.kind, a.owner_id): a for a in LedgerAccount.objects.filter(match, currency=currency)}
    for kind, owner_id in wanted - set(found):
        found[(kind, owner_id)] = account_for(kind=AccountKind(kind), owner_id=owner_id, currency=currency)
    return [found[(str(line.kind), line.owner_id)] for line in lines]


def _apply_to_balances(accounts: Sequence[LedgerAccount], lines: Sequence[Line]) -> None:
    """Add the lines to the running totals, one UPDATE per account, in account-id order.

    A fixed lock order means two entries touching the same accounts (the co-op's revenue, a rider's
    receivable) wait for each other instead of deadlocking."""
    totals: dict[int, list[int]] = {}
    for account, line in zip(accounts, lines, strict=True):
        pair = totals.setdefault(account.pk, [0, 0])
        pair[0] += line.debit_minor
        pair[1] += line.credit_minor
    for pk in sorted(totals):
        debits, credits = totals[pk]
        updated = AccountBalance.objects.filter(account_id=pk).update(
            debit_total=F("debit_total") + debits, credit_total=F("credit_total") + credits
        )
        if not updated:  # a balance row lost somehow: rebuild it from the journal, which includes these lines
            sums = Posting.objects.filter(account_id=pk).aggregate(
                d=Sum("debit_minor"), c=Sum("credit_minor")
            )
            AccountBalance.objects.create(
                account_id=pk, debit_total=sums["d"] or 0, credit_total=sums["c"] or 0
            )


def _check_same_lines(entry: JournalEntry, lines: Sequence[Line]) -> None:
    stored = sorted(
        (p.account.kind, p.account.owner_id, p.debit_minor, p.credit_minor)
        for p in entry.postings.select_related("account")
    )
    wanted = sorted((line.kind.value, line.owner_id, line.debit_minor, line.credit_minor) for line in lines)
    if stored != [(str(k), o, d, c) for k, o, d, c in wanted]:
        raise Conflict(
            "This ledger key was already used for a different movement of money.",
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


def balance_minor(*, kind: AccountKind, owner_id: uuid.UUID | None, currency: str) -> int:
    """Signed balance in the account's normal direction (positive = what the kind normally holds)."""
    totals = Posting.objects.filter(
        account__kind=kind, account__owner_id=owner_id, account__currency=currency
    ).aggregate(d=Sum("debit_minor"), c=Sum("credit_minor"))
    debits, credits = totals["d"] or 0, totals["c"] or 0
    return debits - credits if kind in DEBIT_NORMAL_KINDS else credits - debits


# --- Verification: the journal is the truth; AccountBalance is a cache of it -------------------------------


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
class AccountDrift:
    account_id: int
    kind: str
    owner_id: uuid.UUID | None
    currency: str
    journal_debits: int
    journal_credits: int
    cached_debits: int | None
    cached_credits: int | None

    @property
    def account_name(self) -> str:
        return f"{self.kind}:{self.owner_id or 'coop'}:{self.currency} (#{self.account_id})"

    def describe(self) -> str:
        if self.cached_debits is None:
            return f"account {self.account_name} has no AccountBalance row"
        return (
            f"account {self.account_name} drifted: "
            f"journal Dr {self.journal_debits} Cr {self.journal_credits}, "
            f"AccountBalance Dr {self.cached_debits} Cr {self.cached_credits}"
        )


@dataclass(frozen=True)
class LedgerVerification:
    checked_at: datetime
    entries: int
    postings: int
    accounts: int
    totals_by_currency: dict[str, tuple[int, int]]
    imbalances: list[EntryImbalance] = field(default_factory=list)
    drifts: list[AccountDrift] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.imbalances and not self.drifts and not self.unbalanced_currencies

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
        found += [drift.describe() for drift in self.drifts]
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
    """Rebuild every account's totals from the journal and compare them with AccountBalance; check that
    every entry balances (and uses one currency) and that debits equal credits overall, per currency.

    Runs in one REPEATABLE READ snapshot when called outside a transaction, so postings committed while it
    runs cannot show up as drift."""
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
    balance_table = AccountBalance._meta.db_table
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
        cursor.execute(
            f"""
            SELECT a.id, a.kind, a.owner_id, a.currency, COALESCE(j.debits, 0), COALESCE(j.credits, 0),
                   b.debit_total, b.credit_total
            FROM {account_table} a
            LEFT JOIN (
                SELECT account_id, SUM(debit_minor) AS debits, SUM(credit_minor) AS credits
                FROM {posting_table} GROUP BY account_id
            ) j ON j.account_id = a.id
            LEFT JOIN {balance_table} b ON b.account_id = a.id
            WHERE b.account_id IS NULL
               OR COALESCE(j.debits, 0) <> b.debit_total OR COALESCE(j.credits, 0) <> b.credit_total
            ORDER BY a.id
            """  # noqa: S608
        )
        drifts = [AccountDrift(*row) for row in cursor.fetchall()]
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
        drifts=drifts,
    )
