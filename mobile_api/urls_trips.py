from django.urls import path

from mobile_api import views_receipts
from mobile_api import views_trips as views

urlpatterns = [
    path("fares/estimate", views.FareEstimateView.as_view(), name="fare-estimate"),
    path("trips", views.TripListView.as_view(), name="trips"),
    path("trips/<uuid:trip_id>", views.TripDetailView.as_view(), name="trip-detail"),
    path("trips/<uuid:trip_id>/cancel", views.TripCancelView.as_view(), name="trip-cancel"),
    path("trips/<uuid:trip_id>/rating", views.TripRatingView.as_view(), name="trip-rating"),
    path("trips/<uuid:trip_id>/tip", views.TripTipView.as_view(), name="trip-tip"),
    path("trips/<uuid:trip_id>/receipt", views_receipts.TripReceiptView.as_view(), name="trip-receipt"),
    path("staff/trips/<uuid:trip_id>/close", views.StaffTripCloseView.as_view(), name="staff-trip-close"),
    path(
        "staff/trips/<uuid:trip_id>/refunds",
        views_receipts.StaffTripRefundsView.as_view(),
        name="staff-trip-refunds",
    ),
]
