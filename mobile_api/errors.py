"""One exception handler so every error leaves in the contract's shape, whatever raised it.

Messages are written in the request's language (docs/languages.md): by the time DRF calls this handler the
user is known and their setting applies (backend/accounts/authentication.py). Codes never change with it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from backend.errors import DomainError, error_body
from mobile_api.db_retry import DatabaseUnavailable, database_connection_lost, mark_connection_lost

logger = logging.getLogger(__name__)

_CODES_BY_EXCEPTION: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.ParseError, "malformed_json"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
]


def _flatten_validation(detail: Any) -> dict[str, Any]:
    """DRF's nested ErrorDetail structure, as plain strings keyed by field (nested fields keep nesting)."""
    if isinstance(detail, dict):
        return {str(key): _flatten_validation(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [str(item) for item in detail]  # type: ignore[return-value]
        return [_flatten_validation(item) for item in detail]  # type: ignore[return-value]
    return [str(detail)]  # type: ignore[return-value]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if database_connection_lost(exc):
        # Not our bug but a connection that died (a database restart): the retry middleware runs the
        # request again where that is safe, and otherwise this 503 is the answer.
        logger.warning("database connection lost in %s: %s", context.get("view"), exc)
        mark_connection_lost(context["request"]._request)
        exc = DatabaseUnavailable()
    if isinstance(exc, DomainError):
        set_rollback()
        retry_after = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response(exc.as_body(), status=exc.status, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        set_rollback()
        return Response(
            error_body(
                "request_too_large",
                _("The request body is too large."),
                {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            ),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):
        set_rollback()
        return Response(
            error_body("bad_request", _("The request could not be understood.")),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        details = _flatten_validation(exc.detail)
        if not isinstance(details, dict):
            details = {"non_field_errors": details}
        return Response(
            error_body("invalid_input", _("Some fields are missing or not valid."), details),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code = next((c for cls, c in _CODES_BY_EXCEPTION if isinstance(exc, cls)), None) or str(
            exc.default_code
        )
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        details: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details["retry_after_s"] = int(exc.wait) + 1
            headers["Retry-After"] = str(int(exc.wait) + 1)
            message = _("Too many requests; try again later.")
        if isinstance(exc, exceptions.ParseError):
            message = _("The request body is not valid JSON.")
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)

    # Anything else is our bug: log it with the stack, answer with the contract's shape and no internals.
    logger.exception("Unhandled error in %s", context.get("view"))
    set_rollback()
    return Response(
        error_body("internal_error", _("Something went wrong on our side; it has been logged.")),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", _("Nothing was found here.")), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("internal_error", _("Something went wrong on our side; it has been logged.")), status=500
    )


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("bad_request", _("The request could not be understood.")), status=400)


def json_403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", _("You may not do this.")), status=403)
