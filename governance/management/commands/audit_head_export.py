"""`manage.py audit_head_export [--out PATH]`: sign the audit chain's head and write it for publishing
(governance/audit_head.py; the beat job "audit-head-export" does the same hourly when the head moved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from governance.audit_head import PUBLIC_KEY_FILE_NAME, audit_head_export


class Command(BaseCommand):
    help = (
        "Write the audit chain's head (sequence, hash, count, time) signed with Ed25519, to publish. "
        "Default: ROCHDALE_AUDIT_HEAD_DIR/audit-head-<sequence>-<UTC time>.json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out",
            default=None,
            help="the head file, or a directory to name it in (existing, or ending in /)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out = options["out"]
        path = audit_head_export(Path(out) if out else None)
        assert path is not None  # only the beat job skips an unmoved head
        self.stdout.write(self.style.SUCCESS(f"audit head written: {path}"))
        self.stdout.write(f"publish it; its public key is {path.parent / PUBLIC_KEY_FILE_NAME}")
