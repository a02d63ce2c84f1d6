from django.urls import path

from mobile_api import views_fares as views

urlpatterns = [
    path("fare-policy", views.FarePolicyView.as_view(), name="fare-policy"),
    path("fare-policy/history", views.FarePolicyHistoryView.as_view(), name="fare-policy-history"),
    path("driver/earnings", views.EarningsView.as_view(), name="driver-earnings"),
    path("driver/earnings.csv", views.EarningsCSVView.as_view(), name="driver-earnings-csv"),
    path("staff/payments/failed", views.FailedPaymentsView.as_view(), name="staff-payments-failed"),
]
