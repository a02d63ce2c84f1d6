"""Routes of issue 16's recurring rides (docs/recurring.md, docs/api.md)."""

from django.urls import path

from mobile_api import views_recurring as views

urlpatterns = [
    path("recurring-rides", views.RecurringRideListView.as_view(), name="recurring-rides"),
    path(
        "recurring-rides/<uuid:series_id>",
        views.RecurringRideDetailView.as_view(),
        name="recurring-ride-detail",
    ),
    path(
        "recurring-rides/<uuid:series_id>/occurrences",
        views.RecurringRideOccurrencesView.as_view(),
        name="recurring-ride-occurrences",
    ),
    path(
        "recurring-rides/<uuid:series_id>/skip",
        views.RecurringRideSkipView.as_view(),
        name="recurring-ride-skip",
    ),
    path(
        "recurring-rides/<uuid:series_id>/cancel",
        views.RecurringRideCancelView.as_view(),
        name="recurring-ride-cancel",
    ),
]
