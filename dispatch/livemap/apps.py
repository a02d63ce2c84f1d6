from django.apps import AppConfig


class LiveMapConfig(AppConfig):
    name = "dispatch.livemap"
    label = "livemap"
    verbose_name = "Live dispatch map"
