from django.urls import path

from mobile_api import views_payouts as views

urlpatterns = [
    path("driver/payouts", views.DriverPayoutsView.as_view(), name="driver-payouts"),
    path(
        "driver/payouts/stripe-onboarding",
        views.StripeOnboardingView.as_view(),
        name="driver-payouts-stripe-onboarding",
    ),
    path(
        "driver/payouts/<uuid:payout_id>", views.DriverPayoutDetailView.as_view(), name="driver-payout-detail"
    ),
]
