"""The one sign-in path's pages at /account/: password, the code, enrolment, sign-out (docs/sign-in.md).

1. /account/login/ checks the phone and password (`sign_in.user_sign_in`: the per-phone and per-IP
   lockouts, and the per-IP rate of the API's token route). A person with no second factor to give is
   signed in there. A person who must give one (staff, by the kernel's rule) or who has one is not signed
   in yet: the session only remembers, for ROCHDALE_SECOND_FACTOR_STEP_S, whose password was proven, so a
   password alone never opens a staff page (the live map, the admin) however that page checks.
2. /account/verify/ takes the code of that person's authenticator, counted per account; it sends a person
   with no device on to enrol.
3. /account/two-factor/ enrols the first device (within ROCHDALE_SECOND_FACTOR_STEP_S of the password,
   before anything else) and, for a signed-in, verified person, replaces it. Its first code confirms it
   and verifies the session.
Every success rotates the session key. `next` is followed only back into this site.
"""

from __future__ import annotations

import time

from django import forms
from django.conf import settings
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from backend.accounts.models import User
from backend.accounts.second_factor import (
    InvalidCode,
    code_verify,
    confirmed_device,
    device_qr_svg,
    device_secret_text,
    enrolment_confirm,
    enrolment_device,
    signing_in_user,
)
from backend.accounts.sign_in import InvalidCredentials, user_sign_in
from backend.accounts.throttling import SignInLocked, SignInRateThrottle, client_ip
from backend.accounts.web import (
    ENROL_URL,
    MEMBER_HOME_URL,
    SECOND_FACTOR_URL,
    STAFF_HOME_URL,
    safe_next,
    second_factor_verified,
    staff_need_second_factor,
    url_with_next,
)

# Whose password this session proved, and when, while it waits for the code (the person is not signed in).
PENDING_USER_KEY = "account_pending_user_id"
PENDING_AT_KEY = "account_pending_at"
PENDING_BACKEND_KEY = "account_pending_backend"
# When this session last proved the password on the sign-in page: a first device is enrolled only within
# ROCHDALE_SECOND_FACTOR_STEP_S of it, never on an old session's strength (a lost phone's, after a reset).
PASSWORD_AT_KEY = "account_password_at"


class SignInForm(forms.Form):
    username = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Six-digit code"),
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )


def _next(request: HttpRequest) -> str:
    """The safe `next` of this request (form field, else query string), or "" when none or unsafe."""
    return safe_next(request, request.POST.get("next") or request.GET.get("next"), default="")


def _home(user: User) -> str:
    return STAFF_HOME_URL if staff_need_second_factor(user) else MEMBER_HOME_URL


def _to(url: str, next_url: str) -> HttpResponseBase:
    return redirect(url_with_next(url, next_url) if next_url else url)


def _locked_message(locked: SignInLocked) -> str:
    return gettext("Too many tries; try again in %(seconds)s seconds.") % {"seconds": locked.retry_after_s}


def _pending_start(request: HttpRequest, user: User) -> None:
    if request.user.is_authenticated:
        auth.logout(request)  # whoever was signed in here is not the person now proving a password
    request.session.cycle_key()
    request.session[PENDING_USER_KEY] = str(user.pk)
    request.session[PENDING_AT_KEY] = int(time.time())
    request.session[PENDING_BACKEND_KEY] = getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[0])


def _pending_clear(request: HttpRequest) -> None:
    for key in (PENDING_USER_KEY, PENDING_AT_KEY, PENDING_BACKEND_KEY):
        request.session.pop(key, None)


def _step_person(request: HttpRequest) -> User | None:
    """Who is at the code or enrolment step: the signed-in person, else the person whose password this
    session proved within ROCHDALE_SECOND_FACTOR_STEP_S."""
    if request.user.is_authenticated:
        return request.user  # type: ignore[return-value]
    user_id = request.session.get(PENDING_USER_KEY)
    proved_at = request.session.get(PENDING_AT_KEY)
    if not user_id or not isinstance(proved_at, int):
        return None
    if time.time() - proved_at > settings.ROCHDALE_SECOND_FACTOR_STEP_S:
        _pending_clear(request)
        return None
    return signing_in_user(user_id=user_id)


def _password_just_proven(request: HttpRequest) -> bool:
    """Whether the person at the enrolment step gave their password on the sign-in page within
    ROCHDALE_SECOND_FACTOR_STEP_S: the pending step (signed in by the code to come), or signed in at once."""
    proved_at = request.session.get(PASSWORD_AT_KEY if request.user.is_authenticated else PENDING_AT_KEY)
    return isinstance(proved_at, int) and time.time() - proved_at <= settings.ROCHDALE_SECOND_FACTOR_STEP_S


