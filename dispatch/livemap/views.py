"""The map page and its JSON, for staff only: drivers' positions and riders' trips are personal data. Like
the admin, every route wants a staff session that gave its second factor (`staff_page`, docs/sign-in.md):
a session signed in some other way than the sign-in page, or whose device was reset, is sent to the code.

The still layers are served with a validator: `streets.json` (the city's streets, fixed until the tiles
are rebuilt) may be reused for five minutes and then costs a 304; `areas.json` (the active service areas,
which staff may change at any time) is revalidated on every fetch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from backend.accounts.web import page_sign_in_required
from backend.errors import NotFound
from dispatch.livemap.layers import EncodedLayer, service_area_layer, street_layer
from dispatch.livemap.snapshot import build_snapshot
from dispatch.services import sos

LOGIN_URL = "/admin/login/"
STREETS_CACHE_CONTROL = "private, max-age=300"
AREAS_CACHE_CONTROL = "private, no-cache"


def staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only (others to the admin's sign-in, as before), and only with the second factor verified in
    this session (else to the code step: the kernel's staff rule)."""
    return staff_member_required(login_url=LOGIN_URL)(page_sign_in_required()(view))


@never_cache
@staff_page
def map_page(request: HttpRequest) -> HttpResponse:
    return render(request, "livemap/map.html", {"socket_path": "/ws/map/"})


def layer_response(request: HttpRequest, layer: EncodedLayer, cache_control: str) -> HttpResponse:
    """The layer's JSON, gzipped when the browser takes it, or a 304 when the browser's copy is current."""
    # Django's own If-None-Match handling (weak comparison, `*`): a 304 when the browser's copy is current.
    not_modified = get_conditional_response(request, etag=layer.etag)
    if not_modified is not None:
        response: HttpResponse = not_modified
    else:
        takes_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        response = HttpResponse(layer.gzipped if takes_gzip else layer.body, content_type="application/json")
        if takes_gzip:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = layer.etag
    response["Cache-Control"] = cache_control
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


@require_safe
@staff_page
def streets(request: HttpRequest) -> HttpResponse:
    """The streets to draw: from the router's tile set when built, else the demo city's."""
    return layer_response(request, street_layer(), STREETS_CACHE_CONTROL)


@require_safe
@staff_page
def service_areas(request: HttpRequest) -> HttpResponse:
    return layer_response(request, EncodedLayer.of(service_area_layer()), AREAS_CACHE_CONTROL)


@never_cache
@staff_page
def snapshot(request: HttpRequest) -> JsonResponse:
    """The same snapshot the socket pushes, with every route (for scripts, and for a browser without
    websockets)."""
    return JsonResponse(build_snapshot())


@require_POST
@staff_page
def alert_acknowledge(request: HttpRequest, alert_id: uuid.UUID) -> HttpResponse:
    """The banner's button (a CSRF-protected form): take an SOS on, then back to the map."""
    try:
        sos.sos_acknowledge(
            alert_id=alert_id, staff_id=request.user.pk, note=request.POST.get("note", "")[:500]
        )
    except NotFound as error:
        return JsonResponse(error.as_body(), status=404)
    return redirect("livemap:map")
