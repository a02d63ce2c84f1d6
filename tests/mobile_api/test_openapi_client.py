"""A client generated from /api/v1/schema with openapi-python-client builds without a warning, imports, and
reads every example answer the schema carries (so the examples, the error-code enums and the models agree)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

PACKAGE = "rochdale_api_client"


@pytest.fixture
def schema():
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def generated_client(schema, tmp_path, monkeypatch):
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(schema))
    # Receipts and statements also come as PDF: a binary file to the client, like any download.
    config_file = tmp_path / "client-config.json"
    config_file.write_text(
        json.dumps({"content_type_overrides": {"application/pdf": "application/octet-stream"}})
    )
    bin_dir = Path(sys.executable).parent
    # The generator formats its output with ruff (a dev dependency in the same venv).
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(schema_file),
            "--meta",
            "none",
            "--config",
            str(config_file),
            "--fail-on-warning",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    # Anything printed besides "Generating <path>" is a warning or an error (a skipped model, a ruff hook).
    remarks = [line for line in output.splitlines() if line.strip() and not line.startswith("Generating ")]
    assert remarks == [], output
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module(f"{PACKAGE}.models")
    finally:
        for name in [module for module in sys.modules if module.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _examples_by_component(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json", {})
                reference = content.get("schema", {}).get("$ref")
                if not reference:
                    continue
                component = reference.rsplit("/", 1)[1]
                for name, example in content.get("examples", {}).items():
                    yield f"{method} {path} {status} {name}", component, example["value"]


def test_the_generated_client_builds_without_warnings_and_reads_every_example(schema, generated_client):
    api = importlib.import_module(f"{PACKAGE}.api")
    assert importlib.import_module(f"{PACKAGE}.api.trips.trips_request").sync_detailed
    assert importlib.import_module(f"{PACKAGE}.api.governance.governance_proposals_list").sync
    assert api

    read = 0
    for label, component, value in _examples_by_component(schema):
        model = getattr(generated_client, component)
        try:
            model.from_dict(value)  # every required field there, every enum value known
        except (KeyError, ValueError, TypeError) as error:
            pytest.fail(f"{label}: {error!r}")
        read += 1
    assert read > 200

    conflict = generated_client.TripsRequest409ErrorBody.from_dict(
        {"error": {"code": "trip_in_progress", "message": "You already have an open trip.", "details": {}}}
    )
    assert conflict.error.code == generated_client.TripsRequest409ErrorCode.TRIP_IN_PROGRESS
    with pytest.raises(ValueError):
        generated_client.TripsRequest409ErrorCode("not_a_code_of_this_route")
