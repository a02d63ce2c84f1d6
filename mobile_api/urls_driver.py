from django.urls import path

from mobile_api import views_driver as views

urlpatterns = [
    path("driver/state", views.DriverStateView.as_view(), name="driver-state"),
    path("driver/offers", views.DriverOffersView.as_view(), name="driver-offers"),
]
