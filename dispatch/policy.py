"""The board's dispatch policy in force: fairness rule, and (when the board set them) timeouts and budget.

Versions are rows of DispatchPolicyVersion (version 1 is seeded by migration; docs/dispatch.md explains
the rule). A field a version leaves out falls back to the setting of the same meaning, so operators can
tune timeouts per deployment while the board owns the fairness rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from dispatch.matching.ranking import FairnessRule
from dispatch.models import DispatchPolicyVersion

FAIRNESS_RULE = "idle_within_eta_band"
DEFAULT_DOCUMENT: dict[str, Any] = {
    "fairness": {
        "rule": FAIRNESS_RULE,
        "eta_window_s": 120,
        "max_pickup_eta_s": 1200,
        "description": (
            "Among the drivers whose pickup ETA is within eta_window_s of the fastest, the trip is offered "
            "first to the one who has waited longest since their last trip (or since going online); the "
            "next offer applies the same rule to the drivers left. No driver further than "
            "max_pickup_eta_s from the pickup is offered the trip."
        ),
    },
    "max_candidates": 20,
}


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    version: int | None
    rule: str
    eta_window_s: int
    max_pickup_eta_s: int | None
    max_candidates: int
    offer_timeout_s: float
    search_budget_s: float
    search_radius_m: float
    retry_interval_s: float
    max_fix_age_s: float

    def as_reason(self) -> dict[str, Any]:
        return {"rule": self.rule, "eta_window_s": self.eta_window_s, "policy_version": self.version}

    def fairness_rule(self) -> FairnessRule:
        return FairnessRule(eta_window_s=self.eta_window_s, max_pickup_eta_s=self.max_pickup_eta_s)


def _build(version: int | None, document: dict[str, Any]) -> DispatchPolicy:
    fairness = document.get("fairness") or {}
    return DispatchPolicy(
        version=version,
        rule=str(fairness.get("rule", FAIRNESS_RULE)),
        eta_window_s=int(fairness.get("eta_window_s", 120)),
        max_pickup_eta_s=None
        if fairness.get("max_pickup_eta_s") is None
        else int(fairness["max_pickup_eta_s"]),
        max_candidates=int(document.get("max_candidates", 20)),
        offer_timeout_s=float(document.get("offer_timeout_s", settings.ROCHDALE_OFFER_TIMEOUT_S)),
        search_budget_s=float(document.get("search_budget_s", settings.ROCHDALE_SEARCH_BUDGET_S)),
        search_radius_m=float(document.get("search_radius_m", settings.ROCHDALE_SEARCH_RADIUS_M)),
        retry_interval_s=float(document.get("retry_interval_s", settings.ROCHDALE_DISPATCH_RETRY_S)),
        max_fix_age_s=float(document.get("max_fix_age_s", settings.ROCHDALE_FIX_MAX_AGE_S)),
    )


def dispatch_policy_in_force(at: datetime | None = None) -> DispatchPolicy:
    row = (
        DispatchPolicyVersion.objects.filter(effective_at__lte=at or timezone.now())
        .order_by("-effective_at", "-version")
        .values_list("version", "document")
        .first()
    )
    if row is None:
        return _build(None, DEFAULT_DOCUMENT)
    return _build(row[0], row[1])
