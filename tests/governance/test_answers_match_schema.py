"""Real answers hold exactly the fields the OpenAPI description declares (no more, none missing), for the
governance routes as a member and staff read them and for the trip object (the one document still built by
hand, for the websocket pushes: dispatch.serializers.trip_for)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone
from rest_framework.test import APIClient

from dispatch.models import DriverPresence
from governance import services
from governance.models import DividendStatement, Election
from tests.factories import StaffFactory
from tests.governance.conftest import client_for, fare_policy_payload
from tests.mobile_api.builders import assigned_trip, completed_trip

pytestmark = pytest.mark.django_db


@pytest.fixture
def openapi():
    response = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return response.json()


def _component(openapi, reference: str) -> dict:
    return openapi["components"]["schemas"][reference.rsplit("/", 1)[1]]


def _conforms(openapi, node: dict, value, where: str) -> None:
    """`value` has every required property of `node`, and no property `node` does not declare."""
    if "$ref" in node:
        node = _component(openapi, node["$ref"])
    if "allOf" in node:
        node = {**node, **_component(openapi, node["allOf"][0]["$ref"])}
    if value is None:
        assert node.get("nullable") or "oneOf" in node, f"{where}: null is not allowed"
        return
    if "oneOf" in node:
        node = next(branch for branch in node["oneOf"] if "NullEnum" not in branch.get("$ref", ""))
        return _conforms(openapi, node, value, where)
    if "enum" in node:
        assert value in node["enum"], f"{where}: {value!r} not in {node['enum']}"
    if node.get("type") == "array":
        for index, item in enumerate(value):
            _conforms(openapi, node["items"], item, f"{where}[{index}]")
    if node.get("type") == "object" and "properties" in node:
        assert isinstance(value, dict), where
        assert set(value) <= set(node["properties"]), (
            f"{where}: undeclared {set(value) - set(node['properties'])}"
        )
        assert set(node.get("required", [])) <= set(value), (
            f"{where}: missing {set(node['required']) - set(value)}"
        )
        for key, item in value.items():
            _conforms(openapi, node["properties"][key], item, f"{where}.{key}")
    if node.get("format") == "date-time":
        assert value.endswith("Z"), f"{where}: {value} is not UTC with a Z"


def _check(
    openapi, client, path: str, route: str, method: str = "get", status: str = "200", **kwargs
) -> dict:
    response = getattr(client, method)(path, **kwargs)
    assert str(response.status_code) == status, response.content
    declared = openapi["paths"][route][method]["responses"][status]["content"]["application/json"]["schema"]
    body = response.json()
    _conforms(openapi, declared, body, f"{method} {route}")
    return body


def test_governance_answers_hold_exactly_the_declared_fields(
    openapi, make_director, make_member, complete_trip
):
    director = make_director()
    make_director()
    member = make_member()
    complete_trip(member.user)
    staff = StaffFactory()
    closes_at = (timezone.now() + timedelta(days=1)).isoformat()
    board = client_for(director.user)
    fare_policy = _check(
        openapi,
        board,
        "/api/v1/governance/proposals",
        "/api/v1/governance/proposals",
        method="post",
        status="201",
        data={
            "kind": "fare_policy",
            "title": "Raise the per-mile rate",
            "payload": {**fare_policy_payload(per_distance="1.90"), "effective_at": "2030-01-01T00:00:00Z"},
            "closes_at": closes_at,
        },
        format="json",
    )
    assert fare_policy["board_votes"] == [] and fare_policy["my_vote"] == {"eligible": True, "voted": False}
    services.proposal_vote(proposal_id=fare_policy["id"], user=director.user, choice="yes")
    general = services.proposal_create(
        user=member.user,
        kind="general",
        title="A second office",
        body="",
        payload={},
        closes_at=timezone.now() + timedelta(days=1),
    )
    election = services.election_create(
        user=staff,
        title="Board election",
        seats=2,
        nominations_close_at=timezone.now() + timedelta(days=7),
        voting_closes_at=timezone.now() + timedelta(days=14),
    )
    services.election_nominate(election_id=election.id, user=member.user, statement="Vote for me")
    DividendStatement.objects.create(
        proposal=general,
        member=member,
        period_start=timezone.localdate(),
        period_end=timezone.localdate(),
        basis="trips",
        patronage="1",
        total_minor=300,
        cash_minor=120,
        capital_minor=180,
        currency="USD",
    )

    for reader in (client_for(member.user), client_for(staff)):
        listing = _check(openapi, reader, "/api/v1/governance/proposals", "/api/v1/governance/proposals")
        assert len(listing["results"]) == 2
        _check(
            openapi,
            reader,
            f"/api/v1/governance/proposals/{general.id}",
            "/api/v1/governance/proposals/{proposal_id}",
        )
        _check(
            openapi,
            reader,
            f"/api/v1/governance/proposals/{fare_policy['id']}/result",
            "/api/v1/governance/proposals/{proposal_id}/result",
        )
        _check(openapi, reader, "/api/v1/governance/elections", "/api/v1/governance/elections")
        _check(
            openapi,
            reader,
            f"/api/v1/governance/elections/{election.id}",
            "/api/v1/governance/elections/{election_id}",
        )
        _check(
            openapi,
            reader,
            f"/api/v1/governance/elections/{election.id}/result",
            "/api/v1/governance/elections/{election_id}/result",
        )
        _check(openapi, reader, "/api/v1/governance/board", "/api/v1/governance/board")
        _check(openapi, reader, "/api/v1/governance/audit", "/api/v1/governance/audit")
        _check(openapi, reader, "/api/v1/governance/audit/verify", "/api/v1/governance/audit/verify")
    member_client = client_for(member.user)
    _check(openapi, member_client, "/api/v1/governance/membership", "/api/v1/governance/membership")
    statements = _check(
        openapi, member_client, "/api/v1/governance/statements", "/api/v1/governance/statements"
    )
    assert statements["results"][0]["cash"] == {"amount": 120, "currency": "USD"}
    _check(openapi, member_client, "/api/v1/me", "/api/v1/me")

    Election.objects.filter(id=election.id).update(
        opens_at=timezone.now() - timedelta(days=3),
        nominations_close_at=timezone.now() - timedelta(days=2),
        voting_closes_at=timezone.now() - timedelta(seconds=1),
    )
    services.election_close(election_id=election.id)
    _check(
        openapi,
        member_client,
        f"/api/v1/governance/elections/{election.id}/ballots",
        "/api/v1/governance/elections/{election_id}/ballots",
    )


def test_the_trip_object_holds_exactly_the_declared_fields(openapi):
    from tests.conftest import auth_client_for

    live = assigned_trip()
    DriverPresence.objects.create(driver=live.driver, location=Point(-73.99, 40.75, srid=4326))
    rider_view = _check(
        openapi, auth_client_for(live.rider), f"/api/v1/trips/{live.id}", "/api/v1/trips/{trip_id}"
    )
    assert rider_view["driver"]["location"] is not None and rider_view["driver"]["vehicle"] is not None
    done = completed_trip()
    for viewer in (done.rider, done.driver):
        _check(openapi, auth_client_for(viewer), "/api/v1/trips", "/api/v1/trips")
