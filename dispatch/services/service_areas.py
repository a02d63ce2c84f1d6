"""Service areas from GeoJSON files (`manage.py service_area_load`) and from the admin's WKT.

A co-op usually has its city's boundary as a file: exported from QGIS or ogr2ogr, cut out of
OpenStreetMap, or drawn on geojson.io. `service_area_load` reads a GeoJSON geometry, Feature or
FeatureCollection of Polygons and MultiPolygons, checks it, merges it into one MultiPolygon (what
`ServiceArea.area` holds) and saves it under a name. The admin's form goes through
`service_area_geometry` so both doors accept the same shapes (docs/roads.md, "The live map and service
areas").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from django.contrib.gis.geos import GEOSGeometry, LinearRing, MultiPolygon, Polygon
from django.db import connection, transaction

from dispatch.models import ServiceArea

WGS84 = 4326
NAME_MAX_LENGTH = ServiceArea._meta.get_field("name").max_length or 120
# How GeoJSON files name WGS 84 longitude/latitude when they name a CRS at all (RFC 7946 dropped the
# member; files from older tools still carry it).
WGS84_CRS_NAMES = frozenset(
    {
        "urn:ogc:def:crs:ogc:1.3:crs84",
        "urn:ogc:def:crs:ogc::crs84",
        "urn:ogc:def:crs:epsg::4326",
        "epsg:4326",
        "crs84",
    }
)
POLYGON_TYPES = ("Polygon", "MultiPolygon")


class ServiceAreaError(ValueError):
    """The file or geometry cannot be a service area; the message says why, for the person who made it."""


class LoadOutcome(StrEnum):
    CREATED = "created"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"  # --replace with the same shape and flag: nothing written


@dataclass(frozen=True, slots=True)
class ServiceAreaShape:
    """What a file holds: the merged geometry, the name it gives itself (if any), how many parts it had."""

    geometry: MultiPolygon
    name: str | None
    polygons_read: int


@dataclass(frozen=True, slots=True)
class ServiceAreaLoad:
    area: ServiceArea
    outcome: LoadOutcome
    polygons_read: int
    area_km2: float


# -- reading GeoJSON ------------------------------------------------------------------------------------


def read_service_area_file(path: Path) -> ServiceAreaShape:
    """Read and check a GeoJSON file (see `parse_service_area_geojson`)."""
    return parse_service_area_geojson(read_geojson_file(path))


def read_geojson_file(path: Path) -> object:
    """The JSON document in a GeoJSON file, with a message for each way a file usually goes wrong (also
    the regulator zones' loader, dispatch/compliance/zones.py)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows write a byte-order mark
    except FileNotFoundError as error:
        raise ServiceAreaError(f"{path}: no such file") from error
    except IsADirectoryError as error:
        raise ServiceAreaError(f"{path} is a directory, not a GeoJSON file") from error
    except UnicodeDecodeError as error:
        raise ServiceAreaError(f"{path} is not UTF-8 text (GeoJSON is JSON): {error}") from error
    if not text.strip():
        raise ServiceAreaError(f"{path} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ServiceAreaError(
            f"{path} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from error


def parse_service_area_geojson(document: object) -> ServiceAreaShape:
    """A GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection of them, as one valid MultiPolygon.

    Positions are [longitude, latitude] in WGS 84 (RFC 7946); a third number (altitude) is ignored.
    Every polygon must be valid on its own (closed rings, no self-intersection); overlapping or touching
    polygons are merged."""
    if not isinstance(document, dict):
        raise ServiceAreaError('the file holds JSON, but not a GeoJSON object ({...} with a "type")')
    _check_crs(document)
    kind = document.get("type")
    name: str | None = None
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise ServiceAreaError("the FeatureCollection has no features")
        polygons: list[Polygon] = []
        names: set[str] = set()
        for index, feature in enumerate(features):
            where = f"feature {index}"
            polygons.extend(_feature_polygons(feature, where))
            feature_name = _feature_name(feature)
            if feature_name:
                names.add(feature_name)
        # ogr2ogr and QGIS write the layer's name at the top; otherwise the features' one shared name.
        collection_name = document.get("name")
        if isinstance(collection_name, str) and collection_name.strip():
            name = collection_name.strip()
        elif len(names) == 1:
            name = names.pop()
    elif kind == "Feature":
        polygons = list(_feature_polygons(document, "the feature"))
        name = _feature_name(document)
    elif kind in POLYGON_TYPES:
        polygons = list(_geometry_polygons(document, "the geometry"))
    elif isinstance(kind, str):
        raise ServiceAreaError(
            f"a {kind} cannot be a service area: give a Polygon or MultiPolygon "
            "(as a geometry, a Feature or a FeatureCollection)"
        )
    else:
        raise ServiceAreaError('the JSON object has no GeoJSON "type"')
    return ServiceAreaShape(geometry=merged(polygons), name=name, polygons_read=len(polygons))


def feature_multipolygon(feature: object, where: str) -> MultiPolygon:
    """One GeoJSON Feature's Polygon or MultiPolygon, checked as a service area's are, as one valid
    MultiPolygon (the regulator zones' loader reads a file feature by feature)."""
    return merged(list(_feature_polygons(feature, where)))


def check_geojson_crs(document: dict[str, object]) -> None:
    """Refuse a file whose `crs` member names anything but WGS 84 longitude/latitude."""
    _check_crs(document)


def _check_crs(document: dict[str, object]) -> None:
    crs = document.get("crs")
    if crs is None:
        return
    named = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    if isinstance(named, str) and named.strip().lower() in WGS84_CRS_NAMES:
        return
    raise ServiceAreaError(
        f"the file says its coordinates are in {named or json.dumps(crs)}; service areas are read as WGS 84 "
        "longitude/latitude (EPSG:4326): reproject it first, e.g. `ogr2ogr -t_srs EPSG:4326 out.geojson in`"
    )


def _feature_name(feature: object) -> str | None:
    if not isinstance(feature, dict):
        return None
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        return None
    name = properties.get("name")
    return name.strip() if isinstance(name, str) and name.strip() else None


def _feature_polygons(feature: object, where: str) -> Iterator[Polygon]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ServiceAreaError(f"{where} is not a GeoJSON Feature")
    geometry = feature.get("geometry")
    if geometry is None:
        raise ServiceAreaError(f"{where} has no geometry")
    yield from _geometry_polygons(geometry, where)


def _geometry_polygons(geometry: object, where: str) -> Iterator[Polygon]:
    if not isinstance(geometry, dict):
        raise ServiceAreaError(f"{where}: the geometry is not a GeoJSON object")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind not in POLYGON_TYPES:
        raise ServiceAreaError(f"{where} is a {kind}; a service area is made of Polygons and MultiPolygons")
    if not isinstance(coordinates, list) or not coordinates:
        raise ServiceAreaError(f"{where}: the {kind} has no coordinates")
    if kind == "Polygon":
        yield _polygon(coordinates, where)
        return
    for index, polygon in enumerate(coordinates):
        if not isinstance(polygon, list) or not polygon:
            raise ServiceAreaError(f"{where}, polygon {index}: no rings")
        yield _polygon(polygon, f"{where}, polygon {index}")


def _polygon(rings: list[object], where: str) -> Polygon:
    linear_rings = [_ring(ring, f"{where}, ring {index}") for index, ring in enumerate(rings)]
    polygon = Polygon(*linear_rings, srid=WGS84)
    if not polygon.valid:
        # GEOS says what and where, e.g. "Self-intersection[24.94 60.17]" or "Hole lies outside shell".
        raise ServiceAreaError(f"{where} is not a valid polygon: {polygon.valid_reason}")
    return polygon


def _ring(ring: object, where: str) -> LinearRing:
    if not isinstance(ring, list):
        raise ServiceAreaError(f"{where}: a ring is a list of [longitude, latitude] positions")
    points = [_position(position, f"{where}, position {index}") for index, position in enumerate(ring)]
    if len(points) < 4:
        raise ServiceAreaError(
            f"{where} has {len(points)} positions; a ring needs at least 4 (a triangle and its first point "
            "again)"
        )
    if points[0] != points[-1]:
        raise ServiceAreaError(
            f"{where} is not closed: it starts at {list(points[0])} and ends at {list(points[-1])} "
            "(GeoJSON repeats the first position at the end)"
        )
    return LinearRing(points, srid=WGS84)


def _position(position: object, where: str) -> tuple[float, float]:
    if (
        not isinstance(position, list)
        or len(position) < 2
        or not all(isinstance(value, int | float) and not isinstance(value, bool) for value in position[:2])
    ):
        raise ServiceAreaError(f"{where}: {position!r} is not a [longitude, latitude] pair of numbers")
    lng, lat = float(position[0]), float(position[1])
    if not (math.isfinite(lng) and math.isfinite(lat)):
        raise ServiceAreaError(f"{where}: {position!r} is not a finite number pair")
    check_lng_lat(lng, lat, where)
    return (lng, lat)


def check_lng_lat(lng: float, lat: float, where: str) -> None:
    """Longitude within ±180 and latitude within ±90, with a hint when the pair looks swapped."""
    if -180.0 <= lng <= 180.0 and -90.0 <= lat <= 90.0:
        return
    hint = ""
    if -90.0 <= lng <= 90.0 and -180.0 <= lat <= 180.0:
        hint = " (it looks like [latitude, longitude]; GeoJSON puts longitude first)"
    elif abs(lng) > 1000 or abs(lat) > 1000:
        hint = " (it looks like projected metres; service areas are read as WGS 84 degrees, EPSG:4326)"
    raise ServiceAreaError(
        f"{where}: longitude {lng}, latitude {lat} is not on Earth: longitude must be within -180..180 "
        f"and latitude within -90..90{hint}"
    )


# -- one MultiPolygon -----------------------------------------------------------------------------------


def merged(polygons: list[Polygon]) -> MultiPolygon:
    """The union of `polygons` as one MultiPolygon (overlapping parts merged, disjoint ones kept apart)."""
    if not polygons:
        raise ServiceAreaError("there is no polygon in the file")
    union = polygons[0] if len(polygons) == 1 else MultiPolygon(*polygons, srid=WGS84).unary_union
    union.srid = WGS84
    return as_multipolygon(union)


def as_multipolygon(geometry: GEOSGeometry) -> MultiPolygon:
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon(geometry, srid=geometry.srid or WGS84)
    raise ServiceAreaError(f"a {geometry.geom_type} cannot be a service area: give a POLYGON or MULTIPOLYGON")


def service_area_geometry(geometry: GEOSGeometry) -> MultiPolygon:
    """Check a geometry typed or pasted by staff (WKT, EWKT or GeoJSON text, already parsed and in
    SRID 4326) and return it as the MultiPolygon `ServiceArea.area` holds: a POLYGON is wrapped."""
    if geometry.srid not in (None, WGS84):
        raise ServiceAreaError(f"the geometry is in SRID {geometry.srid}; service areas are in SRID 4326")
    geometry.srid = WGS84
    area = as_multipolygon(geometry)
    if area.empty:
        raise ServiceAreaError("the geometry is empty")
    for lng, lat in _coordinates(area):
        check_lng_lat(lng, lat, "the geometry")
    if not area.valid:
        raise ServiceAreaError(f"the geometry is not valid: {area.valid_reason}")
    return area


def _coordinates(area: MultiPolygon) -> Iterator[tuple[float, float]]:
    for polygon in area:
        for ring in polygon:
            for point in ring.coords:
                yield point[0], point[1]


def area_km2(geometry: GEOSGeometry) -> float:
    """The geometry's area on the ellipsoid (PostGIS geography), in square kilometres."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Area(ST_GeomFromEWKB(%s)::geography)", [bytes(geometry.ewkb)])
        (square_metres,) = cursor.fetchone()
    return float(square_metres) / 1e6


# -- saving ---------------------------------------------------------------------------------------------


def service_area_load(
    path: Path, *, name: str | None = None, replace: bool = False, active: bool = True
) -> ServiceAreaLoad:
    """Load the GeoJSON file at `path` as the service area `name` (or the name the file gives).

    An existing area of that name is refused unless `replace`; replacing with the same shape and the same
    active flag writes nothing (the load is idempotent)."""
    shape = read_service_area_file(path)
    chosen = (name or "").strip() or shape.name
    if not chosen:
        raise ServiceAreaError(
            f'{path} does not name its area (no "name" property on the feature, or on the collection): '
            "give --name"
        )
    if len(chosen) > NAME_MAX_LENGTH:
        raise ServiceAreaError(f"the name {chosen[:40]!r}... is longer than {NAME_MAX_LENGTH} characters")
    with transaction.atomic():
        existing = ServiceArea.objects.select_for_update().filter(name=chosen).first()
        if existing is None:
            area = ServiceArea.objects.create(name=chosen, area=shape.geometry, is_active=active)
            outcome = LoadOutcome.CREATED
        elif not replace:
            raise ServiceAreaError(
                f"a service area named {chosen!r} exists already: give --replace to overwrite its shape"
            )
        elif existing.is_active == active and existing.area.equals_exact(shape.geometry, tolerance=0.0):
            area, outcome = existing, LoadOutcome.UNCHANGED
        else:
            existing.area = shape.geometry
            existing.is_active = active
            existing.save(update_fields=["area", "is_active"])
            area, outcome = existing, LoadOutcome.REPLACED
    return ServiceAreaLoad(
        area=area, outcome=outcome, polygons_read=shape.polygons_read, area_km2=area_km2(area.area)
    )
