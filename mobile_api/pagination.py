"""The contract's page shape, `{"results": [...], "next": url-or-null}`, over an opaque cursor.

A cursor (not an offset) keeps pages stable while new trips arrive at the top of a newest-first list.
At most 100 items a page (`page_size` above that is capped); a garbled cursor answers 400 `invalid_cursor`.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from backend.errors import InvalidInput


class CursorPage(CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-created_at"

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            # A cursor the client garbled is bad input (400), not a missing page.
            raise InvalidInput(
                _("This page cursor is not valid; start again from the first page."), code="invalid_cursor"
            ) from exc

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
