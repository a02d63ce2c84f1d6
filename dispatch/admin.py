"""Staff screens for dispatch: service areas are edited as WKT text (a POLYGON or a MULTIPOLYGON); trips and
their money are read-only, except that staff may close trips (a reason and a fare decision, through
`trip_close_by_staff`) and refund them (an amount or all that is left, and a reason, through `refund_post`).

GeoDjango's map widgets load OpenLayers from a CDN and tiles from OpenStreetMap. The admin must work with no
network, so geometry is shown and edited as (E)WKT in a plain textarea.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.gis import forms as gis_forms
from django.contrib.gis.db import models as gis
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from backend.errors import DomainError
from backend.fares.admin_display import money
from backend.fares.money import minor_to_decimal, to_minor_units
from dispatch.models import FareEstimate, Rating, ServiceArea, Tip, Trip, TripEvent
from dispatch.money.refunds import REFUND_REASON_MAX_LENGTH, refund_post, trip_refunds
from dispatch.services.abandoned import (
    CLOSE_REASON_MAX_LENGTH,
    CloseDecision,
    trip_close_by_staff,
    trips_needing_staff,
)
from dispatch.services.service_areas import ServiceAreaError, service_area_geometry


class WktTextarea(forms.Textarea):
    """A geometry as WKT text (`MULTIPOLYGON(((lng lat, ...)))`, longitude first): no map, no network.
    Plain WKT in the SRID the form expects (4326, which the field assumes for WKT without one); EWKT only
    for a geometry in another reference system, which must then say so."""

    def format_value(self, value: GEOSGeometry | str | None) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        return value.wkt if value.srid in (None, 4326) else value.ewkt


_NO_MAP_WIDGETS = {gis.GeometryField: {"widget": WktTextarea(attrs={"rows": 8, "cols": 100})}}


class ServiceAreaGeometryField(gis_forms.GeometryField):
    """A POLYGON or MULTIPOLYGON in WKT, EWKT or GeoJSON text; saved as the MultiPolygon the model holds,
    after the same checks `manage.py service_area_load` makes (valid, on Earth, not empty)."""

    def clean(self, value: object) -> GEOSGeometry | None:
        geometry = super().clean(value)  # parsed, and moved to SRID 4326 when EWKT names another
        if geometry is None:
            return None
        try:
            return service_area_geometry(geometry)
        except ServiceAreaError as error:
            raise ValidationError(str(error), code="invalid_service_area") from error


class ServiceAreaForm(forms.ModelForm):
    area = ServiceAreaGeometryField(
        srid=4326,
        widget=WktTextarea(attrs={"rows": 8, "cols": 100}),
        help_text=(
            "The zone as WKT in longitude/latitude (SRID 4326): a POLYGON or a MULTIPOLYGON, e.g. "
            "POLYGON((-74.1 40.6, -73.8 40.6, -73.8 40.9, -74.1 40.9, -74.1 40.6)). "
            "A whole city's boundary is easier to load from a file: manage.py service_area_load."
        ),
    )

    class Meta:
        model = ServiceArea
        fields = ["name", "area", "is_active"]


@admin.register(ServiceArea)
class ServiceAreaAdmin(admin.ModelAdmin):
    form = ServiceAreaForm
    list_display = ["name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    fields = ["name", "area", "is_active"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write (the status machine, the ledger): staff look, never edit."""

    formfield_overrides = _NO_MAP_WIDGETS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class TripEventInline(admin.TabularInline):
    model = TripEvent
    extra = 0
    can_delete = False
    fields = ["status", "at", "actor", "details"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class TripCloseForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (CloseDecision.NO_CHARGE.value, "no_charge: cancel as the system, no fee (any open trip)"),
            (CloseDecision.CHARGE_TRAIL.value, "charge_trail: complete on the measured trail (started)"),
            (CloseDecision.CHARGE_ESTIMATE.value, "charge_estimate: complete at the quote (started)"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        max_length=CLOSE_REASON_MAX_LENGTH,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Recorded on the trip and in the audit log.",
    )


class TripRefundForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=4,
        help_text="In the trip's currency, major units (3.50). Each selected trip is refunded this much.",
    )
    everything_left = forms.BooleanField(
        required=False, label="Refund all that is left", help_text="Instead of an amount: a full refund."
    )
    reason = forms.CharField(
        max_length=REFUND_REASON_MAX_LENGTH,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Recorded on the refund and shown on the rider's receipt.",
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        amount, everything = cleaned.get("amount"), cleaned.get("everything_left")
        if everything and amount is not None:
            raise ValidationError(_("Give an amount or refund all that is left, not both."))
        if not everything and not amount:
            raise ValidationError(_("Give an amount above zero, or refund all that is left."))
        return cleaned


def _refund_amount_minor(form: TripRefundForm, trip: Trip, refundable: int) -> int:
    """The form's amount for this trip in minor units; refused (ValueError) if it has more decimals than
    the trip's currency, or there is nothing left to refund."""
    if form.cleaned_data["everything_left"]:
        if refundable <= 0:
            raise ValueError("nothing is left to refund")
        return refundable
    amount = form.cleaned_data["amount"]
    minor = to_minor_units(amount, trip.currency)
    if minor_to_decimal(minor, trip.currency) != amount:
        raise ValueError(f"{amount} is not a whole amount of {trip.currency} minor units")
    return minor


class NeedsStaffFilter(admin.SimpleListFilter):
    title = "abandoned"
    parameter_name = "abandoned"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("needs_staff", "Driver vanished mid-trip: needs staff")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trip]) -> QuerySet[Trip]:
        if self.value() == "needs_staff":
            return queryset.filter(id__in=trips_needing_staff().values("id"))
        return queryset


