"""The audit chain's head, signed, for staff to publish (docs/operations.md, "Backups and restore").

``audit_verify`` recomputes the chain from the database alone, so someone who can write to the database
(a superuser who switches the append-only triggers off) can edit an entry, recompute every later hash and
the head, and the chain verifies again. A head published *outside* the database closes that gap: once a
signed file saying "entry N has hash H" is in members' hands, a rewritten chain no longer reaches H at N.

The file (``audit-head-<sequence>-<UTC time>.json``)::

    {"head": {"format": "rochdale-audit-head/1", "sequence": N, "hash": H, "count": C,
              "exported_at": "2026-12-01T23:00:00Z", "key_id": K},
     "signature": "<base64 Ed25519 signature of canonical_json(head)>"}

``canonical_json`` is the chain's own (governance/audit_chain.py), so anyone can check a head in any
language with the public key alone. ``key_id`` is the sha256 of the raw public key, to tell keys apart
after a rotation. The private key is ``ROCHDALE_AUDIT_HEAD_KEY_FILE`` (PKCS#8 PEM, mode 0600, made on
first use, as the VAPID key is); its public half is written beside the heads as
``audit-head-signing-key.pub.pem`` for publishing once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import connection, transaction

from backend.files import create_once, write_atomically
from governance.audit import chain_entries
from governance.audit_chain import GENESIS_HASH, canonical_json, verify_chain
from governance.models import AuditEntry, AuditHead

__all__ = [
    "HEAD_FORMAT",
    "PUBLIC_KEY_FILE_NAME",
    "HeadCheck",
    "audit_head_export",
    "audit_head_sign",
    "audit_head_verify",
    "public_key_load",
    "signing_key",
    "signing_key_file_ensure",
]

HEAD_FORMAT = "rochdale-audit-head/1"
PUBLIC_KEY_FILE_NAME = "audit-head-signing-key.pub.pem"

logger = logging.getLogger(__name__)


def _key_file() -> Path:
    return Path(settings.ROCHDALE_AUDIT_HEAD_KEY_FILE)


def signing_key_file_ensure() -> tuple[Path, bool]:
    """The private key file, generated when missing; (its path, whether it was made now)."""
    path = _key_file()
    if path.exists():
        return path, False
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    made = create_once(path, pem, mode=0o600)
    if made:
        logger.warning("generated the audit head signing key in %s (back it up with the database)", path)
    return path, made


def signing_key() -> Ed25519PrivateKey:
    path, _made = signing_key_file_ensure()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_load(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key but a {type(key).__name__}")
    return key


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _current_head() -> dict[str, Any]:
    """The head row and the entry count, seen in one snapshot (a concurrent append cannot land between)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = AuditHead.objects.filter(id=1).first()
        return {
            "sequence": head.sequence if head else 0,
            "hash": head.hash if head else GENESIS_HASH,
            "count": AuditEntry.objects.count(),
        }


