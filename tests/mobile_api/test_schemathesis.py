"""Property-based run of every operation in /api/v1/schema against the app in-process (WSGI), signed in as a
rider with a service area and a fare policy: no 5xx, and every answer matches its documented schema,
status code and content type."""

from __future__ import annotations

import time

import pytest
import schemathesis
from django.conf import settings as dj_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend import heartbeats
from tests.factories import RiderFactory
from tests.mobile_api.builders import completed_trip

EXAMPLES_PER_OPERATION = 6
BUDGET_S = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def in_process_wsgi():
    """The WSGI handler closes database connections around each request; inside the test's transaction
    that would end the transaction, so (as Django's test client does) keep the connection for the test."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


RIDER_API_PREFIXES = (
    "/api/v1/health",
    "/api/v1/auth/",
    "/api/v1/me",
    "/api/v1/ws-ticket",
    "/api/v1/staff/drivers/",
    "/api/v1/fares/estimate",
    "/api/v1/trips",
)


def _is_rider_api(path: str) -> bool:
    return path.startswith(RIDER_API_PREFIXES)


def _run(wsgi_app, *, include) -> tuple[int, list[str]]:
    rider = RiderFactory()
    completed_trip(rider)
    token = str(RefreshToken.for_user(rider).access_token)
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema", wsgi_app)
    started = time.monotonic()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not include(operation.path):
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=CHECKS)

        # Readiness (GET /api/v1/health/ready) wants fresh heartbeats of the Celery worker, beat and the
        # dispatch worker; none runs here, so beat for them as they would, just before each operation.
        heartbeats.write(
            [
                heartbeats.CELERY_WORKER_KEY,
                heartbeats.CELERY_BEAT_KEY,
                heartbeats.dispatch_worker_key(dj_settings.ROCHDALE_DISPATCH_REGION),
            ]
        )
        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
        assert time.monotonic() - started < BUDGET_S, f"schemathesis run over {BUDGET_S}s budget"
    return operations, failures


@pytest.mark.django_db
def test_rider_and_account_operations_hold_to_their_schema(in_process_wsgi, service_area, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    operations, failures = _run(in_process_wsgi, include=_is_rider_api)
    # 15, and PATCH /me (the account's email), GET /me/export and POST /me/erasure (data rights), and
    # GET /me/organisations with the four answers to invitations (docs/organisations.md): 23; the seven
    # notification routes under /me/ (docs/notifications.md); and the seven safety routes under /trips/ and
    # /me/ (share links, their revocation, SOS, the ride PIN's reset, /me/safety; docs/safety.md); and the
    # two probes, /health/live and /health/ready (docs/operations.md, "Health and heartbeats").
    assert operations == 23 + 7 + 7 + 2
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db
def test_every_other_operation_holds_to_its_schema(in_process_wsgi, service_area, settings):
    """The driver, fare policy and governance routes, with the same rider's token (most answer 403)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    operations, failures = _run(in_process_wsgi, include=lambda path: not _is_rider_api(path))
    assert operations >= 1
    assert not failures, "\n\n".join(failures)
