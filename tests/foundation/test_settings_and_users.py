import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k" * 20 + "a-long-random-production-secret-value-9f8e7d6c5b4a",
    "ALLOWED_HOSTS": "rides.example.coop",
    "CSRF_TRUSTED_ORIGINS": "https://rides.example.coop",
    "DJANGO_HSTS_SECONDS": "31536000",
}


def _run_manage(args, extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "backend.settings", **extra_env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_settings_refuse_to_start_without_a_secret_when_debug_is_off():
    result = _run_manage(["check"], {"DJANGO_DEBUG": "false"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_settings_reject_a_malformed_boolean():
    result = _run_manage(["check"], {"DJANGO_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_check_deploy_passes_with_the_documented_production_variables():
    result = _run_manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize(("hops", "header"), [("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_x_forwarded_proto_is_trusted_only_behind_a_trusted_proxy(hops, header):
    """With no trusted proxy a client could claim HTTPS with a made-up X-Forwarded-Proto."""
    result = _run_manage(
        ["shell", "-c", "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"],
        {"ROCHDALE_TRUSTED_PROXY_HOPS": hops},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == header


@pytest.mark.django_db
def test_createsuperuser_works_with_a_phone_number(monkeypatch):
    from backend.accounts.models import User

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-strong-pass-phrase-42")
    call_command(
        "createsuperuser", interactive=False, phone="+12125550199", name="Founding Admin", verbosity=0
    )
    admin = User.objects.get(phone="+12125550199")
    assert admin.is_staff and admin.is_superuser
    assert admin.name == "Founding Admin"
    assert admin.check_password("a-strong-pass-phrase-42")


@pytest.mark.django_db
def test_phone_is_stored_in_canonical_e164():
    from django.core.exceptions import ValidationError

    from backend.accounts.models import User

    user = User.objects.create_user("+44 20 7946 0958", password="x-strong-pass-1", name="London Rider")
    assert user.phone == "+442079460958"
    with pytest.raises(ValidationError):
        User.objects.create_user("2125550100", password="x-strong-pass-1", name="No Country Code")
