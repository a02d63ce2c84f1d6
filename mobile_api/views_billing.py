"""Organisations' monthly invoices over HTTP (docs/billing.md): staff issue them, read them and record the
payments organisations make; an organisation's admins read their own organisation's invoices.

Thin: validate, call dispatch/money/invoices.py, shape the answer. An invoice comes as JSON, as CSV
(`.csv` or `?format=csv`) or as a PDF (`.pdf`, `?format=pdf` or `Accept: application/pdf`); errors are JSON
whatever was asked for. Staff routes refuse everyone else with 403 `staff_only` before an id is looked at;
on the organisation routes, an organisation the caller does not administer answers 404
`organisation_not_found`, exactly as one that does not exist, and another organisation's invoice 404
`invoice_not_found`.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.errors import InvalidInput
from backend.fares.money import money
from backend.timestamps import wire_timestamp
from dispatch.models import InvoiceStatus, OrganisationInvoice
from dispatch.money import invoices
from mobile_api import serializers as s
from mobile_api.downloads import (
    JSONErrorsView,
    OnlyRenderer,
    PDFOnly,
    PDFRenderer,
    TextCSVRenderer,
    pdf_response,
    wants,
)
from mobile_api.idempotency import idempotent
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsStaffOnly
from mobile_api.schema import MoneySerializer, error_responses
from mobile_api.serializers_payouts import SignedMoney

# --- Shapes ------------------------------------------------------------------------------------------------

_InvoicePayment = inline_serializer(
    "InvoicePayment",
    {
        "id": serializers.UUIDField(),
        "amount": MoneySerializer,
        "received_on": serializers.DateField(),
        "method": serializers.CharField(),
        "reference": serializers.CharField(),
        "recorded_at": serializers.DateTimeField(),
    },
)
_InvoiceSchema = inline_serializer(
    "Invoice",
    {
        "id": serializers.UUIDField(),
        "number": serializers.CharField(),
        "issuer": serializers.CharField(),
        "organisation": inline_serializer(
            "InvoiceOrganisation",
            {
                "id": serializers.UUIDField(),
                "name": serializers.CharField(),
                "billing_email": serializers.CharField(),
                "billing_address": serializers.CharField(),
            },
        ),
        "month": serializers.CharField(help_text="YYYY-MM, a month of the co-op's time zone."),
        "period": inline_serializer(
            "InvoicePeriod", {"from": serializers.DateField(), "to": serializers.DateField()}
        ),
        "time_zone": serializers.CharField(),
        "currency": serializers.CharField(),
        "issued_at": serializers.DateTimeField(),
        "due_on": serializers.DateField(),
        "status": serializers.ChoiceField(choices=InvoiceStatus.choices),
        "total": MoneySerializer,
        "paid": MoneySerializer,
        "outstanding": MoneySerializer,
        "lines": inline_serializer(
            "InvoiceLine",
            {
                "id": serializers.IntegerField(),
                "trip_id": serializers.UUIDField(),
                "entry_id": serializers.UUIDField(help_text="The ledger entry this line bills."),
                "kind": serializers.ChoiceField(choices=invoices.LINE_KINDS),
                "description": serializers.CharField(),
                "reference": serializers.CharField(help_text="The trip's cost centre or reference."),
                "rider_name": serializers.CharField(),
                "occurred_at": serializers.DateTimeField(),
                "amount": SignedMoney,
            },
            many=True,
        ),
        "payments": type(_InvoicePayment)(many=True),
    },
)
_InvoiceSummarySchema = inline_serializer(
    "InvoiceSummary",
    {
        "id": serializers.UUIDField(),
        "number": serializers.CharField(),
        "organisation_id": serializers.UUIDField(),
        "organisation_name": serializers.CharField(),
        "month": serializers.CharField(),
        "issued_at": serializers.DateTimeField(),
        "due_on": serializers.DateField(),
        "status": serializers.ChoiceField(choices=InvoiceStatus.choices),
        "total": MoneySerializer,
    },
)
_InvoicePage = inline_serializer(
    "InvoicePage",
    {"results": type(_InvoiceSummarySchema)(many=True), "next": serializers.URLField(allow_null=True)},
)

INVOICE_ID = "2b7f3c1e-5a4d-4e8f-9b21-7c6d5e4f3a20"
ORGANISATION_ID = "8d3e2f10-4b5c-4a6d-8e7f-9a0b1c2d3e4f"
INVOICE_EXAMPLE = {
    "id": INVOICE_ID,
    "number": "INV-202611-8D3E2F104B5C",
    "issuer": "Rochdale drivers' cooperative",
    "organisation": {
        "id": ORGANISATION_ID,
        "name": "Eastside Dialysis Clinic",
        "billing_email": "accounts@eastside.example",
        "billing_address": "12 Main St\nNew York, NY",
    },
    "month": "2026-11",
    "period": {"from": "2026-11-01", "to": "2026-11-30"},
    "time_zone": "America/New_York",
    "currency": "USD",
    "issued_at": "2026-12-01T05:00:04Z",
    "due_on": "2026-12-31",
    "status": "partly_paid",
    "total": {"amount": 4150, "currency": "USD"},
    "paid": {"amount": 2000, "currency": "USD"},
    "outstanding": {"amount": 2150, "currency": "USD"},
    "lines": [
        {
            "id": 1,
            "trip_id": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
            "entry_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "kind": "trip_fare",
            "description": "Trip",
            "reference": "DIAL-204",
            "rider_name": "Ada Lovelace",
            "occurred_at": "2026-11-03T12:41:00Z",
            "amount": {"amount": 2575, "currency": "USD"},
        },
        {
            "id": 2,
            "trip_id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
            "entry_id": "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c",
            "kind": "cancellation_fee",
            "description": "Late cancellation fee",
            "reference": "DIAL-204",
            "rider_name": "Ada Lovelace",
            "occurred_at": "2026-11-17T13:05:00Z",
            "amount": {"amount": 500, "currency": "USD"},
        },
        {
            "id": 3,
            "trip_id": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
            "entry_id": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
            "kind": "refund",
            "description": "Refund",
            "reference": "DIAL-204",
            "rider_name": "Ada Lovelace",
            "occurred_at": "2026-11-20T16:00:00Z",
            "amount": {"amount": -300, "currency": "USD"},
        },
    ],
    "payments": [
        {
            "id": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
            "amount": {"amount": 2000, "currency": "USD"},
            "received_on": "2026-12-10",
            "method": "ACH",
            "reference": "EDC-7781",
            "recorded_at": "2026-12-10T15:12:00Z",
        }
    ],
}


def invoice_summary(invoice: OrganisationInvoice) -> dict[str, Any]:
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "organisation_id": str(invoice.organisation_id),
        "organisation_name": invoice.organisation.name,
        "month": f"{invoice.month:%Y-%m}",
        "issued_at": wire_timestamp(invoice.issued_at),
        "due_on": invoice.due_on.isoformat(),
        "status": invoice.status,
        "total": dict(money(invoice.total_minor, invoice.currency)),
    }


# A CSV the service wrote (text), served as `text/csv`: the regulator's trip-record renderer, which is that.
InvoiceCSVRenderer = TextCSVRenderer


class _InvoiceCSVOnly(OnlyRenderer):
    renderer = InvoiceCSVRenderer


class InvoicePage(CursorPage):
    ordering = ("-issued_at", "-id")


def _month_param(request: Request) -> date | None:
    raw = request.query_params.get("month")
    return invoices.month_parse(raw) if raw is not None else None


def _uuid_param(request: Request, name: str) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(details={name: [_("must be a UUID")]}) from None


def _paged(view: APIView, request: Request, found: QuerySet[OrganisationInvoice]) -> Response:
    paginator = InvoicePage()
    page = paginator.paginate_queryset(found, request, view=view)
    assert page is not None
    return paginator.get_paginated_response([invoice_summary(invoice) for invoice in page])


def _invoice_response(request: Request, invoice: OrganisationInvoice) -> Response:
    if wants(request, PDFRenderer):
        return pdf_response(invoices.invoice_pdf(invoice), f"invoice-{invoice.number}.pdf")
    if wants(request, InvoiceCSVRenderer):
        return Response(
            invoices.invoice_csv(invoice),
            headers={"Content-Disposition": f'attachment; filename="invoice-{invoice.number}.csv"'},
        )
    return Response(invoices.invoice_document(invoice))


_PAGING = [
    OpenApiParameter("cursor", str, description="The `next` link's cursor."),
    OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
]
_FORMAT = OpenApiParameter(
    "format", OpenApiTypes.STR, enum=["json", "csv", "pdf"], description="csv or pdf: the other forms."
)
_INVOICE_ID = OpenApiParameter("invoice_id", OpenApiTypes.UUID, location=OpenApiParameter.PATH)
_ORGANISATION_ID = OpenApiParameter("organisation_id", OpenApiTypes.UUID, location=OpenApiParameter.PATH)
_ANY_FORM = {
    (200, "application/json"): _InvoiceSchema,
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per line."),
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The invoice as a PDF."),
}
_CSV_FORM = {(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per line.")}
_PDF_FORM = {(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The invoice.")}
_STAFF_INVOICE_ERRORS = error_responses({404: ["invoice_not_found"]})
_ADMIN_INVOICE_ERRORS = error_responses({404: ["organisation_not_found", "invoice_not_found"]})

# --- Staff -------------------------------------------------------------------------------------------------


class IssueIn(serializers.Serializer):
    organisation_id = serializers.UUIDField()
    month = serializers.RegexField(
        r"^\d{4}-(0[1-9]|1[0-2])$", help_text="YYYY-MM: a month of the co-op's time zone that has ended."
    )


class PaymentMoneyIn(s.MoneyIn):
    amount = serializers.IntegerField(min_value=1, max_value=10**13, help_text="Minor units (cents).")


class PaymentIn(serializers.Serializer):
    amount = PaymentMoneyIn(help_text="What the organisation paid, in the invoice's currency.")
    received_on = serializers.DateField(help_text="When the money arrived (not after today).")
    method = serializers.CharField(
        max_length=invoices.PAYMENT_METHOD_MAX_LENGTH, help_text="ACH, cheque, ..."
    )
    reference = serializers.CharField(
        max_length=invoices.PAYMENT_REFERENCE_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="The bank's or the organisation's reference for it.",
    )


_PaymentOut = inline_serializer(
    "InvoicePaymentRecorded",
    {
        "payment": _InvoicePayment,
        "invoice": inline_serializer(
            "InvoicePaymentInvoice",
            {
                "id": serializers.UUIDField(),
                "status": serializers.ChoiceField(choices=InvoiceStatus.choices),
                "paid": MoneySerializer,
                "outstanding": MoneySerializer,
            },
        ),
    },
)


class StaffInvoicesView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_invoices",
        summary="Organisations' invoices, newest first (staff)",
        parameters=[
            OpenApiParameter("organisation", OpenApiTypes.UUID, description="Only this organisation's."),
            OpenApiParameter("month", OpenApiTypes.STR, description="Only this month's, YYYY-MM."),
            *_PAGING,
        ],
        responses={200: _InvoicePage, **error_responses({400: ["invalid_input"]})},
        tags=["staff"],
    )
    def get(self, request: Request) -> Response:
        found = invoices.invoices_for_staff(
            organisation_id=_uuid_param(request, "organisation"), month=_month_param(request)
        )
        return _paged(self, request, found)

    @extend_schema(
        operation_id="staff_invoice_issue",
        summary="Issue an organisation's invoice for a month that has ended (staff)",
        description=(
            "Bills every charge on the organisation's receivable that happened before the month ended and "
            "no invoice has billed yet (docs/billing.md). 201 with the new invoice; 200 with the one already "
            "issued for that organisation and month. 422 `invoice_month_not_over`, `nothing_to_invoice`, "
            "`invoice_would_be_credit` (only refunds: carried to the next invoice) and "
            "`invoice_currency_mismatch`."
        ),
        request=IssueIn,
        responses={
            201: _InvoiceSchema,
            200: _InvoiceSchema,
            **error_responses(
                {
                    404: ["organisation_not_found"],
                    422: [
                        "invoice_month_not_over",
                        "nothing_to_invoice",
                        "invoice_would_be_credit",
                        "invoice_currency_mismatch",
                    ],
                }
            ),
        },
        examples=[
            OpenApiExample(
                "issue", value={"organisation_id": ORGANISATION_ID, "month": "2026-11"}, request_only=True
            ),
            OpenApiExample("issued", value=INVOICE_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["staff"],
    )
    def post(self, request: Request) -> Response:
        body = IssueIn(data=request.data)
        body.is_valid(raise_exception=True)
        invoice, created = invoices.invoice_issue(
            organisation_id=body.validated_data["organisation_id"],
            month=invoices.month_parse(body.validated_data["month"]),
        )
        return Response(invoices.invoice_document(invoice), status=201 if created else 200)


class StaffInvoiceView(JSONErrorsView):
    permission_classes = [IsStaffOnly]
    renderer_classes = [JSONRenderer, InvoiceCSVRenderer, PDFRenderer]

    @extend_schema(
        operation_id="staff_invoice",
        summary="One invoice with its lines and payments (staff; JSON, CSV or PDF)",
        parameters=[_INVOICE_ID, _FORMAT],
        responses={**_ANY_FORM, **_STAFF_INVOICE_ERRORS},
        examples=[OpenApiExample("invoice", value=INVOICE_EXAMPLE, response_only=True, status_codes=["200"])],
        tags=["staff"],
    )
    def get(self, request: Request, invoice_id: uuid.UUID) -> Response:
        return _invoice_response(request, invoices.invoice_for_staff(invoice_id=invoice_id))


class StaffInvoiceCSVView(StaffInvoiceView):
    content_negotiation_class = _InvoiceCSVOnly

    @extend_schema(
        operation_id="staff_invoice_csv",
        summary="One invoice's lines as CSV (staff)",
        parameters=[_INVOICE_ID],
        responses={**_CSV_FORM, **_STAFF_INVOICE_ERRORS},
        tags=["staff"],
    )
    def get(self, request: Request, invoice_id: uuid.UUID) -> Response:
        return super().get(request, invoice_id)


class StaffInvoicePDFView(StaffInvoiceView):
    content_negotiation_class = PDFOnly

    @extend_schema(
        operation_id="staff_invoice_pdf",
        summary="One invoice as a PDF (staff)",
        parameters=[_INVOICE_ID],
        responses={**_PDF_FORM, **_STAFF_INVOICE_ERRORS},
        tags=["staff"],
    )
    def get(self, request: Request, invoice_id: uuid.UUID) -> Response:
        return super().get(request, invoice_id)


class StaffInvoicePaymentsView(APIView):
    permission_classes = [IsStaffOnly]

    @extend_schema(
        operation_id="staff_invoice_payment",
        summary="Record a payment an organisation made against an invoice (staff)",
        description=(
            "Posts `invoice-payment:{id}` (Dr cash clearing, Cr the organisation's receivable) and moves the "
            "invoice to `partly_paid` or `paid`. More than is still owed: 422 `invoice_overpayment` with "
            "`details.outstanding`."
        ),
        request=PaymentIn,
        parameters=[_INVOICE_ID],
        responses={
            201: _PaymentOut,
            **error_responses(
                {404: ["invoice_not_found"], 422: ["currency_mismatch", "invoice_overpayment"]}
            ),
        },
        examples=[
            OpenApiExample(
                "payment",
                value={
                    "amount": {"amount": 2000, "currency": "USD"},
                    "received_on": "2026-12-10",
                    "method": "ACH",
                    "reference": "EDC-7781",
                },
                request_only=True,
            )
        ],
        tags=["staff"],
    )
    # Required: a staff member's double-submitted payment would otherwise be recorded twice (the overpayment
    # check only caps the total at what is outstanding).
    @idempotent(required=True)
    def post(self, request: Request, invoice_id: uuid.UUID) -> Response:
        body = PaymentIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        payment = invoices.invoice_payment_record(
            invoice_id=invoice_id,
            amount_minor=data["amount"]["amount"],
            currency=data["amount"]["currency"],
            received_on=data["received_on"],
            method=data["method"],
            reference=data["reference"],
            staff_id=request.user.pk,
        )
        document = invoices.invoice_document(invoices.invoice_for_staff(invoice_id=invoice_id))
        recorded = next(p for p in document["payments"] if p["id"] == str(payment.id))
        return Response(
            {
                "payment": recorded,
                "invoice": {
                    "id": document["id"],
                    "status": document["status"],
                    "paid": document["paid"],
                    "outstanding": document["outstanding"],
                },
            },
            status=201,
        )


# --- An organisation's admins ------------------------------------------------------------------------------


class OrganisationInvoicesView(APIView):
    # Any signed-in caller: whether they administer this organisation is the selector's to say (404).
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="organisation_invoices",
        summary="Your organisation's invoices, newest first (its admins)",
        parameters=[
            _ORGANISATION_ID,
            OpenApiParameter("month", OpenApiTypes.STR, description="Only this month's, YYYY-MM."),
            *_PAGING,
        ],
        responses={
            200: _InvoicePage,
            **error_responses({400: ["invalid_input"], 404: ["organisation_not_found"]}),
        },
        tags=["organisations"],
    )
    def get(self, request: Request, organisation_id: uuid.UUID) -> Response:
        found = invoices.invoices_for_organisation_admin(
            organisation_id=organisation_id, user_id=request.user.pk
        )
        month = _month_param(request)
        if month is not None:
            found = found.filter(month=month)
        return _paged(self, request, found)


class OrganisationInvoiceView(JSONErrorsView):
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer, InvoiceCSVRenderer, PDFRenderer]

    @extend_schema(
        operation_id="organisation_invoice",
        summary="One of your organisation's invoices (its admins; JSON, CSV or PDF)",
        parameters=[_ORGANISATION_ID, _INVOICE_ID, _FORMAT],
        responses={**_ANY_FORM, **_ADMIN_INVOICE_ERRORS},
        tags=["organisations"],
    )
    def get(self, request: Request, organisation_id: uuid.UUID, invoice_id: uuid.UUID) -> Response:
        invoice = invoices.invoice_for_organisation_admin(
            organisation_id=organisation_id, invoice_id=invoice_id, user_id=request.user.pk
        )
        return _invoice_response(request, invoice)


class OrganisationInvoiceCSVView(OrganisationInvoiceView):
    content_negotiation_class = _InvoiceCSVOnly

    @extend_schema(
        operation_id="organisation_invoice_csv",
        summary="One of your organisation's invoices as CSV (its admins)",
        parameters=[_ORGANISATION_ID, _INVOICE_ID],
        responses={**_CSV_FORM, **_ADMIN_INVOICE_ERRORS},
        tags=["organisations"],
    )
    def get(self, request: Request, organisation_id: uuid.UUID, invoice_id: uuid.UUID) -> Response:
        return super().get(request, organisation_id, invoice_id)


class OrganisationInvoicePDFView(OrganisationInvoiceView):
    content_negotiation_class = PDFOnly

    @extend_schema(
        operation_id="organisation_invoice_pdf",
        summary="One of your organisation's invoices as a PDF (its admins)",
        parameters=[_ORGANISATION_ID, _INVOICE_ID],
        responses={**_PDF_FORM, **_ADMIN_INVOICE_ERRORS},
        tags=["organisations"],
    )
    def get(self, request: Request, organisation_id: uuid.UUID, invoice_id: uuid.UUID) -> Response:
        return super().get(request, organisation_id, invoice_id)
