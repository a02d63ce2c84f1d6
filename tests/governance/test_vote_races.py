"""Races decided by the database: one member voting twenty times at once records exactly one vote."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from backend.errors import Conflict
from governance import services
from governance.audit import audit_verify
from governance.models import AuditEntry, Vote, VoteReceipt


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_votes_by_one_member_record_exactly_one(make_member):
    voter = make_member()
    others = [make_member() for _ in range(30)]  # enough voters that one vote cannot decide it
    proposal = services.proposal_create(
        user=others[0].user,
        kind="general",
        title="Race",
        body="",
        payload={},
        closes_at=timezone.now() + timedelta(hours=1),
    )
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def cast(choice: str) -> None:
        try:
            start.wait()
            services.proposal_vote(proposal_id=proposal.id, user=voter.user, choice=choice)
            result = "recorded"
        except Conflict as error:
            result = error.code
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=cast, args=("yes" if i % 2 else "no",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["already_voted"] * 19 + ["recorded"]
    assert VoteReceipt.objects.filter(proposal=proposal, member=voter).count() == 1
    assert Vote.objects.filter(proposal=proposal).count() == 1
    assert AuditEntry.objects.filter(kind="proposal.vote").count() == 1
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_by_different_members_keep_the_audit_chain_linear(make_member):
    members = [make_member() for _ in range(12)]
    proposal = services.proposal_create(
        user=members[0].user,
        kind="bylaw",
        title="Chain",
        body="",
        payload={},
        closes_at=timezone.now() + timedelta(hours=1),
    )
    start = threading.Barrier(len(members))

    def cast(member) -> None:
        try:
            start.wait()
            services.proposal_vote(proposal_id=proposal.id, user=member.user, choice="abstain")
        finally:
            connection.close()

    threads = [threading.Thread(target=cast, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Vote.objects.filter(proposal=proposal).count() == 12
    sequences = list(AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert audit_verify().ok
