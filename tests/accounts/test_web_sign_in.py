"""The one sign-in path for the web pages (backend/accounts/views_web.py, docs/sign-in.md): the password on
/account/login/, then the TOTP code for staff and for anyone with an authenticator, enrolment for those who
must have one and have none, the admin behind it, the board's directors, and the staff's reset."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from backend.accounts.models import User
from governance.models import AuditEntry
from tests.factories import TEST_PASSWORD, RiderFactory, StaffFactory
from tests.governance.conftest import make_director, make_member, seeded_policy  # noqa: F401 - fixtures
from tests.second_factor import authenticator_for

pytestmark = pytest.mark.django_db


def _code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the person's app shows now (or `steps_ahead` steps later: a code is accepted once)."""
    device.refresh_from_db()
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=steps_ahead)
    return f"{value:0{device.digits}d}"


def _key_from_page(secret: str) -> bytes:
    """The key an authenticator app takes from the base32 text the enrolment page shows."""
    text = secret.replace(" ", "")
    return b32decode(text + "=" * (-len(text) % 8))


def _wrong_code(device: TOTPDevice) -> str:
    right = {_code(device, steps_ahead=ahead) for ahead in (-1, 0, 1)}
    return next(candidate for candidate in ("000000", "111111", "222222", "333333") if candidate not in right)


def _password(browser: Client, user: User, *, next_url: str = "", password: str = TEST_PASSWORD, **extra):
    form = {"username": user.phone, "password": password}
    if next_url:
        form["next"] = next_url
    return browser.post("/account/login/", form, **extra)


def _signed_in_as(browser: Client) -> str | None:
    return browser.session.get("_auth_user_id")


def test_a_wrong_password_is_refused_and_signs_nobody_in():
    rider = RiderFactory()
    browser = Client()
    answer = _password(browser, rider, password="not the password")
    assert answer.status_code == 401
    assert "do not match" in answer.content.decode()
    assert _signed_in_as(browser) is None


def test_a_person_with_no_second_factor_signs_in_with_the_password_and_a_new_session_key():
    rider = RiderFactory()
    browser = Client()
    browser.get("/account/login/")
    before = browser.cookies["sessionid"].value if "sessionid" in browser.cookies else None
    answer = _password(browser, rider, next_url="/members/")
    assert answer.status_code == 302 and answer["Location"] == "/members/"
    assert _signed_in_as(browser) == str(rider.pk)
    assert browser.cookies["sessionid"].value != before


def test_staff_give_the_code_after_the_password_and_only_then_reach_the_admin():
    staff = StaffFactory()
    device = authenticator_for(staff)
    browser = Client()
    answer = _password(browser, staff, next_url="/admin/")
    assert answer.status_code == 302 and answer["Location"] == "/account/verify/?next=/admin/"
    # The password alone signs nobody in: no staff page (the admin, the live map) opens yet.
    assert _signed_in_as(browser) is None
    assert browser.get("/admin/")["Location"].startswith("/admin/login/")
    assert browser.get("/map/").status_code == 302

    wrong = browser.post("/account/verify/", {"code": _wrong_code(device), "next": "/admin/"})
    assert wrong.status_code == 401 and "not right" in wrong.content.decode()
    assert _signed_in_as(browser) is None
    time.sleep(1.1)  # django-otp's own backoff after a wrong code: one second before it looks at another

    session_before = browser.cookies["sessionid"].value
    right = browser.post("/account/verify/", {"code": _code(device), "next": "/admin/"})
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert _signed_in_as(browser) == str(staff.pk)
    assert browser.cookies["sessionid"].value != session_before
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/login/?next=/admin/accounts/user/")["Location"] == "/admin/accounts/user/"


def test_a_code_is_accepted_once():
    staff = StaffFactory()
    device = authenticator_for(staff)
    code = _code(device)
    first = Client()
    _password(first, staff)
    assert first.post("/account/verify/", {"code": code}).status_code == 302
    second = Client()
    _password(second, staff)
    assert second.post("/account/verify/", {"code": code}).status_code == 401
    assert _signed_in_as(second) is None


