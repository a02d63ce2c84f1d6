from __future__ import annotations

import json

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.health import (
    READINESS_SCOPES,
    check_database,
    check_redis,
    liveness,
    readiness,
    unknown_scope_response,
)
from mobile_api.schema import error_responses

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


_LiveSerializer = inline_serializer("Liveness", {"status": serializers.ChoiceField(choices=["ok"])})

_BeatSerializer = inline_serializer(
    "Heartbeat",
    {
        "status": serializers.ChoiceField(choices=["ok", "stale", "down"]),
        "age_s": serializers.FloatField(allow_null=True, help_text="seconds since the last beat"),
    },
)

_ReadySerializer = inline_serializer(
    "Readiness",
    {
        "status": serializers.ChoiceField(choices=["ok", "unavailable"]),
        "database": serializers.ChoiceField(choices=["ok", "down"]),
        "redis": serializers.ChoiceField(choices=["ok", "down"]),
        "migrations": serializers.ChoiceField(choices=["ok", "pending", "down"]),
        "heartbeats": inline_serializer(
            "ReadinessHeartbeats",
            {
                "celery_worker": _BeatSerializer,
                "celery_beat": _BeatSerializer,
                "dispatch_worker": serializers.DictField(child=_BeatSerializer, help_text="by region"),
            },
        ),
        "failing": serializers.ListField(
            child=serializers.CharField(), help_text='the checks not "ok", e.g. "dispatch_worker.default"'
        ),
    },
)


class _ProbeView(APIView):
    """The probes' routes, for the OpenAPI description: backend.health.HealthProbeMiddleware answers
    GET and HEAD on these paths, with the same bodies, before any host check or view is reached."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # the middleware's answer is never throttled: say so in the schema

    @staticmethod
    def answer(body: dict[str, object], status: int) -> Response:
        response = Response(body, status=status)
        response._has_been_logged = True  # type: ignore[attr-defined]  # a 503 is the answer, logged once
        return response


class LivenessView(_ProbeView):
    @extend_schema(
        operation_id="health_live",
        responses={200: _LiveSerializer},
        summary="The process is up (checks nothing it depends on; any Host is accepted)",
    )
    def get(self, request: Request) -> Response:
        return self.answer(*liveness())


class ReadinessView(_ProbeView):
    @extend_schema(
        operation_id="health_ready",
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                enum=list(READINESS_SCOPES),
                required=False,
                description=(
                    '"stack" (default): heartbeats decide too. "server": only what this server needs '
                    "(database, Redis, migrations); the heartbeats are still reported. Kubernetes "
                    "readiness probes use it (docs/operations.md)."
                ),
            )
        ],
        responses={200: _ReadySerializer, 503: _ReadySerializer, **error_responses({400: ["invalid_input"]})},
        summary=(
            "Database, Redis, migrations applied, and fresh heartbeats of the Celery worker, beat and the "
            "dispatch worker (any Host is accepted)"
        ),
    )
    def get(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "stack")
        if scope not in READINESS_SCOPES:
            return self.answer(json.loads(unknown_scope_response(scope).content), 400)
        return self.answer(*readiness(scope))
