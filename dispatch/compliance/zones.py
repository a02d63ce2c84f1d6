"""The regulator's zones: which zone a trip's pickup and dropoff lie in, for the trip-record report.

New York's TLC names every pickup and dropoff by a taxi zone (`LocationID` 1..263). The TLC publishes the
zones as a shapefile in New York State Plane feet; staff convert it once
(`ogr2ogr -t_srs EPSG:4326 taxi_zones.geojson taxi_zones.shp`) and load it with
`manage.py regulator_zones_load taxi_zones.geojson`. Each feature carries `LocationID` (or `location_id`, as
the city's open-data portal spells it), `borough`, `zone` and, when the file has it, `service_zone` (the
shapefile does not: that column is in the TLC's zone lookup table). The shapefile holds some zones in
several records (islands), so features of one LocationID are merged into one zone.

Geometry checks are the service areas' (dispatch/services/service_areas.py): WGS 84 longitude/latitude,
closed, valid rings. Zones never price or serve a trip; fee zones stay service areas.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from django.contrib.gis.geos import MultiPolygon, Point
from django.db import connection, transaction

from dispatch.models import RegulatorZone
from dispatch.services.service_areas import (
    ServiceAreaError,
    check_geojson_crs,
    feature_multipolygon,
    merged,
    read_geojson_file,
)

ZONE_NAME_MAX_LENGTH = RegulatorZone._meta.get_field("zone").max_length or 120
BOROUGH_MAX_LENGTH = RegulatorZone._meta.get_field("borough").max_length or 60
SERVICE_ZONE_MAX_LENGTH = RegulatorZone._meta.get_field("service_zone").max_length or 60
# Two parameters a point, well under PostgreSQL's 65,535 parameters a statement.
POINTS_PER_QUERY = 5000


class ZoneFileError(ValueError):
    """The file cannot be loaded as regulator zones; the message says why, for the person who made it."""


@dataclass(frozen=True, slots=True)
class ZoneShape:
    location_id: int
    borough: str
    zone: str
    service_zone: str
    area: MultiPolygon
    features: int


@dataclass(frozen=True, slots=True)
class ZonesLoad:
    loaded: int
    features_read: int
    replaced: int  # zones deleted by --replace


def parse_zones_geojson(document: object) -> list[ZoneShape]:
    """A FeatureCollection of zones as one `ZoneShape` per LocationID, in LocationID order."""
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ZoneFileError("regulator zones come as a GeoJSON FeatureCollection, one Feature per zone")
    try:
        check_geojson_crs(document)
    except ServiceAreaError as error:
        raise ZoneFileError(str(error)) from error
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise ZoneFileError("the FeatureCollection has no features")
    parts: dict[int, list[tuple[str, str, str, MultiPolygon]]] = {}
    for index, feature in enumerate(features):
        where = f"feature {index}"
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(properties, dict):
            raise ZoneFileError(f"{where} has no properties (LocationID, borough, zone)")
        location_id = _location_id(properties, where)
        zone = _text(properties, "zone", where, ZONE_NAME_MAX_LENGTH, required=True)
        borough = _text(properties, "borough", where, BOROUGH_MAX_LENGTH)
        service_zone = _text(properties, "service_zone", where, SERVICE_ZONE_MAX_LENGTH)
        try:
            area = feature_multipolygon(feature, f"{where} (LocationID {location_id})")
        except ServiceAreaError as error:
            raise ZoneFileError(str(error)) from error
        parts.setdefault(location_id, []).append((borough, zone, service_zone, area))
    shapes = []
    for location_id in sorted(parts):
        pieces = parts[location_id]
        names = {(borough, zone) for borough, zone, _, _ in pieces}
        if len(names) > 1:
            listed = "; ".join(f"{b} / {z}" for b, z in sorted(names))
            raise ZoneFileError(f"LocationID {location_id} is given different names: {listed}")
        borough, zone, _, _ = pieces[0]
        service_zone = next((sz for _, _, sz, _ in pieces if sz), "")
        polygons = [polygon for *_, area in pieces for polygon in area]
        shapes.append(
            ZoneShape(
                location_id=location_id,
                borough=borough,
                zone=zone,
                service_zone=service_zone,
                area=merged(polygons),
                features=len(pieces),
            )
        )
    return shapes


def _location_id(properties: dict[str, object], where: str) -> int:
    raw = properties.get("LocationID", properties.get("location_id"))
    # The open-data portal's GeoJSON writes it as a string ("132"); ogr2ogr from the shapefile as a number.
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ZoneFileError(f"{where}: LocationID must be a positive whole number, not {raw!r}")
    return raw


def _text(
    properties: dict[str, object], name: str, where: str, max_length: int, *, required: bool = False
) -> str:
    value = properties.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ZoneFileError(f'{where}: "{name}" must be {"a non-empty" if required else "a"} string')
    value = value.strip()
    if len(value) > max_length:
        raise ZoneFileError(f'{where}: "{name}" is longer than {max_length} characters')
    return value


def regulator_zones_load(path: Path, *, replace: bool = False) -> ZonesLoad:
    """Load the zones in the GeoJSON file at `path`, in one transaction.

    A LocationID already loaded is refused unless `replace`, which makes the file the whole zone table
    (zones the file does not list are deleted): a partial load never mixes two versions of the map."""
    try:
        document = read_geojson_file(path)
    except ServiceAreaError as error:
        raise ZoneFileError(str(error)) from error
    shapes = parse_zones_geojson(document)
    with transaction.atomic():
        existing = RegulatorZone.objects.select_for_update()
        replaced = 0
        if replace:
            replaced, _ = existing.all().delete()
        else:
            clashes = sorted(
                existing.filter(location_id__in=[shape.location_id for shape in shapes]).values_list(
                    "location_id", flat=True
                )
            )
            if clashes:
                shown = ", ".join(str(location_id) for location_id in clashes[:10])
                more = f" and {len(clashes) - 10} more" if len(clashes) > 10 else ""
                raise ZoneFileError(
                    f"zones {shown}{more} are loaded already: give --replace to load the file as the whole "
                    "zone table"
                )
        RegulatorZone.objects.bulk_create(
            RegulatorZone(
                location_id=shape.location_id,
                borough=shape.borough,
                zone=shape.zone,
                service_zone=shape.service_zone,
                area=shape.area,
            )
            for shape in shapes
        )
    return ZonesLoad(loaded=len(shapes), features_read=sum(s.features for s in shapes), replaced=replaced)


def zone_of_points(points: Collection[Point]) -> list[int | None]:
    """The LocationID of the zone covering each point (None outside every zone), in the points' order.

    A point on the border of two zones is in both: the smaller LocationID is taken, so the answer never
    depends on the order rows come back in. One query per `POINTS_PER_QUERY` points."""
    listed = list(points)
    found: dict[int, int | None] = {}
    for start in range(0, len(listed), POINTS_PER_QUERY):
        found.update(_zones_of(listed[start : start + POINTS_PER_QUERY], offset=start))
    return [found.get(index) for index in range(len(listed))]


def _zones_of(points: list[Point], *, offset: int) -> dict[int, int | None]:
    table = RegulatorZone._meta.db_table
    values = ", ".join(["(%s, ST_GeomFromEWKB(%s))"] * len(points))
    params: list[object] = []
    for index, point in enumerate(points, start=offset):
        params.extend([index, bytes(point.ewkb)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT p.idx, MIN(z.location_id)
            FROM (VALUES {values}) AS p(idx, geom)
            LEFT JOIN {table} z ON ST_Covers(z.area, p.geom)
            GROUP BY p.idx
            """,  # noqa: S608 - the table name is our model's; the points are parameters
            params,
        )
        return dict(cursor.fetchall())
