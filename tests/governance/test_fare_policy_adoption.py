"""A passed fare-policy proposal is the policy in force within seconds: estimates change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.fares.models import FarePolicyVersion
from backend.fares.pricing import quote_fare
from backend.fares.selectors import policy_in_force
from governance import services
from governance.models import AuditEntry
from tests.factories import RiderFactory, square_service_area
from tests.governance.conftest import client_for, fare_policy_payload

pytestmark = pytest.mark.django_db

TRIP = {"pickup": {"lat": 40.7580, "lng": -73.9855}, "dropoff": {"lat": 40.7831, "lng": -73.9712}}


def test_a_passed_fare_policy_changes_estimates_at_once(make_director):
    square_service_area()
    rider = client_for(RiderFactory())
    before = rider.post("/api/v1/fares/estimate", TRIP, format="json")
    assert before.status_code == 200, before.content
    quote_before = quote_fare(policy_in_force(), distance_m=8000, duration_s=1200).fare

    directors = [make_director() for _ in range(3)]
    response = client_for(directors[0].user).post(
        "/api/v1/governance/proposals",
        {
            "kind": "fare_policy",
            "title": "Double the base fare",
            "body": "",
            "payload": fare_policy_payload(base="5.00", minimum_fare="12.00"),
            "closes_at": (timezone.now() + timedelta(days=2)).isoformat(),
        },
        format="json",
    )
    proposal_id = response.json()["id"]
    for director in directors[:2]:
        vote = client_for(director.user).post(
            f"/api/v1/governance/proposals/{proposal_id}/votes", {"choice": "yes"}, format="json"
        )
        assert vote.status_code == 201
    result = client_for(directors[2].user).get(f"/api/v1/governance/proposals/{proposal_id}/result").json()
    assert result["status"] == "passed" and result["quorum_met"] is True

    version = FarePolicyVersion.objects.get(proposal_id=proposal_id)
    assert version.source == "governance"
    assert policy_in_force().version == version.version
    assert quote_fare(policy_in_force(), distance_m=8000, duration_s=1200).fare == quote_before + 250

    after = rider.post("/api/v1/fares/estimate", TRIP, format="json").json()
    assert after["policy_version"] == version.version
    assert after["fare"]["amount"] == before.json()["fare"]["amount"] + 250
    assert AuditEntry.objects.filter(kind="fare_policy.adopted", payload__version=version.version).exists()


def test_a_future_effective_at_is_kept_and_a_past_one_means_at_once(make_director):
    director = make_director()
    later = timezone.now() + timedelta(days=3)
    proposal = services.proposal_create(
        user=director.user,
        kind="fare_policy",
        title="Later",
        body="",
        payload={**fare_policy_payload(per_minute="0.90"), "effective_at": later.isoformat()},
        closes_at=timezone.now() + timedelta(hours=1),
    )
    services.proposal_vote(proposal_id=proposal.id, user=director.user, choice="yes")
    version = FarePolicyVersion.objects.get(proposal_id=proposal.id)
    assert version.effective_at == later
    assert policy_in_force().version != version.version
    assert policy_in_force(later + timedelta(seconds=1)).version == version.version
