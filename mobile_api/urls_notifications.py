"""urls_notifications."""

urlpatterns: list = []
