"""Safety routes under /api/v1/ (docs/safety.md): share-trip links, SOS, the ride PIN, staff alerts."""

from django.urls import path

from mobile_api import views_safety as views

urlpatterns = [
    path("trips/<uuid:trip_id>/share-links", views.TripShareLinksView.as_view(), name="trip-share-links"),
    path(
        "trips/<uuid:trip_id>/share-links/<uuid:link_id>/revoke",
        views.TripShareLinkRevokeView.as_view(),
        name="trip-share-link-revoke",
    ),
    path("shared/trips/<str:token>", views.SharedTripView.as_view(), name="shared-trip"),
    path("trips/<uuid:trip_id>/sos", views.TripSosView.as_view(), name="trip-sos"),
    path("sos", views.SosView.as_view(), name="sos"),
    path(
        "trips/<uuid:trip_id>/ride-pin/reset",
        views.TripRidePinResetView.as_view(),
        name="trip-ride-pin-reset",
    ),
    path(
        "staff/trips/<uuid:trip_id>/ride-pin/waive",
        views.StaffTripRidePinWaiveView.as_view(),
        name="staff-trip-ride-pin-waive",
    ),
    path("staff/safety/alerts", views.StaffSafetyAlertsView.as_view(), name="staff-safety-alerts"),
    path(
        "staff/safety/alerts/<uuid:alert_id>", views.StaffSafetyAlertView.as_view(), name="staff-safety-alert"
    ),
    path(
        "staff/safety/alerts/<uuid:alert_id>/acknowledge",
        views.StaffSafetyAlertAcknowledgeView.as_view(),
        name="staff-safety-alert-acknowledge",
    ),
    path(
        "staff/safety/alerts/<uuid:alert_id>/resolve",
        views.StaffSafetyAlertResolveView.as_view(),
        name="staff-safety-alert-resolve",
    ),
    path("me/safety", views.MySafetySettingsView.as_view(), name="me-safety"),
]
