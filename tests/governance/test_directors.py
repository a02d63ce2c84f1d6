"""One meaning of "director" everywhere: a member in good standing holding a seat now
(governance.selectors.is_director). A suspended director keeps the seat but is no director while suspended:
not in /me's roles, not on the board pages, not among the board's voters, and may not call an election."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from backend.errors import PermissionDenied
from governance import selectors, services
from governance.models import Member, MemberStatus
from tests.factories import TEST_PASSWORD, StaffFactory
from tests.governance.conftest import client_for

pytestmark = pytest.mark.django_db


def _suspend(member: Member) -> Member:
    return services.membership_set_status(
        member_id=member.id, status=MemberStatus.SUSPENDED, actor=StaffFactory(), reason="test"
    )


def _board_sign_in(member: Member) -> int:
    """The board's answer after the member's password on the one sign-in page: a director (who has no
    authenticator yet) is sent on to the code step, anyone else is refused the board."""
    browser = Client()
    browser.post("/account/login/", {"username": member.user.phone, "password": TEST_PASSWORD})
    answer = browser.get("/board/")
    assert answer.status_code != 302 or answer["Location"] == "/account/verify/?next=/board/"
    return answer.status_code


def test_a_director_in_good_standing_is_a_director_everywhere(make_director):
    director = make_director()
    assert selectors.is_director(director)
    assert list(selectors.directors_in_force()) == [director]
    me = client_for(director.user).get("/api/v1/me").json()
    assert "director" in me["roles"] and me["member"]["director"] is True
    assert me["member"]["term_ends"] is not None
    assert _board_sign_in(director) == 302


def test_a_suspended_director_is_no_director_while_suspended(make_director):
    director = _suspend(make_director())
    # The seat is still in force: the board lists it, and reinstating the member restores the director.
    assert selectors.seats_in_force().filter(member=director).exists()

    assert not selectors.is_director(director)
    assert list(selectors.directors_in_force()) == []
    assert selectors.user_governance_roles(director.user) == ["member"]
    me = client_for(director.user).get("/api/v1/me").json()
    assert "director" not in me["roles"]
    assert me["member"]["director"] is False and me["member"]["term_ends"] is None
    assert _board_sign_in(director) == 403
    now = timezone.now()
    with pytest.raises(PermissionDenied) as refused:
        services.election_create(
            user=director.user,
            title="Called by a suspended director",
            seats=1,
            nominations_close_at=now + timedelta(days=1),
            voting_closes_at=now + timedelta(days=2),
        )
    assert refused.value.code == "not_a_director"

    reinstated = services.membership_set_status(
        member_id=director.id, status=MemberStatus.ACTIVE, actor=StaffFactory()
    )
    assert selectors.is_director(reinstated)
    assert selectors.user_governance_roles(director.user) == ["member", "director"]
