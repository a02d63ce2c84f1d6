"""`manage.py payouts_run --week YYYY-MM-DD [--method auto|stripe|ach] [--dry-run]` (docs/payouts.md)."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.errors import DomainError
from backend.fares.money import minor_to_decimal
from dispatch.models import PayoutMethod
from dispatch.money.payouts import AUTO, payouts_run


def week_argument(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date (YYYY-MM-DD, the week's Monday)") from None


class Command(BaseCommand):
    help = (
        "Pay every driver what they had payable (pay and tips) at the end of a week: the week's floor "
        "top-ups are posted first, then one payout per driver-week, by Stripe Connect or in a bank file. "
        "Running it again pays nothing twice and retries unknown outcomes with their same keys."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--week", required=True, type=week_argument, help="the week's Monday, YYYY-MM-DD")
        parser.add_argument(
            "--method",
            choices=[AUTO, *PayoutMethod.values],
            default=None,
            help="how to pay (default: ROCHDALE_PAYOUT_METHOD; auto = Stripe if onboarded, else bank file)",
        )
        parser.add_argument("--dry-run", action="store_true", help="show what would be paid; write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = payouts_run(
                week_start=options["week"], method=options["method"], dry_run=options["dry_run"]
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        what = "would pay" if report.dry_run else "paid"
        for plan in report.planned:
            amount = (
                f"{minor_to_decimal(plan.amount, plan.currency)} {plan.currency}" if plan.currency else ""
            )
            self.stdout.write(
                f"{plan.driver_id}  {plan.outcome:<18} {amount:>14}  {plan.method or '-'}"
                + (f"  payout {plan.payout_id}" if plan.payout_id else "")
            )
        for result in report.results:
            line = f"sent {result.payout_id}: {result.outcome}"
            if result.provider_reference:
                line += f" {result.provider_reference}"
            if result.error:
                line += f" ({result.error})"
            self.stdout.write(line)
        for path in report.files:
            self.stdout.write(f"bank file: {path}")
        created = report.count("would_create" if report.dry_run else "created")
        top_ups = report.top_ups_planned if report.dry_run else report.top_ups_posted
        self.stdout.write(
            self.style.SUCCESS(
                f"Week of {report.week_start.isoformat()} (cut-off {report.cut_off.isoformat()}): {what} "
                f"{created} new payouts; {top_ups} floor top-ups "
                + ("to post first" if report.dry_run else "posted first")
            )
        )
