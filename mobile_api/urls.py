"""All REST routes under /api/v1/. Each area keeps its routes in its own module."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mobile_api.views_health import HealthView, LivenessView, ReadinessView

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    # Answered by backend.health.HealthProbeMiddleware first; routed here for the OpenAPI description.
    path("health/live", LivenessView.as_view(), name="health-live"),
    path("health/ready", ReadinessView.as_view(), name="health-ready"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("mobile_api.urls_accounts")),
    path("", include("mobile_api.urls_trips")),
    path("", include("mobile_api.urls_driver")),
    path("", include("mobile_api.urls_payouts")),
    path("", include("mobile_api.urls_fares")),
    path("", include("mobile_api.urls_payments")),
    path("", include("mobile_api.urls_governance")),
    path("", include("mobile_api.urls_regulator")),
    path("", include("mobile_api.urls_documents")),
    path("", include("mobile_api.urls_reservations")),
    path("", include("mobile_api.urls_recurring")),
    path("", include("mobile_api.urls_organisations")),
    path("", include("mobile_api.urls_billing")),
    path("", include("mobile_api.urls_notifications")),
    path("", include("mobile_api.urls_safety")),
    path("", include("mobile_api.urls_coop")),
]
