"""Who and what a log line is about: the request id, user, trip and region (docs/operations.md, "Logs").

Each id lives in a context variable, so it follows the work it belongs to (an HTTP request, a socket, a
Celery task, the dispatch worker's loop) across threads that asgiref and Channels hop through, and never
leaks into the next request: every asyncio task and every `sync_to_async` call runs in a copy of the
context. `LogContextFilter` copies the ids that are known onto every record, where the formatters
(backend/logs.py) print them.

Binding is cheap (a ContextVar set), so it is done where an id becomes known: the request id here, the user
where DRF authenticates (backend/accounts/authentication.py) and where a socket's ticket is redeemed
(backend/accounts/ws_auth.py), the trip in the services that act on one trip (`bound_to_trip`) and in Celery
tasks that take a `trip_id` (backend/celery_logs.py), the region in the dispatch worker's command.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token

from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

request_id_var: ContextVar[str | None] = ContextVar("rochdale_request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("rochdale_log_user_id", default=None)
trip_id_var: ContextVar[str | None] = ContextVar("rochdale_log_trip_id", default=None)
region_var: ContextVar[str | None] = ContextVar("rochdale_log_region", default=None)
# The request being answered, so a record can name a session user once something resolved `request.user`.
_current_request_var: ContextVar[HttpRequest | None] = ContextVar("rochdale_log_request", default=None)

LOG_CONTEXT_VARS: dict[str, ContextVar[str | None]] = {
    "request_id": request_id_var,
    "user_id": user_id_var,
    "trip_id": trip_id_var,
    "region": region_var,
}
LOG_CONTEXT_FIELDS = tuple(LOG_CONTEXT_VARS)
# Ids true of the whole process (a dispatch worker serves one region), for threads that start with an
# empty context: `loop.run_in_executor` and plain threads do not copy the caller's context variables.
_process_ids: dict[str, str] = {}

# A proxy's or client's id is kept only when it is short and plain, so it cannot forge log structure.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def incoming_request_id(header_value: str | None) -> str:
    if header_value and _ACCEPTABLE_REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex


def _as_log_value(value: object) -> str | None:
    return None if value is None else str(value)


@contextlib.contextmanager
def bind_log_context(**ids: object) -> Iterator[None]:
    """Put these ids (request_id, user_id, trip_id, region) on every log line written inside the block.

    A value of None hides an outer binding of that id inside the block; the outer values come back after.
    """
    unknown = set(ids) - set(LOG_CONTEXT_VARS)
    if unknown:
        raise TypeError(f"unknown log context ids: {', '.join(sorted(unknown))}")
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = [
        (LOG_CONTEXT_VARS[name], LOG_CONTEXT_VARS[name].set(_as_log_value(value)))
        for name, value in ids.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_process_log_context(**ids: object) -> None:
    """Ids every line of this process carries unless its context says otherwise (`region` in a worker)."""
    unknown = set(ids) - set(LOG_CONTEXT_VARS)
    if unknown:
        raise TypeError(f"unknown log context ids: {', '.join(sorted(unknown))}")
    for name, value in ids.items():
        if value is None:
            _process_ids.pop(name, None)
        else:
            _process_ids[name] = str(value)


def bind_log_user(user_id: object) -> None:
    """Name the user for the rest of the current request or socket (their middleware ends the binding).

    Authentication happens deep inside a request, with no block around the rest of it to bind in; the
    request's own scope (RequestContextMiddleware, TicketAuthMiddleware) restores the previous value.
    """
    user_id_var.set(_as_log_value(user_id))


def bound_to_trip[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Log the call's `trip_id` keyword argument with every line the call writes (services on one trip)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        trip_id = kwargs.get("trip_id")
        if trip_id is None:
            return function(*args, **kwargs)
        with bind_log_context(trip_id=trip_id):
            return function(*args, **kwargs)

    return wrapper


def _resolved_user_id(request: HttpRequest) -> str | None:
    """The id of the request's user if something already resolved it: a log line never queries for it."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    with contextlib.suppress(AttributeError):
        # AuthenticationMiddleware's SimpleLazyObject: look inside without setting it up (no session read).
        wrapped = object.__getattribute__(user, "_wrapped")
        if wrapped is empty:
            return None
        user = wrapped
    if not getattr(user, "is_authenticated", False):
        return None
    return _as_log_value(getattr(user, "pk", None))


class LogContextFilter(logging.Filter):
    """Copies the known ids onto every record (as attributes the formatters read); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in LOG_CONTEXT_VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get() or _process_ids.get(name))
        # django.request logs a 4xx/5xx answer after the middleware has returned, with the request attached.
        request = getattr(record, "request", None)
        if not isinstance(request, HttpRequest):
            request = _current_request_var.get()
        if request is not None:
            if record.request_id is None:  # type: ignore[attr-defined]
                record.request_id = getattr(request, "request_id", None)
            if record.user_id is None:  # type: ignore[attr-defined]
                record.user_id = _resolved_user_id(request)
        return True


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = incoming_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id  # type: ignore[attr-defined]  # for lines logged after we return
        request_token = _current_request_var.set(request)
        try:
            # user_id and trip_id start unknown: a thread that answers requests one after another (tests,
            # WSGI) must not carry the last request's user into the next one.
            with bind_log_context(request_id=request_id, user_id=None, trip_id=None):
                response = self.get_response(request)
        finally:
            _current_request_var.reset(request_token)
        response["X-Request-ID"] = request_id
        return response
