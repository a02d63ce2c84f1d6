"""Shared fixtures. Tests run on real PostGIS (pytest-django's test database) and real Redis.

Imports of Django models happen inside fixtures so the pure-rule tests can also run with `-p no:django`.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest


@pytest.fixture(autouse=True)
def _clean_redis(request: pytest.FixtureRequest):
    """Each test starts with an empty Redis database (tickets, throttles, presence, queues)."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    from django.conf import settings

    db_number = int((urlparse(settings.REDIS_URL).path or "/0").lstrip("/") or 0)
    if db_number == 0:
        pytest.exit(
            "Tests flush their Redis database; point REDIS_URL at a spare database (make test uses /15).",
            returncode=3,
        )
    from backend.redis import get_redis

    get_redis().flushdb()
    yield


@pytest.fixture(scope="session", autouse=True)
def _drop_stray_test_db_sessions(request: pytest.FixtureRequest):
    """Async tests touch the database from asgiref's worker thread, whose connection outlives the test;
    end such sessions before pytest-django drops the test database, or the drop fails."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    # Requesting the database setup here makes this fixture's teardown run before the database is dropped.
    request.getfixturevalue("django_db_setup")
    blocker = request.getfixturevalue("django_db_blocker")
    yield
    from django.db import connection

    try:
        with blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except Exception:  # the database may never have been set up in this run
        pass


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def rider(db):
    from tests.factories import RiderFactory

    return RiderFactory()


@pytest.fixture
def driver(db):
    from tests.factories import DriverFactory

    return DriverFactory()


@pytest.fixture
def staff_user(db):
    from tests.factories import StaffFactory

    return StaffFactory()


def auth_client_for(user):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def rider_client(rider):
    return auth_client_for(rider)


@pytest.fixture
def driver_client(driver):
    return auth_client_for(driver)


@pytest.fixture
def staff_client(staff_user):
    return auth_client_for(staff_user)


os.environ.setdefault("ROCHDALE_TESTING", "1")
