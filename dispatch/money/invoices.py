"""Monthly invoices of the organisations that pay for their trips, and the payments staff record against them
(docs/billing.md).

An organisation's trips post their charges to its receivable account in the ledger
(`organisation_receivable`, `code` = the organisation's id; dispatch/money/payer.py): a fare, a
late-cancellation fee, a refund (a credit), a reversal. The invoice of a local month (`settings.TIME_ZONE`)
copies those entries, one line each, so it is the ledger's own account of what is owed:

- **lines**: every entry touching the account that no invoice has billed yet, that belongs to a trip, and
  that happened before the month ended (when the work ended, the entry's `worked_at`, for a fare or a fee;
  when it was posted for a refund or a reversal). So a refund made in March of a January trip is a negative
  line of March's invoice, and an entry that reached the ledger after its month's invoice was issued (a
  completion committed at midnight) goes on the next invoice: nothing is billed twice (`InvoiceLine.entry`
  is one-to-one) and nothing is left out. Payments against invoices (`invoice_payment`) are not lines.
- **amount** of a line: the entry's debits less credits on the account, to the cent; the invoice's total is
  the sum of its lines. A month whose lines would add up to less than nothing (only a refund) is not
  invoiced (422 `invoice_would_be_credit`): its lines stay open and reduce the next invoice.
- **number** `INV-{YYYYMM}-{first 12 hex digits of the organisation's id}`, **due** the local issue date
  plus the organisation's `payment_terms_days`.
- **idempotent**: one invoice per organisation and month (a unique constraint); issuing again answers the
  invoice already issued. Issuing locks the organisation row (FOR NO KEY UPDATE, so booking its trips,
  which takes KEY SHARE on it, never waits), so two issues of one organisation run one after the other.

A payment (`invoice_payment_record`) is an `InvoicePayment` row and the ledger entry
`invoice-payment:{payment id}`: Dr cash_clearing, Cr organisation_receivable. It is refused with 422
`invoice_overpayment` when it is more than what is still owed. The invoice's `status` (issued, partly_paid,
paid) is updated under the invoice's row lock; lines and payments themselves are append-only.

Lock order (backend/fares/ledger.py): a payment locks the invoice row, then writes ledger rows only; issuing
writes no ledger rows. Neither takes a trip, capture or member lock, so neither can close a cycle with a
trip's money transaction.

`invoice_reconcile(invoice)` checks an invoice against the ledger to the cent: each line against its
entry's postings, the total against the lines, the payments against their entries, the status against the
payments, and the organisation's whole receivable balance against its invoices' outstanding amounts plus
what is not invoiced yet.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, F, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from backend.accounts.models import User
from backend.errors import InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry, LedgerAccount, Posting
from backend.fares.money import minor_to_decimal, money
from backend.fares.pay import local_month_bounds, local_zone, month_last_day
from backend.organisations.models import Organisation, OrganisationMembership, OrganisationRole
from backend.organisations.selectors import KnownRider, riders_as_known
from backend.timestamps import wire_timestamp
from dispatch.models import InvoiceLine, InvoicePayment, InvoiceStatus, OrganisationInvoice, Trip
from dispatch.money.payer import organisation_account_code
from dispatch.money.receipts import format_money, html_to_pdf

logger = logging.getLogger(__name__)

INVOICE_PAYMENT = "invoice_payment"
PAYMENT_METHOD_MAX_LENGTH = 40
PAYMENT_REFERENCE_MAX_LENGTH = 120
LINE_LABELS = {
    "trip_fare": gettext_lazy("Trip"),
    "cancellation_fee": gettext_lazy("Late cancellation fee"),
    "refund": gettext_lazy("Refund"),
    "reversal": gettext_lazy("Correction"),
}
LINE_KINDS = sorted(LINE_LABELS)
_MONTH = re.compile(r"(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])")
CSV_COLUMNS = [
    "invoice",
    "occurred_at",
    "trip_id",
    "description",
    "reference",
    "rider",
    "amount",
    "currency",
    "entry_id",
]


# --- Months ----------------------------------------------------------------------------------------------


def month_parse(raw: str) -> date:
    """`YYYY-MM` as the first day of that month; InvalidInput `details.month` otherwise."""
    match = _MONTH.fullmatch(raw) if isinstance(raw, str) else None
    if match is None or int(match["year"]) < 2000:
        raise InvalidInput(details={"month": [gettext("must be a month, YYYY-MM (2000 or later)")]})
    return date(int(match["year"]), int(match["month"]), 1)


def month_of(moment: datetime) -> date:
    """The first day of the local month `moment` falls in."""
    return timezone.localtime(moment, local_zone()).date().replace(day=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def invoice_number(*, organisation_id: uuid.UUID, month: date) -> str:
    return f"INV-{month:%Y%m}-{organisation_id.hex[:12].upper()}"


# --- What the receivable account holds ------------------------------------------------------------------


def _receivable_accounts(organisation_id: uuid.UUID) -> QuerySet[LedgerAccount]:
    return LedgerAccount.objects.filter(
        kind=AccountKind.ORGANISATION_RECEIVABLE, code=organisation_account_code(organisation_id)
    )


def _happened_at() -> Coalesce:
    """When an entry's money happened: the work's end for a fare or fee (`worked_at`), else its posting."""
    return Coalesce(Cast(KT("metadata__worked_at"), DateTimeField()), F("created_at"))


def _net_on(account_ids: list[int], entry_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Per entry: its debits less credits on these accounts."""
    rows = (
        Posting.objects.filter(account_id__in=account_ids, entry_id__in=entry_ids)
        .values("entry_id")
        .annotate(d=Sum("debit_minor"), c=Sum("credit_minor"))
        .order_by()
    )
    return {row["entry_id"]: int(row["d"] or 0) - int(row["c"] or 0) for row in rows}


