"""`manage.py regulator_report --month YYYY-MM [--out FILE] [--summary FILE.json]` (docs/compliance.md).

Writes the month's HVFHV trip-record CSV to FILE (or stdout), and to stderr the summary: rows, the
exceptions (trips whose row could not be produced), the reconciliation with the ledger column by column,
and the accessibility figures. `--summary` also writes all of it as JSON. A report that does not reconcile
is still written, and the command then fails.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backend.errors import Unprocessable
from dispatch.compliance.accessibility import ServiceFigures, accessibility_figures
from dispatch.compliance.hvfhv import dollars, parse_month
from dispatch.compliance.trip_records import regulator_report, report_summary, trip_records_csv


class Command(BaseCommand):
    help = "Write the month's trip-record file for the regulator (New York's HVFHV format) and its summary."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--month", required=True, help="the month, YYYY-MM (local dates)")
        parser.add_argument("--out", type=Path, default=None, help="the CSV file (default: stdout)")
        parser.add_argument("--summary", type=Path, default=None, help="also write the summary as JSON here")

    def handle(self, *args: object, **options: object) -> None:
        try:
            month = parse_month(str(options["month"]))
        except ValueError as error:
            raise CommandError(str(error)) from error
        try:
            report, reconciliation = regulator_report(month=month)
        except Unprocessable as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        figures = accessibility_figures(month=month)
        text = trip_records_csv(report)
        out = options["out"]
        if isinstance(out, Path):
            out.write_text(text, encoding="utf-8", newline="")
        else:
            self.stdout.write(text, ending="")
        summary = report_summary(report, reconciliation)
        if isinstance(options["summary"], Path):
            document = {**summary, "accessibility": figures.as_document()}
            options["summary"].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

        err = self.stderr
        err.write(f"trip records {report.month_label} ({report.time_zone}): {len(report.records)} row(s)")
        if report.dropoffs_outside_zones:
            err.write(f"  {report.dropoffs_outside_zones} dropoff(s) outside every zone (DOLocationID 265)")
        for warning in report.warnings:
            err.write(f"  warning: {warning}")
        err.write(f"exceptions: {len(report.exceptions)}")
        for exception in report.exceptions:
            err.write(f"  {exception.trip_id}  {exception.code}  {exception.message}")
        err.write(f"reconciliation with the ledger: {'ok' if reconciliation.ok else 'DIFFERS'}")
        err.write(
            f"  fare entries: ledger {reconciliation.ledger_fare_entries}, "
            f"report {reconciliation.report_fare_entries}"
        )
        for column in reconciliation.columns:
            verdict = "ok" if column.ok else f"differs by {dollars(column.difference_minor)}"
            err.write(
                f"  {column.column:<22} rows {dollars(column.rows_minor):>12}  "
                f"exceptions {dollars(column.exceptions_minor):>10}  "
                f"ledger {dollars(column.ledger_minor):>12}  {verdict}"
            )
        err.write("accessibility (requests made in the month):")
        for label, service in (("WAV", figures.wav), ("standard", figures.standard)):
            err.write(f"  {label:<9}{_service_line(service)}")
        if not reconciliation.ok:
            raise CommandError("the report does not reconcile with the ledger (see above)")


def _service_line(figures: ServiceFigures) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} s"

    return (
        f"{figures.requests} requests, {figures.matched} matched ({figures.matched_in_wav} in a WAV), "
        f"{figures.completed} completed; to assigned median {seconds(figures.to_assigned.median_s)}, "
        f"p90 {seconds(figures.to_assigned.p90_s)}; "
        f"to on scene median {seconds(figures.to_on_scene.median_s)}, "
        f"p90 {seconds(figures.to_on_scene.p90_s)}"
    )
