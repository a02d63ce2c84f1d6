"""The regulator profile format: the shipped profiles load, bad documents are refused path by path."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from backend.compliance.profile import PROFILES_DIR, ProfileError, load_profile, profile_from_document


def test_the_new_york_profile_requires_the_tlc_documents_and_hours_limits():
    tlc = load_profile("nyc_tlc")
    assert tlc.required_documents(subject="driver", wheelchair_accessible=False) == (
        "tlc_driver_license",
        "state_driver_license",
        "background_check",
    )
    assert "wav_certificate" not in tlc.required_documents(subject="vehicle", wheelchair_accessible=False)
    assert tlc.required_documents(subject="vehicle", wheelchair_accessible=True)[-1] == "wav_certificate"
    assert [
        (limit.code, limit.max_hours, limit.window_hours, limit.window) for limit in tlc.hours_limits
    ] == [
        ("tlc_24h", Decimal("10"), 24, ""),
        ("tlc_week", Decimal("60"), None, "week"),
    ]
    assert tlc.expiry_reminder_days == (30, 7)
    assert tlc.trip_report == "nyc_hvfhv"
    none = load_profile("none")
    assert none.documents == () and none.hours_limits == () and none.trip_report == ""


def test_a_bad_profile_is_refused_with_every_problem_by_path(tmp_path):
    document = json.loads((PROFILES_DIR / "nyc_tlc.json").read_text())
    document["driver_documents"][1]["kind"] = "tlc_driver_license"
    document["vehicle_documents"][0]["only_for"] = "vans"
    document["hours_limits"][0]["max_hours"] = "ten"
    document["hours_limits"][1]["window_hours"] = 168
    document["trip_report"] = "chicago"
    with pytest.raises(ProfileError) as refused:
        profile_from_document(document)
    assert set(refused.value.problems) == {
        "driver_documents[1].kind",
        "vehicle_documents[0].only_for",
        "hours_limits[0].max_hours",
        "hours_limits[1]",
        "trip_report",
    }
    with pytest.raises(ProfileError):
        load_profile(str(tmp_path / "missing.json"))


def test_a_coops_own_profile_file_and_base_number(tmp_path, settings):
    from backend.compliance.selectors import regulator_profile

    own = tmp_path / "chicago.json"
    own.write_text(
        json.dumps(
            {
                "code": "chicago_bacp",
                "name": "Chicago BACP",
                "driver_documents": [
                    {"kind": "chauffeur_license", "label": "Chicago public chauffeur licence"}
                ],
            }
        )
    )
    settings.ROCHDALE_REGULATOR_PROFILE = str(own)
    settings.ROCHDALE_REGULATOR_BASE_NUMBER = "TNP-42"
    profile = regulator_profile()
    assert (profile.code, profile.base_license_number) == ("chicago_bacp", "TNP-42")
    assert profile.required_documents(subject="driver", wheelchair_accessible=False) == ("chauffeur_license",)
