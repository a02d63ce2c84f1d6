"""Log formats and error reporting (docs/operations.md, "Logs").

`ROCHDALE_LOG_FORMAT=json` (the default when DEBUG is off) writes one JSON object a line: timestamp (UTC,
ISO 8601), level, logger, message, the ids backend/request_context.py knows (request_id, user_id, trip_id,
region) and an exception's traceback as `exception`. `plain` is for a developer's terminal: level, logger
and message, with the known ids after it in brackets; `make run`'s honcho stamps the time on every line.

Sentry is initialised only when SENTRY_DSN is set (backend/settings.py calls `sentry_init`), with no
personal data, no request bodies, no local variables and nothing that looks like a place: a co-op's error
reports must not become a record of where its riders and drivers were.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter

from backend.request_context import LOG_CONTEXT_FIELDS

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

_FIRST_FIELDS = ("timestamp", "level", "logger", "message", *LOG_CONTEXT_FIELDS)
# Extras some libraries attach that are objects, not values: django.request's HttpRequest (its id and user
# are already fields) and Channels' scope.
_DROPPED_EXTRAS = ("request", "scope", "color_message")


class JsonLogFormatter(JsonFormatter):
    """One JSON object a line, the known ids as fields and unknown ones left out."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp=True,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for name in _DROPPED_EXTRAS:
            log_data.pop(name, None)
        for name in LOG_CONTEXT_FIELDS:
            if log_data.get(name) is None:
                log_data.pop(name, None)
        # The same order on every line, so a person reading them raw finds the message in one place.
        ordered = {name: log_data.pop(name) for name in _FIRST_FIELDS if name in log_data}
        ordered.update(log_data)
        return ordered


class PlainLogFormatter(logging.Formatter):
    """`LEVEL   logger: message [request_id=... user_id=...]`, the ids only when known."""

    def __init__(self) -> None:
        super().__init__("%(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        known = [f"{name}={value}" for name in LOG_CONTEXT_FIELDS if (value := getattr(record, name, None))]
        return f"{line} [{' '.join(known)}]" if known else line


# --- Sentry ---------------------------------------------------------------------------------------------

REDACTED = "[location removed]"
# Keys whose value is a place, a trail or part of one, in any request, breadcrumb, extra or context.
_LOCATION_KEYS = frozenset(
    {
        "lat",
        "lng",
        "lon",
        "long",
        "latitude",
        "longitude",
        "location",
        "locations",
        "point",
        "points",
        "position",
        "coordinates",
        "coords",
        "geometry",
        "geom",
        "pickup",
        "dropoff",
        "destination",
        "origin",
        "trail",
        "route",
        "polyline",
        "fix",
        "fixes",
    }
)
_LOCATION_KEY_PARTS = ("lat", "lng", "lon", "latitude", "longitude", "location", "point", "pickup", "dropoff")
# A place written into text: WKT or EWKT, `lat=..&lng=..` in a URL, or a bare "40.7128, -74.0060" pair.
_LOCATION_TEXT = re.compile(
    r"(?:SRID=\d+;)?\b(?:MULTI)?(?:POINT|LINESTRING|POLYGON)\s*Z?\s*\([^)]*\)+"
    r"|\b(?:lat|lng|lon|latitude|longitude)\w*=[^&\s]*"
    r"|-?\d{1,3}\.\d{3,}\s*,\s*-?\d{1,3}\.\d{3,}",
    re.IGNORECASE,
)


def _is_location_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower()
    if name in _LOCATION_KEYS:
        return True
    parts = re.split(r"[_\-.]", name)
    return any(part in _LOCATION_KEY_PARTS for part in parts)


def _scrub(value: object) -> object:
    """The same structure with every location-looking key's value and every place in text removed."""
    if isinstance(value, Mapping):
        return {key: REDACTED if _is_location_key(key) else _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        return _LOCATION_TEXT.sub(REDACTED, value)
    return value


def sentry_before_send(event: Event, hint: Hint) -> Event | None:
    """Strip request bodies, query strings, cookies, frame variables and anything that looks like a place."""
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("data", "cookies", "query_string", "env"):
            request.pop(field, None)
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return _scrub(event)  # type: ignore[return-value]  # the same shape, values replaced


def sentry_init(dsn: str, *, environment: str, release: str) -> None:
    """Report errors of web, Celery and the dispatch worker to Sentry, without personal or location data."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,  # a frame's variables hold Points and trails
        max_request_body_size="never",
        before_send=sentry_before_send,
        before_send_transaction=sentry_before_send,
    )
