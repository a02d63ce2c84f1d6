"""`manage.py audit_head_verify FILE [--public-key PEM]`: check a published audit head against the
database (governance/audit_head.py). Exit status 1 when the signature fails or the database's chain no
longer reaches the signed hash at the signed sequence: the chain was rewritten or cut back since."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.audit_head import audit_head_verify, public_key_load


class Command(BaseCommand):
    help = "Check a signed audit head file's signature and that the database's chain still reaches it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="an audit-head-*.json file (as published)")
        parser.add_argument(
            "--public-key",
            type=Path,
            default=None,
            help="the published public key (PEM); default: the public half of ROCHDALE_AUDIT_HEAD_KEY_FILE",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            document = json.loads(options["file"].read_text())
            key_file = options["public_key"]
            public_key = public_key_load(key_file.read_bytes()) if key_file else None
            check = audit_head_verify(document, public_key)
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        if not check.ok:
            raise CommandError(f"audit head {check.sequence} does NOT verify: {check.reason}")
        self.stdout.write(
            self.style.SUCCESS(
                f"audit head OK: entry {check.sequence} has hash {check.hash}, the chain up to it verifies "
                f"(the database's head is now entry {check.database_sequence})"
            )
        )
