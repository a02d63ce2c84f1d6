"""`manage.py ledger_verify`: rebuild every balance from the journal and compare; non-zero exit on drift."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.fares.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Rebuild account balances from the journal, compare them with AccountBalance, and check that every "
        "entry and the whole journal balance. Exits non-zero, naming the accounts, on any drift."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_verify()
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Ledger OK: {report.summary()}"))
            return
        for problem in report.problems():
            self.stderr.write(self.style.ERROR(f"DRIFT: {problem}"))
        raise CommandError(f"ledger verification failed with {len(report.problems())} problem(s)")
