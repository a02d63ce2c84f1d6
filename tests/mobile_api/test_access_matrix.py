"""Object-level access over every API route that takes an id, found by walking the URL configuration.

A route with a path parameter and no case in tests/access_cases/ fails here with its name: whoever adds a
route registers how to exercise it (see tests/access_cases/__init__.py).
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.access_cases import NOT_OBJECT_ROUTES, AccessCase, load_cases
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory

API_PREFIX = "api/v1/"


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_routes_with_ids() -> dict[str, str]:
    """{route name (or pattern when unnamed): full pattern} for API routes with a path parameter."""
    routes = {}
    for full, entry in _walk(get_resolver().url_patterns):
        if not full.startswith(API_PREFIX) or not entry.pattern.regex.groupindex:
            continue
        routes[entry.name or full] = full
    return routes


CASES = load_cases()
ROUTES = {name: route for name, route in api_routes_with_ids().items() if name not in NOT_OBJECT_ROUTES}


def test_the_walk_finds_the_rider_routes():
    assert {"trip-detail", "trip-cancel", "trip-rating", "trip-tip", "staff-driver-approve"} <= set(ROUTES)


def test_routes_said_to_name_no_object_exist_and_take_no_id():
    routes = api_routes_with_ids()
    for name, why in NOT_OBJECT_ROUTES.items():
        assert name in routes and "<uuid:" not in routes[name], (name, why)


def test_every_api_route_with_an_id_has_an_access_case():
    missing = sorted(name for name in ROUTES if name not in CASES)
    assert not missing, (
        "These API routes take an id but have no object-level access case; register one in a module under "
        "tests/access_cases/ (see its __init__.py):\n"
        + "\n".join(f"  {name}: /{ROUTES[name]}" for name in missing)
    )


def _call(client, route_name: str, case: AccessCase, kwargs, body):
    from django.urls import reverse

    url = reverse(route_name, kwargs=kwargs)
    extra = dict(case.headers)
    if case.idempotency_key:
        extra["HTTP_IDEMPOTENCY_KEY"] = str(uuid.uuid4())
    method = getattr(client, case.method)
    if case.method in {"get", "delete"}:
        return method(url, **extra)
    return method(url, body or {}, format="json", **extra)


def _unknown_kwargs(kwargs):
    """The same route for an object that does not exist: a new UUID, or a provider's id (`pm_...`) with a
    character more."""
    return {
        key: uuid.uuid4()
        if isinstance(value, uuid.UUID)
        else (f"{value}0" if isinstance(value, str) else value)
        for key, value in kwargs.items()
    }


def _path_value(value):
    """UUIDs as UUIDs; a provider's own ids (Stripe's `pm_...`) stay strings."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return str(value)


@pytest.mark.django_db
@pytest.mark.parametrize("route_name", sorted(ROUTES))
def test_only_the_owner_reaches_the_object(route_name, request: pytest.FixtureRequest):
    from rest_framework.test import APIClient

    if route_name not in CASES:
        pytest.fail(f"No access case for /{ROUTES[route_name]} ({route_name}); see tests/access_cases/.")
    for case in CASES[route_name]:
        for fixture in case.fixtures:
            request.getfixturevalue(fixture)
        arranged = case.arrange()
        kwargs = {key: _path_value(value) for key, value in arranged.kwargs.items()}

        anonymous = _call(APIClient(), route_name, case, kwargs, arranged.body)
        assert anonymous.status_code == 401, (route_name, case.label, anonymous.content)
        assert anonymous.json()["error"]["code"] == "not_authenticated"

        for outsider in (RiderFactory(), DriverFactory()):
            client = auth_client_for(outsider)
            response = _call(client, route_name, case, kwargs, arranged.body)
            assert response.status_code == case.outsider_status, (route_name, case.label, response.content)
            assert set(response.json()) == {"error"}
            if case.outsider_status == 404:
                # Indistinguishable from an id that does not exist.
                unknown = _call(client, route_name, case, _unknown_kwargs(kwargs), arranged.body)
                assert unknown.status_code == 404
                assert unknown.json() == response.json()

        owner = _call(auth_client_for(arranged.owner), route_name, case, kwargs, arranged.body)
        assert owner.status_code == case.owner_status, (route_name, case.label, owner.content)
