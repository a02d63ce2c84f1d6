from django.urls import path

from mobile_api import views_documents as views

urlpatterns = [
    path("driver/documents", views.DriverDocumentsView.as_view(), name="driver-documents"),
    path("staff/documents", views.StaffDocumentsView.as_view(), name="staff-documents"),
    path(
        "staff/documents/<uuid:document_id>/approve",
        views.StaffDocumentApproveView.as_view(),
        name="staff-document-approve",
    ),
    path(
        "staff/documents/<uuid:document_id>/reject",
        views.StaffDocumentRejectView.as_view(),
        name="staff-document-reject",
    ),
    # The signed link first: `documents/file` is no document id.
    path("documents/file", views.DocumentFileDownloadView.as_view(), name="document-file-download"),
    path("documents/<uuid:document_id>/file", views.DocumentFileLinkView.as_view(), name="document-file"),
]
