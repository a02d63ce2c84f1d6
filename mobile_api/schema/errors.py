"""The contract's error body in the OpenAPI description: the codes each operation may answer, per status.

A view names its own refusals with `error_responses({409: ["trip_in_progress"], ...})`; the codes every
operation of a kind may answer (401 when signed in, 400 for a JSON body, the idempotency and paging codes,
429 when throttled) are added by `RochdaleAutoSchema` (mobile_api/schema/autoschema.py). Each status of
each operation then gets its own `...ErrorBody` component whose `code` is an enum of exactly those codes,
with one example per code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from backend.errors import error_body

# The generic shape, for views that have not named their codes yet (RochdaleAutoSchema warns about those).
ErrorBody = inline_serializer(
    "ErrorBody",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)

# Example messages: what the server says with each code (a code not listed gets its name as a sentence).
ERROR_MESSAGES = {
    "invalid_input": "Some fields are missing or not valid.",
    "malformed_json": "The request body is not valid JSON.",
    "request_too_large": "The request body is too large.",
    "unsupported_media_type": 'Unsupported media type "text/plain" in request.',
    "not_authenticated": "Authentication credentials were not provided.",
    "authentication_failed": "Given token not valid for any token type",
    "permission_denied": "You do not have permission to perform this action.",
    "rate_limited": "Too many requests; try again later.",
    "invalid_cursor": "This page cursor is not valid; start again from the first page.",
    "idempotency_key_required": "This request needs an Idempotency-Key header.",
    "idempotency_key_invalid": "Idempotency-Key must be 1 to 128 printable ASCII characters.",
    "idempotency_key_in_flight": (
        "A request with this Idempotency-Key is still being processed; retry shortly."
    ),
    "idempotency_key_reused": "This Idempotency-Key was already used for a different request.",
    "not_a_member": "Only members of the co-operative may see this.",
    "staff_only": "Only staff may do this.",
    "not_found": "Nothing was found here.",
    "invalid_fare_policy": "The fare policy is not valid: commission_rate.",
    "already_voted": "You have already voted on this proposal.",
    "voting_closed": "Voting on this proposal has closed.",
}

# What any JSON POST of a signed-in user may answer, whatever the route.
AUTHENTICATED_POST_ERRORS: dict[int, list[str]] = {
    400: ["invalid_input", "malformed_json"],
    401: ["not_authenticated", "authentication_failed"],
    413: ["request_too_large"],
    415: ["unsupported_media_type"],
}
AUTHENTICATED_GET_ERRORS: dict[int, list[str]] = {401: ["not_authenticated", "authentication_failed"]}
JSON_BODY_ERRORS: dict[int, list[str]] = {
    400: ["invalid_input", "malformed_json"],
    413: ["request_too_large"],
    415: ["unsupported_media_type"],
}
PAGING_ERRORS: dict[int, list[str]] = {400: ["invalid_cursor"]}
THROTTLE_ERRORS: dict[int, list[str]] = {429: ["rate_limited"]}


def idempotency_errors(*, required: bool) -> dict[int, list[str]]:
    """What `Idempotency-Key` handling may answer (mobile_api/idempotency.py)."""
    invalid = (
        ["idempotency_key_required", "idempotency_key_invalid"] if required else ["idempotency_key_invalid"]
    )
    return {400: invalid, 409: ["idempotency_key_in_flight"], 422: ["idempotency_key_reused"]}


def merge_errors(*maps: Mapping[int, Iterable[str]]) -> dict[int, list[str]]:
    """Codes by status from several maps, each code once, in the order first named."""
    merged: dict[int, list[str]] = {}
    for mapping in maps:
        for status_code, codes in mapping.items():
            known = merged.setdefault(status_code, [])
            known.extend(code for code in codes if code not in known)
    return merged


def error_message(code: str) -> str:
    return ERROR_MESSAGES.get(code, code.replace("_", " ").capitalize() + ".")


class ErrorResponse(OpenApiResponse):
    """An error answer of one status, with the codes it may carry (the schema's enum and examples)."""

    def __init__(self, status_code: int, codes: Iterable[str]) -> None:
        self.status_code = status_code
        self.codes = list(dict.fromkeys(codes))
        super().__init__(
            response=ErrorBody,
            description="Error codes: " + ", ".join(f"`{code}`" for code in self.codes),
            examples=[
                OpenApiExample(
                    code,
                    value=error_body(code, error_message(code)),
                    response_only=True,
                    status_codes=[str(status_code)],
                )
                for code in self.codes
            ],
        )


def error_responses(codes_by_status: Mapping[int, Iterable[str]]) -> dict[int, OpenApiResponse]:
    """The `responses` entries of an operation's own refusals: `{status: [code, ...]}`."""
    return {
        status_code: ErrorResponse(status_code, codes)
        for status_code, codes in sorted(codes_by_status.items())
    }


def error_body_schemas(name: str, codes: list[str]) -> dict[str, dict]:
    """The components of one operation's error answer of one status, by name: `<name>ErrorBody` (the
    contract's shape), its `<name>ErrorDetail` and `<name>ErrorCode` (an enum of `codes`). The enum is a
    component of its own, named after its route, so generated clients get one readable enum per answer."""
    return {
        f"{name}ErrorBody": {
            "type": "object",
            "properties": {"error": {"$ref": f"#/components/schemas/{name}ErrorDetail"}},
            "required": ["error"],
        },
        f"{name}ErrorDetail": {
            "type": "object",
            "properties": {
                "code": {"$ref": f"#/components/schemas/{name}ErrorCode"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": {}},
            },
            "required": ["code", "message", "details"],
        },
        f"{name}ErrorCode": {"type": "string", "enum": codes},
    }
