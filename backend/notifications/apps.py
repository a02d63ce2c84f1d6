from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "backend.notifications"
    label = "notifications"
    verbose_name = "Notifications (SMS, email and the outbox that delivers them)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The SMS adapters register themselves by name; ROCHDALE_SMS_PROVIDER picks one.
        from backend.notifications import sms  # noqa: F401
