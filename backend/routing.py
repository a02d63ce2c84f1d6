from django.urls import path

from dispatch.consumers import DriverConsumer
from dispatch.livemap.consumers import map_socket_application
from mobile_api.consumers import RiderConsumer

websocket_urlpatterns = [
    path("ws/driver/", DriverConsumer.as_asgi()),
    path("ws/rider/", RiderConsumer.as_asgi()),
    path("ws/map/", map_socket_application()),
]
