from django.apps import AppConfig


class DispatchConfig(AppConfig):
    name = "dispatch"
    verbose_name = "Dispatch and trips"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The streams' depths on /metrics (docs/operations.md, "Metrics"); the kernel cannot import them.
        from backend.metrics import register_scrape_collector
        from dispatch.metrics import DispatchStreamsCollector

        register_scrape_collector(DispatchStreamsCollector())
