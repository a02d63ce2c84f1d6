"""Answers that are files: PDF and CSV renderers, routes that answer one format only, and views whose errors
stay JSON whatever format was asked for. Shared by receipts and statements, the regulator's files and
invoices."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PDFRenderer(BaseRenderer):
    """A PDF the view made (bytes), served as `application/pdf`; `?format=pdf` asks for it too."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class TextCSVRenderer(BaseRenderer):
    """A CSV file the view made (text), served as `text/csv` (the trip-record file, an invoice)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, str):
            return data.encode("utf-8")
        return json.dumps(data).encode("utf-8")


class JSONErrorsView(APIView):
    """A view that may answer in another format, whose errors keep the contract's JSON body whatever
    format was asked for."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


def pdf_response(pdf: bytes, filename: str) -> Response:
    return Response(pdf, headers={"Content-Disposition": f'inline; filename="{filename}"'})


def wants(request: Request, renderer: type[BaseRenderer]) -> bool:
    return isinstance(getattr(request, "accepted_renderer", None), renderer)


class OnlyRenderer:
    """Content negotiation that always answers with one renderer (for the `.csv` and `.pdf` routes)."""

    renderer: type[BaseRenderer]

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> Any:
        chosen = next(r for r in renderers if isinstance(r, self.renderer))
        return chosen, chosen.media_type


class PDFOnly(OnlyRenderer):
    renderer = PDFRenderer
