"""Routes of issue 16's billing: organisations' monthly invoices (docs/billing.md, docs/api.md)."""

from django.urls import path

from mobile_api import views_billing as views

urlpatterns = [
    path("staff/invoices", views.StaffInvoicesView.as_view(), name="staff-invoices"),
    path("staff/invoices/<uuid:invoice_id>", views.StaffInvoiceView.as_view(), name="staff-invoice"),
    path(
        "staff/invoices/<uuid:invoice_id>.csv", views.StaffInvoiceCSVView.as_view(), name="staff-invoice-csv"
    ),
    path(
        "staff/invoices/<uuid:invoice_id>.pdf", views.StaffInvoicePDFView.as_view(), name="staff-invoice-pdf"
    ),
    path(
        "staff/invoices/<uuid:invoice_id>/payments",
        views.StaffInvoicePaymentsView.as_view(),
        name="staff-invoice-payments",
    ),
    path(
        "organisations/<uuid:organisation_id>/invoices",
        views.OrganisationInvoicesView.as_view(),
        name="organisation-invoices",
    ),
    path(
        "organisations/<uuid:organisation_id>/invoices/<uuid:invoice_id>",
        views.OrganisationInvoiceView.as_view(),
        name="organisation-invoice",
    ),
    path(
        "organisations/<uuid:organisation_id>/invoices/<uuid:invoice_id>.csv",
        views.OrganisationInvoiceCSVView.as_view(),
        name="organisation-invoice-csv",
    ),
    path(
        "organisations/<uuid:organisation_id>/invoices/<uuid:invoice_id>.pdf",
        views.OrganisationInvoicePDFView.as_view(),
        name="organisation-invoice-pdf",
    ),
]
