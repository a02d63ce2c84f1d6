"""What the OpenAPI description needs beyond the serializers: the bearer scheme, the error bodies with their
codes per route, the schema class that adds what every operation of a kind documents (autoschema.py), and
the request and answer examples of each area (trips.py, governance.py)."""

from __future__ import annotations

from dispatch.serializers import MoneySerializer as TripMoneySerializer
from mobile_api.schema.auth import JWTScheme
from mobile_api.schema.errors import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    ErrorBody,
    ErrorResponse,
    error_responses,
    merge_errors,
)

# One "Money" component for every route: the trip object's own money serializer.
MoneySerializer = TripMoneySerializer()

__all__ = [
    "AUTHENTICATED_GET_ERRORS",
    "AUTHENTICATED_POST_ERRORS",
    "ErrorBody",
    "ErrorResponse",
    "JWTScheme",
    "MoneySerializer",
    "error_responses",
    "merge_errors",
]
