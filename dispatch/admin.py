"""Staff screens for dispatch: service areas are edited as WKT text; trips and their money are read-only.

GeoDjango's map widgets load OpenLayers from a CDN and tiles from OpenStreetMap. The admin must work with no
network, so geometry is shown and edited as (E)WKT in a plain textarea.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.gis.db import models as gis
from django.http import HttpRequest

from dispatch.models import FareEstimate, Rating, ServiceArea, Tip, Trip, TripEvent


class WktTextarea(forms.Textarea):
    """A geometry as EWKT text (`SRID=4326;MULTIPOLYGON(((lng lat, ...)))`): no map, no network."""

    def format_value(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        return value.ewkt


_NO_MAP_WIDGETS = {gis.GeometryField: {"widget": WktTextarea(attrs={"rows": 8, "cols": 100})}}


@admin.register(ServiceArea)
class ServiceAreaAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    formfield_overrides = {
        gis.MultiPolygonField: {"widget": WktTextarea(attrs={"rows": 8, "cols": 100})},
        **_NO_MAP_WIDGETS,
    }
    fields = ["name", "area", "is_active"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["area"].help_text = (
            "The zone as WKT in longitude/latitude (SRID 4326), e.g. "
            "MULTIPOLYGON(((-74.1 40.6, -73.8 40.6, -73.8 40.9, -74.1 40.9, -74.1 40.6)))."
        )
        return form


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write (the status machine, the ledger): staff look, never edit."""

    formfield_overrides = _NO_MAP_WIDGETS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TripEventInline(admin.TabularInline):
    model = TripEvent
    extra = 0
    can_delete = False
    fields = ["status", "at", "actor", "details"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Trip)
class TripAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "rider", "driver", "requested_at", "fare_minor", "currency"]
    list_filter = ["status", "wheelchair_accessible", "cancelled_by"]
    search_fields = ["id", "rider__phone", "driver__phone"]
    date_hierarchy = "requested_at"
    list_select_related = ["rider", "driver"]
    inlines = [TripEventInline]


@admin.register(FareEstimate)
class FareEstimateAdmin(ReadOnlyAdmin):
    list_display = ["id", "rider", "fare_minor", "currency", "policy_version", "created_at", "expires_at"]
    list_select_related = ["rider"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["trip", "author_role", "stars", "created_at"]
    list_filter = ["author_role", "stars"]


@admin.register(Tip)
class TipAdmin(ReadOnlyAdmin):
    list_display = ["trip", "driver", "amount_minor", "currency", "created_at"]
