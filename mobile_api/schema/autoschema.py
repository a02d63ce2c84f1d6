"""The schema class of every view (`REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`): drf-spectacular's, plus what
every operation of a kind documents, read from the view itself so that no route can forget it:

- `Idempotency-Key` on methods wrapped by `@idempotent` (required or not, as the decorator says), its error
  codes, and the `Idempotent-Replayed` header of a replayed answer;
- 401 on routes that need a signed-in user, and `security: []` (explicitly no auth) on those that do not;
- 400/413/415 on operations that read a JSON body; 403 under a permission class beyond signing in, with
  the class's `code` (mobile_api/permissions.py; `permission_denied` for DRF's own classes); 400
  `invalid_cursor` on paginated lists; 429 `rate_limited` with `Retry-After` on throttled routes;
- for each error status of each operation, an `<OperationId><status>ErrorBody` component whose `code` is an
  enum of the codes that operation may answer with that status (mobile_api/schema/errors.py).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.drainage import warn
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.permissions import AllowAny, IsAuthenticated

from mobile_api.idempotency import REPLAY_HEADER, idempotency_key_parameter
from mobile_api.schema.errors import (
    AUTHENTICATED_GET_ERRORS,
    JSON_BODY_ERRORS,
    PAGING_ERRORS,
    THROTTLE_ERRORS,
    ErrorBody,
    ErrorResponse,
    error_body_schemas,
    idempotency_errors,
    merge_errors,
)

# The code a refusal carries when a view raised the generic domain error of that status.
_GENERIC_CODE_BY_STATUS = {
    400: "invalid_input",
    403: "permission_denied",
    404: "not_found",
    409: "conflict",
    422: "unprocessable",
    503: "service_unavailable",
}
_SIGN_IN_ONLY_PERMISSIONS = (AllowAny, IsAuthenticated)
_BODY_METHODS = ("POST", "PUT", "PATCH")

RETRY_AFTER_HEADER = {
    "schema": {"type": "integer", "minimum": 1},
    "description": "Seconds to wait before trying again.",
}
REPLAYED_HEADER = {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "Present when this is the stored answer to an earlier request with the same "
    "Idempotency-Key (nothing was done again).",
}


def _status_order(key: Any) -> tuple[int, str]:
    """`responses` keys are a status or a (status, media type) pair."""
    return (int(key[0]), str(key)) if isinstance(key, tuple) else (int(key), "")


def _pascal(operation_id: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in operation_id.replace("-", "_").split("_"))


class RochdaleAutoSchema(AutoSchema):
    # --- what the view tells ---------------------------------------------------------------------------

    def _idempotency_required(self) -> bool | None:
        """True or False on a method wrapped by `@idempotent(required=...)`, None on any other."""
        handler = getattr(self.view, self.method.lower(), None)
        return getattr(handler, "idempotency_required", None)

    def _needs_sign_in(self) -> bool:
        requirements = self.get_auth()
        return bool(requirements) and {} not in requirements

    def _reads_json_body(self) -> bool:
        if self.method not in _BODY_METHODS:
            return False
        # An idempotent method reads the body to fingerprint the request, even one that takes no fields.
        return self.get_request_serializer() is not None or self._idempotency_required() is not None

    def _is_paginated(self) -> bool:
        if self.method != "GET" or self._get_paginator() is None:
            return False
        declares_cursor = any(
            isinstance(parameter, OpenApiParameter) and parameter.name == "cursor"
            for parameter in self.get_override_parameters()
        )
        return declares_cursor or self._is_list_view()

    def _role_refusals(self) -> list[str]:
        """The 403 codes of the view's permission classes beyond signing in."""
        return [
            getattr(permission, "code", _GENERIC_CODE_BY_STATUS[403])
            for permission in self.view.get_permissions()
            if not isinstance(permission, _SIGN_IN_ONLY_PERMISSIONS)
        ]

    def _implied_errors(self) -> dict[int, list[str]]:
        implied: list[dict[int, list[str]]] = []
        if self._needs_sign_in():
            implied.append(AUTHENTICATED_GET_ERRORS)
        if self._reads_json_body():
            implied.append(JSON_BODY_ERRORS)
        required = self._idempotency_required()
        if required is not None:
            implied.append(idempotency_errors(required=required))
        if self._is_paginated():
            implied.append(PAGING_ERRORS)
        refusals = self._role_refusals()
        if refusals:
            implied.append({403: refusals})
        if self.view.get_throttles():
            implied.append(THROTTLE_ERRORS)
        return merge_errors(*implied)

    # --- drf-spectacular hooks -------------------------------------------------------------------------

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None and not any(operation.get("security", [])):
            # `[{}]` reads as "needs auth" to client generators; `[]` says plainly that none is needed.
            operation["security"] = []
        return operation

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        required = self._idempotency_required()
        if required is not None:
            parameters.append(idempotency_key_parameter(required=required))
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        declared = self.get_response_serializers()
        if not isinstance(declared, dict):
            declared = {201 if self._is_create_operation() else 200: declared}
        implied = self._implied_errors()
        responses: dict[Any, Any] = {}
        for key, response in declared.items():
            status_code = int(key[0] if isinstance(key, tuple) else key)
            if status_code >= 400:
                response = self._error_response(status_code, response, implied.pop(status_code, []))
            responses[key] = response
        for status_code, codes in implied.items():
            responses[status_code] = ErrorResponse(status_code, codes)

        bodies: dict[str, Any] = {}
        for key, response in sorted(responses.items(), key=lambda item: _status_order(item[0])):
            if isinstance(key, tuple):
                code, media_types = str(key[0]), key[1:]
            else:
                code, media_types = str(key), None
            body = self._get_response_for_code(response, code, media_types, direction)
            if code in bodies:
                bodies[code]["content"].update(body["content"])
            else:
                bodies[code] = body
        return bodies

    def _error_response(self, status_code: int, declared: Any, implied: list[str]) -> Any:
        if isinstance(declared, ErrorResponse):
            return ErrorResponse(status_code, [*declared.codes, *implied])
        is_bare_error_body = declared is ErrorBody or (
            isinstance(declared, OpenApiResponse) and declared.response is ErrorBody
        )
        if not is_bare_error_body:
            return declared
        if implied:
            return ErrorResponse(status_code, implied)
        generic = _GENERIC_CODE_BY_STATUS.get(status_code, "error")
        warn(
            f"{self.method} {self.path}: the {status_code} answer names no error codes "
            f'(use error_responses); documenting "{generic}" only.'
        )
        return ErrorResponse(status_code, [generic])

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: str = "response"
    ) -> dict[str, Any]:
        if isinstance(serializer, ErrorResponse):
            name = f"{_pascal(self.get_operation_id())}{status_code}"
            for component_name, schema in error_body_schemas(name, serializer.codes).items():
                self.registry.register_on_missing(
                    ResolvedComponent(
                        name=component_name,
                        type=ResolvedComponent.SCHEMA,
                        schema=schema,
                        object=component_name,
                    )
                )
            serializer = OpenApiResponse(
                response={"$ref": f"#/components/schemas/{name}ErrorBody"},
                description=serializer.description,
                examples=serializer.examples,
            )
            # Errors are JSON whatever the operation's success answers are (e.g. CSV).
            media_types = media_types or ["application/json"]
        return super()._get_response_for_code(serializer, status_code, media_types, direction)

    def _get_response_headers_for_code(self, status_code: str, direction: str = "response") -> dict[str, Any]:
        headers = super()._get_response_headers_for_code(status_code, direction)
        if status_code == "429":
            headers["Retry-After"] = RETRY_AFTER_HEADER
        if status_code.startswith("2") and self._idempotency_required() is not None:
            headers[REPLAY_HEADER] = REPLAYED_HEADER
        return headers
