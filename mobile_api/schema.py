"""OpenAPI additions: the bearer scheme, and the contract's error body on every operation."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


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

MoneySerializer = inline_serializer(
    "Money", {"amount": serializers.IntegerField(), "currency": serializers.CharField(max_length=3)}
)
