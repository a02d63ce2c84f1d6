"""Mobile push to iOS over APNs: token-based authentication (a JWT signed ES256 with the team's .p8 key)
over HTTP/2, with httpx (`httpx[http2]`, the h2 library).

One request per device: `POST {ROCHDALE_APNS_HOST}/3/device/{token}` with `authorization: bearer <JWT>`
(header `alg` ES256 and `kid` the key id; claims `iss` the team id and `iat`), `apns-topic` (the app's
bundle id), `apns-push-type: alert`, `apns-priority` (10 for a ride happening now, 5 otherwise),
`apns-expiration`, and `{"aps": {"alert": {title, body}, "sound": "default"}, ...data}`. APNs answers 200
with the `apns-id` header. 410 (Unregistered) and 400 BadDeviceToken or DeviceTokenNotForTopic delete the
device; 403 ExpiredProviderToken or InvalidProviderToken makes a new JWT and retries; 429 and 5xx are
retried; other refusals are permanent.

The JWT is reused for up to `TOKEN_REUSE_S` (Apple refuses tokens older than an hour and throttles ones
renewed more often than every 20 minutes). One HTTP/2 connection per worker process is kept and reused, as
Apple asks. An `http://` host is spoken to as HTTP/2 with prior knowledge (a local receiver in tests).

Settings: `ROCHDALE_APNS_KEY_FILE` (the .p8) or `ROCHDALE_APNS_KEY` (its PEM text), `ROCHDALE_APNS_KEY_ID`,
`ROCHDALE_APNS_TEAM_ID`, `ROCHDALE_APNS_TOPIC`, `ROCHDALE_APNS_HOST` (default Apple's production host;
`https://api.sandbox.push.apple.com` for development builds). Without a key, the local default writes the
message to the log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from django.conf import settings

from backend.notifications.channels import ChannelError, TargetGone

logger = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.push.apple.com"
TIMEOUT_S = 10.0
TOKEN_REUSE_S = 40 * 60
GONE_REASONS = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
STALE_TOKEN_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})

_lock = threading.Lock()
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_clients: dict[str, httpx.Client] = {}


@dataclass(frozen=True)
class ApnsAccount:
    key_pem: str
    key_id: str
    team_id: str
    topic: str
    host: str


def apns_account() -> ApnsAccount | None:
    """The configured signing key and app, or None (the local default: log only)."""
    pem = (getattr(settings, "ROCHDALE_APNS_KEY", "") or "").strip()
    path = (getattr(settings, "ROCHDALE_APNS_KEY_FILE", "") or "").strip()
    if not pem and not path:
        return None
    if not pem:
        try:
            pem = Path(path).read_text()
        except OSError as exc:
            raise ChannelError(f"apns: the key cannot be read: {exc}", permanent=True) from exc
    values = {
        name: (getattr(settings, name, "") or "").strip()
        for name in ("ROCHDALE_APNS_KEY_ID", "ROCHDALE_APNS_TEAM_ID", "ROCHDALE_APNS_TOPIC")
    }
    missing = sorted(name for name, value in values.items() if not value)
    if missing:
        raise ChannelError(f"apns: {', '.join(missing)} not set", permanent=True)
    return ApnsAccount(
        key_pem=pem,
        key_id=values["ROCHDALE_APNS_KEY_ID"],
        team_id=values["ROCHDALE_APNS_TEAM_ID"],
        topic=values["ROCHDALE_APNS_TOPIC"],
        host=(getattr(settings, "ROCHDALE_APNS_HOST", "") or DEFAULT_HOST).rstrip("/"),
    )


def _provider_token(account: ApnsAccount, *, fresh: bool = False) -> str:
    key = (account.team_id, account.key_id)
    now = time.time()
    with _lock:
        cached = _tokens.get(key)
        if cached is not None and not fresh and now - cached[1] < TOKEN_REUSE_S:
            return cached[0]
        try:
            token = jwt.encode(
                {"iss": account.team_id, "iat": int(now)},
                account.key_pem,
                algorithm="ES256",
                headers={"kid": account.key_id},
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ChannelError(f"apns: the key cannot sign: {exc}", permanent=True) from exc
        _tokens[key] = (token, now)
        return token


def _client(host: str) -> httpx.Client:
    with _lock:
        client = _clients.get(host)
        if client is None:
            # http:// is HTTP/2 with prior knowledge (h2c); https:// negotiates HTTP/2 by ALPN.
            client = httpx.Client(http2=True, http1=not host.startswith("http://"), timeout=TIMEOUT_S)
            _clients[host] = client
        return client


def apns_send(*, token: str, title: str, body: str, data: dict[str, str], timely: bool, ttl_s: int) -> str:
    """Send one alert to one APNs device token; returns the `apns-id`. Raises ChannelError, and TargetGone
    for a token APNs no longer accepts."""
    account = apns_account()
    if account is None:
        reference = f"log-apns-{uuid.uuid4().hex[:12]}"
        logger.info(
            "mobile push (apns, not configured) to %s… (%s): %s: %s", token[:12], reference, title, body
        )
        return reference
    payload = {"aps": {"alert": {"title": title, "body": body}, "sound": "default"}, **data}
    headers = {
        "authorization": f"bearer {_provider_token(account)}",
        "apns-topic": account.topic,
        "apns-push-type": "alert",
        "apns-priority": "10" if timely else "5",
        "apns-expiration": str(int(time.time()) + ttl_s),
    }
    try:
        answer = _client(account.host).post(
            f"{account.host}/3/device/{token}",
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers=headers,
        )
    except httpx.HTTPError as exc:
        with _lock:  # a broken connection is not reused
            broken = _clients.pop(account.host, None)
        if broken is not None:
            broken.close()
        raise ChannelError(f"apns: {type(exc).__name__}: {exc}") from exc
    if answer.status_code == 200:
        return answer.headers.get("apns-id") or "apns"
    try:
        reason = str(answer.json().get("reason", ""))
    except (ValueError, AttributeError):
        reason = ""
    detail = f"apns: HTTP {answer.status_code} {reason}".strip()
    if answer.status_code == 410 or reason in GONE_REASONS:
        raise TargetGone(detail)
    if answer.status_code == 403 and reason in STALE_TOKEN_REASONS:
        _provider_token(account, fresh=True)  # the retry signs with a new token
        raise ChannelError(detail)
    retryable = answer.status_code == 429 or answer.status_code >= 500
    raise ChannelError(detail, permanent=not retryable)