def _open_entries(accounts: list[int] | list[LedgerAccount]) -> QuerySet[JournalEntry]:
    """Charges on these accounts that no invoice has billed yet (payments excluded)."""
    return (
        JournalEntry.objects.filter(postings__account__in=accounts, invoice_line__isnull=True)
        .exclude(kind=INVOICE_PAYMENT)
        .annotate(happened_at=_happened_at())
        .distinct()
    )


def _billable(accounts: list[int] | list[LedgerAccount], *, end: datetime) -> QuerySet[JournalEntry]:
    """The open charges of trips that happened before `end`: what an invoice of a month ending then bills."""
    return _open_entries(accounts).filter(happened_at__lt=end, trip__isnull=False)


# --- Issuing -------------------------------------------------------------------------------------------


def invoice_issue(
    *, organisation_id: uuid.UUID, month: date, at: datetime | None = None
) -> tuple[OrganisationInvoice, bool]:
    """Issue the organisation's invoice for a local month that has ended; returns (invoice, created). The
    invoice already issued for that month is returned as it is (created False).

    Raises NotFound `organisation_not_found`, Unprocessable `invoice_month_not_over`, `nothing_to_invoice`,
    `invoice_would_be_credit` (details.total) and `invoice_currency_mismatch` (details.currencies: a charge
    in another currency than the organisation's)."""
    month = month.replace(day=1)
    now = at or timezone.now()
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update(no_key=True).filter(id=organisation_id).first()
        if organisation is None:
            raise NotFound(gettext("No such organisation."), code="organisation_not_found")
        existing = OrganisationInvoice.objects.filter(organisation_id=organisation.id, month=month).first()
        if existing is not None:
            return existing, False
        _, end = local_month_bounds(month)
        if now < end:
            raise Unprocessable(
                gettext("A month is invoiced once it is over."),
                code="invoice_month_not_over",
                details={"month": f"{month:%Y-%m}", "ends_at": wire_timestamp(end)},
            )
        accounts = list(_receivable_accounts(organisation.id))
        home = [a.id for a in accounts if a.currency == organisation.currency]
        foreign = [a for a in accounts if a.currency != organisation.currency]
        if foreign and _billable(foreign, end=end).exists():
            raise Unprocessable(
                gettext(
                    "This organisation is billed in %(currency)s; some of its charges are in another "
                    "currency."
                )
                % {"currency": organisation.currency},
                code="invoice_currency_mismatch",
                details={
                    "currency": organisation.currency,
                    "currencies": sorted({a.currency for a in foreign}),
                },
            )
        entries = list(_billable(home, end=end).order_by("happened_at", "id"))
        if not entries:
            raise Unprocessable(
                gettext("This organisation has nothing to invoice up to the end of that month."),
                code="nothing_to_invoice",
                details={"month": f"{month:%Y-%m}"},
            )
        amounts = _net_on(home, [entry.id for entry in entries])
        total = sum(amounts.values())
        if total < 0:
            raise Unprocessable(
                gettext("These charges add up to a credit; they are carried to the next invoice."),
                code="invoice_would_be_credit",
                details={"total": money(total, organisation.currency)},
            )
        trips = Trip.objects.select_related("rider").in_bulk({entry.trip_id for entry in entries})
        # Each rider by the name the organisation knows them by (a guest's as it was entered), never the
        # account's own.
        known = riders_as_known(
            organisation_id=organisation.id, rider_ids={trip.rider_id for trip in trips.values()}
        )
        issued_on = timezone.localtime(now, local_zone()).date()
        try:
            with transaction.atomic():
                invoice = OrganisationInvoice.objects.create(
                    number=invoice_number(organisation_id=organisation.id, month=month),
                    organisation=organisation,
                    month=month,
                    currency=organisation.currency,
                    total_minor=total,
                    issued_at=now,
                    due_on=issued_on + timedelta(days=organisation.payment_terms_days),
                    status=InvoiceStatus.PAID if total == 0 else InvoiceStatus.ISSUED,
                )
                InvoiceLine.objects.bulk_create(
                    InvoiceLine(
                        invoice=invoice,
                        trip_id=entry.trip_id,
                        entry=entry,
                        kind=entry.kind,
                        amount_minor=amounts.get(entry.id, 0),
                        reference=trips[entry.trip_id].reference,
                        rider_name=_name_as_known(known, trips[entry.trip_id])[:120],
                        occurred_at=entry.happened_at,
                    )
                    for entry in entries
                )
        except IntegrityError:
            # Only if the organisation row lock was bypassed: the unique constraints decide.
            invoice = OrganisationInvoice.objects.get(organisation_id=organisation.id, month=month)
            return invoice, False
    logger.info("invoice %s issued to %s: %d lines, %s", invoice.number, organisation.id, len(entries), total)
    return invoice, True


