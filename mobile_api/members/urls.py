"""The members' portal routes, mounted at /members/ by backend/urls.py."""

app_name = "members"

urlpatterns: list = []
