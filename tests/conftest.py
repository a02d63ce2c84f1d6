"""Shared fixtures. Tests run on real PostGIS (pytest-django's test database) and real Redis.

Imports of Django models happen inside fixtures so the pure-rule tests can also run with `-p no:django`.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest

# Everything routes on the ETA model unless a test asks for real roads (tests/roads_fixtures.py): a machine
# that has run `make run` has demo tiles under var/roads/, and tests must not depend on that.
os.environ.setdefault("ROCHDALE_ROUTER", "model")

pytest_plugins = ["tests.roads_fixtures", "tests.cards_fixtures"]


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


@pytest.fixture(autouse=True)
def _force_login_gives_the_second_factor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """`Client.force_login(user)` signs a person fully in, second factor included (a confirmed TOTP device
    is made for them when they have none), as it skips the password: pages for staff and directors
    (the admin, the board) need that code in the session (docs/sign-in.md). `Client.login(...)` stays the
    password alone; tests of the sign-in itself use /account/login/ (tests/accounts/test_web_sign_in*)."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    from django.test import Client

    original = Client.force_login

    def force_login(self: Client, user, backend: str | None = None) -> None:
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        original(self, user, backend)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="force_login", confirmed=True)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()

    monkeypatch.setattr(Client, "force_login", force_login)
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


_DB_FIXTURES = ("db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback")


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest):
    """PBKDF2 costs about a second per password on these machines and factories hash one per user;
    MD5 keeps the suite fast. Servers that tests start as subprocesses inherit it through the env."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    from django.test import override_settings

    fast = "django.contrib.auth.hashers.MD5PasswordHasher"
    os.environ["DJANGO_PASSWORD_HASHERS"] = fast
    with override_settings(PASSWORD_HASHERS=[fast]):
        yield


@pytest.fixture(autouse=True)
def _seeded_rows(request: pytest.FixtureRequest):
    """Rows the migrations seed (fare policy v1, dispatch policy v1): a transactional test truncates every
    table on teardown, so put them back for whichever test comes next."""
    wants_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in _DB_FIXTURES
    )
    if not wants_db or not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    import importlib

    from django.apps import apps

    for module in (
        "backend.fares.migrations.0002_seed_default_policy",
        "dispatch.migrations.0003_seed_dispatch_policy",
    ):
        try:
            seeding = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        seed = getattr(seeding, "seed_default_policy", None) or seeding.seed
        seed(apps, None)
    yield


@pytest.fixture(autouse=True)
def _socket_frames_match_the_contract(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Every frame the driver and rider sockets send in a test, and every client frame they accept, must
    match docs/asyncapi.yaml (tests/contract/frames.py); a drift fails the test at teardown. The recorder
    only watches: the real consumer still parses, answers and pushes. A test that pushes frames of its own
    through the socket plumbing says so with `@pytest.mark.synthetic_frames`."""
    if not request.config.pluginmanager.has_plugin("django") or request.node.get_closest_marker(
        "synthetic_frames"
    ):
        yield
        return
    from tests.contract.frames import FrameRecorder

    recorder = FrameRecorder().install(monkeypatch)
    yield
    if recorder.drifts:
        pytest.fail(recorder.report(), pytrace=False)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def service_area(db):
    from tests.mobile_api.builders import ensure_service_area

    return ensure_service_area()


@pytest.fixture
def idem():
    """A fresh Idempotency-Key header per call."""
    import uuid

    def make(key: str | None = None) -> dict:
        return {"HTTP_IDEMPOTENCY_KEY": key or str(uuid.uuid4())}

    return make


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
