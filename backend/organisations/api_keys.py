"""Requests made with an organisation's API key (a broker's or a clinic's own system), for DRF views.

- `OrganisationApiKeyAuthentication` reads `Authorization: Bearer rk_...` or `X-Api-Key: rk_...`. A header
  that is not an `rk_` key is left to the next authenticator (a JWT), so one route serves both. The key's
  row is found by its prefix and the whole key compared with the stored SHA-256 in constant time; a key
  that does not match answers 401 `api_key_invalid`, a revoked one (or one of an organisation that was
  closed) 401 `api_key_revoked`. `last_used_at` is written at most once a minute per key (a guarded UPDATE,
  so a busy key does not write on every request).
- `request.user` is then an `ApiKeyPrincipal`: signed in (`is_authenticated`), but nobody (`pk` None, no
  role flags), so nothing that serves people serves it; `request.auth` is the key's row. Views give it the
  organisation's own trips only (its `organisation_id`), and everything else answers 404.
- `HasApiKeyScope` checks the key's scopes against the view's `api_key_scopes` ({method: scope}): a
  missing scope answers 403 `api_key_scope_missing`. People (JWT) pass it: their role in the organisation
  is the view's and the services' to check.
- `OrganisationRateThrottle`: the per-account limit (`user` rate), counted per key prefix for API keys.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from backend.accounts.throttling import UserRateThrottle
from backend.errors import DomainError, PermissionDenied
from backend.organisations.keys import KEY_TAG, api_key_matches, api_key_prefix
from backend.organisations.models import OrganisationApiKey

logger = logging.getLogger(__name__)

HEADER = "X-Api-Key"
_META_HEADER = "HTTP_X_API_KEY"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRejected(DomainError, AuthenticationFailed):
    """A request carrying an API key that does not open anything (401, like a bad token). A DRF
    AuthenticationFailed too, so DRF treats the request as anonymous; the error handler keeps the code."""

    code = "api_key_invalid"
    status = 401
    default_message = gettext_lazy("This API key is not valid.")


class ApiKeyRevoked(ApiKeyRejected):
    code = "api_key_revoked"
    default_message = gettext_lazy("This API key has been revoked.")


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """Who a request made with an API key is: the organisation's system, not a person."""

    key_id: uuid.UUID
    organisation_id: uuid.UUID
    prefix: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    pk: ClassVar[None] = None
    id: ClassVar[None] = None
    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False
    is_active: ClassVar[bool] = True
    is_staff: ClassVar[bool] = False
    is_superuser: ClassVar[bool] = False
    is_rider: ClassVar[bool] = False
    is_driver: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"API key {self.prefix} of {self.organisation_id}"


def api_key_principal(request: Request) -> ApiKeyPrincipal | None:
    """The API key a request was made with, or None for a person's request."""
    user = getattr(request, "user", None)
    return user if isinstance(user, ApiKeyPrincipal) else None


def _presented_key(request: Request) -> str | None:
    header = request.META.get(_META_HEADER)
    if header:
        return header.strip()
    parts = get_authorization_header(request).split()
    if len(parts) == 2 and parts[0].lower() == b"bearer" and parts[1].startswith(f"{KEY_TAG}_".encode()):
        return parts[1].decode("ascii", errors="replace")
    return None


class OrganisationApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, OrganisationApiKey] | None:
        presented = _presented_key(request)
        if presented is None:
            return None
        prefix = api_key_prefix(presented)
        key = (
            OrganisationApiKey.objects.select_related("organisation").filter(prefix=prefix).first()
            if prefix
            else None
        )
        if key is None or not api_key_matches(presented, key.key_hash):
            raise ApiKeyRejected()
        if key.revoked_at is not None or not key.organisation.is_active:
            raise ApiKeyRevoked()
        _touch(key)
        principal = ApiKeyPrincipal(
            key_id=key.id,
            organisation_id=key.organisation_id,
            prefix=key.prefix,
            scopes=frozenset(key.scopes),
        )
        return principal, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _touch(key: OrganisationApiKey) -> None:
    now = timezone.now()
    OrganisationApiKey.objects.filter(id=key.id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)


class HasApiKeyScope(BasePermission):
    """API keys need the scope the view names for the method (`api_key_scopes`); people pass."""

    code: ClassVar[str] = "api_key_scope_missing"

    def has_permission(self, request: Request, view: APIView) -> bool:
        principal = api_key_principal(request)
        if principal is None:
            return True
        needed = getattr(view, "api_key_scopes", {}).get(request.method or "")
        if needed is None or needed not in principal.scopes:
            raise PermissionDenied(
                _("This API key may not do this."),
                code=self.code,
                details={"needs": needed, "scopes": sorted(principal.scopes)},
            )
        return True


class OrganisationRateThrottle(UserRateThrottle):
    """The per-account limit, counted per key for API-key requests (each key its own allowance)."""

    def client_key(self, request: Request) -> str | None:
        principal = api_key_principal(request)
        if principal is not None:
            return f"apikey:{principal.prefix}"
        return super().client_key(request)
