from django.urls import path

from mobile_api import views_payments as views

urlpatterns = [
    path("payment-methods", views.PaymentMethodListView.as_view(), name="payment-methods"),
    path("payment-methods/setup", views.PaymentMethodSetupView.as_view(), name="payment-methods-setup"),
    path(
        "payment-methods/<str:payment_method_id>",
        views.PaymentMethodDetailView.as_view(),
        name="payment-method-detail",
    ),
    path(
        "payment-methods/<str:payment_method_id>/default",
        views.PaymentMethodDefaultView.as_view(),
        name="payment-method-default",
    ),
    path("payments/overdue", views.PaymentsOverdueView.as_view(), name="payments-overdue"),
    path("payments/stripe/webhook", views.StripeWebhookView.as_view(), name="payments-stripe-webhook"),
]
