"""The regulator profile in force, from the settings (backend/compliance/profile.py has the format)."""

from __future__ import annotations

import dataclasses

from django.conf import settings

from backend.compliance.profile import RegulatorProfile, load_profile


def regulator_profile() -> RegulatorProfile:
    """The profile `ROCHDALE_REGULATOR_PROFILE` names, with `ROCHDALE_REGULATOR_BASE_NUMBER` applied."""
    profile = load_profile(settings.ROCHDALE_REGULATOR_PROFILE)
    base = settings.ROCHDALE_REGULATOR_BASE_NUMBER
    if base and base != profile.base_license_number:
        profile = dataclasses.replace(profile, base_license_number=base)
    return profile
