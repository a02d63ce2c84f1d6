"""Where a person's pushes go: their browsers' Web Push subscriptions and their app installs' device tokens.

The server POSTs to a subscription's endpoint, so an endpoint is taken only from a push service the co-op
lists (`ROCHDALE_WEB_PUSH_HOSTS`: the browsers' own services by default; a name starting with "." allows
its subdomains), over https (`ROCHDALE_WEB_PUSH_ALLOW_HTTP` only for a local receiver): nobody can make the
server post to an address of their choosing. The keys must be what a browser makes (a P-256 point and a
16-byte secret), or nothing could ever be encrypted to them.

A subscription's endpoint, and a device's token, belong to one browser or install: saving one that another
account had moves it (that browser or phone signed in as someone else). A person keeps at most
`MAX_SUBSCRIPTIONS` and `MAX_DEVICES`; a new one past that replaces their oldest.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from backend.errors import InvalidInput, NotFound
from backend.notifications.models import PushDevice, PushPlatform, PushSubscription

MAX_SUBSCRIPTIONS = 10
MAX_DEVICES = 10
_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:\-]{20,512}")
_APNS_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def endpoint_allowed(endpoint: str) -> bool:
    """Whether the server may POST to `endpoint`: a listed push service, over https (or http when allowed).

    The host is read as the sender reads it too (urllib3, under requests and pywebpush), and both readings
    must agree: `urlsplit` takes `https://10.0.0.1\\.push.apple.com/` for a push service's name where urllib3
    connects to 10.0.0.1. No push service's address has a backslash, a space or a control character."""
    if any(character == "\\" or character.isspace() or not character.isprintable() for character in endpoint):
        return False
    try:
        parts = urlsplit(endpoint)
        sent_to = parse_url(endpoint)
    except (ValueError, LocationParseError):
        return False
    if (sent_to.host or "").lower() != (parts.hostname or "").lower() or sent_to.scheme != parts.scheme:
        return False
    allow_http = getattr(settings, "ROCHDALE_WEB_PUSH_ALLOW_HTTP", False)
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        return False
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        return False
    for allowed in settings.ROCHDALE_WEB_PUSH_HOSTS:
        allowed = allowed.strip().lower()
        if (allowed.startswith(".") and host.endswith(allowed)) or host == allowed:
            return True
    return False


def _subscription_errors(endpoint: object, p256dh: object, auth: object) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 1000:
        errors["endpoint"] = [_("must be the subscription's endpoint URL (at most 1000 characters)")]
    elif not endpoint_allowed(endpoint):
        errors["endpoint"] = [_("is not the address of a push service this server sends to")]
    try:
        point = _b64url_decode(p256dh) if isinstance(p256dh, str) and len(p256dh) <= 100 else b""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError("not an uncompressed point")
    except (ValueError, binascii.Error):
        errors["keys.p256dh"] = [_("must be the browser's P-256 public key, base64url (65 bytes)")]
    try:
        secret = _b64url_decode(auth) if isinstance(auth, str) and len(auth) <= 50 else b""
    except (ValueError, binascii.Error):
        secret = b""
    if len(secret) != 16:
        errors["keys.auth"] = [_("must be the browser's auth secret, base64url (16 bytes)")]
    return errors


def push_subscription_save(
    *, user_id: uuid.UUID, endpoint: object, p256dh: object, auth: object, user_agent: str = ""
) -> tuple[PushSubscription, bool]:
    """Keep a browser's subscription for the person; (it, whether it is new to them)."""
    errors = _subscription_errors(endpoint, p256dh, auth)
    if errors:
        raise InvalidInput(_("The push subscription is not valid."), details=errors)
    with transaction.atomic():
        existing = PushSubscription.objects.select_for_update().filter(endpoint=endpoint).first()
        created = existing is None or existing.user_id != user_id
        if existing is None:
            existing = PushSubscription(endpoint=endpoint)
        if created:
            existing.created_at = timezone.now()
        existing.user_id = user_id
        existing.p256dh, existing.auth, existing.user_agent = p256dh, auth, user_agent[:200]
        existing.save()
        _keep_newest(PushSubscription, user_id=user_id, keep=MAX_SUBSCRIPTIONS)
    return existing, created


def push_subscription_delete(*, user_id: uuid.UUID, endpoint: object) -> None:
    """Forget the person's subscription at `endpoint` (404 when they have none there)."""
    deleted, _detail = PushSubscription.objects.filter(user_id=user_id, endpoint=str(endpoint)).delete()
    if not deleted:
        raise NotFound(
            _("You have no push subscription at this endpoint."), code="push_subscription_not_found"
        )


def _device_errors(platform: object, token: object) -> dict[str, list[str]]:
    if platform not in PushPlatform.values:
        return {"platform": [_("must be one of %(names)s") % {"names": ", ".join(PushPlatform.values)}]}
    pattern = _APNS_TOKEN if platform == PushPlatform.APNS else _FCM_TOKEN
    if not isinstance(token, str) or not pattern.fullmatch(token):
        message = (
            _("must be the APNs device token in hex")
            if platform == PushPlatform.APNS
            else _("must be the FCM registration token")
        )
        return {"token": [message]}
    return {}


def push_device_save(*, user_id: uuid.UUID, platform: object, token: object) -> tuple[PushDevice, bool]:
    """Keep an app install's token for the person; (it, whether it is new to them)."""
    errors = _device_errors(platform, token)
    if errors:
        raise InvalidInput(_("The device is not valid."), details=errors)
    with transaction.atomic():
        existing = PushDevice.objects.select_for_update().filter(platform=platform, token=token).first()
        created = existing is None or existing.user_id != user_id
        if existing is None:
            existing = PushDevice(platform=platform, token=token)
        if created:
            existing.created_at = timezone.now()
        existing.user_id = user_id
        existing.save()
        _keep_newest(PushDevice, user_id=user_id, keep=MAX_DEVICES)
    return existing, created


def push_device_delete(*, user_id: uuid.UUID, platform: object, token: object) -> None:
    """Forget the person's device (404 when they have no such device)."""
    deleted, _detail = PushDevice.objects.filter(
        user_id=user_id, platform=str(platform), token=str(token)
    ).delete()
    if not deleted:
        raise NotFound(_("You have no such device."), code="device_not_found")


def _keep_newest(model: type[PushSubscription] | type[PushDevice], *, user_id: uuid.UUID, keep: int) -> None:
    stale = list(
        model.objects.filter(user_id=user_id).order_by("-created_at").values_list("id", flat=True)[keep:]
    )
    if stale:
        model.objects.filter(id__in=stale).delete()
