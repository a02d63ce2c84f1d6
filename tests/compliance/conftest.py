"""Compliance tests run under New York's profile, with document files in a temporary directory."""

from __future__ import annotations

import pytest


@pytest.fixture
def nyc(settings):
    settings.ROCHDALE_REGULATOR_PROFILE = "nyc_tlc"
    return settings


@pytest.fixture(autouse=True)
def document_storage(settings, tmp_path):
    """The `documents` storage on local disk under a directory of this test's own."""
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }
    return tmp_path / "media"
