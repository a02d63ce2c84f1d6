"""The portal's notification page: the form saves switches and quiet hours without JavaScript (with its CSRF
token), the browser's subscription goes in with the session and the CSRF header and then receives pushes,
and the service worker is served from /members/ with the scope it needs."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from backend.notifications.models import NotificationPreferences, PushSubscription
from backend.notifications.services import notify
from tests.factories import RiderFactory

pytestmark = pytest.mark.django_db
PAGE = "/members/notifications/"


def _member_client(make_member) -> tuple[Client, object]:
    member = make_member()
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    return client, member.user


def _token(client: Client) -> str:
    client.get(PAGE)
    return client.cookies["csrftoken"].value


def _form(token: str, **fields: str) -> dict[str, str]:
    """Every box of the defaults ticked, as the page draws them, with `fields` on top."""
    from backend.notifications.preferences import DEFAULT_CHANNELS

    ticked = {
        f"{category}.{channel}": "on"
        for category, channels in DEFAULT_CHANNELS.items()
        for channel, on in channels.items()
        if on
    }
    return {
        "csrfmiddlewaretoken": token,
        "quiet_start": "",
        "quiet_end": "",
        "time_zone": "",
        **ticked,
        **fields,
    }


def test_the_page_shows_the_switches_and_saves_them_with_quiet_hours(make_member):
    client, user = _member_client(make_member)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="governance.sms" id="governance-sms" checked' in html
    assert 'name="offers.email" id="offers-email" aria-label' in html  # off by default
    form = _form(_token(client), quiet_start="22:00", quiet_end="07:00", time_zone="America/Chicago")
    del form["governance.sms"]
    saved = client.post(PAGE, form)
    assert saved.status_code == 302 and saved["Location"] == PAGE
    row = NotificationPreferences.objects.get(user=user)
    assert row.channels == {"governance": {"sms": False}}
    assert (row.quiet_start.strftime("%H:%M"), row.quiet_end.strftime("%H:%M")) == ("22:00", "07:00")
    assert row.time_zone == "America/Chicago"
    again = client.get(PAGE).content.decode()
    assert 'value="22:00"' in again and 'name="governance.sms" id="governance-sms" aria-label' in again


def test_a_bad_form_is_answered_with_its_problems_and_saves_nothing(make_member):
    client, user = _member_client(make_member)
    answer = client.post(
        PAGE, _form(_token(client), quiet_start="22:00", quiet_end="22:00", time_zone="Nowhere/At_All")
    )
    assert answer.status_code == 400
    html = answer.content.decode()
    assert "must differ from start" in html and "unknown time zone" in html
    assert not NotificationPreferences.objects.filter(user=user).exists()


def test_a_form_without_its_csrf_token_is_refused(make_member):
    client, user = _member_client(make_member)
    form = _form("")
    del form["csrfmiddlewaretoken"]
    assert client.post(PAGE, form).status_code == 403
    assert not NotificationPreferences.objects.filter(user=user).exists()


def test_this_browser_subscribes_with_the_session_and_then_gets_pushes(
    make_member, web_push_service, celery_eager, django_capture_on_commit_callbacks
):
    client, user = _member_client(make_member)
    token = _token(client)
    key = client.get("/members/push/key").json()["public_key"]
    assert len(key) == 87  # a P-256 point, base64url
    browser = web_push_service.subscribe()
    body = json.dumps(browser.to_json())
    refused = client.post("/members/push/subscription", body, content_type="application/json")
    assert refused.status_code == 403  # no CSRF header
    saved = client.post(
        "/members/push/subscription", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert saved.status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        notify(
            user_id=user.id,
            event="ballot_open",
            context={"title": "Board 2027", "voting_closes_local": "Fri", "link": "x"},
        )
    [message] = web_push_service.received
    assert message["title"] == "Your ballot is open"
    bad = client.post(
        "/members/push/subscription",
        json.dumps({"endpoint": "https://evil.example/x", "keys": {}}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    gone = client.delete(
        "/members/push/subscription",
        json.dumps({"endpoint": browser.endpoint}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert gone.status_code == 200 and not PushSubscription.objects.exists()


def test_the_service_worker_is_served_for_the_portal_s_scope():
    answer = Client().get("/members/sw.js")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/javascript")
    assert answer["Service-Worker-Allowed"] == "/members/"
    assert b"showNotification" in answer.content


def test_someone_who_is_not_a_member_gets_no_page():
    client = Client()
    client.force_login(RiderFactory())
    assert client.get(PAGE).status_code == 403
    assert Client().get(PAGE).status_code == 302  # to the sign-in page
