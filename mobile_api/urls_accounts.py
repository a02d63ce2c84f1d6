from django.urls import path

from mobile_api import views_accounts as views
from mobile_api import views_data_rights

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token", views.TokenView.as_view(), name="auth-token"),
    path("auth/token/refresh", views.TokenRefreshApiView.as_view(), name="auth-token-refresh"),
    path("me", views.MeView.as_view(), name="me"),
    path("me/export", views_data_rights.ExportView.as_view(), name="me-export"),
    path("me/erasure", views_data_rights.ErasureView.as_view(), name="me-erasure"),
    path("ws-ticket", views.WsTicketView.as_view(), name="ws-ticket"),
    path(
        "staff/drivers/<uuid:driver_id>/approve",
        views.DriverApproveView.as_view(),
        name="staff-driver-approve",
    ),
]
