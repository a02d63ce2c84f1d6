"""The audit log: every act recorded and chained; the database refuses edits; tampering is detected."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from governance import services
from governance.audit import audit_verify
from governance.models import AuditEntry, Vote
from tests.governance.conftest import client_for, fare_policy_payload


def _some_history(make_director, make_member):
    directors = [make_director() for _ in range(2)]
    member = make_member()
    proposal = services.proposal_create(
        user=directors[0].user,
        kind="fare_policy",
        title="Cheaper short trips",
        body="",
        payload=fare_policy_payload(minimum_fare="9.00"),
        closes_at=timezone.now() + timedelta(hours=1),
    )
    for director in directors:
        services.proposal_vote(proposal_id=proposal.id, user=director.user, choice="yes")
    return directors, member, proposal


def _as_attacker(sql, params=()):
    """What someone with superuser access could do: switch the protecting triggers off and edit rows."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE governance_auditentry DISABLE TRIGGER ALL")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE governance_auditentry ENABLE TRIGGER ALL")


@pytest.mark.django_db
def test_every_act_is_recorded_in_one_verified_chain(make_director, make_member):
    directors, member, _proposal = _some_history(make_director, make_member)
    kinds = list(AuditEntry.objects.order_by("sequence").values_list("kind", flat=True))
    assert kinds.count("membership.joined") == 3
    assert kinds.count("board.seat_added") == 2
    assert kinds[-5:] == [
        "proposal.opened",
        "proposal.vote",
        "proposal.vote",
        "proposal.decided",
        "fare_policy.adopted",
    ]
    board_vote = AuditEntry.objects.filter(kind="proposal.vote").first()
    assert board_vote.payload["choice"] == "yes" and board_vote.payload["member_id"] == str(directors[0].id)
    assert audit_verify().ok

    page = client_for(member.user).get("/api/v1/governance/audit").json()
    assert [e["sequence"] for e in page["results"]] == sorted(
        (e["sequence"] for e in page["results"]), reverse=True
    )
    assert page["results"][0]["kind"] == "fare_policy.adopted"
    verified = client_for(member.user).get("/api/v1/governance/audit/verify").json()
    assert verified["ok"] is True and verified["checked"] == len(kinds)
    assert verified["head"]["sequence"] == len(kinds)
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "audit log OK" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE governance_auditentry SET kind = 'x' WHERE sequence = 1",
        "DELETE FROM governance_auditentry WHERE sequence = 1",
        "UPDATE governance_vote SET choice = 'no'",
        "DELETE FROM governance_votereceipt",
    ],
)
def test_the_database_refuses_edits_and_deletions(make_director, make_member, statement):
    _some_history(make_director, make_member)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert Vote.objects.filter(choice="yes").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attack", "bad_sequence"),
    [
        (
            "UPDATE governance_auditentry SET payload = jsonb_set(payload, '{choice}', '\"no\"') "
            "WHERE sequence = (SELECT min(sequence) FROM governance_auditentry WHERE kind = 'proposal.vote')",
            None,
        ),
        ("DELETE FROM governance_auditentry WHERE sequence = 3", 3),
        (
            "DELETE FROM governance_auditentry "
            "WHERE sequence = (SELECT max(sequence) FROM governance_auditentry)",
            None,
        ),
        ("UPDATE governance_auditentry SET at = at + interval '1 second' WHERE sequence = 1", 1),
    ],
)
def test_tampering_with_the_stored_log_is_detected(make_director, make_member, attack, bad_sequence):
    _some_history(make_director, make_member)
    assert audit_verify().ok
    _as_attacker(attack)
    result = audit_verify()
    assert not result.ok
    if bad_sequence is not None:
        assert result.first_bad_sequence == bad_sequence
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("audit_verify", stdout=StringIO())