@admin.register(Trip)
class TripAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "rider",
        "driver",
        "requested_at",
        "scheduled_for",
        "organisation",
        "fare_minor",
        "currency",
    ]
    list_filter = [
        NeedsStaffFilter,
        "status",
        "payer",
        "wheelchair_accessible",
        "cancelled_by",
        "organisation",
    ]
    search_fields = ["id", "rider__phone", "driver__phone", "reference", "organisation__name"]
    date_hierarchy = "requested_at"
    list_select_related = ["rider", "driver", "organisation"]
    inlines = [TripEventInline]
    actions = ["close_trips", "refund_trips"]

    def has_close_permission(self, request: HttpRequest) -> bool:
        # The same rule as POST /api/v1/staff/trips/{id}/close: any active staff member.
        return bool(request.user.is_active and request.user.is_staff)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        # The same rule as POST /api/v1/staff/trips/{id}/refunds (and refund_post itself).
        return bool(request.user.is_active and request.user.is_staff)

    @admin.action(description="Close selected trips (reason and fare decision)", permissions=["close"])
    def close_trips(self, request: HttpRequest, queryset: QuerySet[Trip]) -> TemplateResponse | None:
        """Ask for a decision and a reason, then close each trip through the service (None: back to the
        list, with what was closed and what was refused)."""
        form = TripCloseForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            closed, refused = 0, []
            for trip_id in queryset.values_list("id", flat=True):
                try:
                    trip_close_by_staff(
                        trip_id=trip_id,
                        staff_id=request.user.pk,
                        decision=CloseDecision(form.cleaned_data["decision"]),
                        reason=form.cleaned_data["reason"],
                    )
                    closed += 1
                except DomainError as error:
                    refused.append(f"{trip_id}: {error.code}: {error.message}")
            if closed:
                self.message_user(request, f"{closed} trip(s) closed.", messages.SUCCESS)
            for line in refused:
                self.message_user(request, f"Not closed: {line}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Close trips",
            "opts": self.model._meta,
            "form": form,
            "trips": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/dispatch/trip/close_trips.html", context)

    @admin.action(
        description="Refund selected trips (amount or all that is left, and a reason)", permissions=["refund"]
    )
    def refund_trips(self, request: HttpRequest, queryset: QuerySet[Trip]) -> TemplateResponse | None:
        """Ask for an amount and a reason, then refund each trip through the service (None: back to the
        list, with what was refunded and what was refused)."""
        form = TripRefundForm(request.POST if "apply" in request.POST else None)
        trips = list(queryset.order_by("-requested_at"))
        refundable = {trip.id: trip_refunds(trip_id=trip.id).refundable for trip in trips}
        if form.is_valid():
            refunded, refused = 0, []
            for trip in trips:
                try:
                    refund_post(
                        trip_id=trip.id,
                        amount_minor=_refund_amount_minor(form, trip, refundable[trip.id]),
                        reason=form.cleaned_data["reason"],
                        staff_id=request.user.pk,
                    )
                    refunded += 1
                except ValueError as error:
                    refused.append(f"{trip.id}: {error}")
                except DomainError as error:
                    refused.append(f"{trip.id}: {error.code}: {error.message} {error.details or ''}".strip())
            if refunded:
                self.message_user(request, f"{refunded} trip(s) refunded.", messages.SUCCESS)
            for line in refused:
                self.message_user(request, f"Not refunded: {line}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund trips",
            "opts": self.model._meta,
            "form": form,
            "trips": [
                {
                    "trip": trip,
                    "refundable": money(refundable[trip.id], trip.currency),
                }
                for trip in trips
            ],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/dispatch/trip/refund_trips.html", context)


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


# Payouts and drivers' bank accounts, and erasure requests (data rights, docs/compliance.md), have their
# own modules (docs/payouts.md).
from dispatch import admin_billing, admin_erasure, admin_payouts  # noqa: E402, F401
