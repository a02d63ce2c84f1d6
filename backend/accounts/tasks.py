"""Celery tasks of accounts, in the beat schedule (backend/settings.py, "tokens-and-sessions-purge")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import import_module

from celery import shared_task
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    outstanding_tokens: int
    blacklisted_tokens: int
    sessions: int | None  # None: the session engine keeps no rows we can count (cache, signed cookies)


def expired_tokens_and_sessions_purge() -> Purged:
    """Delete refresh tokens past their expiry (what simplejwt's ``flushexpiredtokens`` does: a blacklist
    entry goes with its token, since an expired token is refused anyway) and expired sessions (what
    ``clearsessions`` does). Tokens and sessions still valid stay."""
    now = timezone.now()
    _total, by_model = OutstandingToken.objects.filter(expires_at__lte=now).delete()
    # The blacklist rows go by cascade; delete() counts each model's rows apart.
    outstanding = by_model.get(OutstandingToken._meta.label, 0)
    blacklisted = by_model.get(BlacklistedToken._meta.label, 0)

    store = import_module(settings.SESSION_ENGINE).SessionStore
    sessions = None
    if issubclass(store, DatabaseSessionStore):
        sessions = store.get_model_class().objects.filter(expire_date__lt=now).count()
    store.clear_expired()
    purged = Purged(outstanding_tokens=outstanding, blacklisted_tokens=blacklisted, sessions=sessions)
    logger.info(
        "purged %d expired refresh tokens (%d of them blacklisted) and %s expired sessions",
        purged.outstanding_tokens,
        purged.blacklisted_tokens,
        "an uncounted number of" if sessions is None else sessions,
    )
    return purged


@shared_task(name="backend.accounts.tasks.purge_expired_tokens_and_sessions", ignore_result=True)
def purge_expired_tokens_and_sessions() -> dict[str, int | None]:
    purged = expired_tokens_and_sessions_purge()
    return {
        "outstanding_tokens": purged.outstanding_tokens,
        "blacklisted_tokens": purged.blacklisted_tokens,
        "sessions": purged.sessions,
    }
