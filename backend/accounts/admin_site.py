"""The Django admin behind the one sign-in path, for staff with a verified second factor (docs/sign-in.md).

It is Django's own admin site (every `admin.site.register` and `@admin.register` is unchanged): the app
config `backend.accounts.admin_config.SecondFactorAdminConfig` (in INSTALLED_APPS instead of
"django.contrib.admin") makes this class `admin.site`. Its login page is the project's: /admin/login/
forwards to /account/login/ (password, then the code). A staff session that has not passed the code is no
staff session here, as with django-otp's `OTPAdminSite`, while the site keeps Django's name "admin" (so
`admin:` URLs stay as they are).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.db.models import Model
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse

from backend.accounts import web
from backend.fares.admin_display import with_readable_fields


class SecondFactorAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and web.second_factor_verified(request)

    def login(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponseRedirect:
        index = reverse("admin:index", current_app=self.name)
        target = web.safe_next(request, request.GET.get(REDIRECT_FIELD_NAME), default=index)
        if self.has_permission(request):
            return redirect(target)
        if request.user.is_authenticated and request.user.is_staff:
            # Signed in (by some other way than the sign-in page) but not through the code step.
            return redirect(web.url_with_next(web.SECOND_FACTOR_URL, target))
        return redirect(web.url_with_next(settings.LOGIN_URL, target))

    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: type[admin.ModelAdmin] | None = None,
        **options: object,
    ) -> None:
        # Every screen shows money, points and JSON readably (backend/fares/admin_display.py), the ones apps
        # register tomorrow included: the mixin goes in here, not in each admin.
        super().register(model_or_iterable, with_readable_fields(admin_class or admin.ModelAdmin), **options)
