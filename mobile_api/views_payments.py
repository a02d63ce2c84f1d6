"""Riders' cards (setup, list, default, removal), paying what they owe, and Stripe's webhook.

Thin: validate, call backend/cards or backend/fares, shape the answer. Card numbers never pass through here:
the app confirms the SetupIntent with Stripe itself, then tells us which SetupIntent to keep.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.cards import customers
from backend.cards.customers import SavedCard
from backend.cards.webhooks import webhook_receive
from backend.fares.money import money
from backend.fares.payments import overdue_captures, overdue_pay
from mobile_api.schema import error_responses


class SavedCardOut(serializers.Serializer):
    id = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    is_default = serializers.BooleanField()


class CardSetupOut(serializers.Serializer):
    setup_intent_id = serializers.CharField()
    client_secret = serializers.CharField()
    publishable_key = serializers.CharField()
    customer_id = serializers.CharField()


class CardSaveIn(serializers.Serializer):
    setup_intent_id = serializers.CharField(max_length=80)


_OverdueOut = inline_serializer(
    "PaymentsOverdue",
    {
        "overdue": serializers.BooleanField(),
        "charges": inline_serializer(
            "OverdueCharge",
            {
                "capture_id": serializers.UUIDField(),
                "purpose": serializers.CharField(),
                "trip_id": serializers.UUIDField(allow_null=True),
                "amount": serializers.DictField(),
                "last_error": serializers.CharField(),
            },
            many=True,
        ),
    },
)

_CARD_ERRORS = {
    403: ["rider_role_required"],
    404: ["payment_method_not_found"],
    422: ["card_declined", "card_refused", "cards_not_accepted"],
    503: ["service_unavailable"],
}


def _card(card: SavedCard) -> dict[str, object]:
    return SavedCardOut(card).data


class PaymentMethodListView(APIView):
    @extend_schema(
        operation_id="payment_methods_list",
        summary="The rider's saved cards (brand, last four digits, expiry, which is the default)",
        responses={200: SavedCardOut(many=True), **error_responses(_CARD_ERRORS)},
        tags=["payments"],
    )
    def get(self, request: Request) -> Response:
        return Response([_card(card) for card in customers.payment_methods_list(rider_id=request.user.pk)])

    @extend_schema(
        operation_id="payment_methods_save",
        summary="Keep the card a SetupIntent saved, once the app confirmed it with Stripe",
        request=CardSaveIn,
        responses={
            201: SavedCardOut,
            **error_responses(
                {
                    **_CARD_ERRORS,
                    404: ["setup_not_found", "payment_method_not_found"],
                    422: [*_CARD_ERRORS[422], "setup_incomplete"],
                }
            ),
        },
        tags=["payments"],
    )
    def post(self, request: Request) -> Response:
        body = CardSaveIn(data=request.data)
        body.is_valid(raise_exception=True)
        card = customers.payment_method_save(
            rider_id=request.user.pk, setup_intent_id=body.validated_data["setup_intent_id"]
        )
        return Response(_card(card), status=201)


class PaymentMethodSetupView(APIView):
    @extend_schema(
        operation_id="payment_methods_setup",
        summary="Start saving a card: a SetupIntent's client secret for the app to hand the card to Stripe",
        request=None,
        responses={201: CardSetupOut, **error_responses(_CARD_ERRORS)},
        tags=["payments"],
    )
    def post(self, request: Request) -> Response:
        setup = customers.payment_method_setup(rider_id=request.user.pk)
        return Response(CardSetupOut(setup).data, status=201)


class PaymentMethodDetailView(APIView):
    @extend_schema(
        operation_id="payment_methods_detach",
        summary="Remove one of the rider's cards (detached at Stripe)",
        responses={204: None, **error_responses(_CARD_ERRORS)},
        tags=["payments"],
    )
    def delete(self, request: Request, payment_method_id: str) -> Response:
        customers.payment_method_detach(rider_id=request.user.pk, payment_method_id=payment_method_id)
        return Response(status=204)


class PaymentMethodDefaultView(APIView):
    @extend_schema(
        operation_id="payment_methods_default",
        summary="Make one of the rider's cards the one trips are charged to",
        request=None,
        responses={200: SavedCardOut, **error_responses(_CARD_ERRORS)},
        tags=["payments"],
    )
    def post(self, request: Request, payment_method_id: str) -> Response:
        card = customers.payment_method_default_set(
            rider_id=request.user.pk, payment_method_id=payment_method_id
        )
        return Response(_card(card))


def _overdue_document(rider_id: object) -> dict[str, object]:
    charges = [
        {
            "capture_id": capture.id,
            "purpose": capture.purpose,
            "trip_id": capture.trip_id,
            "amount": money(capture.amount_minor, capture.currency),
            "last_error": capture.last_error,
        }
        for capture in overdue_captures(rider_id=rider_id).order_by("created_at")
    ]
    return {"overdue": bool(charges), "charges": charges}


class PaymentsOverdueView(APIView):
    @extend_schema(
        operation_id="payments_overdue",
        summary="Charges the rider owes that could not be collected (new trips wait until they are paid)",
        responses={200: _OverdueOut},
        tags=["payments"],
    )
    def get(self, request: Request) -> Response:
        return Response(_overdue_document(request.user.pk))

    @extend_schema(
        operation_id="payments_overdue_pay",
        summary="Collect the overdue charges now, from the rider's current default card",
        request=None,
        responses={200: _OverdueOut},
        tags=["payments"],
    )
    def post(self, request: Request) -> Response:
        overdue_pay(rider_id=request.user.pk)
        return Response(_overdue_document(request.user.pk))


class StripeWebhookView(APIView):
    """Stripe's deliveries: no session or token, the `Stripe-Signature` header is the authentication. Not
    throttled: a throttled delivery is one Stripe retries for days, and verifying a signature is cheap."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="payments_stripe_webhook",
        summary="Stripe's webhook events (signature verified; each event applied once, in any order)",
        request=None,
        responses={
            200: inline_serializer(
                "WebhookReceived",
                {"event_id": serializers.CharField(), "processed": serializers.BooleanField()},
            ),
            **error_responses(
                {400: ["invalid_signature"], 404: ["cards_not_accepted"], 503: ["webhooks_not_configured"]}
            ),
        },
        tags=["payments"],
    )
    def post(self, request: Request) -> Response:
        event = webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
        return Response({"event_id": event.event_id, "processed": event.processed_at is not None})
