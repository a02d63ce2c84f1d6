from django.urls import path

from mobile_api import views_fares as views
from mobile_api import views_receipts

urlpatterns = [
    path("fare-policy", views.FarePolicyView.as_view(), name="fare-policy"),
    path("fare-policy/history", views.FarePolicyHistoryView.as_view(), name="fare-policy-history"),
    path("driver/earnings", views.EarningsView.as_view(), name="driver-earnings"),
    path("driver/earnings.csv", views.EarningsCSVView.as_view(), name="driver-earnings-csv"),
    path(
        "driver/statements/<int:year>", views_receipts.DriverStatementView.as_view(), name="driver-statement"
    ),
    path(
        "driver/statements/<int:year>.csv",
        views_receipts.DriverStatementCSVView.as_view(),
        name="driver-statement-csv",
    ),
    path(
        "driver/statements/<int:year>.pdf",
        views_receipts.DriverStatementPDFView.as_view(),
        name="driver-statement-pdf",
    ),
    path("staff/payments/failed", views.FailedPaymentsView.as_view(), name="staff-payments-failed"),
]
