from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "backend.notifications"
    label = "notifications"
    verbose_name = "Notifications (SMS, email and the outbox that delivers them)"
    default_auto_field = "django.db.models.BigAutoField"
