"""The board's proposal form edits the contract's fields; the policy's other sections (pass-through fees, the
card-hold margin, the refund rule) are not on it and must carry over into the proposal unchanged, or a
proposal to change one rate would silently repeal New York's fees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from backend.fares.selectors import policy_in_force
from backend.fares.services import policy_version_create
from governance.models import Proposal
from governance.views_board import POLICY_FIELDS, _field_value
from tests.fares.builders import ensure_seed_policy

pytestmark = pytest.mark.django_db

NEW_YORK_POLICY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fare-policy-new-york.json"


def test_a_board_proposal_to_change_one_rate_keeps_the_fees_margin_and_refund_rule(make_director):
    ensure_seed_policy()
    policy_version_create(
        document=json.loads(NEW_YORK_POLICY.read_text()), effective_at=None, source="founding"
    )
    current = policy_in_force().to_document()
    assert current["fees"] and current["payments"]  # (the refund rule is at its default, so left out)
    director = make_director()
    browser = Client()
    browser.force_login(director.user)
    form = {path: str(_field_value(current, path)) for path, _, _ in POLICY_FIELDS}
    form.update(
        {
            "rider.base": "3.10",
            "title": "A higher base fare",
            "body": "Costs rose.",
            "closes_in_minutes": "60",
        }
    )
    answer = browser.post("/board/proposals/new/", form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    payload = Proposal.objects.get().payload
    assert payload["rider"]["base"] == "3.10"
    sections = ("fees", "payments", "refunds")
    assert {name: payload.get(name) for name in sections} == {name: current.get(name) for name in sections}
