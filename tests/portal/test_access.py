"""Who reaches the portal: the one sign-in page for everyone, the TOTP step for directors and staff, and
members only once signed in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from tests.factories import TEST_PASSWORD, RiderFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/members/",
    "/members/proposals/",
    "/members/elections/",
    "/members/membership/",
    "/members/work/",
    "/members/numbers/",
]


@pytest.mark.parametrize("path", PAGES)
def test_a_visitor_is_sent_to_the_one_sign_in_page(path):
    answer = Client().get(path)
    assert answer.status_code == 302
    where = urlsplit(answer["Location"])
    assert where.path == "/account/login/"
    assert parse_qs(where.query)["next"] == [path]


def test_someone_who_is_no_member_is_told_the_pages_are_for_members():
    browser = Client()
    browser.force_login(RiderFactory())
    answer = browser.get("/members/proposals/")
    assert answer.status_code == 403
    assert "for members" in answer.content.decode()


def test_a_member_signs_in_with_the_password_alone(make_member):
    member = make_member()
    browser = Client()
    assert browser.login(phone=member.user.phone, password=TEST_PASSWORD)
    assert browser.get("/members/").status_code == 200


def test_a_director_must_also_give_the_code(make_director):
    director = make_director()
    browser = Client()
    assert browser.login(phone=director.user.phone, password=TEST_PASSWORD)  # password only: no code given
    answer = browser.get("/members/membership/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/account/verify/?next=")
    verified = Client()
    verified.force_login(director.user)  # the test client's sign-in includes the second factor
    assert verified.get("/members/membership/").status_code == 200


def test_every_form_wants_the_csrf_token(make_member, bylaw_proposal):
    member = make_member()
    proposal = bylaw_proposal(member)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    answer = browser.post(f"/members/proposals/{proposal.id}/vote", {"choice": "yes"})
    assert answer.status_code == 403
    answer = browser.post(f"/members/proposals/{proposal.id}/comments", {"body": "Agreed."})
    assert answer.status_code == 403
    assert not proposal.receipts.exists()
    assert not proposal.comments.exists()


def test_an_unknown_proposal_or_election_is_the_portal_s_404(make_member):
    member = make_member()
    browser = Client()
    browser.force_login(member.user)
    for path in (
        "/members/proposals/00000000-0000-0000-0000-000000000000/",
        "/members/elections/00000000-0000-0000-0000-000000000000/",
    ):
        answer = browser.get(path)
        assert answer.status_code == 404
        assert "Nothing here" in answer.content.decode()
