"""urls_coop."""

urlpatterns: list = []
