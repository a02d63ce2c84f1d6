"""A first authenticator is set up on the strength of a password given just now, never on an old session's
alone (docs/sign-in.md, "Enrolment"). Otherwise whoever holds a signed-in browser — the lost phone whose
device staff just reset, a shared computer a director never signed out of — sets their own authenticator up
for the account and passes every page's second-factor rule from then on."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from backend.accounts import views_web
from tests.accounts.test_web_sign_in import _code, _password
from tests.factories import RiderFactory, StaffFactory
from tests.second_factor import authenticator_for

pytestmark = pytest.mark.django_db


def _age_the_password(browser: Client, settings) -> None:
    """As if the password was given longer ago than the step allows (the session is older)."""
    session = browser.session
    for key in (views_web.PASSWORD_AT_KEY, views_web.PENDING_AT_KEY):
        if key in session:
            session[key] -= settings.ROCHDALE_SECOND_FACTOR_STEP_S + 1
    session.save()


def test_after_a_reset_the_old_session_cannot_set_a_new_authenticator_up(settings):
    staff, by = StaffFactory(), StaffFactory()
    device = authenticator_for(staff)
    stolen = Client()
    _password(stolen, staff)
    assert stolen.post("/account/verify/", {"code": _code(device)}).status_code == 302
    _age_the_password(stolen, settings)
    call_command("two_factor_reset", phone=staff.phone, by=by.phone, reason="phone stolen")

    answer = stolen.get("/account/two-factor/")
    assert answer.status_code == 302, "the old session was offered a new authenticator's key"
    assert answer["Location"] == "/account/login/?next=/account/two-factor/"
    assert 'id="totp-secret"' not in stolen.get("/account/two-factor/", follow=True).content.decode()
    assert not TOTPDevice.objects.filter(user=staff).exists()

    # The person, with their password, sets a new one up as on their first sign-in.
    owner = Client()
    assert _password(owner, staff)["Location"] == "/account/two-factor/"
    assert 'id="totp-secret"' in owner.get("/account/two-factor/").content.decode()


def test_a_signed_in_person_gives_the_password_again_to_set_a_first_authenticator_up(settings):
    member = RiderFactory()
    browser = Client()
    assert _password(browser, member)["Location"] == "/members/"
    # Right after the password, the enrolment is open.
    assert 'id="totp-secret"' in browser.get("/account/two-factor/").content.decode()
    _age_the_password(browser, settings)
    later = browser.get("/account/two-factor/")
    assert later.status_code == 302 and later["Location"] == "/account/login/?next=/account/two-factor/"
    # Signing in again (the same person) opens it.
    assert _password(browser, member, next_url="/account/two-factor/")["Location"] == "/account/two-factor/"
    assert 'id="totp-secret"' in browser.get("/account/two-factor/").content.decode()
