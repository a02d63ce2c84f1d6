"""`manage.py invoices_issue --month YYYY-MM [--organisation ID]` (docs/billing.md)."""

from __future__ import annotations

import argparse
import uuid
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.errors import DomainError
from backend.fares.money import minor_to_decimal
from dispatch.money.invoices import invoice_issue, invoices_issue_for_month, month_parse


def month_argument(raw: str) -> date:
    try:
        return month_parse(raw)
    except DomainError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a month (YYYY-MM)") from None


class Command(BaseCommand):
    help = (
        "Issue the monthly invoices of the organisations that pay for their trips, for a local month that "
        "has ended: every organisation with something to invoice, or one. Running it again issues nothing "
        "twice (one invoice per organisation and month)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--month", required=True, type=month_argument, help="the month, YYYY-MM")
        parser.add_argument("--organisation", type=uuid.UUID, default=None, help="only this organisation")

    def handle(self, *args: Any, **options: Any) -> None:
        month = options["month"]
        if options["organisation"] is not None:
            try:
                invoice, created = invoice_issue(organisation_id=options["organisation"], month=month)
            except DomainError as error:
                raise CommandError(f"{error.code}: {error.message}") from error
            issued, skipped = ([invoice] if created else []), {}
            if not created:
                self.stdout.write(f"{invoice.number}  already issued")
        else:
            run = invoices_issue_for_month(month=month)
            issued, skipped = run.issued, run.skipped
        for invoice in issued:
            total = f"{minor_to_decimal(invoice.total_minor, invoice.currency)} {invoice.currency}"
            self.stdout.write(f"{invoice.number}  {invoice.organisation_id}  {total}  due {invoice.due_on}")
        for organisation_id, code in skipped.items():
            self.stdout.write(f"{organisation_id}  not issued: {code}")
        self.stdout.write(self.style.SUCCESS(f"{month:%Y-%m}: {len(issued)} invoices issued"))
