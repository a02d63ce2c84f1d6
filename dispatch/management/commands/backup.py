"""`manage.py backup [--out PATH]`: dump the database with pg_dump (docs/operations.md, "Backups and
restore").

The command lives with the trips layer, as `account_erase` and `process_alive` do, because a backup covers
every app's tables; the work is backend/backups.py's. Prints the dump's path and checksum; exits non-zero,
with one line saying why, when pg_dump is missing, older than the server, or fails.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.backups import BackupError, backup_create, checksum_path


class Command(BaseCommand):
    help = (
        "Dump the database (pg_dump, custom format) to a file written whole, mode 0600, with a .sha256 "
        "beside it. Default: ROCHDALE_BACKUP_DIR/rochdale-<database>-<UTC time>.dump."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out",
            default=None,
            help="the dump file, or a directory to name it in (existing, or ending in /)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            path = backup_create(options["out"])
        except BackupError as error:
            raise CommandError(str(error)) from error
        size = path.stat().st_size
        checksum = checksum_path(path).read_text().split()[0]
        self.stdout.write(self.style.SUCCESS(f"backup written: {path} ({size} bytes, sha256 {checksum})"))
