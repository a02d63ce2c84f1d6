"""The hash chain behind the tamper-evident audit log.

Pure Python, no Django. Each audit entry stores ``prev_hash`` (the previous entry's hash, or
``GENESIS_HASH`` for the first) and its own ``hash``::

    hash = sha256(canonical_json({"at": at, "kind": kind, "payload": payload,
                                  "prev_hash": prev_hash, "sequence": sequence})).hexdigest()

Canonical JSON, so that anyone can recompute a hash from the published log in any language:

- object keys sorted by code point, no whitespace (``,`` and ``:`` separators), UTF-8 bytes, non-ASCII
  characters written as themselves (not ``\\u`` escapes);
- datetimes must carry a time zone and are written in UTC as ISO 8601 with a ``Z`` suffix,
  microseconds included only when non-zero (``2026-11-21T14:03:00Z``, ``2026-11-21T14:03:00.250000Z``);
  dates as ``YYYY-MM-DD``;
- ``Decimal`` as its string (``"12.50"``: the scale is kept, so store the value you hash);
- UUIDs as their canonical string; tuples as lists; ``int``, ``str``, ``bool``, ``None`` as JSON;
  finite floats as Python's shortest round-trip repr (avoid them: NaN and infinities are refused);
- object keys must be strings; anything else raises ``TypeError``.

``verify_chain`` walks the entries in order and reports the first one that breaks the chain: an edited
field (its hash no longer matches), a deleted entry (a gap in the sequence numbers), an inserted or
reordered entry (a sequence number out of place, or a ``prev_hash`` that is not the previous hash).
A chain alone cannot reveal that its *last* entries were cut off, or that someone rewrote every hash
after an edit; pass ``expected_head`` (a head hash published or stored elsewhere, e.g. in each day's
signed checkpoint) and ``expected_count`` to catch those too.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "GENESIS_HASH",
    "ChainEntry",
    "ChainVerification",
    "canonical_json",
    "entry_hash",
    "verify_chain",
]

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainEntry:
    """One audit log row as the chain sees it."""

    sequence: int
    kind: str
    payload: Mapping[str, Any]
    at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainVerification:
    """``ok`` when every entry checks out; otherwise ``first_bad_sequence`` is the first sequence number
    that cannot be trusted (for a gap, the missing number) and ``reason`` says what is wrong. ``checked``
    counts the entries verified good before the first problem."""

    ok: bool
    checked: int
    first_bad_sequence: int | None
    reason: str | None


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"cannot hash a non-finite float: {value!r}")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"cannot hash a non-finite Decimal: {value!r}")
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(f"datetimes must carry a time zone: {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, got {key!r}")
            result[key] = _canonical(item)
        return result
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    raise TypeError(f"cannot hash a value of type {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (see the module doc)."""
    text = json.dumps(
        _canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def entry_hash(prev_hash: str, sequence: int, kind: str, payload: Mapping[str, Any], at: datetime) -> str:
    """The sha256 hex digest that chains an entry to ``prev_hash``."""
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        raise TypeError(f"sequence must be an integer, got {sequence!r}")
    document = {"at": at, "kind": kind, "payload": payload, "prev_hash": prev_hash, "sequence": sequence}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def verify_chain(
    entries: Iterable[ChainEntry],
    *,
    start_sequence: int = 1,
    start_hash: str = GENESIS_HASH,
    expected_head: str | None = None,
    expected_count: int | None = None,
) -> ChainVerification:
    """Check ``entries`` (in log order) form an unbroken chain from ``start_hash``.

    ``start_sequence``/``start_hash`` let a verifier resume from a trusted checkpoint instead of the
    genesis entry. ``expected_head`` and ``expected_count`` catch truncation of the newest entries.
    """
    expected_sequence = start_sequence
    previous_hash = start_hash
    checked = 0

    def bad(sequence: int, reason: str) -> ChainVerification:
        return ChainVerification(ok=False, checked=checked, first_bad_sequence=sequence, reason=reason)

    for entry in entries:
        if entry.sequence != expected_sequence:
            if entry.sequence > expected_sequence:
                missing = (
                    f"entry {expected_sequence} is missing"
                    if entry.sequence == expected_sequence + 1
                    else f"entries {expected_sequence} to {entry.sequence - 1} are missing"
                )
                return bad(expected_sequence, f"sequence gap: {missing} (found {entry.sequence})")
            return bad(
                expected_sequence,
                f"sequence out of order: expected {expected_sequence}, found {entry.sequence} "
                "(an entry was inserted, repeated or moved)",
            )
        if entry.prev_hash != previous_hash:
            return bad(
                entry.sequence,
                f"entry {entry.sequence} does not point at the previous entry's hash "
                "(an entry before it was replaced, inserted or moved)",
            )
        try:
            recomputed = entry_hash(entry.prev_hash, entry.sequence, entry.kind, entry.payload, entry.at)
        except TypeError as error:
            return bad(entry.sequence, f"entry {entry.sequence} cannot be hashed: {error}")
        if recomputed != entry.hash:
            return bad(
                entry.sequence,
                f"entry {entry.sequence} does not match its hash (its contents were altered)",
            )
        previous_hash = entry.hash
        expected_sequence += 1
        checked += 1

    if expected_count is not None and checked != expected_count:
        return bad(
            expected_sequence,
            f"expected {expected_count} entries but found {checked} (the newest entries were removed?)",
        )
    if expected_head is not None and previous_hash != expected_head:
        return bad(
            expected_sequence - 1 if checked else start_sequence,
            "the last entry's hash is not the expected head (entries were removed or rewritten)",
        )
    return ChainVerification(ok=True, checked=checked, first_bad_sequence=None, reason=None)
