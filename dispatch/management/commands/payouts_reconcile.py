"""`manage.py payouts_reconcile --week YYYY-MM-DD`: the week's payouts against the ledger; non-zero exit on a
discrepancy (docs/payouts.md)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.errors import DomainError
from dispatch.management.commands.payouts_run import week_argument
from dispatch.money.payouts import payouts_reconcile


class Command(BaseCommand):
    help = (
        "Check a week's payouts against the ledger: each has its entry for its amount, no driver was paid "
        "twice, failed ones were reversed, and what is left payable from before the cut-off is nothing. "
        "Exits non-zero, naming each discrepancy."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--week", required=True, type=week_argument, help="the week's Monday, YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = payouts_reconcile(week_start=options["week"])
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Payouts OK: {report.summary()}"))
            return
        for discrepancy in report.discrepancies:
            self.stderr.write(self.style.ERROR(f"PAYOUT DISCREPANCY: {discrepancy.describe()}"))
        raise CommandError(
            f"{report.summary()}: {len(report.discrepancies)} discrepanc"
            + ("y" if len(report.discrepancies) == 1 else "ies")
        )
