"""The caller's notification preferences, Web Push subscriptions and app devices (under /api/v1/)."""

from django.urls import path

from mobile_api import views_notifications as views

urlpatterns = [
    path(
        "me/notification-preferences",
        views.NotificationPreferencesView.as_view(),
        name="me-notification-preferences",
    ),
    path("me/push/vapid-public-key", views.VapidPublicKeyView.as_view(), name="me-push-vapid-public-key"),
    path("me/push-subscriptions", views.PushSubscriptionsView.as_view(), name="me-push-subscriptions"),
    path("me/devices", views.DevicesView.as_view(), name="me-devices"),
]
