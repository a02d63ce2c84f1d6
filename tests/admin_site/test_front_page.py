"""`GET /` says what this address is and links the co-op's pages; `/favicon.ico` is the co-op's mark."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_front_page_says_what_this_is_and_links_every_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Rochdale" in html and "ride service" in html
    links = set(re.findall(r'<a href="([^"]+)"', html))
    assert {"/api/v1/docs", "/members/", "/board/", "/map/", "/api/v1/health"} <= links
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)  # nothing from a CDN
    for link in links:  # every link leads somewhere (a page, or a sign-in first)
        assert client.get(link).status_code in (200, 302), link


def test_the_front_page_is_in_the_readers_language(client: Client) -> None:
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Portal de socios" in html and "Documentación de la API" in html


def test_the_favicon_is_an_svg_browsers_may_keep(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age" in response["Cache-Control"]
    assert response.content.startswith(b"<svg")