def test_wrong_codes_lock_the_account_s_code_step_even_for_the_right_code(settings):
    settings.ROCHDALE_SECOND_FACTOR_MAX_FAILURES = 3
    staff = StaffFactory()
    device = authenticator_for(staff)
    browser = Client()
    _password(browser, staff)
    for _ in range(3):
        assert browser.post("/account/verify/", {"code": _wrong_code(device)}).status_code == 401
    locked = browser.post("/account/verify/", {"code": _code(device)})
    assert locked.status_code == 429 and "try again in" in locked.content.decode()
    assert _signed_in_as(browser) is None
    # A fresh session, or another address, does not reset the account's count.
    elsewhere = Client()
    _password(elsewhere, staff, REMOTE_ADDR="198.51.100.9")
    assert elsewhere.post("/account/verify/", {"code": _code(device)}).status_code == 429


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
    ],
)
def test_a_next_that_leaves_the_site_is_not_followed(next_url):
    rider = RiderFactory()
    answer = _password(Client(), rider, next_url=next_url)
    assert answer.status_code == 302 and answer["Location"] == "/members/"
    staff = StaffFactory()
    device = authenticator_for(staff)
    browser = Client()
    answer = _password(browser, staff, next_url=next_url)
    assert answer["Location"] == "/account/verify/"
    answer = browser.post("/account/verify/", {"code": _code(device), "next": next_url})
    assert answer.status_code == 302 and answer["Location"] == "/admin/"