@dataclass(frozen=True)
class IssueRun:
    month: date
    issued: list[OrganisationInvoice] = field(default_factory=list)
    skipped: dict[uuid.UUID, str] = field(default_factory=dict)  # organisation -> the refusal's code


def invoices_issue_for_month(*, month: date, at: datetime | None = None) -> IssueRun:
    """Issue every organisation's invoice for a month that has ended, where it has something to invoice
    and none is issued yet (what the beat and `manage.py invoices_issue` run; safe to repeat)."""
    month = month.replace(day=1)
    _, end = local_month_bounds(month)
    run = IssueRun(month=month)
    codes = (
        LedgerAccount.objects.filter(kind=AccountKind.ORGANISATION_RECEIVABLE)
        .exclude(code__in=[str(i) for i in _invoiced_organisations(month)])
        .values_list("code", flat=True)
        .distinct()
    )
    for code in sorted(set(codes)):
        organisation_id = uuid.UUID(code)
        if not _billable(list(_receivable_accounts(organisation_id)), end=end).exists():
            continue
        try:
            invoice, created = invoice_issue(organisation_id=organisation_id, month=month, at=at)
        except (Unprocessable, NotFound) as refusal:
            run.skipped[organisation_id] = refusal.code
            logger.warning("invoice of %s for %s not issued: %s", organisation_id, month, refusal.code)
            continue
        if created:
            run.issued.append(invoice)
    return run


