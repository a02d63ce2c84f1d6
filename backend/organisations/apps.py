from django.apps import AppConfig


class OrganisationsConfig(AppConfig):
    name = "backend.organisations"
    label = "organisations"
    verbose_name = "Organisations (clinics, agencies and businesses that book rides)"
    default_auto_field = "django.db.models.BigAutoField"
