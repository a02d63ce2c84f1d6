"""`manage.py ledger_verify`: check the journal and the captures against it; non-zero exit on a problem."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.fares.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Check that every entry and the whole journal balance (per currency) and that payment captures agree "
        "with the journal. Exits non-zero, naming the entries and captures, on any problem."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_verify()
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Ledger OK: {report.summary()}"))
            return
        for problem in report.problems():
            self.stderr.write(self.style.ERROR(f"LEDGER PROBLEM: {problem}"))
        raise CommandError(f"ledger verification failed with {len(report.problems())} problem(s)")