def _invoiced_organisations(month: date) -> list[uuid.UUID]:
    return list(OrganisationInvoice.objects.filter(month=month).values_list("organisation_id", flat=True))


def invoices_issue_due(*, at: datetime | None = None) -> IssueRun:
    """Last local month's invoices (the beat runs it hourly: idempotent, so a missed hour loses nothing)."""
    now = at or timezone.now()
    return invoices_issue_for_month(month=previous_month(month_of(now)), at=now)


# --- Payments ------------------------------------------------------------------------------------------


def invoice_paid_minor(invoice: OrganisationInvoice) -> int:
    return int(invoice.payments.aggregate(total=Sum("amount_minor"))["total"] or 0)


def _status_for(*, total: int, paid: int) -> InvoiceStatus:
    if paid >= total:
        return InvoiceStatus.PAID
    return InvoiceStatus.PARTLY_PAID if paid > 0 else InvoiceStatus.ISSUED


def invoice_payment_record(
    *,
    invoice_id: uuid.UUID,
    amount_minor: int,
    received_on: date,
    method: str,
    reference: str = "",
    staff_id: uuid.UUID,
    currency: str | None = None,
) -> InvoicePayment:
    """Record money an organisation paid against an invoice (staff): the payment row, its ledger entry
    `invoice-payment:{id}` (Dr cash_clearing, Cr the organisation's receivable) and the invoice's new status.

    Raises InvalidInput (amount, received_on, method, reference), PermissionDenied `staff_only`, NotFound
    `invoice_not_found`, Unprocessable `currency_mismatch` and `invoice_overpayment` (details.outstanding)."""
    problems: dict[str, list[str]] = {}
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        problems["amount"] = [gettext("must be a positive whole number of minor units")]
    today = timezone.localtime(timezone.now(), local_zone()).date()
    if not isinstance(received_on, date) or received_on > today:
        problems["received_on"] = [gettext("must be a date, not after today")]
    method = method.strip() if isinstance(method, str) else ""
    if not method or len(method) > PAYMENT_METHOD_MAX_LENGTH:
        problems["method"] = [
            gettext("must be 1 to %(payment_method_max_length)s characters (ACH, cheque, ...)")
            % {"payment_method_max_length": PAYMENT_METHOD_MAX_LENGTH}
        ]
    reference = reference.strip() if isinstance(reference, str) else ""
    if len(reference) > PAYMENT_REFERENCE_MAX_LENGTH:
        problems["reference"] = [
            gettext("must be at most %(payment_reference_max_length)s characters")
            % {"payment_reference_max_length": PAYMENT_REFERENCE_MAX_LENGTH}
        ]
    if problems:
        raise InvalidInput(details=problems)
    if not User.objects.filter(id=staff_id, is_staff=True, is_active=True).exists():
        raise PermissionDenied(gettext("Only staff may record payments."), code="staff_only")

    with transaction.atomic():
        invoice = OrganisationInvoice.objects.select_for_update().filter(id=invoice_id).first()
        if invoice is None:
            raise NotFound(gettext("No such invoice."), code="invoice_not_found")
        if currency is not None and currency != invoice.currency:
            raise Unprocessable(
                gettext("A payment is in the invoice's currency."),
                code="currency_mismatch",
                details={"currency": invoice.currency},
            )
        paid = invoice_paid_minor(invoice)
        outstanding = invoice.total_minor - paid
        if amount_minor > outstanding:
            raise Unprocessable(
                gettext("A payment cannot be more than what the invoice still asks for."),
                code="invoice_overpayment",
                details={"outstanding": money(max(outstanding, 0), invoice.currency)},
            )
        payment = InvoicePayment.objects.create(
            invoice=invoice,
            amount_minor=amount_minor,
            received_on=received_on,
            method=method,
            reference=reference,
            recorded_by_id=staff_id,
        )
        ledger.post_entry(
            key=f"invoice-payment:{payment.id}",
            kind=INVOICE_PAYMENT,
            currency=invoice.currency,
            memo=f"Payment of invoice {invoice.number} ({method})",
            lines=[
                debit(AccountKind.CASH_CLEARING, None, amount_minor),
                credit(
                    AccountKind.ORGANISATION_RECEIVABLE,
                    None,
                    amount_minor,
                    code=organisation_account_code(invoice.organisation_id),
                ),
            ],
            metadata={
                "invoice_id": str(invoice.id),
                "invoice_payment_id": str(payment.id),
                "number": invoice.number,
                "method": method,
                "reference": reference,
                "received_on": received_on.isoformat(),
                "staff_id": str(staff_id),
            },
        )
        status = _status_for(total=invoice.total_minor, paid=paid + amount_minor)
        OrganisationInvoice.objects.filter(id=invoice.id).update(status=status)
    return payment


