"""The staff live map (/map/ and its socket) shows every driver's position, riders' trips and SOS alerts with
names and phones: like the admin, it is for staff whose session gave the second factor (docs/sign-in.md).
A staff session without a verified code (signed in before being made staff, signed in by some other way
than the sign-in page, or whose device staff just reset) must not open it."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from backend.accounts.second_factor import second_factor_reset
from backend.asgi import application
from tests.accounts.test_web_sign_in import _code, _password
from tests.factories import TEST_PASSWORD, StaffFactory
from tests.second_factor import authenticator_for

pytestmark = pytest.mark.django_db(transaction=True)

MAP_ROUTES = ("/map/", "/map/snapshot.json", "/map/streets.json", "/map/areas.json")


def _refused_for_want_of_the_code(answer) -> bool:
    return answer.status_code == 302 and answer["Location"].startswith(("/account/verify/", "/account/two"))


def test_a_staff_session_loses_the_map_when_its_second_factor_is_reset():
    staff = StaffFactory()
    device = authenticator_for(staff)
    browser = Client()
    _password(browser, staff)
    assert browser.post("/account/verify/", {"code": _code(device)}).status_code == 302
    assert browser.get("/map/").status_code == 200

    second_factor_reset(user=staff)  # the phone was lost: its sessions must stop being staff sessions

    for route in MAP_ROUTES:
        assert _refused_for_want_of_the_code(browser.get(route)), route
    acknowledge = browser.post(f"/map/alerts/{uuid.uuid4()}/acknowledge")
    assert _refused_for_want_of_the_code(acknowledge)


def _password_alone_session(staff) -> Client:
    browser = Client()
    assert browser.login(username=staff.phone, password=TEST_PASSWORD)  # no code step
    return browser


def test_a_password_alone_does_not_open_the_map():
    browser = _password_alone_session(StaffFactory())
    for route in MAP_ROUTES:
        assert _refused_for_want_of_the_code(browser.get(route)), route


async def test_a_password_alone_does_not_open_the_maps_socket():
    browser = await sync_to_async(_password_alone_session)(await sync_to_async(StaffFactory)())
    session = browser.cookies["sessionid"].value
    socket = WebsocketCommunicator(
        application,
        "/ws/map/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session}".encode())],
    )
    connected, _code_given = await socket.connect()
    await socket.disconnect()
    assert not connected, "the live map's socket opened for a staff session without its second factor"
