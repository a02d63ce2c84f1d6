"""The one format a timestamp leaves the server in: ISO 8601, in UTC, with a `Z` (CONTRACT.md).

Pure: used by the DRF field that output serializers declare (`mobile_api.serializers.fields.Timestamp`) and
by the few documents built without a serializer (the trip object pushed over websockets, `/me`)."""

from __future__ import annotations

from datetime import UTC, datetime


def wire_timestamp(moment: datetime) -> str:
    """`2026-11-21T14:03:00Z` (microseconds kept when there are any), whatever zone `moment` is in."""
    if moment.tzinfo is None:
        raise ValueError("A timestamp on the wire must be timezone-aware.")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
