"""Drivers' and vehicles' documents over HTTP (docs/compliance.md, "Documents and review").

- `POST /driver/documents` (multipart): a driver sends a document for themself or their vehicle.
- `GET /driver/documents`: the driver's own current documents and where each requirement of the profile
  stands (what is still missing, waiting, expired).
- `GET /staff/documents?status=pending`: the review queue, oldest first, paged; approve and reject at
  `POST /staff/documents/{id}/approve` and `/reject` (a reason required).
- `GET /documents/{id}/file`: a short-lived signed link to the file, for its driver and staff only (anyone
  else gets the 404 of an id that does not exist). The link itself (`GET /documents/file?token=...`) is a
  plain Django view, not an API operation: the signature is its authentication, so an app can hand it to a
  viewer or a browser that holds no token, and it streams the file as an attachment, never cached.

Thin: gates, a lookup filtered to what the caller may see, the service (backend/compliance/services.py),
the shape.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.compliance.eligibility import document_standing
from backend.compliance.models import Document, DocumentStatus
from backend.compliance.selectors import regulator_profile
from backend.compliance.services import (
    document_file_from_token,
    document_file_link,
    document_review,
    document_upload,
)
from backend.errors import DomainError, InvalidInput, NotFound
from backend.timestamps import wire_timestamp
from mobile_api.pagination import CursorPage
from mobile_api.permissions import IsDriver, IsStaff
from mobile_api.schema import (
    AUTHENTICATED_GET_ERRORS,
    AUTHENTICATED_POST_ERRORS,
    error_responses,
    merge_errors,
)
from mobile_api.serializers_fields import Timestamp

_DRIVER = {403: ["driver_role_required"]}
_STAFF = {403: ["permission_denied"]}


class DocumentOut(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    created_at = Timestamp()
    reviewed_at = Timestamp(allow_null=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "kind",
            "label",
            "subject",
            "vehicle_id",
            "number",
            "issuer",
            "expires_on",
            "status",
            "reason",
            "content_type",
            "size_bytes",
            "created_at",
            "reviewed_at",
        ]
        read_only_fields = fields

    def get_label(self, document: Document) -> str:
        requirement = regulator_profile().requirement(document.kind)
        return requirement.label if requirement else document.kind


class StaffDocumentOut(DocumentOut):
    driver_id = serializers.UUIDField(read_only=True)
    driver_name = serializers.CharField(source="driver.user.name", read_only=True)
    vehicle_plate = serializers.CharField(
        source="vehicle.plate", read_only=True, allow_null=True, default=None
    )

    class Meta(DocumentOut.Meta):
        fields = [*DocumentOut.Meta.fields, "driver_id", "driver_name", "vehicle_plate"]
        read_only_fields = fields


class DocumentUploadIn(serializers.Serializer):
    kind = serializers.CharField(max_length=64)
    number = serializers.CharField(max_length=64)
    issuer = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    expires_on = serializers.DateField()
    file = serializers.FileField(allow_empty_file=False)
    vehicle_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class RejectIn(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RequirementOut(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    subject = serializers.ChoiceField(["driver", "vehicle"])
    issuer = serializers.CharField()
    only_for = serializers.CharField()
    standing = serializers.ChoiceField(["ok", "expired", "pending", "missing"])
    expires_on = serializers.DateField(allow_null=True)
    document_id = serializers.UUIDField(allow_null=True)


DriverDocumentsOut = inline_serializer(
    "DriverDocuments",
    {"documents": DocumentOut(many=True), "requirements": RequirementOut(many=True)},
)
StaffDocumentPageOut = inline_serializer(
    "StaffDocumentPage",
    {"results": StaffDocumentOut(many=True), "next": serializers.URLField(allow_null=True)},
)
FileLinkOut = inline_serializer(
    "DocumentFileLink", {"url": serializers.URLField(), "expires_at": serializers.DateTimeField()}
)


class DriverDocumentsView(APIView):
    permission_classes = [IsDriver]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="driver_documents",
        summary="The driver's own current documents, and where each document the profile requires stands",
        description=(
            "`requirements` lists every document the regulator profile asks of the driver and of their "
            "active vehicle (the wheelchair-accessible certificate when the vehicle is one), with `standing` "
            "`ok`, `expired`, `pending` or `missing`. Superseded uploads are left out."
        ),
        responses={
            200: DriverDocumentsOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _DRIVER)),
        },
        tags=["driver"],
    )
    def get(self, request: Request) -> Response:
        vehicle = request.user.driver_profile.active_vehicle
        standings = document_standing(
            driver_id=request.user.pk,
            vehicle_id=vehicle.id if vehicle else None,
            wheelchair_accessible=bool(vehicle and vehicle.wheelchair_accessible),
            at=timezone.now(),
        )
        documents = (
            Document.objects.filter(driver_id=request.user.pk)
            .exclude(status=DocumentStatus.SUPERSEDED)
            .order_by("-created_at")
        )
        requirements = []
        for standing in standings:
            shown = standing.approved or standing.pending
            requirements.append(
                {
                    "kind": standing.requirement.kind,
                    "label": standing.requirement.label,
                    "subject": standing.requirement.subject,
                    "issuer": standing.requirement.issuer,
                    "only_for": standing.requirement.only_for,
                    "standing": standing.standing,
                    "expires_on": standing.expires_on.isoformat() if standing.expires_on else None,
                    "document_id": str(shown.id) if shown else None,
                }
            )
        return Response({"documents": DocumentOut(documents, many=True).data, "requirements": requirements})

    @extend_schema(
        operation_id="driver_document_upload",
        summary="Send a document for review (multipart: kind, number, issuer, expires_on, file, vehicle_id)",
        description=(
            "`kind` is a document code of the regulator profile (docs/compliance.md). A vehicle's document "
            "is for `vehicle_id` (one of the driver's vehicles) or, without it, the active vehicle. The file "
            "is a PDF, JPEG or PNG (judged by its content) of at most `ROCHDALE_DOCUMENT_MAX_BYTES`; the "
            "expiry date must be after today. It replaces an earlier pending or rejected upload of the kind; "
            "an approved one stays in force until this one is approved."
        ),
        request={"multipart/form-data": DocumentUploadIn},
        responses={
            201: DocumentOut,
            **error_responses(
                merge_errors(
                    AUTHENTICATED_POST_ERRORS,
                    _DRIVER,
                    {
                        400: [
                            "invalid_input",
                            "document_kind_unknown",
                            "document_kind_subject",
                            "document_file_type",
                            "document_expiry_past",
                            "no_active_vehicle",
                        ],
                        404: ["not_found"],
                        413: ["document_too_large"],
                    },
                )
            ),
        },
        tags=["driver"],
    )
    def post(self, request: Request) -> Response:
        form = DocumentUploadIn(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        document = document_upload(
            driver=request.user,
            kind=data["kind"],
            number=data["number"],
            issuer=data["issuer"],
            expires_on=data["expires_on"],
            file=data["file"],
            vehicle_id=data["vehicle_id"],
        )
        return Response(DocumentOut(document).data, status=201)


class StaffDocumentPage(CursorPage):
    # The queue is first come, first served.
    ordering = ("created_at", "id")


class StaffDocumentsView(APIView):
    permission_classes = [IsStaff]
    pagination_class = StaffDocumentPage

    @extend_schema(
        operation_id="staff_documents",
        summary="Documents by status (the review queue: `status=pending`, the default), oldest first",
        parameters=[
            OpenApiParameter("status", str, enum=DocumentStatus.values, description="Default `pending`."),
            OpenApiParameter("cursor", str, description="The `next` link's cursor."),
            OpenApiParameter("page_size", int, description="1 to 100 (default 20)."),
        ],
        responses={
            200: StaffDocumentPageOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, _STAFF, {400: ["invalid_input"]})),
        },
        tags=["staff"],
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status", DocumentStatus.PENDING)
        if status not in DocumentStatus.values:
            raise InvalidInput(
                details={
                    "status": [
                        _("must be one of: %(statuses)s") % {"statuses": ", ".join(DocumentStatus.values)}
                    ]
                }
            )
        documents = Document.objects.filter(status=status).select_related("driver__user", "vehicle")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(documents, request, view=self)
        assert page is not None
        return paginator.get_paginated_response(StaffDocumentOut(page, many=True).data)


_REVIEW_ERRORS = merge_errors(
    AUTHENTICATED_POST_ERRORS,
    _STAFF,
    {404: ["not_found"], 409: ["document_not_pending", "document_expired"]},
)


class StaffDocumentApproveView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="staff_document_approve",
        summary="Approve a pending document (the previous approved one of its kind is superseded)",
        request=None,
        responses={200: StaffDocumentOut, **error_responses(_REVIEW_ERRORS)},
        tags=["staff"],
    )
    def post(self, request: Request, document_id: uuid.UUID) -> Response:
        document = document_review(document_id=document_id, reviewer=request.user, decision="approved")
        return Response(StaffDocumentOut(document).data)


class StaffDocumentRejectView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="staff_document_reject",
        summary="Reject a pending document, saying why (the driver sees the reason)",
        request=RejectIn,
        responses={
            200: StaffDocumentOut,
            **error_responses(merge_errors(_REVIEW_ERRORS, {400: ["invalid_input", "reason_required"]})),
        },
        examples=[
            OpenApiExample("reject", value={"reason": "The scan is unreadable"}, request_only=True),
        ],
        tags=["staff"],
    )
    def post(self, request: Request, document_id: uuid.UUID) -> Response:
        form = RejectIn(data=request.data)
        form.is_valid(raise_exception=True)
        document = document_review(
            document_id=document_id,
            reviewer=request.user,
            decision="rejected",
            reason=form.validated_data["reason"],
        )
        return Response(StaffDocumentOut(document).data)


class DocumentFileLinkView(APIView):
    # Any signed-in caller: the document is looked up among those the caller may read (their own, or any
    # for staff), so everyone else gets the same 404 as for an id that does not exist.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="document_file_link",
        summary="A signed link to a document's file, valid a few minutes (its driver and staff only)",
        responses={
            200: FileLinkOut,
            **error_responses(merge_errors(AUTHENTICATED_GET_ERRORS, {404: ["not_found"]})),
        },
        tags=["driver", "staff"],
    )
    def get(self, request: Request, document_id: uuid.UUID) -> Response:
        readable = (
            Document.objects.all()
            if request.user.is_staff
            else Document.objects.filter(driver_id=request.user.pk)
        )
        document = readable.filter(id=document_id).first()
        if document is None:
            raise NotFound()
        link = document_file_link(document=document)
        url = request.build_absolute_uri(f"{reverse('document-file-download')}?token={link.token}")
        return Response({"url": url, "expires_at": wire_timestamp(link.expires_at)})


class DocumentFileDownloadView(View):
    """The file a signed link names, streamed as an attachment and never cached. A link past its time
    answers 403 `file_link_expired`; a tampered or unknown one 404 `not_found`."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            document = document_file_from_token(token=request.GET.get("token", ""))
            handle = document.file.open("rb")
        except DomainError as exc:
            return JsonResponse(exc.as_body(), status=exc.status)
        except FileNotFoundError:
            error = NotFound(_("The file of this document is not in storage."))
            return JsonResponse(error.as_body(), status=error.status)
        extension = document.file.name.rsplit(".", 1)[-1]
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"{document.kind}-{document.expires_on.isoformat()}.{extension}",
            content_type=document.content_type,
        )
        response["Cache-Control"] = "private, no-store, max-age=0"
        response["Pragma"] = "no-cache"
        response["Referrer-Policy"] = "no-referrer"
        return response
