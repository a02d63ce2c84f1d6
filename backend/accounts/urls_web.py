"""The one sign-in path (password, then TOTP for directors and staff), mounted at /account/."""

from django.urls import path

from backend.accounts import views_web as views

app_name = "account"

urlpatterns = [
    path("login/", views.sign_in, name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("verify/", views.verify, name="verify"),
    path("two-factor/", views.two_factor, name="two_factor"),
]
