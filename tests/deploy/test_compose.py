"""infra/deploy/compose.yaml validates against the compose specification (check-jsonschema's vendored
schema, offline), and has the shape issue 18 asks for; .env.example names every variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.live_server import REPO

DEPLOY = REPO / "infra" / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
ONE_SHOT = {"migrate"}


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_validates_and_the_schema_is_not_lax(tmp_path):
    checked = validate(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restarts: unless-stopped", 1))
    assert validate(broken).returncode != 0, "the schema accepted a key compose does not know"


def test_every_long_running_service_restarts_and_has_a_healthcheck():
    for name, service in services().items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services()["db"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services()["redis"]["healthcheck"]["test"])
    for role in ("dispatch", "worker", "beat"):
        probe = services()[role]["healthcheck"]["test"]
        assert probe[1:6] == ["python", "manage.py", "process_alive", "--role", role]
    for server in ("web", "api"):
        assert "/api/v1/health/live" in " ".join(services()[server]["healthcheck"]["test"])


def test_the_app_waits_for_healthy_stores_and_finished_migrations():
    for name in ("web", "api", "dispatch", "worker", "beat"):
        depends_on = services()[name]["depends_on"]
        assert depends_on["db"] == {"condition": "service_healthy"}, name
        assert depends_on["redis"] == {"condition": "service_healthy"}, name
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services()["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services()["nginx"]["depends_on"]["api"] == {"condition": "service_healthy"}


def test_celery_logs_at_warning_and_metrics_go_to_a_per_container_tmpfs():
    for name in ("worker", "beat"):
        command = services()[name]["command"]
        assert command[command.index("-l") + 1] == "warning", name
    for name in ("web", "api", "dispatch", "worker", "beat"):
        service = services()[name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/"), name
        assert "/tmp" in service["tmpfs"], name


def names_in_env_example() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


def test_env_example_names_every_variable_compose_interpolates():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert used, "compose.yaml interpolates nothing: the pattern no longer reads it"
    assert used - names_in_env_example() == set()


def variables_the_code_reads() -> set[str]:
    """Every environment variable the processes read: the settings' env_*() calls, os.environ look-ups and
    the `*_ENV = "NAME"` constants (backend/metrics.py)."""
    names: set[str] = set()
    patterns = (
        r"env_(?:str|bool|int|float|list)\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"os\.environ(?:\.get)?[\(\[]\s*\"([A-Z][A-Z0-9_]+)\"",
        r"^[A-Z_]+_ENV = \"([A-Z][A-Z0-9_]+)\"",
    )
    for package in ("backend", "dispatch", "governance", "mobile_api"):
        for path in (REPO / package).rglob("*.py"):
            source = path.read_text()
            for pattern in patterns:
                names.update(re.findall(pattern, source, flags=re.MULTILINE))
    return names


def test_env_example_names_every_variable_the_code_reads():
    read = variables_the_code_reads()
    assert {"DJANGO_SECRET_KEY", "ROCHDALE_METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR", "SENTRY_DSN"} <= read
    assert sorted(read - names_in_env_example()) == []
