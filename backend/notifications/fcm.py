"""Mobile push to Android (and any FCM client) over the FCM HTTP v1 API, with httpx and google-auth.

Why not firebase-admin, which the issue names: its messaging client builds the send address from a class
constant (`https://fcm.googleapis.com/v1/projects/{id}/messages:send`) and offers no emulator variable for
messaging (it has them for Auth, the Realtime Database and Cloud Tasks only), so it cannot be pointed at a
local receiver without patching its internals, and it brings gRPC and the Firestore and Storage clients
with it. The v1 API it calls is one POST, so the adapter makes that POST itself, with the same OAuth 2.0
service-account flow (google-auth signs the JWT assertion and exchanges it at the key's `token_uri`), and
takes the base address from a setting: tests and staging point both at local servers.

One call per device: `POST {ROCHDALE_FCM_BASE_URL}/v1/projects/{project}/messages:send` with
`{"message": {"token", "notification": {title, body}, "data": {...}, "android": {"priority"}}}` and
`Authorization: Bearer <access token>`; FCM answers 200 with the message's `name`. A token FCM calls
UNREGISTERED (404), or an INVALID_ARGUMENT naming the token, is deleted and not retried; 401 drops the
cached access token and retries; 429 and 5xx are retried; other refusals are permanent.

Settings: `ROCHDALE_FCM_SERVICE_ACCOUNT_FILE` (the service account's JSON key) or
`ROCHDALE_FCM_SERVICE_ACCOUNT_JSON` (its text), `ROCHDALE_FCM_PROJECT_ID` (default: the key's project),
`ROCHDALE_FCM_BASE_URL` (default FCM's own). Without a key, the local default writes the message to the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import google.auth.exceptions
import google.auth.transport.requests
import httpx
from django.conf import settings
from google.oauth2 import service_account

from backend.notifications.channels import ChannelError, TargetGone

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TIMEOUT_S = 10.0

_credentials_lock = threading.Lock()
_credentials: dict[str, service_account.Credentials] = {}


@dataclass(frozen=True)
class FcmAccount:
    info: dict[str, str]
    project_id: str
    base_url: str

    @property
    def send_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(json.dumps(self.info, sort_keys=True).encode()).hexdigest()


def fcm_account() -> FcmAccount | None:
    """The configured service account, or None (the local default: log only)."""
    text = (getattr(settings, "ROCHDALE_FCM_SERVICE_ACCOUNT_JSON", "") or "").strip()
    path = (getattr(settings, "ROCHDALE_FCM_SERVICE_ACCOUNT_FILE", "") or "").strip()
    if not text and not path:
        return None
    try:
        info = json.loads(text) if text else json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ChannelError(f"fcm: the service account key cannot be read: {exc}", permanent=True) from exc
    if not isinstance(info, dict):
        raise ChannelError("fcm: the service account key is not a JSON object", permanent=True)
    project = (getattr(settings, "ROCHDALE_FCM_PROJECT_ID", "") or "") or str(info.get("project_id", ""))
    if not project:
        raise ChannelError(
            "fcm: no project id (ROCHDALE_FCM_PROJECT_ID or the key's project_id)", permanent=True
        )
    base = getattr(settings, "ROCHDALE_FCM_BASE_URL", "") or DEFAULT_BASE_URL
    return FcmAccount(info=info, project_id=project, base_url=base)


def _access_token(account: FcmAccount) -> str:
    """A valid OAuth access token for the account, refreshed (at its token_uri) only when it expires."""
    with _credentials_lock:
        credentials = _credentials.get(account.cache_key)
        if credentials is None:
            try:
                credentials = service_account.Credentials.from_service_account_info(
                    account.info, scopes=[SCOPE]
                )
            except (ValueError, KeyError) as exc:
                raise ChannelError(
                    f"fcm: the service account key is not valid: {exc}", permanent=True
                ) from exc
            _credentials[account.cache_key] = credentials
        if not credentials.valid:
            try:
                credentials.refresh(google.auth.transport.requests.Request())
            except google.auth.exceptions.GoogleAuthError as exc:
                raise ChannelError(f"fcm: no access token: {exc}") from exc
        return str(credentials.token)


def _forget_token(account: FcmAccount) -> None:
    with _credentials_lock:
        _credentials.pop(account.cache_key, None)


def _error_of(answer: httpx.Response) -> tuple[str, str]:
    """(status, errorCode) of FCM's error body, as far as it says."""
    try:
        error = answer.json().get("error", {})
    except ValueError:
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    code = ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            code = str(detail["errorCode"])
    return str(error.get("status", "")), code


def fcm_send(*, token: str, title: str, body: str, data: dict[str, str], timely: bool, ttl_s: int) -> str:
    """Send one message to one FCM registration token; returns FCM's message name. Raises ChannelError, and
    TargetGone for a token FCM no longer knows."""
    account = fcm_account()
    if account is None:
        reference = f"log-fcm-{uuid.uuid4().hex[:12]}"
        logger.info(
            "mobile push (fcm, not configured) to %s… (%s): %s: %s", token[:12], reference, title, body
        )
        return reference
    message = {
        "message": {
            "token": token,
            "notification": {"title": title, "body": body},
            "data": {key: str(value) for key, value in data.items()},
            "android": {"priority": "HIGH" if timely else "NORMAL", "ttl": f"{ttl_s}s"},
            "apns": {"headers": {"apns-priority": "10" if timely else "5"}},
        }
    }
    try:
        answer = httpx.post(
            account.send_url,
            json=message,
            headers={"Authorization": f"Bearer {_access_token(account)}"},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ChannelError(f"fcm: {type(exc).__name__}: {exc}") from exc
    if answer.status_code == 200:
        try:
            name = answer.json().get("name")
        except (ValueError, AttributeError):
            name = None
        if not isinstance(name, str) or not name:
            raise ChannelError("fcm: the answer names no message")
        return name
    status, code = _error_of(answer)
    detail = f"fcm: HTTP {answer.status_code} {status} {code}".strip()
    if (
        answer.status_code == 404
        or code == "UNREGISTERED"
        or (status == "INVALID_ARGUMENT" and "registration token" in answer.text)
    ):
        raise TargetGone(detail + ": the token is no longer registered")
    if answer.status_code == 401:
        _forget_token(account)  # the next attempt fetches a new access token
        raise ChannelError(detail)
    retryable = answer.status_code == 429 or answer.status_code >= 500
    raise ChannelError(detail, permanent=not retryable)
