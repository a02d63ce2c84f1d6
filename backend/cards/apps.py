from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "backend.cards"
    label = "cards"
    verbose_name = "Card payments (Stripe)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The fares app keeps the registry of payment providers and never imports this app (it sits below
        # it); this app adds the card provider to it, so `ROCHDALE_PAYMENT_PROVIDER=stripe` finds it.
        from backend.cards.provider import StripeProvider
        from backend.fares.payments import register_payment_provider

        register_payment_provider(StripeProvider.name, StripeProvider)
