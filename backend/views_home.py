"""`GET /`: what this address is (Rochdale, the co-op's ride backend) and where its pages are; and
`GET /favicon.ico`, the co-op's mark as an SVG (docs/operations.md, "The admin, CORS and the front page").

Here in the composition root because the page points at every layer's pages (API docs, portal, board,
map), by path only. No CDN, no script: the sign-in pages' stylesheet.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

FAVICON = "site/favicon.svg"  # backend/accounts/static/

# Where each page is: these are mounted by backend/urls.py and mobile_api/urls.py.
LINKS = {
    "docs": "/api/v1/docs",
    "members": "/members/",
    "board": "/board/",
    "map": "/map/",
    "health": "/api/v1/health",
}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request, "site/home.html", {"cooperative": settings.ROCHDALE_COOPERATIVE_NAME, "links": LINKS}
    )


@lru_cache(maxsize=1)
def _favicon_svg() -> bytes:
    path = finders.find(FAVICON)
    with open(str(path), "rb") as svg:
        return svg.read()


@require_GET
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request: HttpRequest) -> HttpResponse:
    # Browsers ask for /favicon.ico whatever a page says; an SVG answers for every size.
    return HttpResponse(_favicon_svg(), content_type="image/svg+xml")
