"""Web Push with VAPID (RFC 8030, 8291, 8292) through pywebpush: to the portal and any web app.

A browser subscribes with the co-op's VAPID public key (`GET /api/v1/me/push/vapid-public-key`) and gives
the page an endpoint (its push service's address for it) and two keys; `POST /api/v1/me/push-subscriptions`
keeps them. To send, pywebpush encrypts the JSON payload (`aes128gcm`) to the browser's keys and signs a
VAPID JWT (ES256: `aud` the endpoint's origin, `exp` 12 hours on, `sub` `ROCHDALE_VAPID_SUBJECT`), and POSTs
it to the endpoint. The push service answers 201; 404 or 410 means the browser dropped the subscription, so
it is deleted; 429 and 5xx are retried; other refusals are permanent.

The key: `ROCHDALE_VAPID_PRIVATE_KEY` (a PEM, or the raw key base64url-encoded) when set; otherwise a P-256
key generated on first use into `ROCHDALE_VAPID_KEY_FILE` (default var/vapid_private.pem, mode 600) and
kept there, or ahead of time with `manage.py vapid_keys`. Changing the key orphans every subscription
(browsers bind one to the key they subscribed with).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from backend.notifications.channels import ChannelError, TargetGone
from backend.notifications.models import PushSubscription

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0
GONE_STATUSES = (404, 410)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key_file() -> Path:
    return Path(
        getattr(settings, "ROCHDALE_VAPID_KEY_FILE", "") or settings.BASE_DIR / "var" / "vapid_private.pem"
    )


def vapid_key_file_ensure() -> tuple[Path, bool]:
    """The key file, generated when missing; (its path, whether it was made now). Two processes making it at
    once both end up with the one that was linked first (the file is created whole or not at all)."""
    path = _key_file()
    if path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=".vapid-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, pem)
        os.close(handle)
        try:
            os.link(scratch, path)
        except FileExistsError:
            return path, False
    finally:
        os.unlink(scratch)
    logger.warning(
        "generated a VAPID key in %s (set ROCHDALE_VAPID_PRIVATE_KEY to keep one of your own)", path
    )
    return path, True


def vapid_key() -> Vapid:
    """The co-op's VAPID signing key (from the setting, else the key file, made on first use)."""
    configured = (getattr(settings, "ROCHDALE_VAPID_PRIVATE_KEY", "") or "").strip()
    try:
        if configured.startswith("-----BEGIN"):
            return Vapid.from_pem(configured.encode())
        if configured:
            return Vapid.from_string(private_key=configured)
        path, _made = vapid_key_file_ensure()
        return Vapid.from_pem(path.read_bytes())
    except (ValueError, TypeError, OSError) as exc:  # a malformed key: nothing can be signed with it
        raise ChannelError(f"web push: the VAPID key cannot be read: {exc}", permanent=True) from exc


def vapid_public_key() -> str:
    """The applicationServerKey browsers subscribe with: the uncompressed P-256 point, base64url."""
    public = vapid_key().public_key
    return _b64url(
        public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def web_push_send(
    *, subscription: PushSubscription, title: str, body: str, data: dict[str, object], ttl_s: int
) -> str:
    """Encrypt and send one message to one browser; returns the push service's message address (its
    Location header) or its status. Raises ChannelError, and TargetGone on 404 or 410."""
    payload = json.dumps({"title": title, "body": body, **data}, ensure_ascii=False)
    try:
        answer = webpush(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=payload,
            vapid_private_key=vapid_key(),
            # A fresh dict every time: pywebpush writes `aud` and `exp` into the one it is given.
            vapid_claims={"sub": settings.ROCHDALE_VAPID_SUBJECT},
            ttl=ttl_s,
            timeout=TIMEOUT_S,
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in GONE_STATUSES:
            raise TargetGone(f"web push: HTTP {status}: the browser dropped the subscription") from exc
        retryable = status is None or status == 429 or status >= 500
        raise ChannelError(f"web push: HTTP {status}: {exc.message[:200]}", permanent=not retryable) from exc
    except requests.RequestException as exc:
        raise ChannelError(f"web push: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # the stored keys are not a P-256 point and a secret: it can never be sent
        raise ChannelError(f"web push: the subscription's keys are not valid: {exc}", permanent=True) from exc
    PushSubscription.objects.filter(id=subscription.id).update(last_sent_at=timezone.now())
    if isinstance(answer, requests.Response):
        return answer.headers.get("Location") or f"webpush-{answer.status_code}"
    return "webpush"
