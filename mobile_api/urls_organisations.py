"""Routes of issue 16's organisations (docs/api.md)."""

from django.urls import path  # noqa: F401 - the routes are added below as they are built

urlpatterns: list = []
