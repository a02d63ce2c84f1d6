"""Web pages' sign-in guard, shared by the board, the members' portal and the admin (docs/sign-in.md).

One sign-in path: every page that needs a signed-in person sends them to `settings.LOGIN_URL`
(/account/login/), which asks for the password and then, for people who must have one, the TOTP code.

Who must have a second factor is a rule per page: staff and superusers always (`staff_need_second_factor`,
the kernel's rule, which the sign-in page and the admin apply); a page adds its own people with
`page_sign_in_required(second_factor=...)` (the board: directors). A signed-in person a page's rule catches
without a verified code is sent to the code step, which sends them on to enrol when they have no device.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from backend.accounts.models import User

PageView = Callable[..., HttpResponseBase]
SecondFactorRule = Callable[[User], bool]

SECOND_FACTOR_URL = "/account/verify/"
ENROL_URL = "/account/two-factor/"
# Where a sign-in without a `next` lands: staff at the admin, everyone else at the members' portal.
STAFF_HOME_URL = "/admin/"
MEMBER_HOME_URL = "/members/"


def staff_need_second_factor(user: User) -> bool:
    return bool(user.is_staff or user.is_superuser)


def second_factor_verified(request: HttpRequest) -> bool:
    """Whether this session passed the TOTP step (django_otp's middleware sets `user.is_verified`)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


def safe_next(request: HttpRequest, candidate: str | None, *, default: str) -> str:
    """`candidate` when it points back into this site (a path, or this host over the request's scheme),
    else `default`: a sign-in link must never forward a person to somebody else's site."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def url_with_next(url: str, next_url: str) -> str:
    """`url?next=...`, with the slashes of a path left readable (`/account/login/?next=/board/`)."""
    return f"{url}?{urlencode({'next': next_url}, safe='/')}"


def sign_in_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the sign-in page, coming back to this page afterwards."""
    return redirect(url_with_next(settings.LOGIN_URL, request.get_full_path()))


def second_factor_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the code step (or enrolment, for a person with no device), coming back here afterwards."""
    return redirect(url_with_next(SECOND_FACTOR_URL, request.get_full_path()))


def page_sign_in_required(
    *, second_factor: SecondFactorRule = staff_need_second_factor
) -> Callable[[PageView], PageView]:
    """Signed-in people only; those for whom `second_factor(user)` holds must also have passed TOTP.

    Others are sent to the one sign-in page (or its TOTP step) with `next` set to come back here."""

    def decorate(view: PageView) -> PageView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return sign_in_redirect(request)
            if second_factor(request.user) and not second_factor_verified(request):
                return second_factor_redirect(request)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