# --- Reading -------------------------------------------------------------------------------------------


def invoices_for_staff(
    *, organisation_id: uuid.UUID | None = None, month: date | None = None
) -> QuerySet[OrganisationInvoice]:
    found = OrganisationInvoice.objects.select_related("organisation")
    if organisation_id is not None:
        found = found.filter(organisation_id=organisation_id)
    if month is not None:
        found = found.filter(month=month.replace(day=1))
    return found.order_by("-month", "number")


def invoice_for_staff(*, invoice_id: uuid.UUID) -> OrganisationInvoice:
    invoice = invoices_for_staff().filter(id=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("No such invoice."), code="invoice_not_found")
    return invoice


def invoices_for_organisation_admin(
    *, organisation_id: uuid.UUID, user_id: uuid.UUID
) -> QuerySet[OrganisationInvoice]:
    """An organisation's invoices, for one of its active admins; NotFound `organisation_not_found` for
    anyone else (an organisation that is not theirs to administer does not exist for them)."""
    is_admin = OrganisationMembership.objects.filter(
        organisation_id=organisation_id,
        user_id=user_id,
        role=OrganisationRole.ADMIN,
        is_active=True,
        user__is_active=True,
    ).exists()
    if not is_admin:
        raise NotFound(gettext("No such organisation."), code="organisation_not_found")
    return invoices_for_staff(organisation_id=organisation_id)


def invoice_for_organisation_admin(
    *, organisation_id: uuid.UUID, invoice_id: uuid.UUID, user_id: uuid.UUID
) -> OrganisationInvoice:
    invoices = invoices_for_organisation_admin(organisation_id=organisation_id, user_id=user_id)
    invoice = invoices.filter(id=invoice_id).first()
    if invoice is None:
        raise NotFound(gettext("No such invoice."), code="invoice_not_found")
    return invoice


# --- Rendering: the document (JSON), CSV, PDF ----------------------------------------------------------


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment, local_zone())


def invoice_document(invoice: OrganisationInvoice) -> dict[str, Any]:
    """The invoice as the API answers it (money in minor units) and as the CSV and PDF draw it."""
    cur = invoice.currency
    organisation = invoice.organisation
    lines = list(invoice.lines.order_by("occurred_at", "id"))
    payments = list(invoice.payments.order_by("recorded_at", "id"))
    paid = sum(payment.amount_minor for payment in payments)
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "issuer": settings.ROCHDALE_COOPERATIVE_NAME,
        "organisation": {
            "id": str(organisation.id),
            "name": organisation.name,
            "billing_email": organisation.billing_email,
            "billing_address": organisation.billing_address,
        },
        "month": f"{invoice.month:%Y-%m}",
        "period": {"from": invoice.month.isoformat(), "to": month_last_day(invoice.month).isoformat()},
        "time_zone": settings.TIME_ZONE,
        "currency": cur,
        "issued_at": wire_timestamp(invoice.issued_at),
        "due_on": invoice.due_on.isoformat(),
        "status": invoice.status,
        "total": money(invoice.total_minor, cur),
        "paid": money(paid, cur),
        "outstanding": money(invoice.total_minor - paid, cur),
        "lines": [
            {
                "id": line.id,
                "trip_id": str(line.trip_id),
                "entry_id": str(line.entry_id),
                "kind": line.kind,
                "description": str(LINE_LABELS.get(line.kind, line.kind)),
                "reference": line.reference,
                "rider_name": line.rider_name,
                "occurred_at": wire_timestamp(line.occurred_at),
                "amount": money(line.amount_minor, cur),
            }
            for line in lines
        ],
        "payments": [
            {
                "id": str(payment.id),
                "amount": money(payment.amount_minor, cur),
                "received_on": payment.received_on.isoformat(),
                "method": payment.method,
                "reference": payment.reference,
                "recorded_at": wire_timestamp(payment.recorded_at),
            }
            for payment in payments
        ],
    }


