"""Django's admin app with the project's admin site (backend/accounts/admin_site.py) as `admin.site`.

Its own module because INSTALLED_APPS imports it before the models load; the site, which needs them, is
named by its dotted path and imported when the admin first builds it."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class SecondFactorAdminConfig(AdminConfig):
    default_site = "backend.accounts.admin_site.SecondFactorAdminSite"
