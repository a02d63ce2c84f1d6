"""Card fixtures (a pytest plugin, named in tests/conftest.py, so the access matrix can use them too): the
real Stripe SDK against a private localstripe (tests/cards/localstripe.py)."""

from __future__ import annotations

import pytest

from tests.cards.localstripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, LocalStripe, localstripe_server


@pytest.fixture(scope="session")
def localstripe_process():
    with localstripe_server() as server:
        yield server


@pytest.fixture
def localstripe(localstripe_process: LocalStripe, settings) -> LocalStripe:
    """The co-op takes cards, through localstripe, which starts each test empty."""
    localstripe_process.flush()
    settings.ROCHDALE_PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = localstripe_process.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    return localstripe_process


@pytest.fixture
def celery_eager():
    from backend.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous
