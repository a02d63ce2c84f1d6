"""The portal's notification page (/members/notifications/, docs/notifications.md): a member's switches per
category and channel and their quiet hours, as a plain form that works without JavaScript; and "notify me
in this browser", where push.js registers the service worker (sw.js, served from /members/ so its scope
covers the portal) and subscribes the browser with the co-op's VAPID key.

The page's JSON endpoints use the portal's session and its CSRF token (the API's own routes take the app's
bearer token instead); both write through the same services (backend/notifications/preferences.py and
push_targets.py), so the rules and the errors are one.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods

from backend.errors import DomainError
from backend.notifications.messages import CATEGORY_NAMES
from backend.notifications.preferences import (
    CHANNEL_NAMES,
    preferences_document,
    preferences_of,
    preferences_set,
)
from backend.notifications.push_targets import push_subscription_delete, push_subscription_save
from backend.notifications.webpush import vapid_public_key
from mobile_api.members.guards import Viewer, member_page

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "members" / "sw.js"


def _labels() -> tuple[dict[str, str], dict[str, str]]:
    categories = {
        "trips": _("Rides happening now"),
        "reservations": _("Rides booked ahead"),
        "offers": _("Ride offers (drivers)"),
        "money": _("Receipts and money"),
        "governance": _("Proposals, votes and elections"),
        "safety": _("Safety"),
        "documents": _("Documents about to expire"),
        "account": _("My account and organisations"),
    }
    channels = {
        "email": _("Email"),
        "sms": _("Text message"),
        "web_push": _("This browser"),
        "mobile_push": _("The app"),
    }
    return categories, channels


@require_http_methods(["GET", "POST"])
@member_page
def notification_settings(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    """The switches and quiet hours (GET), saved from the form (POST, then back here)."""
    errors: dict[str, object] = {}
    if request.method == "POST":
        categories = {
            category: {channel: f"{category}.{channel}" in request.POST for channel in CHANNEL_NAMES}
            for category in CATEGORY_NAMES
        }
        start, end = request.POST.get("quiet_start", "").strip(), request.POST.get("quiet_end", "").strip()
        quiet = {"start": start, "end": end} if start or end else None
        try:
            preferences_set(
                user_id=viewer.user.pk,
                categories=categories,
                quiet_hours=quiet,
                quiet_hours_given=True,
                time_zone=request.POST.get("time_zone", "").strip(),
            )
        except DomainError as error:
            errors = dict(error.details or {})
            messages.error(request, str(error.message))
        else:
            messages.success(request, _("Your notification settings are saved."))
            return redirect("members:notifications")
    document = preferences_document(preferences_of(user_id=viewer.user.pk))
    category_labels, channel_labels = _labels()
    rows = [
        {
            "name": category,
            "label": category_labels[category],
            "channels": [
                {"name": channel, "label": channel_labels[channel], "on": on}
                for channel, on in document["categories"][category].items()
            ],
        }
        for category in CATEGORY_NAMES
    ]
    quiet = document["quiet_hours"] or {"start": "", "end": ""}
    return render(
        request,
        "members/push_settings.html",
        {
            "viewer": viewer,
            "section": "notifications",
            "rows": rows,
            "channel_labels": [channel_labels[channel] for channel in CHANNEL_NAMES],
            "quiet": quiet,
            "time_zone": "" if document["time_zone_is_default"] else document["time_zone"],
            "default_time_zone": settings.TIME_ZONE,
            "quiet_errors": _flat(errors.get("quiet_hours")),
            "zone_errors": _flat(errors.get("time_zone")),
        },
        status=400 if errors else 200,
    )


def _flat(problems: object) -> list[str]:
    """A field's problems as sentences, whatever their nesting (`{"start": ["..."]}` or `["..."]`)."""
    if isinstance(problems, dict):
        return [f"{name}: {text}" for name, value in problems.items() for text in _flat(value)]
    if isinstance(problems, list):
        return [str(text) for text in problems]
    return [str(problems)] if problems else []


@require_GET
@member_page
def push_key(request: HttpRequest, viewer: Viewer) -> JsonResponse:
    return JsonResponse({"public_key": vapid_public_key()})


@require_http_methods(["POST", "DELETE"])
@member_page
def push_subscription(request: HttpRequest, viewer: Viewer) -> JsonResponse:
    """Keep (POST, `PushSubscription.toJSON()`) or forget (DELETE, `{"endpoint"}`) this browser's
    subscription; session and CSRF token, as every form of the portal."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse(
            {"error": {"code": "malformed_json", "message": _("The body is not JSON.")}}, status=400
        )
    if not isinstance(body, dict):
        body = {}
    try:
        if request.method == "DELETE":
            push_subscription_delete(user_id=viewer.user.pk, endpoint=body.get("endpoint", ""))
            return JsonResponse({}, status=200)
        keys = body.get("keys") if isinstance(body.get("keys"), dict) else {}
        subscription, created = push_subscription_save(
            user_id=viewer.user.pk,
            endpoint=body.get("endpoint"),
            p256dh=keys.get("p256dh"),
            auth=keys.get("auth"),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except DomainError as error:
        return JsonResponse(error.as_body(), status=error.status)
    return JsonResponse({"id": str(subscription.id)}, status=201 if created else 200)


@require_GET
@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> HttpResponse:
    """sw.js from /members/, so it may control the portal's pages (a worker's scope is its own path)."""
    response = HttpResponse(SERVICE_WORKER.read_bytes(), content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/members/"
    return response
