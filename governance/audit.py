"""The tamper-evident audit log: append (serialised, hash-chained) and verify.

Every governance act appends one entry inside the transaction that performs the act, so an act is never
recorded without its entry nor the other way round. Appends lock the single ``AuditHead`` row
(``SELECT ... FOR UPDATE``): concurrent acts take their turn, and each entry points at the hash of the one
committed before it, so the chain cannot fork. The entries table refuses UPDATE and DELETE (pgtrigger);
an attacker who gets around that (a superuser disabling the trigger) is caught by ``audit_verify``.

**Lock order.** Every act that appends here holds the head until it commits, so the head is the last lock
an act takes. Governance acts take their locks in one order, the governance part of the ledger's
(backend/fares/ledger.py: a trip's money transaction locks the trip, then the driver's member row):

1. member rows, in id order, ``FOR NO KEY UPDATE`` to change a member (share withholding, suspension,
   withdrawal, seating; the count locks its candidates). That mode never waits for the ``FOR KEY SHARE``
   which inserting a row that references a member takes (votes, ballots, voter rolls, candidacies,
   dividend statements), so those inserts need no place in the order;
2. the proposal or the election row, ``FOR UPDATE`` (a vote or a decision; a nomination, a ballot, the
   count);
3. board seats (ending one, adding one);
4. ledger rows, insert only (the entry keys and accounts an act posts);
5. last, the audit head: an act's entries are appended at its end, after every other write
   (``AuditEvent`` collects them where the act does each thing; ``audit_append_all`` writes them in order).

Every wait then points forward along one order and no cycle can close. Before it, the count held the head
while it waited for a winner's member row that a withdrawal held while waiting for the head, and a deciding
dividend vote held the head while it waited for a withdrawing director's row, or for the surplus account
the withdrawal was opening (tests/governance/test_lock_order.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from governance.audit_chain import (
    GENESIS_HASH,
    ChainEntry,
    ChainVerification,
    canonical_json,
    entry_hash,
    verify_chain,
)
from governance.models import AuditEntry, AuditHead


def _json_native(payload: Mapping[str, Any]) -> dict[str, Any]:
    # What is hashed must be exactly what the JSON column gives back, so hash the stored (native) form.
    return json.loads(canonical_json(payload))


def audit_append(*, kind: str, payload: Mapping[str, Any]) -> AuditEntry:
    """Append one entry after the current head; must run inside the act's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_append must run inside the transaction of the act it records")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO governance_audithead (id, sequence, hash) VALUES (1, 0, %s) "
            "ON CONFLICT (id) DO NOTHING",
            [GENESIS_HASH],
        )
    head = AuditHead.objects.select_for_update().get(id=1)
    stored = _json_native(payload)
    # Microseconds are kept: PostgreSQL stores them exactly, so the hash recomputes from the row.
    at = timezone.now()
    sequence = head.sequence + 1
    digest = entry_hash(head.hash, sequence, kind, stored, at)
    entry = AuditEntry.objects.create(
        sequence=sequence, kind=kind, payload=stored, at=at, prev_hash=head.hash, hash=digest
    )
    AuditHead.objects.filter(id=1).update(sequence=sequence, hash=digest)
    return entry


@dataclass(frozen=True)
class AuditEvent:
    """An entry an act will append: built where the act is done, appended at the act's end (the lock
    order above)."""

    kind: str
    payload: Mapping[str, Any]


def audit_append_all(events: Iterable[AuditEvent]) -> list[AuditEntry]:
    """Append the act's entries in order; the last write of the act's transaction."""
    return [audit_append(kind=event.kind, payload=event.payload) for event in events]


def chain_entries(up_to_sequence: int | None = None) -> Iterator[ChainEntry]:
    """The stored chain in order, streamed; up to and including `up_to_sequence` when given (a published
    head is checked against the chain as far as it reached, governance/audit_head.py)."""
    rows = AuditEntry.objects.order_by("sequence")
    if up_to_sequence is not None:
        rows = rows.filter(sequence__lte=up_to_sequence)
    for row in rows.iterator(chunk_size=2000):
        yield ChainEntry(
            sequence=row.sequence,
            kind=row.kind,
            payload=row.payload,
            at=row.at,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


def audit_verify() -> ChainVerification:
    """Recompute the whole chain from the genesis hash and compare its end with the stored head."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            # One snapshot for the head and the entries, so a concurrent append is not taken for tampering.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = AuditHead.objects.filter(id=1).first()
        expected_head = head.hash if head else GENESIS_HASH
        expected_count = head.sequence if head else 0
        return verify_chain(chain_entries(), expected_head=expected_head, expected_count=expected_count)


def audit_head() -> dict[str, Any]:
    head = AuditHead.objects.filter(id=1).first()
    return {"sequence": head.sequence if head else 0, "hash": head.hash if head else GENESIS_HASH}