def audit_head_sign(head: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed document for ``head`` (the fields of the module doc but ``key_id``, which is added)."""
    document = dict(head)
    document["key_id"] = _key_id(key.public_key())
    signature = key.sign(canonical_json(document))
    return {"head": document, "signature": base64.b64encode(signature).decode()}


def _newest_export(directory: Path) -> dict[str, Any] | None:
    newest: tuple[str, dict[str, Any]] | None = None
    for path in directory.glob("audit-head-*.json"):
        try:
            head = json.loads(path.read_text())["head"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or damaged: it cannot stand for the last export
        exported_at = str(head.get("exported_at", ""))
        if newest is None or exported_at > newest[0]:
            newest = (exported_at, head)
    return newest[1] if newest else None


def audit_head_export(
    out: Path | None = None, *, only_if_moved: bool = False, now: datetime | None = None
) -> Path | None:
    """Sign the current head and write it to ``out`` (a file, or a directory to name it in;
    ``ROCHDALE_AUDIT_HEAD_DIR`` by default). With ``only_if_moved`` (the hourly beat job) nothing is
    written while the head is the one last exported there, so a quiet co-op does not pile up copies;
    returns the path written, or None."""
    head = _current_head()
    directory = out if out is not None and (out.is_dir() or str(out).endswith("/")) else None
    if out is None:
        directory = Path(settings.ROCHDALE_AUDIT_HEAD_DIR)
    if only_if_moved and directory is not None and directory.is_dir():
        last = _newest_export(directory)
        if last is not None and (last.get("sequence"), last.get("hash")) == (head["sequence"], head["hash"]):
            return None
    exported_at = now or datetime.now(UTC)
    key = signing_key()
    signed = audit_head_sign(
        {"format": HEAD_FORMAT, **head, "exported_at": _utc_text(exported_at)},
        key,
    )
    if directory is not None:
        path = directory / f"audit-head-{head['sequence']}-{exported_at.astimezone(UTC):%Y%m%dT%H%M%SZ}.json"
    else:
        assert out is not None
        path = out
    # Heads are made to be published: readable by all (0644), unlike the key.
    write_atomically(path, (json.dumps(signed, indent=2, sort_keys=True) + "\n").encode(), mode=0o644)
    create_once(path.parent / PUBLIC_KEY_FILE_NAME, _public_pem(key.public_key()), mode=0o644)
    return path


@dataclass(frozen=True)
class HeadCheck:
    """What ``audit_head_verify`` found: ``ok`` when the signature holds and the database's chain, from
    genesis, reaches the signed hash at the signed sequence. ``database_sequence`` is the database's
    head now (later entries are normal: the chain grew since the export)."""

    ok: bool
    sequence: int
    hash: str
    database_sequence: int
    reason: str | None


def audit_head_verify(document: Mapping[str, Any], public_key: Ed25519PublicKey | None = None) -> HeadCheck:
    """Check a signed head (the parsed file) against ``public_key`` (by default the public half of
    ``ROCHDALE_AUDIT_HEAD_KEY_FILE``, which must then exist) and the database: the chain's first
    ``sequence`` entries must recompute from genesis to the signed hash."""
    if public_key is None:
        if not _key_file().exists():
            raise FileNotFoundError(f"{_key_file()} does not exist: give the published public key instead")
        public_key = signing_key().public_key()
    key = public_key
    try:
        head = dict(document["head"])
        signature = base64.b64decode(document["signature"], validate=True)
        sequence, expected_hash = int(head["sequence"]), str(head["hash"])
    except (KeyError, TypeError, ValueError) as error:
        return HeadCheck(False, 0, "", _current_head()["sequence"], f"not a signed audit head: {error}")
    database_sequence = _current_head()["sequence"]

    def failed(reason: str) -> HeadCheck:
        return HeadCheck(False, sequence, expected_hash, database_sequence, reason)

    if head.get("format") != HEAD_FORMAT:
        return failed(f"unknown format {head.get('format')!r} (expected {HEAD_FORMAT})")
    try:
        key.verify(signature, canonical_json(head))
    except InvalidSignature:
        return failed(
            "the signature does not verify with this public key "
            f"(the head names key {head.get('key_id')}, this key is {_key_id(key)})"
        )
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        stored = AuditEntry.objects.filter(sequence=sequence).values_list("hash", flat=True).first()
        if sequence > 0 and stored is None:
            return failed(f"the database has no entry {sequence}: the chain was cut back")
        if sequence > 0 and stored != expected_hash:
            return failed(
                f"entry {sequence} has hash {stored} in the database, not the signed {expected_hash}: "
                "the chain was rewritten since this head was exported"
            )
        chain = verify_chain(chain_entries(sequence), expected_head=expected_hash, expected_count=sequence)
    if not chain.ok:
        return failed(
            f"the chain up to entry {sequence} is broken at {chain.first_bad_sequence}: {chain.reason}"
        )
    return HeadCheck(True, sequence, expected_hash, database_sequence, None)
