from django.contrib import admin
from django.urls import include, path

from backend import views_home
from backend.views_metrics import metrics_view

urlpatterns = [
    path("", views_home.home, name="home"),
    path("favicon.ico", views_home.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("mobile_api.urls")),
    path("map/", include("dispatch.livemap.urls")),
    path("board/", include("governance.urls_board")),
    path("account/", include("backend.accounts.urls_web")),
    path("members/", include("mobile_api.members.urls")),
    path("share/", include("mobile_api.urls_share")),
    path("metrics", metrics_view),  # Prometheus (docs/operations.md, "Metrics")
]

handler400 = "mobile_api.errors.json_400"
handler403 = "mobile_api.errors.json_403"
handler404 = "mobile_api.errors.json_404"
handler500 = "mobile_api.errors.json_500"