def _second_factor_done(request: HttpRequest, person: User, device: TOTPDevice) -> None:
    """Sign the person in (if the password step left them waiting) and mark the session verified."""
    if request.user.is_authenticated and request.user.pk == person.pk:
        request.session.cycle_key()  # a session that gains the second factor gets a new key too
    else:
        auth.login(request, person, backend=request.session.get(PENDING_BACKEND_KEY))
    _pending_clear(request)
    otp_login(request, device)


@never_cache
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponseBase:
    next_url = _next(request)
    form = SignInForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST":
        if not SignInRateThrottle().allow_request(request, None):  # type: ignore[arg-type]
            error, status = gettext("Too many sign-ins from this address; wait a minute and try again."), 429
        elif not form.is_valid():
            error, status = gettext("Type your phone number and your password."), 400
        else:
            try:
                user = user_sign_in(
                    phone=form.cleaned_data["username"],
                    password=form.cleaned_data["password"],
                    ip=client_ip(request),
                )
            except InvalidCredentials:
                error, status = gettext("That phone number and password do not match."), 401
            except SignInLocked as locked:
                error, status = _locked_message(locked), 429
            else:
                return _after_password(request, user, next_url)
    return render(
        request,
        "account/login.html",
        {"form": form, "error": error, "next": next_url},
        status=status,
    )


def _after_password(request: HttpRequest, user: User, next_url: str) -> HttpResponseBase:
    device = confirmed_device(user)
    if device is None and not staff_need_second_factor(user):
        auth.login(request, user)  # rotates the session key
        request.session[PASSWORD_AT_KEY] = int(time.time())
        return redirect(next_url or _home(user))
    _pending_start(request, user)
    return _to(SECOND_FACTOR_URL if device is not None else ENROL_URL, next_url)


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponseBase:
    next_url = _next(request)
    person = _step_person(request)
    if person is None:
        return _to(settings.LOGIN_URL, next_url)
    if request.user.is_authenticated and second_factor_verified(request):
        return redirect(next_url or _home(person))
    device = confirmed_device(person)
    if device is None:
        return _to(ENROL_URL, next_url)
    form = CodeForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        try:
            verified = code_verify(user=person, device=device, code=form.cleaned_data["code"])
        except InvalidCode as wrong:
            error, status = wrong.message, 401
        except SignInLocked as locked:
            error, status = _locked_message(locked), 429
        else:
            _second_factor_done(request, person, verified)
            return redirect(next_url or _home(person))
    return render(
        request,
        "account/verify.html",
        {"form": form, "error": error, "next": next_url, "person": person},
        status=status,
    )


@never_cache
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponseBase:
    """Enrol the first device, or (signed in and verified) replace it."""
    next_url = _next(request)
    person = _step_person(request)
    if person is None:
        return _to(settings.LOGIN_URL, url_with_next(ENROL_URL, next_url) if next_url else ENROL_URL)
    current = confirmed_device(person)
    if current is None and not _password_just_proven(request):
        # A first device is set up on a password given just now: an old session (a lost phone's, whose
        # device staff reset) would otherwise set its own authenticator up for the account.
        return _to(settings.LOGIN_URL, url_with_next(ENROL_URL, next_url) if next_url else ENROL_URL)
    if current is not None and not (request.user.is_authenticated and second_factor_verified(request)):
        # Replacing a device takes a code from it first; a lost one is reset by staff (docs/operations.md).
        return _to(SECOND_FACTOR_URL, url_with_next(ENROL_URL, next_url) if next_url else ENROL_URL)
    action = request.POST.get("action", "")  # "start" a replacement, or "confirm" the device shown
    if current is not None and action not in ("start", "confirm"):
        return render(request, "account/two_factor.html", {"device": current, "next": next_url})

    device = enrolment_device(user=person)
    form = CodeForm(request.POST if action == "confirm" else None)
    error, status = "", 200
    if action == "confirm" and form.is_valid():
        try:
            confirmed = enrolment_confirm(user=person, device=device, code=form.cleaned_data["code"])
        except InvalidCode as wrong:
            error, status = wrong.message, 401
        except SignInLocked as locked:
            error, status = _locked_message(locked), 429
        else:
            _second_factor_done(request, person, confirmed)
            messages.success(request, gettext("Your authenticator app is set up."))
            return redirect(next_url or _home(person))
    return render(
        request,
        "account/enrol.html",
        {
            "form": form,
            "error": error,
            "next": next_url,
            "replacing": current is not None,
            "secret": device_secret_text(device),
            "qr_svg": device_qr_svg(device),
        },
        status=status,
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponseBase:
    auth.logout(request)
    return _to(settings.LOGIN_URL, _next(request))
