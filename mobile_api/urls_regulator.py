"""The regulator's reports for staff (mobile_api/views_regulator.py, docs/compliance.md)."""

from django.urls import path

from mobile_api import views_regulator as views

urlpatterns = [
    path(
        "staff/regulator/trip-records", views.TripRecordsView.as_view(), name="staff-regulator-trip-records"
    ),
    path(
        "staff/regulator/accessibility",
        views.AccessibilityView.as_view(),
        name="staff-regulator-accessibility",
    ),
]
