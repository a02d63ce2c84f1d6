"""Domain errors: raised by services, shaped into the contract's error body by the HTTP and websocket edges.

`{"error": {"code": "snake_case_code", "message": "human sentence", "details": {...}}}`

The message is written in the language active where the error is raised (the request's, docs/languages.md):
raise sites pass `gettext(...)`, and the default messages here are lazy, so they too are rendered when
raised, not when this module is imported. The code never changes with the language.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A refusal the caller can act on. Subclasses fix the code and the HTTP status."""

    code: str = "domain_error"
    status: int = 400
    default_message: str | Promise = _("The request could not be carried out.")

    def __init__(
        self,
        message: str | Promise | None = None,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
    ):
        # Rendered now, in the language of the request that raised it: the edges json-encode it as text.
        self.message: str = str(message or self.default_message)
        self.details = details or {}
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def as_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str | Promise, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "details": details or {}}}


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 400
    default_message = _("Some fields are not valid.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = _("Nothing was found here.")


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    default_message = _("You may not do this.")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = _("This conflicts with the current state.")


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_message = _("The trip cannot make that move from its current status.")


class Unprocessable(DomainError):
    code = "unprocessable"
    status = 422
    default_message = _("The request is well-formed but cannot be carried out.")


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    status = 503
    default_message = _("A service this needs is unavailable; try again shortly.")


class PaymentRequired(DomainError):
    """The rider's card was refused, or the rider owes an unpaid charge (a contract extension: 402)."""

    code = "payment_required"
    status = 402
    default_message = _("A payment is needed before this can go ahead.")
