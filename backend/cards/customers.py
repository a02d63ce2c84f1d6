"""Riders' saved cards: a Stripe customer per rider, SetupIntents the app confirms with Stripe directly,
and the list, default and removal of saved methods.

The backend never sees a card number: `payment_method_setup` returns a SetupIntent's client secret, the app
hands the card to Stripe with it, and `payment_method_save` then checks at Stripe that the SetupIntent
belongs to this rider and succeeded before the method becomes usable (the first saved card becomes the
default). Every listing is read from Stripe, which holds the cards; we keep only the customer and the
default's id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.cards.holds import cards_in_use
from backend.cards.models import CardHold, StripeCustomer
from backend.cards.stripe_api import object_id, stripe_client, stripe_failure
from backend.errors import InvalidInput, NotFound, PermissionDenied, ServiceUnavailable, Unprocessable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedCard:
    """A card as the rider sees it: Stripe's id, the brand and last four digits, expiry, default or not."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool


@dataclass(frozen=True)
class CardSetup:
    """What the app needs to hand a card to Stripe: the SetupIntent, its client secret, the public key."""

    setup_intent_id: str
    client_secret: str
    publishable_key: str
    customer_id: str


def _call_stripe[T](what: str, call: Callable[[], T]) -> T:
    """Run a Stripe call for a rider-facing request: a refusal is the rider's 422, an outage (or a co-op
    whose Stripe key is missing) a 503."""
    try:
        return call()
    except ImproperlyConfigured as exc:
        logger.error("card request refused: %s", exc)
        raise ServiceUnavailable(
            _("Card payments are not set up here yet."), details={"service": "stripe"}
        ) from exc
    except stripe.CardError as exc:
        failure = stripe_failure(exc)
        raise Unprocessable(
            _("The card was declined."), code="card_declined", details={"reason": failure.code}
        ) from exc
    except stripe.StripeError as exc:
        failure = stripe_failure(exc)
        if failure.definitive and failure.http_status == 404:
            raise NotFound(
                _("Stripe does not know this %(what)s.") % {"what": what}, code="payment_method_not_found"
            ) from exc
        if failure.definitive:
            raise Unprocessable(
                _("Stripe refused to %(what)s: %(message)s") % {"what": what, "message": failure.message},
                code="card_refused",
            ) from exc
        raise ServiceUnavailable(_("The card processor is unreachable; try again shortly.")) from exc


def _rider(rider_id: uuid.UUID) -> User:
    rider = User.objects.filter(id=rider_id, is_active=True, is_rider=True).first()
    if rider is None:
        raise PermissionDenied(_("Only a rider account can save cards."), code="rider_role_required")
    return rider


def _cards_taken() -> None:
    if not cards_in_use():
        raise Unprocessable(
            _("This co-op does not take cards (its payment provider is not Stripe)."),
            code="cards_not_accepted",
        )


def stripe_customer_ensure(*, rider_id: uuid.UUID) -> StripeCustomer:
    """The rider's Stripe customer, created on first use. The creation carries a key derived from the rider,
    so two racing first uses (or a retry after a lost answer) make one customer at Stripe; the row's primary
    key makes one here."""
    existing = StripeCustomer.objects.filter(rider_id=rider_id).first()
    if existing is not None:
        return existing
    rider = _rider(rider_id)
    _cards_taken()
    customer = _call_stripe(
        "create a customer",
        lambda: stripe_client().v1.customers.create(
            params={"name": rider.name, "phone": rider.phone, "metadata": {"rochdale_rider": str(rider.id)}},
            options={"idempotency_key": f"rochdale:customer:{rider.id}"},
        ),
    )
    try:
        with transaction.atomic():
            return StripeCustomer.objects.create(rider_id=rider.id, customer_id=customer.id)
    except IntegrityError:
        return StripeCustomer.objects.get(rider_id=rider.id)


def payment_method_setup(*, rider_id: uuid.UUID) -> CardSetup:
    """Start saving a card: a SetupIntent for off-session use (the fare is captured after the ride)."""
    customer = stripe_customer_ensure(rider_id=rider_id)
    intent = _call_stripe(
        "start saving a card",
        lambda: stripe_client().v1.setup_intents.create(
            params={
                "customer": customer.customer_id,
                "usage": "off_session",
                "metadata": {"rochdale_rider": str(rider_id)},
            }
        ),
    )
    return CardSetup(
        setup_intent_id=intent.id,
        client_secret=intent.client_secret,
        publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
        customer_id=customer.customer_id,
    )


