"""The co-op's public fairness figures over HTTP: `GET /api/v1/coop/figures?month=YYYY-MM` (docs/figures.md).

Public (no sign-in, no token read), throttled per real client address, and cacheable by anyone (the figures
are aggregates with no driver in them). Thin: validate the month, call dispatch/figures.py, set the cache
header. A month that has not begun yet is refused; the month under way is answered with `complete: false`
and a short cache life.
"""

from __future__ import annotations

import logging
from datetime import date

from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.throttling import RedisRateThrottle
from backend.errors import InvalidInput
from backend.redis import REDIS_UNREACHABLE, RedisOutage
from dispatch.compliance.hvfhv import parse_month
from dispatch.figures import coop_figures, current_month, last_complete_month
from mobile_api.schema import error_responses
from mobile_api.serializers_coop import FIGURES_EXAMPLE, CoopFiguresSerializer

# How long a cache may keep an answer: a month that has ended changes only by a late correction (a
# reversal, a weekly top-up posted just after the month's last Sunday); the month under way, every trip.
COMPLETE_MONTH_MAX_AGE_S = 3600
CURRENT_MONTH_MAX_AGE_S = 300

logger = logging.getLogger(__name__)


class CoopFiguresRateThrottle(RedisRateThrottle):
    """Per real client address (the socket peer, or what the trusted proxies added), like every route open
    to anyone: `coop_figures` requests per window (ROCHDALE_COOP_FIGURES_RATE)."""

    scope = "coop_figures"
    # While Redis is unreachable the figures are answered unthrottled (logged once per outage), as the
    # per-account limit does: they are public and read-only, and a limit on how fast one address reads them
    # must not take them down with the cache. Sign-in, where the limit guards passwords, refuses instead.
    redis_outage = RedisOutage("the public figures' rate limit (requests pass meanwhile)", logger=logger)

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not self.redis_outage.may_try():
            return True
        try:
            allowed = super().allow_request(request, view)
        except REDIS_UNREACHABLE as exc:
            self.redis_outage.failed(exc)
            return True
        self.redis_outage.recovered()
        return allowed


def _month(request: Request) -> date:
    """The month asked for (`?month=YYYY-MM`), or the last complete one; never a month not begun yet."""
    raw = request.query_params.get("month")
    if raw is None or raw == "":
        return last_complete_month()
    try:
        month = parse_month(raw)
    except ValueError as error:
        raise InvalidInput(
            details={
                "month": [
                    gettext("Write the month as YYYY-MM, for example %(example)s.") % {"example": "2026-10"}
                ]
            }
        ) from error
    if month > current_month():
        raise InvalidInput(
            details={"month": [gettext("There are no figures yet for a month that has not begun.")]}
        )
    return month


class CoopFiguresView(APIView):
    authentication_classes: list = []  # public: a stale or bad token must not turn the figures into a 401
    permission_classes = [AllowAny]
    throttle_classes = [CoopFiguresRateThrottle]

    @extend_schema(
        operation_id="coop_figures",
        summary="The co-op's public fairness figures for one month",
        description="Trips, drivers, commission kept, floor top-ups, the share of trips paid over the "
        "floor, the Gini coefficient of hourly earnings among drivers with comparable online hours, offer "
        "share by driver decile and WAV response times, for a local calendar month (docs/figures.md). "
        "Aggregates only; a figure computed over fewer than `min_drivers` drivers is null and named in "
        "`suppressed`.",
        parameters=[
            OpenApiParameter(
                "month",
                OpenApiTypes.STR,
                description="`YYYY-MM`, a month of the co-op's time zone; the last complete month if absent. "
                "A month not begun yet is refused.",
            )
        ],
        responses={
            200: CoopFiguresSerializer,
            **error_responses({400: ["invalid_input"]}),
        },
        examples=[OpenApiExample("October", value=FIGURES_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        month = _month(request)
        body = coop_figures(month=month)
        response = Response(body)
        max_age = COMPLETE_MONTH_MAX_AGE_S if body["complete"] else CURRENT_MONTH_MAX_AGE_S
        patch_cache_control(response, public=True, max_age=max_age)
        return response
