"""`manage.py seed_demo`'s part in rides booked ahead: the demo fare policy, the organisation, its people and
its system's API key, made once and kept (the key in the mode-600 credentials file, never printed), and a
booking with that key ten minutes ahead, as the simulator makes it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from dispatch.simulation.city import City


def seed(credentials) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("seed_demo", "--credentials-file", str(credentials), stdout=out)
    return out.getvalue()


def test_seed_demo_makes_the_organisation_and_the_demo_policy_once_and_keeps_the_key(db, tmp_path):
    from django.utils import timezone
    from rest_framework.test import APIClient

    from backend.fares.models import FarePolicyVersion, PolicySource
    from backend.fares.selectors import policy_in_force
    from backend.organisations.keys import api_key_matches
    from backend.organisations.models import Organisation, OrganisationApiKey, OrganisationMembership

    credentials = tmp_path / "demo-credentials.json"
    said = seed(credentials)
    stored = json.loads(credentials.read_text())
    assert credentials.stat().st_mode & 0o777 == 0o600
    organisation = Organisation.objects.get(name="Harlem Dialysis Center")
    assert (organisation.kind, organisation.reference_required) == ("clinic", True)
    assert {m.role for m in OrganisationMembership.objects.filter(organisation=organisation)} == {
        "admin",
        "coordinator",
    }
    kept = stored["organisation"]
    assert kept["id"] == str(organisation.id) and stored["staff_phone"] == "+12125550001"
    key = OrganisationApiKey.objects.get(organisation=organisation, revoked_at__isnull=True)
    assert api_key_matches(kept["api_key"], key.key_hash) and sorted(key.scopes) == [
        "trips:read",
        "trips:write",
    ]
    assert kept["api_key"] not in said and f"rk_{key.prefix}_..." in said
    # The demo's policy: the one in force with the board's least lead, and nothing else changed.
    demo = FarePolicyVersion.objects.get(version=2)
    assert demo.source == PolicySource.FOUNDING and policy_in_force().reservations.min_lead_s == 600
    assert "reservations.min_lead_s 600, not 3600" in said

    again = seed(credentials)
    assert json.loads(credentials.read_text())["organisation"]["api_key"] == kept["api_key"]
    assert FarePolicyVersion.objects.count() == 2 and "fare policy version 2)" in again
    assert OrganisationApiKey.objects.filter(organisation=organisation).count() == 1

    # The file's key lost: a new key, and the one nobody holds any more is revoked.
    credentials.write_text(json.dumps({"staff_phone": stored["staff_phone"], "password": stored["password"]}))
    seed(credentials)
    renewed = json.loads(credentials.read_text())
    assert renewed["password"] == stored["password"]
    assert renewed["organisation"]["api_key"] != kept["api_key"]
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert OrganisationApiKey.objects.filter(organisation=organisation, revoked_at__isnull=True).count() == 1

    # The simulator's booking with it: a guest's ride ten and a half minutes ahead, with a reference, at
    # whatever hour the demo runs.
    city = City.generate()
    response = APIClient().post(
        f"/api/v1/organisations/{organisation.id}/trips",
        {
            "guest": {"name": "Maria Lopez", "phone": "+13475550000"},
            "pickup": dict(zip(("lat", "lng"), city.nodes[10], strict=True)),
            "dropoff": dict(zip(("lat", "lng"), city.nodes[2000], strict=True)),
            "scheduled_for": (timezone.now() + timedelta(seconds=630)).isoformat(),
            "pickup_window_s": 600,
            "reference": "DIALYSIS-0001",
        },
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {renewed['organisation']['api_key']}",
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "scheduled"
    assert response.json()["organisation"]["reference"] == "DIALYSIS-0001"


def test_seed_demo_gives_the_portal_its_members_a_proposal_in_discussion_and_an_election_once(db, tmp_path):
    from dispatch.management.commands.seed_demo import DEMO_BYLAW_TITLE, DEMO_DRIVERS, DEMO_ELECTION_TITLE
    from governance.models import Candidate, Election, Member, MemberStatus, Proposal, ProposalComment

    credentials = tmp_path / "demo-credentials.json"
    said = seed(credentials)
    assert Member.objects.filter(status=MemberStatus.ACTIVE).count() == len(DEMO_DRIVERS)
    proposal = Proposal.objects.get(title=DEMO_BYLAW_TITLE)
    assert (proposal.kind, proposal.status, proposal.eligible) == ("bylaw", "open", len(DEMO_DRIVERS))
    assert ProposalComment.objects.filter(proposal=proposal).count() == 1
    election = Election.objects.get(title=DEMO_ELECTION_TITLE)
    assert election.phase() == "nominating" and election.seats == 1
    standing = {candidate.member_id for candidate in Candidate.objects.filter(election=election)}
    assert len(standing) == 2 and proposal.proposer.user.phone == DEMO_DRIVERS[0][0]
    assert f"{len(DEMO_DRIVERS)} members; proposal" in said

    seed(credentials)
    assert Proposal.objects.filter(title=DEMO_BYLAW_TITLE).count() == 1
    assert Election.objects.filter(title=DEMO_ELECTION_TITLE).count() == 1
    assert ProposalComment.objects.count() == 1 and Candidate.objects.count() == 2
