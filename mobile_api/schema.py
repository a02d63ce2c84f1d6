"""OpenAPI additions: the bearer scheme, and the contract's error body on every operation."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from backend.errors import error_body
from dispatch.serializers import MoneySerializer as TripMoneySerializer


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "rest_framework_simplejwt.authentication.JWTAuthentication"
    name = "bearerAuth"
    priority = 1

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


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

# One "Money" component for every route: the trip object's own money serializer.
MoneySerializer = TripMoneySerializer()


_ERROR_MESSAGES = {
    "invalid_input": "Some fields are missing or not valid.",
    "malformed_json": "The request body is not valid JSON.",
    "request_too_large": "The request body is too large.",
    "unsupported_media_type": 'Unsupported media type "text/plain" in request.',
    "not_authenticated": "Authentication credentials were not provided.",
    "authentication_failed": "Given token not valid for any token type",
    "permission_denied": "You do not have permission to perform this action.",
    "rate_limited": "Too many requests; try again later.",
}


def error_responses(codes_by_status: dict[int, list[str]]) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the contract's error body, one example per error code an operation may answer."""
    responses = {}
    for status_code, codes in sorted(codes_by_status.items()):
        examples = [
            OpenApiExample(
                code,
                value=error_body(code, _ERROR_MESSAGES.get(code, code.replace("_", " ").capitalize() + ".")),
                response_only=True,
                status_codes=[str(status_code)],
            )
            for code in codes
        ]
        responses[status_code] = OpenApiResponse(
            response=ErrorBody,
            description="Error codes: " + ", ".join(f"`{c}`" for c in codes),
            examples=examples,
        )
    return responses


# What any JSON POST of a signed-in user may answer, whatever the route.
AUTHENTICATED_POST_ERRORS: dict[int, list[str]] = {
    400: ["invalid_input", "malformed_json"],
    401: ["not_authenticated", "authentication_failed"],
    413: ["request_too_large"],
    415: ["unsupported_media_type"],
}
AUTHENTICATED_GET_ERRORS: dict[int, list[str]] = {401: ["not_authenticated", "authentication_failed"]}


def merge_errors(*maps: dict[int, list[str]]) -> dict[int, list[str]]:
    merged: dict[int, list[str]] = {}
    for mapping in maps:
        for status_code, codes in mapping.items():
            merged.setdefault(status_code, [])
            merged[status_code].extend(code for code in codes if code not in merged[status_code])
    return merged


def document_cursor_errors(result: dict, generator: object, request: object, public: bool) -> dict:
    """Every paginated list takes a `cursor`; a forged or garbled one answers 400 `invalid_cursor`.

    Added here once (a drf-spectacular post-processing hook) rather than on each list view."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method != "get" or not any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
                continue
            operation.setdefault("responses", {}).setdefault(
                "400",
                {
                    "description": "Error codes: `invalid_cursor`",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                },
            )
    return result
