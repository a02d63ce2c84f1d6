"""The double-entry ledger: the one way money is recorded.

Amounts are integer minor units. Entries are append-only (database triggers refuse UPDATE and DELETE on
accounts, entries and postings); a mistake is corrected by a new, reversing entry. Posting is idempotent by
`key`: posting the same key twice returns the first entry and records nothing more, even when two
transactions race (the unique index on `key` decides).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

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
            for line in kept:
                account = account_for(kind=line.kind, owner_id=line.owner_id, currency=currency)
                Posting.objects.create(
                    entry=entry, account=account, debit_minor=line.debit_minor, credit_minor=line.credit_minor
                )
                AccountBalance.objects.filter(account=account).update(
                    debit_total=F("debit_total") + line.debit_minor,
                    credit_total=F("credit_total") + line.credit_minor,
                )
    except IntegrityError:
        # Another transaction posted this key first; ours rolled back to the savepoint, theirs stands.
        entry = JournalEntry.objects.get(key=key)
        _check_same_lines(entry, kept)
        return entry, False
    return entry, True


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
    )


def balance_minor(*, kind: AccountKind, owner_id: uuid.UUID | None, currency: str) -> int:
    """Signed balance in the account's normal direction (positive = what the kind normally holds)."""
    totals = Posting.objects.filter(
        account__kind=kind, account__owner_id=owner_id, account__currency=currency
    ).aggregate(d=Sum("debit_minor"), c=Sum("credit_minor"))
    debits, credits = totals["d"] or 0, totals["c"] or 0
    return debits - credits if kind in DEBIT_NORMAL_KINDS else credits - debits
