"""An election's page: standing and withdrawing (audited, final, only while nominations are open), the
numbered ranked ballot and its bad input, and the count with the anonymised ballots once closed."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from governance import selectors, services
from governance.models import AuditEntry, BallotReceipt, CandidateWithdrawal
from tests.portal.conftest import close_voting, open_voting

pytestmark = pytest.mark.django_db


def _browser(member) -> Client:
    browser = Client()
    browser.force_login(member.user)
    return browser


def test_a_member_stands_and_withdraws_and_is_off_the_ballot(make_member, make_director, call_election):
    director, member, rival = make_director(), make_member(), make_member()
    election = call_election(director)
    browser = _browser(member)
    answer = browser.post(f"/members/elections/{election.id}/stand", {"statement": "Fair dispatch for all."})
    assert answer.status_code == 302
    services.election_nominate(election_id=election.id, user=rival.user)
    page = browser.get(f"/members/elections/{election.id}/").content.decode()
    assert "Fair dispatch for all." in page and 'id="withdraw-form"' in page

    assert browser.post(f"/members/elections/{election.id}/withdraw").status_code == 302
    assert CandidateWithdrawal.objects.filter(candidate__member=member, candidate__election=election).exists()
    entry = AuditEntry.objects.get(kind="election.withdrawn")
    assert entry.payload == {"election_id": str(election.id), "member_id": str(member.id)}
    assert selectors.ballot_record(election)["candidates"] == [str(rival.id)]
    assert [c.member_id for c in selectors.election_record(election, viewer=None).candidates] == [rival.id]
    page = browser.get(f"/members/elections/{election.id}/").content.decode()
    assert "Fair dispatch for all." not in page and 'id="withdrawn-note"' in page

    # Final: standing again is refused, and so is a second withdrawal.
    again = browser.post(f"/members/elections/{election.id}/stand", {"statement": "Back again"})
    assert again.status_code == 409
    assert "withdrawal is final" in again.content.decode()
    assert browser.post(f"/members/elections/{election.id}/withdraw").status_code == 409
    assert AuditEntry.objects.filter(kind="election.withdrawn").count() == 1

    # A ballot naming the withdrawn candidate is refused once voting opens.
    open_voting(election)
    answer = browser.post(f"/members/elections/{election.id}/ballot", {f"rank-{member.id}": "1"})
    assert answer.status_code == 400
    assert not BallotReceipt.objects.filter(election=election).exists()


def test_withdrawing_is_refused_once_voting_opens_and_for_someone_not_standing(
    make_member, make_director, call_election
):
    director, member, bystander = make_director(), make_member(), make_member()
    election = call_election(director)
    services.election_nominate(election_id=election.id, user=member.user)
    assert _browser(bystander).post(f"/members/elections/{election.id}/withdraw").status_code == 409
    open_voting(election)
    answer = _browser(member).post(f"/members/elections/{election.id}/withdraw")
    assert answer.status_code == 409
    assert "Nominations for this election are closed" in answer.content.decode()
    assert not CandidateWithdrawal.objects.exists()
    assert not AuditEntry.objects.filter(kind="election.withdrawn").exists()


def _voting_election(make_member, make_director, call_election, *, candidates=3, seats=1):
    director = make_director()
    standing = [make_member() for _ in range(candidates)]
    voter = make_member()
    election = call_election(director, seats=seats)
    for member in standing:
        services.election_nominate(election_id=election.id, user=member.user)
    open_voting(election)
    return election, standing, voter


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ({}, "Rank at least one candidate"),
        ({0: "1", 1: "1"}, "same number"),
        ({0: "first"}, "Give each candidate you rank a number"),
        ({0: "0"}, "Give each candidate you rank a number"),
    ],
)
def test_a_ballot_that_does_not_rank_properly_is_refused_and_kept(
    make_member, make_director, call_election, ranks, message
):
    election, standing, voter = _voting_election(make_member, make_director, call_election)
    form = {f"rank-{standing[index].id}": value for index, value in ranks.items()}
    answer = _browser(voter).post(f"/members/elections/{election.id}/ballot", form)
    assert answer.status_code == 400
    page = answer.content.decode()
    assert message in page
    assert not BallotReceipt.objects.filter(election=election).exists()
    if ranks:  # what the voter numbered is still on the form
        select = page.split(f'name="rank-{standing[0].id}"')[1].split("</select>")[0]
        assert f'value="{ranks[0]}" selected' in select or ranks[0] in ("first", "0")


def test_a_ballot_naming_someone_who_is_not_standing_is_refused(make_member, make_director, call_election):
    election, standing, voter = _voting_election(make_member, make_director, call_election)
    answer = _browser(voter).post(
        f"/members/elections/{election.id}/ballot", {f"rank-{voter.id}": "1", f"rank-{standing[0].id}": "2"}
    )
    assert answer.status_code == 400
    assert not BallotReceipt.objects.filter(election=election).exists()


def test_a_voter_ranks_gets_a_receipt_once_and_cannot_vote_twice(make_member, make_director, call_election):
    election, standing, voter = _voting_election(make_member, make_director, call_election)
    browser = _browser(voter)
    # Numbers with a gap still make an order: 1, then 3.
    form = {f"rank-{standing[2].id}": "1", f"rank-{standing[0].id}": "3"}
    answer = browser.post(f"/members/elections/{election.id}/ballot", form)
    assert answer.status_code == 200
    page = answer.content.decode()
    receipt = re.search(r'id="receipt-code">([^<]+)<', page).group(1)
    assert BallotReceipt.objects.get(election=election).receipt_hash == services.receipt_hash(receipt)
    assert selectors.ballot_record(election)["ballots"] == [[str(standing[2].id), str(standing[0].id)]]
    again = browser.get(f"/members/elections/{election.id}/").content.decode()
    assert receipt not in again and "You have voted in this election." in again
    assert browser.post(f"/members/elections/{election.id}/ballot", form).status_code == 409


def test_a_member_off_the_roll_is_told_why(make_member, make_director, call_election):
    election, _standing, _voter = _voting_election(make_member, make_director, call_election)
    newcomer = make_member()
    page = _browser(newcomer).get(f"/members/elections/{election.id}/").content.decode()
    assert "not on this election&#x27;s voter roll" in page
    assert 'id="ballot-form"' not in page


def test_after_the_count_the_page_shows_the_stages_and_the_anonymised_ballots(
    make_member, make_director, call_election
):
    election, (alice, bob, carol), voter = _voting_election(make_member, make_director, call_election)
    ballots = [[alice, bob], [bob, alice], [carol, bob]]
    for member, ranking in zip([voter, alice, bob], ballots, strict=True):
        services.election_ballot_cast(
            election_id=election.id, user=member.user, ranking=[str(m.id) for m in ranking]
        )
    close_voting(election)
    services.election_close(election_id=election.id)
    election.refresh_from_db()
    page = _browser(voter).get(f"/members/elections/{election.id}/").content.decode()
    assert 'data-phase="closed"' in page
    elected = page.split('id="elected"')[1].split("</ol>")[0]
    winner_names = selectors.member_names([election.result["elected"][0]])
    assert next(iter(winner_names.values())) in elected
    assert 'id="stage-1"' in page and 'id="stage-2"' in page  # a first stage, then an exclusion
    record = page.split('id="ballot-record"')[1].split("</ol>")[0]
    assert record.count("<li>") == 3
    assert f"{alice.user.name} › {bob.user.name}" in record.replace("&#x27;", "'")
