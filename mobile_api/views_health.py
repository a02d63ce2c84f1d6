from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.health import check_database, check_redis

_HealthSerializer = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "database": serializers.ChoiceField(choices=["ok", "down"]),
        "redis": serializers.ChoiceField(choices=["ok", "down"]),
    },
)


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        responses={200: _HealthSerializer, 503: _HealthSerializer},
        summary="Whether this process reaches PostGIS and Redis",
    )
    def get(self, request: Request) -> Response:
        database_ok = check_database()
        redis_ok = check_redis()
        body = {
            "status": "ok" if database_ok and redis_ok else "degraded",
            "database": "ok" if database_ok else "down",
            "redis": "ok" if redis_ok else "down",
        }
        response = Response(body, status=200 if database_ok and redis_ok else 503)
        # A 503 here is the answer, not a failure of the request: backend.health logs the outage once,
        # where Django would log every probe of a load balancer as an error.
        response._has_been_logged = True  # type: ignore[attr-defined]  # read by django.utils.log
        return response
