"""How the admin shows what staff read: money as "$10.00", points as "lat, lng", JSON as small tables.

In the kernel, beside the money rules (backend/fares/money.py), so every app's admin can use it: backend's
own admins may not import dispatch, where the receipts' formatter lives.
Amounts are exact (`minor_to_decimal`, the receipts' own conversion); a symbol is used only where it names
one currency without doubt, and any other code is written after the amount ("10.00 CAD"), as the receipts'
`format_money` writes every amount. Admin text is for staff and is not translated.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.admin.options import BaseModelAdmin, InlineModelAdmin
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db.models import Field, JSONField, Model
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from backend.fares.money import UnknownCurrencyError, minor_to_decimal

# "$" is also the Canadian, Australian, Mexican... dollar: it stands for USD only because the co-op's
# books are in USD by default; every other code is spelled out.
_UNAMBIGUOUS_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}

EMPTY = "-"
ADMIN_STYLESHEET = "admin_site/admin.css"  # backend/accounts/static/


def money(amount_minor: int | None, currency: str) -> str:
    """`$10.00`, `−$3.50`, `1000 JPY`; "-" for no amount."""
    if amount_minor is None:
        return EMPTY
    try:
        amount: Decimal = minor_to_decimal(abs(amount_minor), currency)
    except UnknownCurrencyError:
        return f"{amount_minor} (minor units, {currency or 'no currency'})"
    sign = "−" if amount_minor < 0 else ""
    symbol = _UNAMBIGUOUS_SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def lat_lng(point: Point | None) -> str:
    """`40.712800, -74.006000` (latitude first, as people read and type them); "-" for no point."""
    if point is None:
        return EMPTY
    return f"{point.y:.6f}, {point.x:.6f}"


def geometry_summary(geometry: GEOSGeometry | None) -> str:
    """A line or area as its kind, size and ends, never its EWKT (kilobytes of coordinates)."""
    if geometry is None:
        return EMPTY
    if isinstance(geometry, Point):
        return lat_lng(geometry)
    coords = geometry.coords if geometry.geom_type == "LineString" else None
    if coords:
        first, last = Point(*coords[0]), Point(*coords[-1])
        return f"{geometry.geom_type}, {len(coords)} points, from {lat_lng(first)} to {lat_lng(last)}"
    return f"{geometry.geom_type}, {geometry.num_coords} points"


def json_table(value: object) -> SafeString | str:
    """A JSON value as a small HTML table (every key and value escaped); lists of objects as rows."""
    if value in (None, "", [], {}):
        return EMPTY
    if isinstance(value, Mapping):
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((key, _cell(item)) for key, item in value.items())
        )
        return format_html('<table class="rochdale-json">{}</table>', rows)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if all(isinstance(item, Mapping) for item in value):
            columns = list(dict.fromkeys(key for item in value for key in item))
            head = format_html_join("", "<th>{}</th>", ((column,) for column in columns))
            body = format_html_join(
                "",
                "<tr>{}</tr>",
                (
                    (
                        format_html_join(
                            "", "<td>{}</td>", ((_cell(item.get(column, "")),) for column in columns)
                        ),
                    )
                    for item in value
                ),
            )
            return format_html('<table class="rochdale-json"><tr>{}</tr>{}</table>', head, body)
        return format_html_join(", ", "{}", ((_cell(item),) for item in value))
    return str(value)


def _cell(value: object) -> SafeString | str:
    if isinstance(value, Mapping | list):
        return json_table(value)
    return str(value)


def row_currency(obj: Model) -> str:
    """The currency an amount on this row is in: its own `currency`, else its invoice's or ledger
    account's, else the co-op's."""
    for holder in (obj, getattr(obj, "invoice", None), getattr(obj, "account", None)):
        currency = getattr(holder, "currency", None) if holder is not None else None
        if currency:
            return str(currency)
    return str(settings.ROCHDALE_CURRENCY)


ShownValue = Callable[[Model], "SafeString | str"]


def _shown(model_field: Field) -> ShownValue | None:
    """How one model field is shown to staff, when not as Django would show it."""
    name = model_field.name
    if name.endswith("_minor"):

        def show_money(obj: Model) -> str:
            return money(getattr(obj, name), row_currency(obj))

        shown: ShownValue = show_money
    elif isinstance(model_field, GeometryField):

        def show_geometry(obj: Model) -> str:
            return geometry_summary(getattr(obj, name))

        shown = show_geometry
    elif isinstance(model_field, JSONField):

        def show_json(obj: Model) -> SafeString | str:
            return json_table(getattr(obj, name))

        shown = show_json
    else:
        return None
    label = str(model_field.verbose_name)
    if name.endswith("_minor"):
        label = label.removesuffix(" minor")
    shown.short_description = label[:1].upper() + label[1:]  # type: ignore[attr-defined]
    shown.admin_order_field = name  # type: ignore[attr-defined]
    return shown


class ReadableFieldsMixin(BaseModelAdmin):
    """Shows amounts in minor units as money, geometry as "lat, lng", JSON as tables, wherever a field is
    read-only (a column of the list, a read-only field of the change page, an inline's cell). Editable
    fields keep their form widgets. The admin site mixes it into every admin it registers
    (backend/accounts/admin_site.py), and into their inlines, so no screen shows "1000" or EWKT."""

    SHOWN_SUFFIX = "_shown"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._shown_names: dict[str, str] = {}
        for model_field in self.model._meta.concrete_fields:
            shown = _shown(model_field)
            if shown is not None:
                shown_name = model_field.name + self.SHOWN_SUFFIX
                setattr(self, shown_name, shown)  # an attribute of the admin: Django looks it up by name
                self._shown_names[model_field.name] = shown_name
        inlines = getattr(self, "inlines", None)
        if inlines:
            self.inlines = [with_readable_fields(inline) for inline in inlines]

    def _readable(self, names: Sequence[object], readonly: Collection[object] | None) -> list[object]:
        """`names` with each field that is read-only here (all when `readonly` is None) shown readably."""
        mapped = [
            self._shown_names.get(name, name)
            if isinstance(name, str) and (readonly is None or name in readonly)
            else name
            for name in names
        ]
        return list(dict.fromkeys(mapped))

    def _all_readonly(self, request: HttpRequest, obj: Model | None) -> bool:
        """Whether every field is read-only here: a change page or inline staff may not change (an add
        page's fields are the form's)."""
        if isinstance(self, InlineModelAdmin) or obj is not None:
            return not self.has_change_permission(request, obj)
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[object]:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + [
            self._shown_names[n] for n in readonly if isinstance(n, str) and n in self._shown_names
        ]

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> list[tuple[object, dict]]:
        # Here rather than in get_fields: some admins compute their read-only fields from get_fields.
        readonly = None if self._all_readonly(request, obj) else set(self.get_readonly_fields(request, obj))
        return [
            (title, {**options, "fields": self._readable(list(options.get("fields", ())), readonly)})
            for title, options in super().get_fieldsets(request, obj)
        ]

    @property
    def media(self) -> forms.Media:
        # The project's admin stylesheet (UUIDs on one line, JSON tables) on every list, change and
        # delete page, without overriding Django's admin templates (its app comes first in INSTALLED_APPS).
        return super().media + forms.Media(css={"all": [ADMIN_STYLESHEET]})

    def get_list_display(self, request: HttpRequest) -> list[object]:
        return self._readable(list(super().get_list_display(request)), None)  # type: ignore[misc]


def with_readable_fields(admin_class: type[BaseModelAdmin]) -> type[BaseModelAdmin]:
    """The admin class with `ReadableFieldsMixin` mixed in (itself if it has it already)."""
    if issubclass(admin_class, ReadableFieldsMixin):
        return admin_class
    return type(
        admin_class.__name__, (ReadableFieldsMixin, admin_class), {"__module__": admin_class.__module__}
    )
