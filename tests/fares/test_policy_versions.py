"""Fare policy versions: created only by policy_version_create (governance, founding command) or the seed;
the one in force and the history over the API."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from backend.errors import InvalidInput
from backend.fares.models import FarePolicyVersion, PolicySource
from backend.fares.selectors import policy_in_force, policy_version_in_force
from backend.fares.services import policy_version_create
from tests.conftest import auth_client_for
from tests.factories import RiderFactory
from tests.fares.builders import CONTRACT_EXAMPLE_POLICY, policy_document


@pytest.fixture
def policy_v1(seeded_policy):
    return seeded_policy


def test_numbering_is_max_plus_one_and_the_newest_is_in_force(policy_v1):
    second = policy_version_create(document=policy_document(), effective_at=None, source="founding")
    third = policy_version_create(
        document=policy_document("week"), effective_at=None, source="governance", proposal_id=uuid.uuid4()
    )
    assert (second.version, third.version) == (2, 3)
    assert third.source == PolicySource.GOVERNANCE
    assert policy_version_in_force().version == 3
    assert policy_in_force().driver_minimum.period == "week"
    # The stored document is the normalised contract object without the server-set fields.
    assert "version" not in third.document and "effective_at" not in third.document
    assert third.document["driver_minimum"]["per_minute"] == "0.62"


def test_invalid_document_gives_field_details(policy_v1):
    bad = policy_document()
    bad["rider"]["base"] = 2.5
    bad["commission_rate"] = "0.9"
    bad["surprise"] = 1
    with pytest.raises(InvalidInput) as caught:
        policy_version_create(document=bad, effective_at=None, source="founding")
    assert caught.value.code == "invalid_fare_policy"
    assert caught.value.status == 400
    assert set(caught.value.details) == {"rider.base", "commission_rate", "surprise"}
    assert FarePolicyVersion.objects.count() == 1
    with pytest.raises(InvalidInput) as not_an_object:
        policy_version_create(document=["nope"], effective_at=None, source="founding")
    assert "policy" in not_an_object.value.details


def test_source_naive_time_and_missing_proposal_are_refused(policy_v1):
    with pytest.raises(InvalidInput) as seed:
        policy_version_create(document=policy_document(), effective_at=None, source="seed")
    assert "source" in seed.value.details
    with pytest.raises(InvalidInput) as naive:
        policy_version_create(
            document=policy_document(), effective_at=datetime(2030, 1, 1), source="founding"
        )
    assert "effective_at" in naive.value.details
    with pytest.raises(InvalidInput) as no_proposal:
        policy_version_create(document=policy_document(), effective_at=None, source="governance")
    assert "proposal_id" in no_proposal.value.details


def test_effective_at_is_never_backdated_and_future_versions_wait(policy_v1):
    before = timezone.now()
    backdated = policy_version_create(
        document=policy_document(), effective_at=datetime(2021, 1, 1, tzinfo=UTC), source="founding"
    )
    assert backdated.effective_at >= before
    later = timezone.now() + timedelta(days=3)
    future = policy_version_create(document=policy_document("week"), effective_at=later, source="founding")
    assert future.effective_at == later
    assert policy_version_in_force().version == backdated.version
    assert policy_version_in_force(later + timedelta(seconds=1)).version == future.version
    # The document's own effective_at is used when none is passed.
    doc = {**policy_document(), "effective_at": (later + timedelta(days=1)).isoformat(), "version": 99}
    from_doc = policy_version_create(document=doc, effective_at=None, source="founding")
    assert from_doc.effective_at == later + timedelta(days=1)
    assert from_doc.version == future.version + 1


def test_one_version_per_proposal(policy_v1):
    proposal = uuid.uuid4()
    first = policy_version_create(
        document=policy_document(), effective_at=None, source="governance", proposal_id=proposal
    )
    again = policy_version_create(
        document=policy_document(), effective_at=None, source="governance", proposal_id=proposal
    )
    assert again.version == first.version
    assert FarePolicyVersion.objects.count() == 2


def test_versions_are_immutable(policy_v1):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE fares_farepolicyversion SET effective_at = now() WHERE version = 1")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM fares_farepolicyversion WHERE version = 1")


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_get_distinct_numbers():
    from tests.fares.builders import ensure_seed_policy

    ensure_seed_policy()
    barrier = threading.Barrier(4)
    made: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            made.append(
                policy_version_create(
                    document=policy_document(), effective_at=None, source="founding"
                ).version
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(made) == [2, 3, 4, 5]


# --- API --------------------------------------------------------------------------------------------------


def test_fare_policy_endpoint_returns_the_contract_object(policy_v1):
    version = policy_version_create(document=CONTRACT_EXAMPLE_POLICY, effective_at=None, source="founding")
    client = auth_client_for(RiderFactory())
    response = client.get("/api/v1/fare-policy")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == version.version
    assert datetime.fromisoformat(body["effective_at"].replace("Z", "+00:00")) == version.effective_at
    assert body["effective_at"].endswith("Z")
    expected = {**CONTRACT_EXAMPLE_POLICY}
    expected["driver_minimum"] = {
        **expected["driver_minimum"],
        "per_minute": "0.62",
        "wav_per_distance": "1.76",
    }
    assert {k: v for k, v in body.items() if k not in ("version", "effective_at")} == expected
    assert set(body) == {"version", "effective_at", *CONTRACT_EXAMPLE_POLICY}


def test_fare_policy_history_is_paginated_newest_first(policy_v1):
    for _ in range(3):
        policy_version_create(document=policy_document(), effective_at=None, source="founding")
    client = auth_client_for(RiderFactory())
    first = client.get("/api/v1/fare-policy/history?page_size=2").json()
    assert [doc["version"] for doc in first["results"]] == [4, 3]
    assert first["next"]
    second = client.get(first["next"]).json()
    assert [doc["version"] for doc in second["results"]] == [2, 1]
    assert second["next"] is None
    assert second["results"][1]["rider"]["minimum_fare"] == "10.00"


def test_fare_policy_needs_sign_in(policy_v1, api_client):
    for path in ("/api/v1/fare-policy", "/api/v1/fare-policy/history"):
        response = api_client.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


def test_no_write_path_over_the_api(policy_v1):
    client = auth_client_for(RiderFactory())
    assert client.post("/api/v1/fare-policy", policy_document(), format="json").status_code == 405
    assert client.post("/api/v1/fare-policy/history", policy_document(), format="json").status_code == 405


# --- The founding board's command ------------------------------------------------------------------------


def test_founding_command_adopts_a_policy(policy_v1, tmp_path, capsys):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy_document("week")))
    later = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    call_command("fare_policy_adopt", str(path), "--effective-at", later.isoformat())
    version = FarePolicyVersion.objects.get(version=2)
    assert version.source == PolicySource.FOUNDING
    assert version.effective_at == later
    assert version.document["driver_minimum"]["period"] == "week"
    assert "Adopted fare policy v2" in capsys.readouterr().out


def test_founding_command_reports_invalid_policies(policy_v1, tmp_path):
    path = tmp_path / "policy.json"
    bad = policy_document()
    bad["distance_unit"] = "furlong"
    path.write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="distance_unit"):
        call_command("fare_policy_adopt", str(path))
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("fare_policy_adopt", str(path))
    with pytest.raises(CommandError, match="zone"):
        path.write_text(json.dumps(policy_document()))
        call_command("fare_policy_adopt", str(path), "--effective-at", "2030-01-01T00:00:00")
    assert FarePolicyVersion.objects.count() == 1


def test_founding_command_is_refused_once_the_board_governs(policy_v1, tmp_path):
    policy_version_create(
        document=policy_document(), effective_at=None, source="governance", proposal_id=uuid.uuid4()
    )
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy_document()))
    with pytest.raises(CommandError, match="proposal"):
        call_command("fare_policy_adopt", str(path))
