"""DRF authentication by access token (SimpleJWT) that also applies the user's language.

DRF authenticates inside the view, after every middleware has run, so this is the first moment an API
request knows whose it is: from here on (permission checks, the service, the answer, the exception handler)
messages are written in the user's setting unless the request asked for a language itself
(backend/accounts/languages.py has the rule, docs/languages.md the why).
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import Token

from backend.accounts.languages import activate_api_user_language
from backend.accounts.models import User
from backend.request_context import bind_log_user


class LanguageJWTAuthentication(JWTAuthentication):
    """SimpleJWT's access-token authentication, plus the signed-in user's language for the answer."""

    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        authenticated = super().authenticate(request)
        if authenticated is not None:
            activate_api_user_language(request._request, authenticated[0])
            bind_log_user(authenticated[0].pk)  # every line of the rest of this request names its user
        return authenticated
