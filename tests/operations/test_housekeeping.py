"""Housekeeping: the daily purge of expired refresh tokens (with their blacklist entries) and sessions."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from backend.accounts.tasks import purge_expired_tokens_and_sessions
from tests.factories import RiderFactory


def _refresh_token(user, *, blacklisted: bool, expired: bool) -> str:
    token = RefreshToken.for_user(user)  # records an OutstandingToken, as sign-in does
    if blacklisted:
        token.blacklist()
    if expired:
        OutstandingToken.objects.filter(jti=token["jti"]).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
    return str(token["jti"])


def _session(*, expired: bool) -> str:
    session = SessionStore()
    session["seen"] = True
    session.create()
    if expired:
        Session.objects.filter(session_key=session.session_key).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )
    return session.session_key


@pytest.mark.django_db
def test_expired_tokens_and_sessions_go_and_the_rest_stay(caplog: pytest.LogCaptureFixture):
    user = RiderFactory()
    gone = [
        _refresh_token(user, blacklisted=False, expired=True),
        _refresh_token(user, blacklisted=True, expired=True),
    ]
    kept = [
        _refresh_token(user, blacklisted=False, expired=False),
        _refresh_token(user, blacklisted=True, expired=False),
    ]
    stale_session, live_session = _session(expired=True), _session(expired=False)

    with caplog.at_level(logging.INFO, logger="backend.accounts.tasks"):
        counts = purge_expired_tokens_and_sessions.apply().get()

    assert counts == {"outstanding_tokens": 2, "blacklisted_tokens": 1, "sessions": 1}
    assert set(OutstandingToken.objects.values_list("jti", flat=True)) == set(kept)
    assert list(BlacklistedToken.objects.values_list("token__jti", flat=True)) == [kept[1]]
    assert not OutstandingToken.objects.filter(jti__in=gone).exists()
    assert list(Session.objects.values_list("session_key", flat=True)) == [live_session]
    assert stale_session != live_session
    assert "purged 2 expired refresh tokens (1 of them blacklisted) and 1 expired sessions" in caplog.text

    # Run again: nothing left to purge, and what is valid is still there.
    assert purge_expired_tokens_and_sessions.apply().get() == {
        "outstanding_tokens": 0,
        "blacklisted_tokens": 0,
        "sessions": 0,
    }
    assert OutstandingToken.objects.count() == 2 and Session.objects.count() == 1
