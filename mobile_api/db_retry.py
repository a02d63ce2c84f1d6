"""A request that meets a dead database connection runs once more on a fresh one, where replaying it is safe.

When PostgreSQL restarts (or its postmaster dies), every connection in each server's pool dies with it, and
the server only learns so when it next uses one. Two layers keep that from reaching clients:

- the pool checks a connection before handing it out (`CONN_HEALTH_CHECKS`, which Django turns into
  psycopg_pool's `check_connection`, backend/settings.py), so a request almost never starts on a dead one;
- a connection can still die under a request (the restart happens mid-request) or between check and use.
  Then the error reaches the exception handler (mobile_api/errors.py, for DRF views) or Django's
  `got_request_exception` (every other view), which mark the request. This middleware, the outermost, sees
  the mark before any byte of the answer is sent, gives the connection back (the pool discards a broken
  one), and runs the request once more, on a new connection, when replaying it is safe: GET, HEAD,
  OPTIONS, and writes carrying an `Idempotency-Key` to a view that honours it (mobile_api/idempotency.py:
  the key's row and the effect commit together, so a replay either finds the first answer or is the first
  run). A lost write without a key is never replayed (it may or may not have committed); like a second
  loss, it answers 503 `service_unavailable` with `Retry-After`, never 500.

A pool that could not hand out any connection for its whole timeout (`PoolTimeout`: the database is down,
not a stale connection) is not retried: waiting that long again would only double the wait; it answers
503 too.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import psycopg
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.translation import gettext_lazy
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from backend.errors import ServiceUnavailable
from mobile_api.idempotency import carries_idempotency_key, view_honours_idempotency_key

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOST_MARK = "rochdale_database_connection_lost"


class DatabaseUnavailable(ServiceUnavailable):
    default_message = gettext_lazy("The database is unavailable; try again shortly.")
    retry_after_s = 1

    def __init__(self) -> None:
        super().__init__(details={"service": "database", "retry_after_s": self.retry_after_s})


# SQLSTATE classes and codes of a server that ended the connection: connection exceptions (08) and the
# shutdown family (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, ...). A query
# cancelled (57014), a deadlock (40P01) or a lock timeout (55P03) leave a working connection.
_CONNECTION_ENDED_SQLSTATE_PREFIXES = ("08", "57P")
_POOL_ERRORS = (PoolTimeout, PoolClosed, TooManyRequests)


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in links:
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


def database_connection_lost(exc: BaseException) -> bool:
    """Whether `exc` says the database connection died under the request: the server ended it, or the
    client found it broken. Not a refusal by a working server (a deadlock, a cancelled query), and not a
    pool that found no connection for its whole timeout (the database is down; a retry would wait again).

    Judged from the driver's error, not the connection's state afterwards: by the time an error reaches a
    handler, Django may already have dropped the dead connection and opened another."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    for link in _chain(exc):
        if isinstance(link, _POOL_ERRORS):
            return False
        if isinstance(link, psycopg.Error):
            sqlstate = link.sqlstate
            if sqlstate is None:  # raised by the client itself: the connection is broken or closed
                return isinstance(link, psycopg.OperationalError | psycopg.InterfaceError)
            return sqlstate.startswith(_CONNECTION_ENDED_SQLSTATE_PREFIXES)
    return False


def mark_connection_lost(request: HttpRequest) -> None:
    setattr(request, _LOST_MARK, True)


def _connection_was_lost(request: HttpRequest) -> bool:
    return bool(getattr(request, _LOST_MARK, False))


def _mark_on_uncaught_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """`got_request_exception` is sent from inside Django's `except` block, so the exception is current."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and database_connection_lost(exc):
        mark_connection_lost(request)


got_request_exception.connect(_mark_on_uncaught_exception, dispatch_uid="rochdale-database-connection-lost")


def _may_replay(request: HttpRequest) -> bool:
    if request.method in SAFE_METHODS:
        return True
    return carries_idempotency_key(request) and view_honours_idempotency_key(request)


def _discard_connection() -> None:
    # Back to the pool, which throws a broken connection away; the next query takes a checked one.
    with contextlib.suppress(DatabaseError):
        connection.close()


def _unavailable() -> JsonResponse:
    refusal = DatabaseUnavailable()
    return JsonResponse(
        refusal.as_body(), status=refusal.status, headers={"Retry-After": str(refusal.retry_after_s)}
    )


class DatabaseRetryMiddleware:
    """The outermost middleware: one replay on a fresh connection for a request whose connection died."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method in SAFE_METHODS or carries_idempotency_key(request):
            # Read and kept now, so that a second run can read it again; a body over the limit is refused
            # by the view the same way, before it reaches the database.
            with contextlib.suppress(RequestDataTooBig):
                request.body  # noqa: B018
        response = self.get_response(request)
        if not _connection_was_lost(request):
            return response
        _discard_connection()
        if not response.streaming and _may_replay(request):
            logger.warning(
                "database connection lost during %s %s; running it again on a fresh connection",
                request.method,
                request.path,
            )
            setattr(request, _LOST_MARK, False)
            response = self.get_response(request)
            if not _connection_was_lost(request):
                return response
            _discard_connection()
        logger.error("database connection lost during %s %s; answered 503", request.method, request.path)
        return _unavailable()
