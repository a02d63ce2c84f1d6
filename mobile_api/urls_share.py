"""The share-trip page at /share/{token}: a trip's live progress for the link's holder (docs/safety.md)."""

from django.urls import path

from mobile_api import views_safety as views

app_name = "share"

urlpatterns = [
    path("<str:token>", views.share_page, name="trip"),
]
