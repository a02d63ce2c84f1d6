"""The co-op's public figures (docs/figures.md)."""

from django.urls import path

from mobile_api.views_coop import CoopFiguresView

urlpatterns = [
    path("coop/figures", CoopFiguresView.as_view(), name="coop-figures"),
]
