"""Routes of issue 16's reservations (docs/api.md, docs/scheduling.md)."""

from django.urls import path

from mobile_api import views_reservations as views

urlpatterns = [
    path("driver/reservations", views.DriverReservationsView.as_view(), name="driver-reservations"),
    path(
        "driver/reservations/<uuid:trip_id>/claim",
        views.ReservationClaimView.as_view(),
        name="driver-reservation-claim",
    ),
    path(
        "driver/reservations/<uuid:trip_id>/release",
        views.ReservationReleaseView.as_view(),
        name="driver-reservation-release",
    ),
    path("staff/reservations", views.StaffReservationsView.as_view(), name="staff-reservations"),
]
