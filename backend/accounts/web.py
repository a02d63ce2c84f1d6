"""Web pages' sign-in guard, shared by the board, the members' portal and the admin (docs/sign-in.md).

One sign-in path: every page that needs a signed-in person sends them to `settings.LOGIN_URL`
(/account/login/), which asks for the password and then, for people who must have one, the TOTP code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect

from backend.accounts.models import User

PageView = Callable[..., HttpResponseBase]
SecondFactorRule = Callable[[User], bool]

SECOND_FACTOR_URL = "/account/verify/"


def staff_need_second_factor(user: User) -> bool:
    return bool(user.is_staff or user.is_superuser)


def second_factor_verified(request: HttpRequest) -> bool:
    """Whether this session passed the TOTP step (django_otp's middleware sets `user.is_verified`)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


def page_sign_in_required(
    *, second_factor: SecondFactorRule = staff_need_second_factor
) -> Callable[[PageView], PageView]:
    """Signed-in people only; those for whom `second_factor(user)` holds must also have passed TOTP.

    Others are sent to the one sign-in page (or its TOTP step) with `next` set to come back here."""

    def decorate(view: PageView) -> PageView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            query = urlencode({"next": request.get_full_path()})
            if not request.user.is_authenticated:
                return redirect(f"{settings.LOGIN_URL}?{query}")
            if second_factor(request.user) and not second_factor_verified(request):
                return redirect(f"{SECOND_FACTOR_URL}?{query}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
