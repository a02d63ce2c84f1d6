"""The map page and its JSON, for staff only: drivers' positions are personal data."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from dispatch.livemap.snapshot import build_snapshot, service_areas, street_layer

LOGIN_URL = "/admin/login/"


@never_cache
@staff_member_required(login_url=LOGIN_URL)
def map_page(request: HttpRequest) -> HttpResponse:
    return render(request, "livemap/map.html", {"socket_path": "/ws/map/"})


@staff_member_required(login_url=LOGIN_URL)
def streets(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({**street_layer(), "service_areas": service_areas()})
    response["Cache-Control"] = "private, max-age=3600"
    return response


@never_cache
@staff_member_required(login_url=LOGIN_URL)
def snapshot(request: HttpRequest) -> JsonResponse:
    """The same snapshot the socket pushes (for scripts, and for a browser without websockets)."""
    return JsonResponse(build_snapshot())