def test_staff_with_no_device_enrol_right_after_the_password_and_are_verified_by_the_first_code():
    staff = StaffFactory()
    browser = Client()
    answer = _password(browser, staff, next_url="/admin/")
    assert answer["Location"] == "/account/two-factor/?next=/admin/"
    page = browser.get(answer["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    device = TOTPDevice.objects.get(user=staff)
    assert not device.confirmed and _key_from_page(secret) == device.bin_key
    assert browser.get("/account/two-factor/?next=/admin/").content.decode().count(secret) == 1  # same key

    code = f"{totp(_key_from_page(secret), step=30, digits=6):06d}"
    done = browser.post("/account/two-factor/", {"action": "confirm", "code": code, "next": "/admin/"})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    assert browser.get("/admin/").status_code == 200


def test_a_wrong_first_code_does_not_confirm_the_device():
    staff = StaffFactory()
    browser = Client()
    _password(browser, staff)
    browser.get("/account/two-factor/")
    device = TOTPDevice.objects.get(user=staff)
    answer = browser.post("/account/two-factor/", {"action": "confirm", "code": _wrong_code(device)})
    assert answer.status_code == 401
    device.refresh_from_db()
    assert not device.confirmed and _signed_in_as(browser) is None


def test_the_password_step_expires(settings):
    settings.ROCHDALE_SECOND_FACTOR_STEP_S = -1
    staff = StaffFactory()
    device = authenticator_for(staff)
    browser = Client()
    _password(browser, staff, next_url="/admin/")
    answer = browser.post("/account/verify/", {"code": _code(device), "next": "/admin/"})
    assert answer.status_code == 302 and answer["Location"] == "/account/login/?next=/admin/"
    assert _signed_in_as(browser) is None


def test_the_admin_sends_people_to_the_one_sign_in_page_and_wants_staff_verified():
    anonymous = Client().get("/admin/login/?next=/admin/")
    assert anonymous.status_code == 302 and anonymous["Location"] == "/account/login/?next=/admin/"

    # Staff signed in with the password alone (Client.login, no code step) are no staff to the admin.
    staff = StaffFactory()
    browser = Client()
    assert browser.login(username=staff.phone, password=TEST_PASSWORD)
    answer = browser.get("/admin/", follow=True)
    # With no device, to enrol; a session not made on the sign-in page gives its password there first.
    assert [url for url, _status in answer.redirect_chain][-2:] == [
        "/account/two-factor/?next=/admin/",
        "/account/login/?next=/account/two-factor/%3Fnext%3D/admin/",
    ]
    assert browser.get("/admin/accounts/user/").status_code == 302

    rider = RiderFactory()
    riding = Client()
    _password(riding, rider)
    assert riding.get("/admin/", follow=True).redirect_chain[-1][0] == "/account/login/?next=/admin/"


def test_a_verified_person_replaces_their_device_and_the_old_one_stops_working():
    staff = StaffFactory()
    old = authenticator_for(staff)
    browser = Client()
    _password(browser, staff)
    browser.post("/account/verify/", {"code": _code(old)})
    status = browser.get("/account/two-factor/")
    assert 'id="second-factor-status"' in status.content.decode()

    started = browser.post("/account/two-factor/", {"action": "start"})
    assert started.status_code == 200 and 'id="totp-secret"' in started.content.decode()
    new = TOTPDevice.objects.get(user=staff, confirmed=False)
    assert browser.post("/account/two-factor/", {"action": "confirm", "code": _code(new)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=staff)) == [new]
    new.refresh_from_db()
    assert new.confirmed
    assert browser.get("/admin/").status_code == 200


def test_a_device_is_not_replaced_without_a_code_from_it():
    staff = StaffFactory()
    authenticator_for(staff)
    browser = Client()
    _password(browser, staff)
    answer = browser.post("/account/two-factor/", {"action": "start"})
    assert answer.status_code == 302 and answer["Location"] == "/account/verify/?next=/account/two-factor/"
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_directors_need_the_code_on_the_board(make_director):  # noqa: F811
    director = make_director()
    browser = Client()
    assert _password(browser, director.user, next_url="/board/")["Location"] == "/board/"
    # Signed in with the password (no authenticator yet): the board sends them to the code step, which
    # sends them on to set one up.
    assert browser.get("/board/")["Location"] == "/account/verify/?next=/board/"
    assert browser.get("/account/verify/?next=/board/")["Location"] == "/account/two-factor/?next=/board/"
    browser.get("/account/two-factor/?next=/board/")
    device = TOTPDevice.objects.get(user=director.user)
    done = browser.post(
        "/account/two-factor/", {"action": "confirm", "code": _code(device), "next": "/board/"}
    )
    assert done["Location"] == "/board/"
    assert browser.get("/board/").status_code == 200

    # Next time the director has a device: the password leads straight to the code step.
    again = Client()
    assert _password(again, director.user, next_url="/board/")["Location"] == "/account/verify/?next=/board/"
    assert (
        again.post("/account/verify/", {"code": _code(device, steps_ahead=1), "next": "/board/"})["Location"]
        == "/board/"
    )
    assert again.get("/board/").status_code == 200


def test_the_board_s_old_sign_in_address_leads_to_the_one_sign_in_page():
    assert Client().get("/board/login/")["Location"] == "/account/login/?next=/board/"
    assert (
        Client().get("/board/login/?next=/board/audit/")["Location"] == "/account/login/?next=/board/audit/"
    )
    assert Client().get("/board/login/?next=/admin/")["Location"] == "/account/login/?next=/board/"
    assert Client().get("/board/")["Location"] == "/account/login/?next=/board/"


def test_sign_out_is_a_post():
    rider = RiderFactory()
    browser = Client()
    _password(browser, rider)
    assert browser.get("/account/logout/").status_code == 405
    assert _signed_in_as(browser) == str(rider.pk)
    assert browser.post("/account/logout/")["Location"] == "/account/login/"
    assert _signed_in_as(browser) is None


def test_staff_reset_a_lost_device_and_the_reset_is_audited():
    director_account = RiderFactory()
    device = authenticator_for(director_account)
    staff = StaffFactory()
    verified = Client()
    _password(verified, director_account)
    verified.post("/account/verify/", {"code": _code(device)})

    with pytest.raises(CommandError):
        call_command(
            "two_factor_reset", phone=director_account.phone, by=director_account.phone, reason="lost"
        )
    call_command("two_factor_reset", phone=director_account.phone, by=staff.phone, reason="phone stolen")

    assert not TOTPDevice.objects.filter(user=director_account).exists()
    entry = AuditEntry.objects.filter(kind="account.second_factor_reset").get()
    assert entry.payload == {
        "user_id": str(director_account.pk),
        "by_user_id": str(staff.pk),
        "devices_removed": 1,
        "reason": "phone stolen",
    }
    # The session verified with the removed device is verified no more, and cannot set a new device up on
    # its own strength (it may be on the lost phone): the password comes first. The next sign-in has no
    # code step.
    again = verified.get("/account/two-factor/")
    assert again.status_code == 302 and again["Location"] == "/account/login/?next=/account/two-factor/"
    assert _password(Client(), director_account)["Location"] == "/members/"
