from django.urls import path

from dispatch.livemap import views

app_name = "livemap"

urlpatterns = [
    path("", views.map_page, name="map"),
    path("streets.json", views.streets, name="streets"),
    path("areas.json", views.service_areas, name="areas"),
    path("snapshot.json", views.snapshot, name="snapshot"),
    path("alerts/<uuid:alert_id>/acknowledge", views.alert_acknowledge, name="alert-acknowledge"),
]
