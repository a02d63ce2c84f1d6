"""The audit chain's signed head: exported for publishing, checked against the database later. Someone who
rewrites an entry and recomputes every hash after it fools `audit_verify`, not a head published before."""

from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection

from governance import services
from governance.audit_chain import entry_hash
from governance.audit_head import HEAD_FORMAT, PUBLIC_KEY_FILE_NAME, audit_head_export
from governance.models import AuditEntry, AuditHead
from governance.tasks import export_audit_head
from tests.factories import DriverFactory
from tests.operations.coop_history import coop_history


@pytest.fixture
def head_settings(settings, tmp_path: Path):
    settings.ROCHDALE_AUDIT_HEAD_KEY_FILE = str(tmp_path / "keys" / "audit_head.pem")
    settings.ROCHDALE_AUDIT_HEAD_DIR = tmp_path / "heads"
    return settings


def _verify(head_file: Path, *extra: str) -> str:
    out = StringIO()
    call_command("audit_head_verify", str(head_file), *extra, stdout=out)
    return out.getvalue()


def _rewrite_chain_from(sequence: int, payload_change: dict) -> None:
    """What a database superuser could do: switch the append-only trigger off, edit one entry, recompute
    its hash and every later one, and move the head, so the chain is whole again."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditentry DISABLE TRIGGER ALL")
    previous = AuditEntry.objects.get(sequence=sequence - 1).hash if sequence > 1 else "0" * 64
    for entry in AuditEntry.objects.filter(sequence__gte=sequence).order_by("sequence"):
        payload = {**entry.payload, **payload_change} if entry.sequence == sequence else entry.payload
        digest = entry_hash(previous, entry.sequence, entry.kind, payload, entry.at)
        AuditEntry.objects.filter(sequence=entry.sequence).update(
            payload=payload, prev_hash=previous, hash=digest
        )
        previous = digest
    AuditHead.objects.filter(id=1).update(hash=previous)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditentry ENABLE TRIGGER ALL")


@pytest.mark.django_db
def test_a_rewritten_and_recomputed_chain_passes_audit_verify_but_not_the_published_head(head_settings):
    coop_history(members=3, directors=1, trips_per_member=0)
    call_command("audit_head_export")
    (head_file,) = head_settings.ROCHDALE_AUDIT_HEAD_DIR.glob("audit-head-*.json")
    public_key = head_file.parent / PUBLIC_KEY_FILE_NAME
    assert "audit head OK: entry 4" in _verify(head_file, "--public-key", str(public_key))

    _rewrite_chain_from(2, {"share_price": {"amount": 1, "currency": "USD"}})
    assert AuditEntry.objects.get(sequence=2).payload["share_price"]["amount"] == 1
    call_command("audit_verify")  # the database alone cannot tell: the rewritten chain is whole

    with pytest.raises(CommandError, match=r"entry 4 has hash .* not the signed .*rewritten"):
        _verify(head_file, "--public-key", str(public_key))


@pytest.mark.django_db
def test_a_head_still_verifies_as_the_chain_grows_but_not_once_it_is_cut_back(head_settings):
    coop_history(members=2, directors=0, trips_per_member=0)
    head_file = audit_head_export()
    assert head_file is not None
    services.membership_join(user=DriverFactory())  # entry 3, after the export
    assert "the database's head is now entry 3" in _verify(head_file)

    # Cut the chain back to one entry (and the head with it): the published entry 2 is gone.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditentry DISABLE TRIGGER ALL")
        cursor.execute("DELETE FROM governance_auditentry WHERE sequence > 1")
        cursor.execute("ALTER TABLE governance_auditentry ENABLE TRIGGER ALL")
    first = AuditEntry.objects.get(sequence=1)
    AuditHead.objects.filter(id=1).update(sequence=1, hash=first.hash)
    call_command("audit_verify")
    with pytest.raises(CommandError, match="has no entry 2: the chain was cut back"):
        _verify(head_file)


@pytest.mark.django_db
def test_a_head_edited_after_signing_or_checked_with_another_key_is_refused(head_settings, tmp_path: Path):
    coop_history(members=1, directors=0, trips_per_member=0)
    head_file = audit_head_export(tmp_path / "head.json")
    assert head_file is not None
    document = json.loads(head_file.read_text())

    forged = tmp_path / "forged.json"
    document["head"]["count"] = 99
    forged.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="signature does not verify"):
        _verify(forged)

    stranger = tmp_path / "stranger.pub.pem"
    stranger.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(CommandError, match="signature does not verify with this public key"):
        _verify(head_file, "--public-key", str(stranger))


@pytest.mark.django_db
def test_the_hourly_export_writes_a_signed_head_only_when_it_moved(head_settings):
    coop_history(members=2, directors=0, trips_per_member=0)
    key_file = Path(head_settings.ROCHDALE_AUDIT_HEAD_KEY_FILE)
    assert not key_file.exists()

    written = export_audit_head.apply().get()
    assert written is not None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # made on first use, private
    document = json.loads(Path(written).read_text())
    head = AuditHead.objects.get(id=1)
    assert document["head"]["format"] == HEAD_FORMAT
    assert (document["head"]["sequence"], document["head"]["hash"]) == (head.sequence, head.hash)
    assert document["head"]["count"] == AuditEntry.objects.count() == 2
    assert document["head"]["exported_at"].endswith("Z")
    assert stat.S_IMODE(Path(written).stat().st_mode) == 0o644  # to be published

    assert export_audit_head.apply().get() is None  # the head has not moved
    services.membership_join(user=DriverFactory())
    moved = export_audit_head.apply().get()
    assert moved is not None and json.loads(Path(moved).read_text())["head"]["sequence"] == 3
    assert len(list(head_settings.ROCHDALE_AUDIT_HEAD_DIR.glob("audit-head-*.json"))) == 2
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # the same key, kept
