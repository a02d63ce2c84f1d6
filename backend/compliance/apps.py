from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "backend.compliance"
    label = "compliance"
    verbose_name = "Compliance (the regulator's rules)"
    default_auto_field = "django.db.models.BigAutoField"
