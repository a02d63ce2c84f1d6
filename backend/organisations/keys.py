"""The shape of an organisation's API key, and the one way it is hashed.

A key reads `rk_<prefix>_<secret>`: `prefix` (12 hex characters) names the row and may be shown (the admin,
logs, the throttle); `secret` is `secrets.token_urlsafe(32)`, about 256 random bits. Only the prefix and the
SHA-256 of the whole key are stored: the key itself exists once, in the answer that made it. A fast hash is
enough here (unlike a password): the secret is random and long, so there is nothing to guess a dictionary
of.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_TAG = "rk"
PREFIX_BYTES = 6  # 12 hex characters: unique enough to find the row, short enough to show
SECRET_BYTES = 32
_KEY = re.compile(r"^rk_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,128})$")


@dataclass(frozen=True)
class KeyMaterial:
    plaintext: str
    prefix: str
    key_hash: str


def api_key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_generate() -> KeyMaterial:
    prefix = secrets.token_hex(PREFIX_BYTES)
    plaintext = f"{KEY_TAG}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return KeyMaterial(plaintext=plaintext, prefix=prefix, key_hash=api_key_hash(plaintext))


def api_key_prefix(plaintext: str) -> str | None:
    """The prefix of a well-formed key; None for anything else."""
    match = _KEY.match(plaintext)
    return match.group(1) if match else None


def api_key_matches(plaintext: str, key_hash: str) -> bool:
    """Whether the key is the one stored as `key_hash`, compared in constant time."""
    return hmac.compare_digest(api_key_hash(plaintext), key_hash)
