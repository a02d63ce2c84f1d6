"""Sign-in and registration throttling on atomic Redis counters.

Two mechanisms, both fixed-window counters made with INCR + EXPIRE in one MULTI/EXEC (so a counter can
never be left without its expiry, and concurrent requests never lose a count):

- Rate limits (`RedisRateThrottle` and its scopes): at most N requests per window per client IP, for
  sign-in (`sign_in_ip`) and registration (`register`), rates from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].
  The client IP is the real client (`client_ip`: the socket peer, or what ROCHDALE_TRUSTED_PROXY_HOPS
  trusted proxies added; never a made-up X-Forwarded-For). Over the limit: 429 `rate_limited` with
  Retry-After.
- Every signed-in route (`UserRateThrottle`, DRF's default throttle): at most `user` requests per window
  per account, keyed on the user id, so many accounts behind one address (a depot's NAT, the simulator)
  each keep their own allowance. While Redis is unreachable it lets requests through (logged): a limit on
  how fast one account may go must not take every signed-in route down with the cache.
- Lockout after failed sign-ins: ROCHDALE_SIGN_IN_MAX_FAILURES wrong passwords for one phone, or
  ROCHDALE_SIGN_IN_IP_MAX_FAILURES from one IP, lock that phone (or IP) out for ROCHDALE_SIGN_IN_LOCKOUT_S:
  429 `sign_in_locked` with Retry-After, even with the right password. A successful sign-in clears the
  phone's count (not the IP's: one attacker's good account must not launder guesses at others).
- Lockout after wrong second-factor codes: ROCHDALE_SECOND_FACTOR_MAX_FAILURES wrong TOTP codes for one
  account lock its code step for ROCHDALE_SECOND_FACTOR_LOCKOUT_S (`second_factor_check`), keyed on the
  user id because a code guesser already holds the password and can change address at will.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext_lazy
from rest_framework.throttling import BaseThrottle

from backend.errors import DomainError
from backend.redis import REDIS_UNREACHABLE, RedisOutage, get_redis

if TYPE_CHECKING:  # annotations only: the throttles load while DRF reads its settings
    from django.http import HttpRequest
    from rest_framework.request import Request
    from rest_framework.views import APIView

_PREFIX = "throttle:"
logger = logging.getLogger(__name__)
# Logged once when an outage begins and once when it ends, not at every signed-in request in between.
_USER_RATE_REDIS = RedisOutage("the per-user rate limit (requests pass meanwhile)", logger=logger)


class SignInLocked(DomainError):
    code = "sign_in_locked"
    status = 429
    default_message = gettext_lazy("Too many failed sign-ins; try again later.")

    def __init__(self, retry_after_s: int, scope: str) -> None:
        self.retry_after_s = max(int(retry_after_s), 1)
        super().__init__(details={"retry_after_s": self.retry_after_s, "scope": scope})


def _hashed(value: str) -> str:
    # Phones and IPs are personal data: keep only a digest of them in Redis.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _incr_with_expiry(key: str, window_s: int) -> tuple[int, int]:
    """Count one event in the window that starts at the first event; return (count, seconds left)."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, window_s, nx=True)
    pipe.ttl(key)
    count, _, ttl = pipe.execute()
    return int(count), int(ttl) if ttl and ttl > 0 else window_s


def _failure_keys(phone: str, ip: str) -> list[tuple[str, str, int]]:
    return [
        ("phone", f"{_PREFIX}signin:fail:phone:{_hashed(phone)}", settings.ROCHDALE_SIGN_IN_MAX_FAILURES),
        ("ip", f"{_PREFIX}signin:fail:ip:{_hashed(ip)}", settings.ROCHDALE_SIGN_IN_IP_MAX_FAILURES),
    ]


def sign_in_check(*, phone: str, ip: str) -> None:
    """Raise SignInLocked when the phone or the IP has used up its failed attempts."""
    client = get_redis()
    keys = _failure_keys(phone, ip)
    pipe = client.pipeline(transaction=False)
    for _, key, _ in keys:
        pipe.get(key)
        pipe.ttl(key)
    results = pipe.execute()
    for index, (scope, _, limit) in enumerate(keys):
        raw, ttl = results[2 * index], results[2 * index + 1]
        if raw is not None and int(raw) >= limit:
            raise SignInLocked(
                retry_after_s=ttl if ttl and ttl > 0 else settings.ROCHDALE_SIGN_IN_LOCKOUT_S, scope=scope
            )


