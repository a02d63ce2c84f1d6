"""Who may open the members' portal, and how fast they may write in it.

Every page is for a member (a current `governance.Member`, active or suspended) signed in through the one
sign-in page; directors and staff also pass its TOTP step. The comment throttles count per account on the
API's Redis counters (backend/accounts/throttling.py), at the rates in settings (docs/portal.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

from backend.accounts.models import User
from backend.accounts.throttling import UserRateThrottle
from backend.accounts.web import page_sign_in_required
from governance import selectors
from governance.models import Member


def second_factor_needed(user: User) -> bool:
    """Directors and staff prove a TOTP code at sign-in; other members need only their password."""
    if user.is_staff or user.is_superuser:
        return True
    return selectors.is_director(selectors.current_member(user))


@dataclass(frozen=True)
class Viewer:
    """The signed-in member a page is drawn for: moderators (directors in office) may hide comments, and
    drivers have a page of their work."""

    user: User
    member: Member
    moderator: bool
    driver: bool


MemberView = Callable[..., HttpResponseBase]


def member_page(view: MemberView) -> MemberView:
    """Sign-in (and TOTP for directors and staff), then members only; the view gets the `Viewer`."""

    @page_sign_in_required(second_factor=second_factor_needed)
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        member = selectors.current_member(request.user)
        if member is None:
            return render(request, "members/not_a_member.html", status=403)
        viewer = Viewer(
            user=request.user,
            member=member,
            moderator=selectors.is_director(member),
            driver=bool(request.user.is_driver) and hasattr(request.user, "driver_profile"),
        )
        return view(request, viewer, *args, **kwargs)

    return wrapper


def not_found(request: HttpRequest) -> HttpResponse:
    """The portal's own 404 page (the project's handler answers JSON, for the API)."""
    return render(request, "members/not_found.html", status=404)


class CommentBurstThrottle(UserRateThrottle):
    scope = "portal_comment"


class CommentDailyThrottle(UserRateThrottle):
    scope = "portal_comment_daily"


def comment_allowed(request: HttpRequest) -> float | None:
    """None when this member may post (or edit) a comment now, else the seconds until they may.

    Every attempt counts, refused or not, so a member hammering the form stays held back."""
    for throttle in (CommentBurstThrottle(), CommentDailyThrottle()):
        # DRF's throttle reads only `request.user` here, which a Django request has as well.
        if not throttle.allow_request(request, None):
            return throttle.wait() or 1.0
    return None
