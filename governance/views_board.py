"""The board's web pages at /board/: small server-rendered pages for directors.

Session auth with CSRF (Django's own). Directors sign in on the one sign-in page (/account/login/,
backend/accounts/views_web.py: the password, throttled by the same Redis counters as the API's token
sign-in, then their TOTP code), and every board page needs that code verified in the session
(docs/sign-in.md). Every write goes through governance.services, exactly like the API; the fare preview is
computed on the server by backend/fares/pricing.py (one source of truth), called by board.js as the
director types.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from backend.accounts.web import (
    safe_next,
    second_factor_redirect,
    second_factor_verified,
    sign_in_redirect,
    url_with_next,
)
from backend.errors import DomainError
from backend.fares.policy import FarePolicy, PolicyValidationError
from backend.fares.selectors import policy_in_force, policy_version_in_force
from governance import selectors, services
from governance.audit import audit_verify
from governance.models import ProposalKind, VoteChoice

# (field path, label, input kind) of the policy form, in the order a director reads them.
POLICY_FIELDS: tuple[tuple[str, Promise, str], ...] = (
    ("currency", gettext_lazy("Currency"), "text"),
    ("distance_unit", gettext_lazy("Distance unit"), "unit"),
    ("rider.base", gettext_lazy("Base fare"), "rate"),
    ("rider.per_distance", gettext_lazy("Per distance unit"), "rate"),
    ("rider.per_minute", gettext_lazy("Per minute"), "rate"),
    ("rider.booking_fee", gettext_lazy("Booking fee"), "rate"),
    ("rider.minimum_fare", gettext_lazy("Minimum fare"), "rate"),
    ("rider.surge_cap", gettext_lazy("Surge cap"), "rate"),
    ("rider.cancellation_fee", gettext_lazy("Cancellation fee"), "rate"),
    ("rider.free_cancellation_s", gettext_lazy("Free cancellation (seconds)"), "int"),
    ("commission_rate", gettext_lazy("Co-op commission rate"), "rate"),
    ("driver_minimum.per_distance", gettext_lazy("Driver floor per distance unit"), "rate"),
    ("driver_minimum.per_minute", gettext_lazy("Driver floor per minute"), "rate"),
    ("driver_minimum.per_trip", gettext_lazy("Driver floor per trip"), "rate"),
    (
        "driver_minimum.wav_per_distance",
        gettext_lazy("Driver floor per distance (wheelchair-accessible)"),
        "rate",
    ),
    ("driver_minimum.period", gettext_lazy("Floor period"), "period"),
)


BoardView = Callable[..., HttpResponseBase]


def director_required(view: BoardView) -> BoardView:
    """Signed-in directors who gave their second factor in this session only: others are sent to sign in
    (or to the code step), or told the page is for the board."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return sign_in_redirect(request)
        member = selectors.current_member(request.user)
        if not selectors.is_director(member):
            return render(request, "governance/board/not_director.html", status=403)
        if not second_factor_verified(request):
            return second_factor_redirect(request)
        request.member = member  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def _field_value(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def document_from_fields(values: dict[str, Any]) -> dict[str, Any]:
    """A policy document from flat ``"rider.base": "2.50"`` fields (the form and board.js send these)."""
    document: dict[str, Any] = {}
    for path, _, kind in POLICY_FIELDS:
        raw = values.get(path)
        if kind == "int" and isinstance(raw, str):
            with contextlib.suppress(ValueError):
                raw = int(raw.strip())
        elif isinstance(raw, str):
            raw = raw.strip()
        target = document
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = raw
    return document


def sections_off_the_form(document: dict[str, Any]) -> dict[str, Any]:
    """The policy's sections the form does not show (pass-through fees, the card-hold margin, the refund
    rule), as they are in force: a proposal made on the form changes what the director edited and carries
    these over unchanged, never repealing them by leaving them out."""
    on_the_form = {path.split(".")[0] for path, _, _ in POLICY_FIELDS}
    return {
        name: value
        for name, value in document.items()
        if name not in on_the_form and name not in ("version", "effective_at")
    }


def _policy_rows(current: dict[str, Any], proposed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows = []
    for path, label, kind in POLICY_FIELDS:
        now_value = _field_value(current, path)
        new_value = _field_value(proposed, path) if proposed is not None else None
        rows.append(
            {
                "path": path,
                "label": label,
                "kind": kind,
                "current": now_value,
                "proposed": new_value,
                "changed": proposed is not None and str(new_value) != str(now_value),
            }
        )
    return rows


@require_safe
def sign_in(request: HttpRequest) -> HttpResponse:
    """The board has no sign-in page of its own: the one sign-in page, coming back to the board."""
    board = reverse("board:dashboard")
    target = safe_next(request, request.GET.get("next"), default=board)
    return redirect(url_with_next(settings.LOGIN_URL, target if target.startswith(board) else board))


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("board:login")


@director_required
def dashboard(request: HttpRequest) -> HttpResponse:
    version = policy_version_in_force()
    policy = policy_in_force().to_document()
    proposals = selectors.fare_policy_proposals()[:50]
    return render(
        request,
        "governance/board/dashboard.html",
        {
            "version": version,
            "policy_rows": _policy_rows(policy),
            "open_proposals": [p for p in proposals if p.status == "open"],
            "decided_proposals": [p for p in proposals if p.status != "open"],
            "seats": selectors.seats_in_force().select_related("member__user").order_by("starts_at"),
        },
    )


@director_required
@require_http_methods(["GET", "POST"])
def proposal_new(request: HttpRequest) -> HttpResponse:
    current = policy_in_force().to_document()
    errors: dict[str, Any] = {}
    values = {path: _field_value(current, path) for path, _, _ in POLICY_FIELDS}
    title, body, closes_in = "", "", "1440"
    if request.method == "POST":
        values = {path: request.POST.get(path, "") for path, _, _ in POLICY_FIELDS}
        title = request.POST.get("title", "")
        body = request.POST.get("body", "")
        closes_in = request.POST.get("closes_in_minutes", "1440")
        payload = {**sections_off_the_form(current), **document_from_fields(values)}
        effective = (request.POST.get("effective_at") or "").strip()
        try:
            minutes = int(closes_in)
            if not 1 <= minutes <= 60 * 24 * services.MAX_VOTING_DAYS:
                raise ValueError
        except ValueError:
            errors["closes_in_minutes"] = [gettext("must be a whole number of minutes, at most 90 days")]
            minutes = 0
        if effective:
            try:
                moment = datetime.fromisoformat(effective)
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)
                payload["effective_at"] = moment.isoformat()
            except ValueError:
                errors["effective_at"] = [gettext("must be a date and time")]
        if not errors:
            try:
                proposal = services.proposal_create(
                    user=request.user,
                    kind=ProposalKind.FARE_POLICY,
                    title=title,
                    body=body,
                    payload=payload,
                    closes_at=timezone.now() + timedelta(minutes=minutes),
                )
            except DomainError as error:
                errors = error.details or {"form": [error.message]}
            else:
                messages.success(request, gettext("Your proposal is open for the board's votes."))
                return redirect("board:proposal", proposal_id=proposal.id)
    fields = [
        {
            "path": path,
            "label": label,
            "kind": kind,
            "value": values.get(path),
            "current": _field_value(current, path),
        }
        for path, label, kind in POLICY_FIELDS
    ]
    return render(
        request,
        "governance/board/proposal_new.html",
        {
            "fields": fields,
            "errors": errors,
            "title": title,
            "body": body,
            "closes_in": closes_in,
            "status": 400 if errors else 200,
        },
        status=400 if errors else 200,
    )


@director_required
@require_POST
def preview(request: HttpRequest) -> JsonResponse:
    """Sample trips priced under the policy in force and under the draft: ``{"ok", "samples"|"errors"}``."""
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"ok": False, "errors": {"body": [gettext("not valid JSON")]}}, status=400)
    fields = data.get("fields") if isinstance(data, dict) else None
    if not isinstance(fields, dict):
        return JsonResponse({"ok": False, "errors": {"fields": [gettext("must be an object")]}}, status=400)
    try:
        proposed = FarePolicy.from_document(document_from_fields(fields))
    except PolicyValidationError as error:
        return JsonResponse({"ok": False, "errors": error.details}, status=400)
    samples = selectors.fare_policy_preview(current=policy_in_force(), proposed=proposed)
    return JsonResponse({"ok": True, "samples": samples})


