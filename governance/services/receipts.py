"""Voting receipts, shared by proposal votes and election ballots: the voter keeps the receipt, the
database keeps only its SHA-256, which links the record that a member voted to the vote itself."""

from __future__ import annotations

import hashlib
import secrets


def receipt_hash(receipt: str) -> str:
    """The hash stored (and written in the audit log) for a voter's receipt."""
    return hashlib.sha256(receipt.encode()).hexdigest()


def receipt_new() -> tuple[str, str]:
    """A fresh receipt for the voter and the hash the database keeps (the receipt itself is never stored)."""
    receipt = secrets.token_urlsafe(18)
    return receipt, receipt_hash(receipt)
