from django.apps import AppConfig


class FaresConfig(AppConfig):
    name = "backend.fares"
    label = "fares"
    verbose_name = "Fares, pay and ledger"
    default_auto_field = "django.db.models.BigAutoField"