def _name_as_known(known: dict[uuid.UUID, KnownRider], trip: Trip) -> str:
    rider = known.get(trip.rider_id)
    return rider.name if rider is not None else trip.rider.name


# A cell a spreadsheet would read as a formula starts with one of these (OWASP's CSV injection list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """Free text as a CSV cell that a spreadsheet shows as text, never runs: a rider's name or a reference
    that starts like a formula gets a leading apostrophe."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def invoice_csv(invoice: OrganisationInvoice) -> str:
    """One row per line: local time, trip, what it is, the reference, the rider, the exact amount in major
    units (a refund negative), as the earnings export writes money."""
    cur = invoice.currency
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in invoice.lines.order_by("occurred_at", "id"):
        amount = minor_to_decimal(abs(line.amount_minor), cur)
        writer.writerow(
            [
                invoice.number,
                _local(line.occurred_at).isoformat(timespec="seconds"),
                str(line.trip_id),
                str(LINE_LABELS.get(line.kind, line.kind)),
                spreadsheet_text(line.reference),
                spreadsheet_text(line.rider_name),
                f"-{amount}" if line.amount_minor < 0 else str(amount),
                cur,
                str(line.entry_id),
            ]
        )
    return out.getvalue()


def invoice_pdf(invoice: OrganisationInvoice) -> bytes:
    document = invoice_document(invoice)
    cur = invoice.currency

    def fmt(value: dict[str, Any]) -> str:
        amount = int(value["amount"])
        return ("−" if amount < 0 else "") + format_money(abs(amount), cur)

    context = {
        "doc": document,
        "issued_on": _local(invoice.issued_at).date().isoformat(),
        "lines": [
            {
                **line,
                "when": _local(datetime.fromisoformat(line["occurred_at"])).strftime("%Y-%m-%d %H:%M"),
                "amount": fmt(line["amount"]),
            }
            for line in document["lines"]
        ],
        "payments": [{**payment, "amount": fmt(payment["amount"])} for payment in document["payments"]],
        "total": fmt(document["total"]),
        "paid": fmt(document["paid"]),
        "outstanding": fmt(document["outstanding"]),
    }
    return html_to_pdf(render_to_string("invoices/invoice.html", context))


# --- Reconciliation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineMismatch:
    line_id: int
    entry_key: str
    invoiced: int
    posted: int


