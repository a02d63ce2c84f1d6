"""Fixtures for the fares tests that touch the database (the pure-rule tests here need none of them)."""

from __future__ import annotations

import pytest


@pytest.fixture
def seeded_policy(db):
    """Fare policy v1 as the seed migration writes it (a transactional test's flush removes seeds)."""
    from tests.fares.builders import ensure_seed_policy

    return ensure_seed_policy()


@pytest.fixture
def celery_eager():
    """Run tasks in-process when they are sent (after commit), as a worker would."""
    from backend.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous
