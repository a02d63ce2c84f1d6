"""Pages speak the reader's language (docs/languages.md): the browser's Accept-Language for someone not
signed in; for a signed-in account its own setting first (browsers send a header whether or not the person
chose it), unless the page's language cookie says otherwise."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import RiderFactory


@pytest.mark.django_db
def test_the_sign_in_page_follows_the_browsers_language():
    english = Client().get("/account/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    spanish = Client().get("/account/login/", HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9")
    assert english.status_code == spanish.status_code == 200
    assert "Sign in" in english.content.decode()
    page = spanish.content.decode()
    assert "Iniciar sesión" in page and "Sign in" not in page
    assert spanish["Content-Language"] == "es"


@pytest.mark.django_db
def test_a_signed_in_pages_language_is_the_accounts_setting_before_the_browsers():
    reader = RiderFactory(language="es")
    client = Client()
    client.force_login(reader)
    # Not a director: the board says its pages are for directors, in the account's language.
    page = client.get("/board/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page.status_code == 403
    text = page.content.decode()
    assert "Solo para directivos" in text and "Directors only" not in text
    assert '<html lang="es">' in text

    # The language cookie (a page's own language switch) is the person choosing now: it wins.
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Directors only" in client.get("/board/", HTTP_ACCEPT_LANGUAGE="es").content.decode()


@pytest.mark.django_db
def test_a_signed_in_account_without_a_setting_follows_the_browser():
    reader = RiderFactory()
    client = Client()
    client.force_login(reader)
    assert "Solo para directivos" in client.get("/board/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Directors only" in client.get("/board/").content.decode()