@dataclass(frozen=True)
class InvoiceReconciliation:
    """An invoice against the ledger, in minor units of `currency`. `ok` when every figure agrees."""

    invoice_id: uuid.UUID
    number: str
    currency: str
    total: int  # what the invoice asks for
    lines_total: int  # the sum of its lines
    posted_total: int  # what the lines' entries posted to the organisation's receivable
    paid: int  # the payments recorded against it
    payments_posted: int  # what their `invoice-payment:*` entries credited to the receivable
    status: str
    expected_status: str
    receivable_balance: int  # the organisation's receivable account now
    invoiced_outstanding: int  # what all its invoices still ask for
    uninvoiced: int  # what its open (not yet invoiced) entries add up to
    line_mismatches: list[LineMismatch] = field(default_factory=list)
    foreign_lines: list[int] = field(default_factory=list)  # lines of another organisation's trip

    @property
    def outstanding(self) -> int:
        return self.total - self.paid

    def problems(self) -> list[str]:
        found = []
        if self.lines_total != self.total:
            found.append(f"the lines add up to {self.lines_total}, the invoice asks for {self.total}")
        if self.posted_total != self.lines_total:
            found.append(f"the lines' entries posted {self.posted_total}, the lines say {self.lines_total}")
        found += [
            f"line {m.line_id} ({m.entry_key}) says {m.invoiced}, its entry posted {m.posted}"
            for m in self.line_mismatches
        ]
        found += [f"line {line_id} bills another organisation's trip" for line_id in self.foreign_lines]
        if self.payments_posted != self.paid:
            found.append(f"payments of {self.paid} recorded, their entries posted {self.payments_posted}")
        if self.status != self.expected_status:
            found.append(f"status is {self.status}, the payments make it {self.expected_status}")
        if self.receivable_balance != self.invoiced_outstanding + self.uninvoiced:
            found.append(
                f"the receivable holds {self.receivable_balance}, invoices ask for "
                f"{self.invoiced_outstanding} and {self.uninvoiced} is not invoiced yet"
            )
        return found

    @property
    def ok(self) -> bool:
        return not self.problems()


def invoice_reconcile(invoice: OrganisationInvoice) -> InvoiceReconciliation:
    """Compare an invoice (and its organisation's receivable) with the ledger, to the cent. Runs in one
    REPEATABLE READ snapshot when called outside a transaction, as `ledger_verify` does."""
    if connection.in_atomic_block:
        return _reconcile(invoice.id)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _reconcile(invoice.id)


def _reconcile(invoice_id: uuid.UUID) -> InvoiceReconciliation:
    invoice = OrganisationInvoice.objects.get(id=invoice_id)
    cur = invoice.currency
    accounts = [a.id for a in _receivable_accounts(invoice.organisation_id).filter(currency=cur)]
    lines = list(invoice.lines.select_related("entry", "trip"))
    posted = _net_on(accounts, [line.entry_id for line in lines])
    mismatches = [
        LineMismatch(
            line_id=line.id,
            entry_key=line.entry.key,
            invoiced=line.amount_minor,
            posted=posted.get(line.entry_id, 0),
        )
        for line in lines
        if posted.get(line.entry_id, 0) != line.amount_minor
    ]
    foreign = [line.id for line in lines if line.trip.organisation_id != invoice.organisation_id]
    payments = list(invoice.payments.all())
    paid = sum(payment.amount_minor for payment in payments)
    payment_entries = JournalEntry.objects.filter(
        key__in=[f"invoice-payment:{payment.id}" for payment in payments], kind=INVOICE_PAYMENT
    )
    payments_posted = -sum(_net_on(accounts, list(payment_entries.values_list("id", flat=True))).values())

    balance = ledger.balance_minor(
        kind=AccountKind.ORGANISATION_RECEIVABLE,
        owner_id=None,
        currency=cur,
        code=organisation_account_code(invoice.organisation_id),
    )
    invoices = OrganisationInvoice.objects.filter(organisation_id=invoice.organisation_id, currency=cur)
    invoiced_total = int(invoices.aggregate(t=Sum("total_minor"))["t"] or 0)
    all_paid = int(
        InvoicePayment.objects.filter(invoice__in=invoices).aggregate(t=Sum("amount_minor"))["t"] or 0
    )
    open_ids = list(_open_entries(accounts).values_list("id", flat=True))
    uninvoiced = sum(_net_on(accounts, open_ids).values())
    return InvoiceReconciliation(
        invoice_id=invoice.id,
        number=invoice.number,
        currency=cur,
        total=invoice.total_minor,
        lines_total=sum(line.amount_minor for line in lines),
        posted_total=sum(posted.values()),
        paid=paid,
        payments_posted=payments_posted,
        status=invoice.status,
        expected_status=_status_for(total=invoice.total_minor, paid=paid).value,
        receivable_balance=balance,
        invoiced_outstanding=invoiced_total - all_paid,
        uninvoiced=uninvoiced,
        line_mismatches=mismatches,
        foreign_lines=foreign,
    )
