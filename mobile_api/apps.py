from django.apps import AppConfig


class MobileApiConfig(AppConfig):
    name = "mobile_api"
    verbose_name = "Mobile API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mobile_api import schema  # noqa: F401 - registers OpenAPI extensions