@director_required
def proposal_detail(request: HttpRequest, proposal_id: uuid.UUID) -> HttpResponse:
    proposal = selectors.fare_policy_proposals().filter(id=proposal_id).first()
    if proposal is None:
        return render(request, "governance/board/not_found.html", status=404)
    member = request.member  # type: ignore[attr-defined]
    document = selectors.proposal_record(proposal, viewer=member)
    votes = document.board_votes or []
    names = selectors.member_names([v.member_id for v in votes])
    board_votes = [{"name": names.get(v.member_id, "?"), "choice": v.choice} for v in votes]
    return render(
        request,
        "governance/board/proposal_detail.html",
        {
            "proposal": proposal,
            "document": document,
            "result": selectors.proposal_result(proposal),
            "rows": _policy_rows(policy_in_force().to_document(), proposal.payload),
            "board_votes": board_votes,
            "choices": VoteChoice.choices,
            "can_vote": proposal.status == "open"
            and document.my_vote is not None
            and document.my_vote.eligible
            and not document.my_vote.voted,
        },
    )


@director_required
@require_POST
def proposal_vote(request: HttpRequest, proposal_id: uuid.UUID) -> HttpResponse:
    try:
        receipt = services.proposal_vote(
            proposal_id=proposal_id, user=request.user, choice=request.POST.get("choice", "")
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, gettext("Your vote is recorded. Receipt: %(receipt)s") % {"receipt": receipt}
        )
    return redirect("board:proposal", proposal_id=proposal_id)


@director_required
def audit(request: HttpRequest) -> HttpResponse:
    entries = selectors.audit_entries().order_by("-sequence")[:100]
    return render(
        request,
        "governance/board/audit.html",
        {
            "entries": [
                {"entry": e, "payload": json.dumps(e.payload, indent=1, sort_keys=True)} for e in entries
            ],
            "verification": audit_verify(),
        },
    )
