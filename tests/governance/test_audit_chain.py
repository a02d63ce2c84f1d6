"""The audit hash chain: canonical JSON, and detection of every edit, deletion, insertion and reorder."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.audit_chain import (
    GENESIS_HASH,
    ChainEntry,
    canonical_json,
    entry_hash,
    verify_chain,
)

T0 = datetime(2026, 11, 21, 14, 3, tzinfo=UTC)


def build_chain(records: list[tuple[str, dict, datetime]], start_sequence: int = 1) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    previous = GENESIS_HASH
    for offset, (kind, payload, at) in enumerate(records):
        sequence = start_sequence + offset
        digest = entry_hash(previous, sequence, kind, payload, at)
        entries.append(ChainEntry(sequence, kind, payload, at, previous, digest))
        previous = digest
    return entries


SAMPLE = build_chain(
    [
        ("member.joined", {"member_id": "m-1", "share_price": Decimal("50.00")}, T0),
        ("proposal.opened", {"proposal_id": "p-1", "kind": "fare_policy"}, T0 + timedelta(minutes=1)),
        ("vote.cast", {"proposal_id": "p-1", "receipt": "r-1"}, T0 + timedelta(minutes=2)),
        ("proposal.passed", {"proposal_id": "p-1", "yes": 4, "no": 1}, T0 + timedelta(minutes=3)),
    ]
)


def test_canonical_json_is_sorted_compact_utf8_with_utc_datetimes_and_decimal_strings() -> None:
    value = {
        "b": [Decimal("12.50"), 3, None, True],
        "a": datetime(2026, 11, 21, 9, 3, tzinfo=timezone(timedelta(hours=-5))),
        "ü": "Zürich",
        "d": date(2026, 1, 2),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "t": (1, 2),
    }
    assert (
        canonical_json(value)
        == (
            '{"a":"2026-11-21T14:03:00Z","b":["12.50",3,null,true],"d":"2026-01-02",'
            '"id":"12345678-1234-5678-1234-567812345678","t":[1,2],"ü":"Zürich"}'
        ).encode()
    )
    assert canonical_json({"at": T0.replace(microsecond=250000)}) == b'{"at":"2026-11-21T14:03:00.250000Z"}'


@pytest.mark.parametrize(
    "value",
    [
        {"at": datetime(2026, 1, 1)},  # no time zone
        {1: "non-string key"},
        {"x": float("nan")},
        {"x": Decimal("Infinity")},
        {"x": object()},
    ],
)
def test_canonical_json_refuses_ambiguous_values(value: dict) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


def test_entry_hash_is_sha256_of_the_canonical_document() -> None:
    payload = {"n": 1}
    document = (
        '{"at":"2026-11-21T14:03:00Z","kind":"k","payload":{"n":1},'
        f'"prev_hash":"{GENESIS_HASH}","sequence":1}}'
    )
    assert entry_hash(GENESIS_HASH, 1, "k", payload, T0) == hashlib.sha256(document.encode()).hexdigest()
    # The same instant in another zone hashes the same.
    same_instant = T0.astimezone(timezone(timedelta(hours=2)))
    assert entry_hash(GENESIS_HASH, 1, "k", payload, same_instant) == entry_hash(
        GENESIS_HASH, 1, "k", payload, T0
    )


def test_intact_chain_verifies() -> None:
    result = verify_chain(SAMPLE)
    assert result.ok and result.checked == 4
    assert result.first_bad_sequence is None and result.reason is None
    assert verify_chain([]).ok
    assert verify_chain(SAMPLE, expected_head=SAMPLE[-1].hash, expected_count=4).ok


def test_edited_payload_is_detected() -> None:
    tampered = list(SAMPLE)
    tampered[3] = dataclasses.replace(tampered[3], payload={"proposal_id": "p-1", "yes": 1, "no": 4})
    result = verify_chain(tampered)
    assert not result.ok and result.first_bad_sequence == 4 and result.checked == 3
    assert "contents were altered" in (result.reason or "")


def test_deleted_entry_is_detected_as_a_gap() -> None:
    result = verify_chain(SAMPLE[:1] + SAMPLE[2:])
    assert not result.ok and result.first_bad_sequence == 2 and result.checked == 1
    assert "entry 2 is missing" in (result.reason or "")


def test_reordered_entries_are_detected() -> None:
    result = verify_chain([SAMPLE[0], SAMPLE[2], SAMPLE[1], SAMPLE[3]])
    assert not result.ok and result.first_bad_sequence == 2


def test_inserted_entry_is_detected_even_when_renumbered_and_rehashed_locally() -> None:
    forged = dataclasses.replace(SAMPLE[1], kind="vote.cast", payload={"receipt": "forged"})
    forged = dataclasses.replace(
        forged, hash=entry_hash(forged.prev_hash, forged.sequence, forged.kind, forged.payload, forged.at)
    )
    result = verify_chain([SAMPLE[0], forged, *SAMPLE[1:]])
    assert not result.ok and result.first_bad_sequence == 3  # SAMPLE[1] (seq 2) now sits where 3 belongs


def test_truncated_tail_is_caught_only_against_an_anchor() -> None:
    assert verify_chain(SAMPLE[:3]).ok
    result = verify_chain(SAMPLE[:3], expected_head=SAMPLE[-1].hash)
    assert not result.ok and result.first_bad_sequence == 3
    result = verify_chain(SAMPLE[:3], expected_count=4)
    assert not result.ok and result.first_bad_sequence == 4


def test_verification_can_resume_from_a_checkpoint() -> None:
    tail = SAMPLE[2:]
    assert verify_chain(tail, start_sequence=3, start_hash=SAMPLE[1].hash).ok
    assert not verify_chain(tail).ok


payload_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=5,
)
payloads = st.dictionaries(st.text(min_size=1, max_size=6), payload_values, min_size=1, max_size=4)
records = st.lists(
    st.tuples(
        st.sampled_from(["member.joined", "vote.cast", "proposal.passed", "dividend.allocated"]),
        payloads,
        st.integers(0, 10**6).map(lambda seconds: T0 + timedelta(seconds=seconds)),
    ),
    min_size=2,
    max_size=8,
)


def mutate(entry: ChainEntry, field: str) -> ChainEntry:
    if field == "sequence":
        return dataclasses.replace(entry, sequence=entry.sequence + 1)
    if field == "kind":
        return dataclasses.replace(entry, kind=entry.kind + "x")
    if field == "payload.change":
        key = sorted(entry.payload)[0]
        changed = "changed" if entry.payload[key] != "changed" else "changed again"
        return dataclasses.replace(entry, payload={**entry.payload, key: changed})
    if field == "payload.add":
        return dataclasses.replace(entry, payload={**entry.payload, "~added~": 1})
    if field == "payload.remove":
        key = sorted(entry.payload)[0]
        return dataclasses.replace(entry, payload={k: v for k, v in entry.payload.items() if k != key})
    if field == "at":
        return dataclasses.replace(entry, at=entry.at + timedelta(microseconds=1))
    if field == "prev_hash":
        return dataclasses.replace(entry, prev_hash=hashlib.sha256(entry.prev_hash.encode()).hexdigest())
    assert field == "hash"
    return dataclasses.replace(entry, hash=hashlib.sha256(entry.hash.encode()).hexdigest())


FIELDS = ["sequence", "kind", "payload.change", "payload.add", "payload.remove", "at", "prev_hash", "hash"]


@settings(max_examples=100, deadline=None)
@given(records=records, data=st.data())
def test_every_single_field_tamper_is_detected(records: list, data: st.DataObject) -> None:
    chain = build_chain(records)
    assert verify_chain(chain).ok
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(FIELDS))
    tampered = list(chain)
    tampered[index] = mutate(chain[index], field)

    result = verify_chain(tampered, expected_head=chain[-1].hash)
    assert not result.ok
    assert result.first_bad_sequence == chain[index].sequence
    assert result.checked == index


@settings(max_examples=100, deadline=None)
@given(records=records, data=st.data())
def test_every_deletion_is_detected(records: list, data: st.DataObject) -> None:
    chain = build_chain(records)
    index = data.draw(st.integers(0, len(chain) - 1))
    shortened = chain[:index] + chain[index + 1 :]

    result = verify_chain(shortened, expected_head=chain[-1].hash, expected_count=len(chain))
    assert not result.ok
    assert result.first_bad_sequence == chain[index].sequence


@settings(max_examples=100, deadline=None)
@given(records=records, data=st.data())
def test_every_reorder_is_detected(records: list, data: st.DataObject) -> None:
    chain = build_chain(records)
    order = data.draw(st.permutations(range(len(chain))))
    if list(order) == sorted(order):
        return
    reordered = [chain[i] for i in order]

    result = verify_chain(reordered)
    assert not result.ok
    first_moved = next(position for position, i in enumerate(order) if i != position)
    assert result.first_bad_sequence == chain[first_moved].sequence
