"""Access cases for the card routes that take a card's id: only its rider reaches it (the "localstripe"
fixture points the backend at a private localstripe first)."""

from __future__ import annotations

from django.conf import settings

from tests.access_cases import AccessCase, Arranged, register
from tests.cards.localstripe import LocalStripe
from tests.cards.test_card_payments import save_card
from tests.factories import RiderFactory


def _saved_card() -> Arranged:
    rider = RiderFactory()
    card = save_card(LocalStripe(url=settings.STRIPE_API_BASE), rider)
    return Arranged(owner=rider, kwargs={"payment_method_id": card.id})


register("payment-method-detail", AccessCase(_saved_card, "delete", 204, fixtures=("localstripe",)))
register("payment-method-default", AccessCase(_saved_card, "post", 200, fixtures=("localstripe",)))
