"""The bearer scheme of the OpenAPI description (simplejwt's access tokens)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "rest_framework_simplejwt.authentication.JWTAuthentication"
    # The project authenticates with a subclass that also applies the user's language (docs/languages.md).
    match_subclasses = True
    name = "bearerAuth"
    priority = 1

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
