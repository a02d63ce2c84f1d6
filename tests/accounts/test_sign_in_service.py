"""One sign-in path (backend/accounts/sign_in.py) behind both transports: the API's token route and the
web pages' sign-in page (/account/login/, the board's) count failures against the same phone and IP,
whatever spelling of the phone is typed."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from backend.accounts.sign_in import InvalidCredentials, user_sign_in
from backend.accounts.throttling import SignInLocked
from tests.factories import TEST_PASSWORD, RiderFactory

pytestmark = pytest.mark.django_db


def _api_sign_in(phone: str, password: str, ip: str = "203.0.113.7") -> int:
    return (
        APIClient()
        .post("/api/v1/auth/token", {"phone": phone, "password": password}, format="json", REMOTE_ADDR=ip)
        .status_code
    )


def _page_sign_in(phone: str, password: str, ip: str = "203.0.113.7", client: Client | None = None) -> int:
    """The web pages' sign-in (/account/login/, which the board uses)."""
    return (
        (client or Client())
        .post("/account/login/", {"username": phone, "password": password}, REMOTE_ADDR=ip)
        .status_code
    )


def _spellings(phone: str) -> list[str]:
    """The same E.164 number written the ways people type it (all of them sign in)."""
    country, area, exchange, line = phone[:2], phone[2:5], phone[5:8], phone[8:]
    return [
        f"{country} {area} {exchange} {line}",
        f"{country} ({area}) {exchange}-{line}",
        f"{country}-{area}-{exchange}-{line}",
        f" {phone} ",
    ]


def test_every_spelling_of_a_phone_signs_in():
    rider = RiderFactory()
    for spelling in _spellings(rider.phone):
        assert _api_sign_in(spelling, TEST_PASSWORD) == 200, spelling


def test_respelling_the_phone_does_not_reset_its_lockout(settings):
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 3
    rider = RiderFactory()
    spellings = _spellings(rider.phone)
    for attempt, spelling in enumerate(spellings[:3]):
        assert _api_sign_in(spelling, "wrong", ip=f"203.0.113.{attempt + 1}") == 401
    assert _api_sign_in(spellings[3], TEST_PASSWORD, ip="198.51.100.1") == 429
    assert _api_sign_in(rider.phone, TEST_PASSWORD, ip="198.51.100.2") == 429


def test_failures_on_the_board_and_the_api_count_together(settings):
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 4
    rider = RiderFactory()
    assert _page_sign_in(rider.phone, "wrong") == 401
    assert _api_sign_in(rider.phone, "wrong") == 401
    assert _page_sign_in(rider.phone, "wrong") == 401
    assert _api_sign_in(rider.phone, "wrong") == 401
    assert _page_sign_in(rider.phone, TEST_PASSWORD) == 429
    assert _api_sign_in(rider.phone, TEST_PASSWORD) == 429


def test_the_board_locks_an_ip_out_across_phones(settings):
    settings.ROCHDALE_SIGN_IN_IP_MAX_FAILURES = 3
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 100
    riders = [RiderFactory() for _ in range(3)]
    for rider in riders:
        assert _page_sign_in(rider.phone, "wrong", ip="192.0.2.60") == 401
    assert _page_sign_in(riders[0].phone, TEST_PASSWORD, ip="192.0.2.60") == 429
    assert _api_sign_in(riders[0].phone, TEST_PASSWORD, ip="192.0.2.60") == 429
    # A rider is no director: signed in, but the board pages are not for them.
    browser = Client()
    assert _page_sign_in(riders[0].phone, TEST_PASSWORD, ip="192.0.2.61", client=browser) == 302
    assert browser.get("/board/").status_code == 403


def test_the_service_answers_the_user_or_a_refusal(settings):
    settings.ROCHDALE_SIGN_IN_MAX_FAILURES = 2
    rider = RiderFactory()
    assert user_sign_in(phone=rider.phone, password=TEST_PASSWORD, ip="192.0.2.70") == rider
    with pytest.raises(InvalidCredentials):
        user_sign_in(phone=rider.phone, password="wrong", ip="192.0.2.70")
    with pytest.raises(InvalidCredentials):
        user_sign_in(phone="not a phone", password="wrong", ip="192.0.2.70")
    with pytest.raises(InvalidCredentials):
        user_sign_in(phone=rider.phone, password="wrong", ip="192.0.2.70")
    with pytest.raises(SignInLocked) as locked:
        user_sign_in(phone=rider.phone, password=TEST_PASSWORD, ip="192.0.2.70")
    assert locked.value.details["scope"] == "phone"
