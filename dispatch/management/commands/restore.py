"""`manage.py restore PATH [--database-url URL] [--force]`: load a dump made by `manage.py backup`
(docs/operations.md, "Backups and restore").

Checks the dump against its .sha256 first, refuses a database that already holds tables unless --force,
and restores in one transaction (pg_restore --single-transaction --exit-on-error --no-owner), so a failed
restore changes nothing. The target is Django's database unless --database-url names another; it must exist
(createdb it first). Afterwards run `ledger_verify`, `audit_verify` and `audit_head_verify` against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.backups import BackupError, backup_restore, target_from_settings, target_from_url


class Command(BaseCommand):
    help = "Restore a dump made by `manage.py backup` into an empty database (or, with --force, over one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the .dump file (its .sha256 must sit beside it)")
        parser.add_argument(
            "--database-url",
            default=None,
            help="restore into this database instead of Django's (postgis://user@host:port/name)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="restore over a database that already holds tables (the dump's objects are dropped first)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["database_url"]
        target = target_from_url(url) if url else target_from_settings()
        try:
            backup_restore(options["path"], target=target, force=options["force"])
        except BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"restored {options['path']} into {target}; now run ledger_verify, audit_verify and "
                "audit_head_verify against it"
            )
        )