def sign_in_failed(*, phone: str, ip: str) -> None:
    """Count a failed sign-in against the phone and the IP; the failure that reaches a limit starts the
    lockout, which lasts ROCHDALE_SIGN_IN_LOCKOUT_S from then."""
    lockout_s = settings.ROCHDALE_SIGN_IN_LOCKOUT_S
    client = get_redis()
    for _, key, limit in _failure_keys(phone, ip):
        count, _ = _incr_with_expiry(key, lockout_s)
        if count == limit:
            client.expire(key, lockout_s)


def sign_in_succeeded(*, phone: str) -> None:
    get_redis().delete(f"{_PREFIX}signin:fail:phone:{_hashed(phone)}")


def _second_factor_key(user_id: object) -> str:
    return f"{_PREFIX}2fa:fail:user:{_hashed(str(user_id))}"


def second_factor_check(*, user_id: object) -> None:
    """Raise SignInLocked (scope "second_factor") while this account has used up its wrong codes."""
    pipe = get_redis().pipeline(transaction=False)
    key = _second_factor_key(user_id)
    pipe.get(key)
    pipe.ttl(key)
    raw, ttl = pipe.execute()
    if raw is not None and int(raw) >= settings.ROCHDALE_SECOND_FACTOR_MAX_FAILURES:
        raise SignInLocked(
            retry_after_s=ttl if ttl and ttl > 0 else settings.ROCHDALE_SECOND_FACTOR_LOCKOUT_S,
            scope="second_factor",
        )


def second_factor_failed(*, user_id: object) -> None:
    """Count a code that did not verify; the failure that reaches the limit starts the lockout."""
    lockout_s = settings.ROCHDALE_SECOND_FACTOR_LOCKOUT_S
    key = _second_factor_key(user_id)
    count, _ = _incr_with_expiry(key, lockout_s)
    if count == settings.ROCHDALE_SECOND_FACTOR_MAX_FAILURES:
        get_redis().expire(key, lockout_s)


def second_factor_succeeded(*, user_id: object) -> None:
    get_redis().delete(_second_factor_key(user_id))


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address as DRF sees it (honouring NUM_PROXIES); "unknown" when the server gave none."""
    return BaseThrottle().get_ident(request) or "unknown"


def parse_rate(rate: str) -> tuple[int, int]:
    """`"30/min"` -> (30, 60). Accepts s, sec, m, min, h, hour, d, day."""
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0].lower()]
    return int(count), seconds


class RedisRateThrottle(BaseThrottle):
    """A fixed-window rate limit on one atomic Redis counter per client; subclasses set `scope` (and
    `client_key`, the real client IP by default)."""

    scope: str = ""

    def client_key(self, request: Request) -> str | None:
        """Whom the limit counts; None: this request is not limited by this throttle."""
        return client_ip(request)

    def allow_request(self, request: Request, view: APIView) -> bool:
        client = self.client_key(request)
        if client is None:
            return True
        limit, window_s = parse_rate(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope])
        bucket = int(time.time()) // window_s
        key = f"{_PREFIX}rate:{self.scope}:{_hashed(client)}:{bucket}"
        count, ttl = _incr_with_expiry(key, window_s)
        self._wait = ttl
        return count <= limit

    def wait(self) -> float | None:
        return float(getattr(self, "_wait", 1))


class SignInRateThrottle(RedisRateThrottle):
    scope = "sign_in_ip"


class RegisterRateThrottle(RedisRateThrottle):
    scope = "register"


class UserRateThrottle(RedisRateThrottle):
    """Per signed-in account (the user id, never the address); anonymous requests pass (the routes open to
    them carry their own per-IP throttles)."""

    scope = "user"

    def client_key(self, request: Request) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return f"user:{user.pk}"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not _USER_RATE_REDIS.may_try():
            return True  # Redis is down: not asked again until the backoff has passed
        try:
            allowed = super().allow_request(request, view)
        except REDIS_UNREACHABLE as exc:
            _USER_RATE_REDIS.failed(exc)
            return True
        _USER_RATE_REDIS.recovered()
        return allowed
