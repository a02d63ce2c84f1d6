"""`manage.py audit_verify`: recompute the governance audit chain; exit status 1 if it is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.audit import audit_head, audit_verify


class Command(BaseCommand):
    help = "Recompute the hash chain of the governance audit log and compare it with the stored head."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify()
        head = audit_head()
        if not result.ok:
            raise CommandError(
                f"audit log BROKEN at entry {result.first_bad_sequence}: {result.reason} "
                f"({result.checked} entries verified before it)"
            )
        self.stdout.write(self.style.SUCCESS(f"audit log OK: {result.checked} entries, head {head['hash']}"))
