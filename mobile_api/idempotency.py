"""`Idempotency-Key` for any POST view, implemented once.

Usage on a DRF view method::

    @idempotent(required=True)
    def post(self, request, ...): ...

How a key behaves (docs/contract.md, docs/api.md):
- the first request with a key runs, and its successful (2xx) answer is stored with the key in the SAME
  transaction as its effect: either both exist or neither does;
- the same key with the same request (method, path, user and canonical JSON body) replays the stored status
  and body, and does nothing again (the replay carries `Idempotent-Replayed: true`);
- the same key with another request answers 422 `idempotency_key_reused`;
- a key whose first request is still running answers 409 `idempotency_key_in_flight`.
- An error answer is not stored: the request had no effect (its transaction rolled back), so the client may
  retry with the same key.

Concurrency: the request takes a transaction-scoped PostgreSQL advisory lock named after (user, key) with
`pg_try_advisory_xact_lock` before looking for the key's row. Whoever holds it runs; everyone else gets 409
at once instead of queueing. The lock is released by the same commit that makes the key's row (and the
effect) visible, so a later request either sees the row or takes the lock itself; the unique constraint on
(user, key) backs this up. A crashed request leaves nothing behind: its transaction, lock and row vanish
together.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from backend.errors import Conflict, InvalidInput, Unprocessable
from mobile_api.models import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotencyKey

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_META_KEY = "HTTP_IDEMPOTENCY_KEY"
# Printable ASCII, no leading or trailing space.
_KEY_PATTERN = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    default_message = gettext_lazy(
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    default_message = gettext_lazy("This Idempotency-Key was already used for a different request.")


def idempotency_key_parameter(*, required: bool) -> OpenApiParameter:
    """The header as drf-spectacular documents it on each operation that accepts it."""
    return OpenApiParameter(
        name=HEADER,
        type=OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        required=required,
        description=(
            "1 to 128 printable ASCII characters, unique per request you mean to make once "
            "(a UUID is ideal). Retrying with the same key and body replays the first answer "
            "(docs/api.md)."
        ),
    )


def read_idempotency_key(request: Request, *, required: bool) -> str | None:
    raw = request.META.get(_META_KEY)
    if raw is None or raw == "":
        if required:
            raise InvalidInput(
                _("This request needs an %(header)s header.") % {"header": HEADER},
                code="idempotency_key_required",
            )
        return None
    if len(raw) > IDEMPOTENCY_KEY_MAX_LENGTH or not _KEY_PATTERN.fullmatch(raw):
        raise InvalidInput(
            _("%(header)s must be 1 to %(idempotency_key_max_length)s printable ASCII characters.")
            % {"header": HEADER, "idempotency_key_max_length": IDEMPOTENCY_KEY_MAX_LENGTH},
            code="idempotency_key_invalid",
        )
    return raw


def carries_idempotency_key(request: HttpRequest) -> bool:
    return bool(request.META.get(_META_KEY))


def view_honours_idempotency_key(request: HttpRequest) -> bool:
    """Whether the view this request was routed to handles its method under `@idempotent`, so that running
    it again with the same key replays rather than repeats (mobile_api/db_retry.py relies on this). False
    before routing, and for every other view."""
    match = request.resolver_match
    view_class = getattr(match.func, "cls", None) if match is not None else None
    handler = getattr(view_class, (request.method or "").lower(), None)
    return getattr(handler, "idempotency_required", None) is not None


def request_fingerprint(request: Request) -> str:
    """sha256 over method, path, user and the body as canonical JSON (key order and spacing do not count)."""
    data = request.data
    if hasattr(data, "dict"):  # a QueryDict from an empty or form body
        data = data.dict()
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    material = "\n".join([request.method or "", request.path, str(request.user.pk), body])
    return hashlib.sha256(material.encode()).hexdigest()


def idempotency_lock_id(user_id: uuid.UUID | str, key: str) -> int:
    """The signed 64-bit advisory lock id for a user's key (public so tests can hold it)."""
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _take_lock(user_id: uuid.UUID | str, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [idempotency_lock_id(user_id, key)])
        (taken,) = cursor.fetchone()
    if not taken:
        raise IdempotencyKeyInFlight()


def _replay(stored: IdempotencyKey) -> Response:
    return Response(stored.response_body, status=stored.response_status, headers={REPLAY_HEADER: "true"})


Handler = Callable[..., Response]


def idempotent(*, required: bool) -> Callable[[Handler], Handler]:
    """Decorate a DRF view method (after authentication has run) to honour `Idempotency-Key`."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = read_idempotency_key(request, required=required)
            if key is None:
                return handler(view, request, *args, **kwargs)
            user = request.user
            fingerprint = request_fingerprint(request)
            with transaction.atomic():
                _take_lock(user.pk, key)
                stored = IdempotencyKey.objects.filter(user_id=user.pk, key=key).first()
                if stored is not None:
                    if stored.request_fingerprint != fingerprint:
                        raise IdempotencyKeyReused(details={"key": key})
                    return _replay(stored)
                response = handler(view, request, *args, **kwargs)
                if not 200 <= response.status_code < 300:
                    transaction.set_rollback(True)
                    return response
                body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
                try:
                    with transaction.atomic():
                        IdempotencyKey.objects.create(
                            user_id=user.pk,
                            key=key,
                            request_fingerprint=fingerprint,
                            method=request.method or "",
                            path=request.path[:300],
                            response_status=response.status_code,
                            response_body=body,
                        )
                except IntegrityError as exc:  # only reachable if the advisory lock was bypassed
                    raise IdempotencyKeyInFlight() from exc
            return response

        wrapper.idempotency_required = required  # type: ignore[attr-defined]
        return wrapper

    return decorate
