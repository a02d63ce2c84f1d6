"""The card routes over HTTP: who may call them, what they answer, and the 402 a trip request gets."""

from __future__ import annotations

import pytest

from tests.cards.localstripe import LocalStripe
from tests.conftest import auth_client_for
from tests.factories import DriverFactory, RiderFactory
from tests.mobile_api.builders import DROPOFF, PICKUP

pytestmark = pytest.mark.django_db


def saved_over_http(client, localstripe: LocalStripe) -> dict:
    setup = client.post("/api/v1/payment-methods/setup")
    assert setup.status_code == 201, setup.json()
    body = setup.json()
    assert set(body) == {"setup_intent_id", "client_secret", "publishable_key", "customer_id"}
    assert body["publishable_key"].startswith("pk_")
    localstripe.confirm_setup(
        setup_intent_id=body["setup_intent_id"], client_secret=body["client_secret"]
    ).raise_for_status()
    saved = client.post(
        "/api/v1/payment-methods", {"setup_intent_id": body["setup_intent_id"]}, format="json"
    )
    assert saved.status_code == 201, saved.json()
    return saved.json()


def test_a_rider_saves_lists_and_removes_a_card_and_nobody_else_can(localstripe, api_client):
    rider = auth_client_for(RiderFactory())
    card = saved_over_http(rider, localstripe)
    assert card == {
        "id": card["id"],
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2031,
        "is_default": True,
    }
    assert rider.get("/api/v1/payment-methods").json() == [card]

    stranger = auth_client_for(RiderFactory())
    assert stranger.get("/api/v1/payment-methods").json() == []
    refused = stranger.delete(f"/api/v1/payment-methods/{card['id']}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "payment_method_not_found")
    refused = stranger.post(f"/api/v1/payment-methods/{card['id']}/default")
    assert refused.status_code == 404
    driver = auth_client_for(DriverFactory())
    refused = driver.post("/api/v1/payment-methods/setup")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "rider_role_required")
    assert api_client.get("/api/v1/payment-methods").status_code == 401

    assert rider.delete(f"/api/v1/payment-methods/{card['id']}").status_code == 204
    assert rider.get("/api/v1/payment-methods").json() == []


def test_saving_a_setup_of_someone_else_or_one_not_confirmed_is_refused(localstripe):
    owner = auth_client_for(RiderFactory())
    pending = owner.post("/api/v1/payment-methods/setup").json()
    refused = owner.post(
        "/api/v1/payment-methods", {"setup_intent_id": pending["setup_intent_id"]}, format="json"
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "setup_incomplete")

    thief = auth_client_for(RiderFactory())
    thief.post("/api/v1/payment-methods/setup")
    localstripe.confirm_setup(
        setup_intent_id=pending["setup_intent_id"], client_secret=pending["client_secret"]
    ).raise_for_status()
    refused = thief.post(
        "/api/v1/payment-methods", {"setup_intent_id": pending["setup_intent_id"]}, format="json"
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "setup_not_found")
    refused = owner.post("/api/v1/payment-methods", {"setup_intent_id": "pm_not_a_setup"}, format="json")
    assert refused.status_code == 400


def test_a_trip_request_without_a_card_answers_402_and_with_one_201(localstripe, service_area, idem):
    rider = auth_client_for(RiderFactory())
    refused = rider.post("/api/v1/trips", {"pickup": PICKUP, "dropoff": DROPOFF}, format="json", **idem())
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "payment_method_required"
    saved_over_http(rider, localstripe)
    accepted = rider.post("/api/v1/trips", {"pickup": PICKUP, "dropoff": DROPOFF}, format="json", **idem())
    assert accepted.status_code == 201, accepted.json()
    assert rider.get("/api/v1/payments/overdue").json() == {"overdue": False, "charges": []}


def test_card_routes_say_so_where_the_coop_takes_no_cards_or_its_key_is_missing(db, settings, localstripe):
    rider = auth_client_for(RiderFactory())
    settings.STRIPE_API_KEY = ""
    unset = rider.post("/api/v1/payment-methods/setup")
    assert (unset.status_code, unset.json()["error"]["code"]) == (503, "service_unavailable")
    settings.ROCHDALE_PAYMENT_PROVIDER = "test"
    refused = rider.post("/api/v1/payment-methods/setup")
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "cards_not_accepted")
    refused = rider.post("/api/v1/payment-methods", {"setup_intent_id": "seti_123"}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "cards_not_accepted")
    assert rider.get("/api/v1/payment-methods").json() == []
