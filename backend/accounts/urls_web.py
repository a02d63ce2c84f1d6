"""The one sign-in path (password, then TOTP for directors and staff), mounted at /account/."""

app_name = "account"

urlpatterns: list = []
