"""`manage.py fare_policy_adopt <policy.json> [--effective-at ISO]`: the founding board's fare policy.

Once the board governs (a version came from a passed proposal), new versions come only from proposals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from backend.errors import InvalidInput
from backend.fares.models import FarePolicyVersion, PolicySource
from backend.fares.selectors import policy_document
from backend.fares.services import policy_version_create


class Command(BaseCommand):
    help = "Adopt a fare policy as the founding board (before any version was adopted by a board proposal)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("policy_file", help="A JSON file holding the contract's fare policy object.")
        parser.add_argument(
            "--effective-at",
            dest="effective_at",
            default=None,
            help="ISO 8601 date-time with a zone; default now. Never earlier than now.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if FarePolicyVersion.objects.filter(source=PolicySource.GOVERNANCE).exists():
            raise CommandError(
                "The board governs fares now: a new policy needs a passed fare_policy proposal."
            )
        path = Path(options["policy_file"])
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from exc
        effective_at = None
        if options["effective_at"]:
            effective_at = parse_datetime(options["effective_at"])
            if effective_at is None or effective_at.tzinfo is None:
                raise CommandError("--effective-at must be an ISO 8601 date-time with a zone")
        try:
            version = policy_version_create(
                document=document, effective_at=effective_at, source=PolicySource.FOUNDING
            )
        except InvalidInput as exc:
            lines = [f"  {field}: {'; '.join(messages)}" for field, messages in sorted(exc.details.items())]
            raise CommandError("\n".join([exc.message, *lines])) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Adopted fare policy v{version.version}, in force from {version.effective_at}:"
            )
        )
        self.stdout.write(json.dumps(policy_document(version), indent=2))
