"""Which language a person reads a message in (docs/languages.md).

One rule for the API (REST and websockets): a language the request asks for explicitly (Django's language
cookie, else the `Accept-Language` header, when it names a language the co-op offers) wins; otherwise the
signed-in user's own setting (`User.language`); otherwise English (`settings.LANGUAGE_CODE`). Pages signed in
by session put the account's setting before the browser's header, which browsers send whether or not the
person chose it. What is sent with nobody's request in hand (emails, SMS, push) is written in the
recipient's setting, else English.

Django's LocaleMiddleware activates the request's own language before any view runs; what this module adds
is the user's setting, applied where the user becomes known: DRF authenticates inside the view
(authentication.py here), sessions in AuthenticationMiddleware (UserLanguageMiddleware below),
sockets at the handshake (dispatch/realtime.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from backend.accounts.models import User


def supported_language(code: str | None) -> str | None:
    """The co-op's language for `code` (`es-MX` -> `es`), or None when it offers none like it."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code.strip().lower())
    except LookupError:
        return None


def accept_language_choice(header: str) -> str | None:
    """The first language in an `Accept-Language` header (by quality) that the co-op offers, or None when
    the header names none of them (`*` names none: it is no choice)."""
    for code, _quality in parse_accept_lang_header(header or ""):
        if code == "*":
            continue
        language = supported_language(code)
        if language is not None:
            return language
    return None


def requested_language(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The language a request asks for itself: the language cookie (set by a page's language switch), else
    its Accept-Language header; None when it asks for none the co-op offers."""
    return supported_language(cookies.get(settings.LANGUAGE_COOKIE_NAME)) or accept_language_choice(
        headers.get("accept-language", "")
    )


def user_language(user: object) -> str | None:
    """The signed-in person's own setting, when they made one the co-op still offers."""
    if not isinstance(user, User):
        return None
    return supported_language(user.language)


def language_for_user(user: User | None) -> str:
    """The language to write to `user` in when no request is in hand (emails, SMS, push)."""
    return user_language(user) or settings.LANGUAGE_CODE


def in_language_of(user: User | None) -> AbstractContextManager[None]:
    """`with in_language_of(user): ...` renders messages for `user` (their setting, else English)."""
    return translation.override(language_for_user(user))


def api_language(headers: Mapping[str, str], cookies: Mapping[str, str], user: object) -> str:
    """The API's rule: what the request asks for, else the user's setting, else English."""
    return requested_language(headers, cookies) or user_language(user) or settings.LANGUAGE_CODE


def socket_language(scope: Mapping[str, object], user: object) -> str:
    """The API's rule for a websocket, from the handshake's headers (a browser sends its Accept-Language
    and cookies there too)."""
    headers: dict[str, str] = {}
    raw_headers = scope.get("headers")
    if isinstance(raw_headers, Iterable):
        for name, value in raw_headers:
            headers[bytes(name).decode("latin-1").lower()] = bytes(value).decode("latin-1")
    cookies = scope.get("cookies")
    return api_language(headers, cookies if isinstance(cookies, Mapping) else {}, user)


def activate_for_request(request: HttpRequest, language: str) -> None:
    """Make `language` the one this request's answer is written in (and says in Content-Language)."""
    translation.activate(language)
    request.LANGUAGE_CODE = language  # type: ignore[attr-defined]


def activate_api_user_language(request: HttpRequest, user: object) -> None:
    """Once DRF knows the user: their setting applies unless the request asked for a language itself."""
    if requested_language(request.headers, request.COOKIES) is not None:
        return
    language = user_language(user)
    if language is not None:
        activate_for_request(request, language)


class UserLanguageMiddleware:
    """For pages signed in by session (the board and members' portal): the account's setting, unless the
    language cookie says otherwise, comes before the browser's Accept-Language. Sits after
    AuthenticationMiddleware; a request without a session (every API call) is left to LocaleMiddleware and
    the API's own rule, and costs nothing here (an empty session is never loaded from storage)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME in request.COOKIES and not supported_language(
            request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        ):
            language = user_language(getattr(request, "user", None))
            if language is not None:
                activate_for_request(request, language)
        return self.get_response(request)
