"""urls_safety."""

urlpatterns: list = []