def payment_method_save(*, rider_id: uuid.UUID, setup_intent_id: str) -> SavedCard:
    """Keep the card a confirmed SetupIntent saved: it must be this rider's and have succeeded. The first
    card saved becomes the default."""
    if not isinstance(setup_intent_id, str) or not setup_intent_id.startswith("seti_"):
        raise InvalidInput(details={"setup_intent_id": [_("must be the id of a SetupIntent (seti_...)")]})
    _cards_taken()
    customer = _own_customer(rider_id)
    client = _call_stripe("reach Stripe", stripe_client)
    intent = _call_stripe("read the card setup", lambda: client.v1.setup_intents.retrieve(setup_intent_id))
    if object_id(intent.customer) != customer.customer_id:
        raise NotFound(_("No such card setup."), code="setup_not_found")
    if intent.status != "succeeded" or not intent.payment_method:
        raise Unprocessable(
            _("The card is not saved yet: the setup has not succeeded."),
            code="setup_incomplete",
            details={"status": intent.status},
        )
    method_id = object_id(intent.payment_method)
    method = _call_stripe("read the card", lambda: client.v1.payment_methods.retrieve(method_id))
    if object_id(method.customer) != customer.customer_id:
        # Stripe attaches the card when the SetupIntent succeeds; a processor that has not must be told.
        method = _call_stripe(
            "attach the card",
            lambda: client.v1.payment_methods.attach(method_id, params={"customer": customer.customer_id}),
        )
    with transaction.atomic():
        locked = StripeCustomer.objects.select_for_update().get(rider_id=rider_id)
        if not locked.default_payment_method_id:
            locked.default_payment_method_id = method_id
            locked.updated_at = timezone.now()
            locked.save(update_fields=["default_payment_method_id", "updated_at"])
    return _card(method, default_id=StripeCustomer.objects.get(rider_id=rider_id).default_payment_method_id)


def payment_methods_list(*, rider_id: uuid.UUID) -> list[SavedCard]:
    """The rider's saved cards as Stripe holds them (none before the first setup)."""
    _rider(rider_id)
    customer = StripeCustomer.objects.filter(rider_id=rider_id).first()
    if customer is None:
        return []
    methods = _call_stripe(
        "list the cards",
        lambda: stripe_client().v1.payment_methods.list(
            params={"customer": customer.customer_id, "type": "card", "limit": 100}
        ),
    )
    cards = [_card(method, default_id=customer.default_payment_method_id) for method in methods.data]
    if cards and not any(card.is_default for card in cards):
        first = cards[0]
        cards[0] = SavedCard(**{**first.__dict__, "is_default": True})
    return cards


def payment_method_default_set(*, rider_id: uuid.UUID, payment_method_id: str) -> SavedCard:
    """Make one of the rider's own cards the default charged for trips."""
    card = _own_card(rider_id=rider_id, payment_method_id=payment_method_id)
    StripeCustomer.objects.filter(rider_id=rider_id).update(
        default_payment_method_id=card.id, updated_at=timezone.now()
    )
    return SavedCard(**{**card.__dict__, "is_default": True})


def payment_method_detach(*, rider_id: uuid.UUID, payment_method_id: str) -> None:
    """Remove one of the rider's own cards at Stripe; the default moves to another card, if any."""
    card = _own_card(rider_id=rider_id, payment_method_id=payment_method_id)
    _call_stripe("remove the card", lambda: stripe_client().v1.payment_methods.detach(card.id))
    with transaction.atomic():
        customer = StripeCustomer.objects.select_for_update().get(rider_id=rider_id)
        if customer.default_payment_method_id == card.id:
            customer.default_payment_method_id = ""
            customer.updated_at = timezone.now()
            customer.save(update_fields=["default_payment_method_id", "updated_at"])


def default_payment_method_id(*, rider_id: uuid.UUID) -> str | None:
    """The card a trip of this rider is charged to: the default, else the first saved; None without one."""
    cards = payment_methods_list(rider_id=rider_id)
    return next((card.id for card in cards if card.is_default), None)


@dataclass(frozen=True)
class CardOnReceipt:
    brand: str
    last4: str


def card_of_trip(*, trip_id: uuid.UUID) -> CardOnReceipt | None:
    """The card a trip's hold was made on, as a receipt names it (brand and last four digits): read from
    Stripe once and kept on the hold. None for a trip without a card hold, or while Stripe cannot say."""
    hold = CardHold.objects.filter(trip_id=trip_id).exclude(payment_method_id="").first()
    if hold is None:
        return None
    if not hold.card_last4:
        try:
            method = stripe_client().v1.payment_methods.retrieve(hold.payment_method_id)
        except (stripe.StripeError, ImproperlyConfigured):
            return None  # a receipt without the card's name is still a receipt
        CardHold.objects.filter(id=hold.id).update(
            card_brand=str(method.card.brand)[:24], card_last4=str(method.card.last4)[:4]
        )
        hold.refresh_from_db()
    return CardOnReceipt(brand=hold.card_brand, last4=hold.card_last4)


def _own_customer(rider_id: uuid.UUID) -> StripeCustomer:
    _rider(rider_id)
    customer = StripeCustomer.objects.filter(rider_id=rider_id).first()
    if customer is None:
        raise NotFound(_("No card has been set up yet."), code="payment_method_not_found")
    return customer


def _own_card(*, rider_id: uuid.UUID, payment_method_id: str) -> SavedCard:
    """One of the rider's cards, or 404: another rider's card id is as unknown as a made-up one (and so,
    to anyone who has no cards, a driver included, is every id)."""
    if (
        not isinstance(payment_method_id, str)
        or not payment_method_id.startswith("pm_")
        or not StripeCustomer.objects.filter(rider_id=rider_id).exists()
    ):
        raise NotFound(_("No such card."), code="payment_method_not_found")
    for card in payment_methods_list(rider_id=rider_id):
        if card.id == payment_method_id:
            return card
    raise NotFound(_("No such card."), code="payment_method_not_found")


def _card(method: stripe.PaymentMethod, *, default_id: str) -> SavedCard:
    card = method.card
    return SavedCard(
        id=method.id,
        brand=str(card.brand),
        last4=str(card.last4),
        exp_month=int(card.exp_month),
        exp_year=int(card.exp_year),
        is_default=method.id == default_id,
    )
