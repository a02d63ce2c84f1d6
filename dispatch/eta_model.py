"""The pickup ETA used by dispatch and by fare estimates: one function over the shared model.

`dispatch/matching/eta.py` (pure) owns the model; this adapter feeds it the settings
(`ROCHDALE_ETA_CIRCUITY`, `ROCHDALE_ETA_SPEED_PROFILE_KMH`, `TIME_ZONE`) so every process computes the
same number.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from dispatch.matching.eta import DEFAULT_ETA_PARAMETERS, EtaParameters, GreatCircleEstimator
from dispatch.matching.eta import pickup_eta_s as model_pickup_eta_s


@lru_cache(maxsize=8)
def _parameters(circuity: float, profile: tuple[float, ...], zone: str) -> EtaParameters:
    return EtaParameters(
        circuity=circuity,
        speed_profile_kmh=profile or DEFAULT_ETA_PARAMETERS.speed_profile_kmh,
        timezone=zone,
    )


def eta_parameters() -> EtaParameters:
    return _parameters(
        float(settings.ROCHDALE_ETA_CIRCUITY),
        tuple(settings.ROCHDALE_ETA_SPEED_PROFILE_KMH),
        settings.TIME_ZONE,
    )


def pickup_eta_s(distance_m: float, *, at: datetime | None = None) -> int:
    """Seconds for a driver `distance_m` away (great circle) to reach the pickup."""
    return model_pickup_eta_s(
        max(float(distance_m), 0.0), at=at or timezone.now(), parameters=eta_parameters()
    )


def pickup_eta_by_road_s(drive_s: int) -> int:
    """The pickup ETA of a driver `drive_s` seconds away by road: the drive plus the model's pickup overhead
    (accepting, pulling out, finding the rider), as the straight-line ETA counts it."""
    return math.ceil(eta_parameters().pickup_overhead_s - 1e-9) + drive_s


@lru_cache(maxsize=8)
def _estimator(parameters: EtaParameters) -> GreatCircleEstimator:
    return GreatCircleEstimator(parameters)


def route_estimator() -> GreatCircleEstimator:
    """The route model every quote, offer and simulated trip shares, with the settings' parameters."""
    return _estimator(eta_parameters())
