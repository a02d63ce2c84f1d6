"""Service areas from GeoJSON files (`manage.py service_area_load`) and POLYGONs typed into the admin."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dispatch.models import ServiceArea
from dispatch.selectors import point_in_service_area

pytestmark = pytest.mark.django_db

# Central Helsinki (the roads fixture's extract): Kamppi and Kruununhaka, with the harbour between.
KAMPPI = [[24.925, 60.162], [24.945, 60.162], [24.945, 60.172], [24.925, 60.172], [24.925, 60.162]]
KAMPPI_EAST = [[24.940, 60.165], [24.950, 60.165], [24.950, 60.170], [24.940, 60.170], [24.940, 60.165]]
KRUUNUNHAKA = [[24.955, 60.170], [24.965, 60.170], [24.965, 60.176], [24.955, 60.176], [24.955, 60.170]]
INSIDE_KAMPPI = (60.167, 24.935)
INSIDE_KRUUNUNHAKA = (60.173, 24.960)
HARBOUR = (60.167, 24.975)  # outside both


def polygon(*rings: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def feature(geometry: dict | None, **properties: object) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def write(tmp_path: Path, document: object, name: str = "area.geojson") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def load(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("service_area_load", str(path), *args, stdout=out)
    return out.getvalue()


def test_a_polygon_geometry_becomes_a_named_multipolygon_that_serves_its_inside(tmp_path):
    output = load(write(tmp_path, polygon(KAMPPI)), "--name", "Kamppi")

    area = ServiceArea.objects.get(name="Kamppi")
    assert area.area.geom_type == "MultiPolygon" and area.area.srid == 4326 and area.area.num_geom == 1
    assert area.is_active
    assert [list(point) for point in area.area[0].exterior_ring.coords] == KAMPPI
    assert point_in_service_area(lat=INSIDE_KAMPPI[0], lng=INSIDE_KAMPPI[1])
    assert not point_in_service_area(lat=HARBOUR[0], lng=HARBOUR[1])
    assert "service area 'Kamppi': created" in output
    # On the WGS 84 ellipsoid at 60.17 N a degree of longitude is 55.8 km and one of latitude 111.4 km:
    # 0.020 by 0.010 degrees is 1.116 km by 1.114 km.
    assert "1 polygon(s) read, 1 after merging, 1.24 km²" in output
    assert "south 60.162000, west 24.925000, north 60.172000, east 24.945000" in output


def test_a_multipolygon_feature_is_named_by_its_name_property(tmp_path):
    multipolygon = {"type": "MultiPolygon", "coordinates": [[KAMPPI], [KRUUNUNHAKA]]}
    load(write(tmp_path, feature(multipolygon, name="Helsinki centre", population=1)))

    area = ServiceArea.objects.get(name="Helsinki centre")
    assert area.area.num_geom == 2
    assert point_in_service_area(lat=INSIDE_KRUUNUNHAKA[0], lng=INSIDE_KRUUNUNHAKA[1])
    assert not point_in_service_area(lat=HARBOUR[0], lng=HARBOUR[1])


def test_a_feature_collection_is_merged_into_one_area(tmp_path):
    # Two overlapping squares become one polygon; the disjoint one stays apart. The layer's top-level
    # name (as ogr2ogr writes it) names the area.
    collection = {
        "type": "FeatureCollection",
        "name": "Central Helsinki",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": [
            feature(polygon(KAMPPI), name="west"),
            feature(polygon(KAMPPI_EAST), name="east"),
            feature({"type": "MultiPolygon", "coordinates": [[KRUUNUNHAKA]]}, name="north"),
        ],
    }
    output = load(write(tmp_path, collection))

    area = ServiceArea.objects.get(name="Central Helsinki")
    assert area.area.num_geom == 2
    assert area.area.valid
    assert "3 polygon(s) read, 2 after merging" in output
    for lat, lng in (INSIDE_KAMPPI, (60.1675, 24.948), INSIDE_KRUUNUNHAKA):
        assert point_in_service_area(lat=lat, lng=lng)


def test_a_collection_whose_features_share_one_name_takes_it_and_a_hole_is_kept(tmp_path):
    hole = [[24.930, 60.165], [24.930, 60.168], [24.935, 60.168], [24.935, 60.165], [24.930, 60.165]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            feature(polygon(KAMPPI, hole), name="Kamppi"),
            feature(polygon(KAMPPI_EAST), name="Kamppi"),
        ],
    }
    load(write(tmp_path, collection, "kamppi.json"), "--inactive")

    area = ServiceArea.objects.get(name="Kamppi")
    assert not area.is_active
    assert not point_in_service_area(lat=INSIDE_KAMPPI[0], lng=INSIDE_KAMPPI[1])  # inactive serves nobody
    area.is_active = True
    area.save()
    assert point_in_service_area(lat=60.170, lng=24.928)
    assert not point_in_service_area(lat=60.1665, lng=24.9325)  # inside the hole


def test_the_same_file_again_is_refused_until_replace_and_replace_is_idempotent(tmp_path):
    first = write(tmp_path, feature(polygon(KAMPPI), name="Centre"), "first.geojson")
    second = write(tmp_path, feature(polygon(KRUUNUNHAKA), name="Centre"), "second.geojson")
    load(first)
    created_id = ServiceArea.objects.get(name="Centre").id

    with pytest.raises(CommandError, match="'Centre' exists already: give --replace"):
        load(second)
    assert point_in_service_area(lat=INSIDE_KAMPPI[0], lng=INSIDE_KAMPPI[1])

    assert "'Centre': replaced" in load(second, "--replace")
    area = ServiceArea.objects.get(name="Centre")
    assert area.id == created_id
    assert point_in_service_area(lat=INSIDE_KRUUNUNHAKA[0], lng=INSIDE_KRUUNUNHAKA[1])
    assert not point_in_service_area(lat=INSIDE_KAMPPI[0], lng=INSIDE_KAMPPI[1])

    assert "'Centre': unchanged" in load(second, "--replace")
    assert "status  inactive" in load(second, "--replace", "--inactive")
    assert not ServiceArea.objects.get(name="Centre").is_active
    assert ServiceArea.objects.count() == 1


def test_name_flag_wins_over_the_file(tmp_path):
    load(write(tmp_path, feature(polygon(KAMPPI), name="From the file")), "--name", "  Kamppi  ")
    assert list(ServiceArea.objects.values_list("name", flat=True)) == ["Kamppi"]


UNCLOSED = [*KAMPPI[:-1], [24.925, 60.163]]
BOWTIE = [[24.925, 60.162], [24.945, 60.172], [24.945, 60.162], [24.925, 60.172], [24.925, 60.162]]
# Swapped Helsinki is still on Earth (in the Arabian Sea); swapped Tokyo is not (latitude 139.7).
TOKYO = [[139.70, 35.65], [139.80, 35.65], [139.80, 35.72], [139.70, 35.72], [139.70, 35.65]]
SWAPPED = [[lat, lng] for lng, lat in TOKYO]
METRES = [[2776000.0, 8437000.0], [2778000.0, 8437000.0], [2778000.0, 8439000.0], [2776000.0, 8437000.0]]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("", "is empty"),
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        ("[1, 2]", 'not a GeoJSON object ({...} with a "type")'),
        ({"coordinates": [[KAMPPI]]}, 'has no GeoJSON "type"'),
        ({"type": "Point", "coordinates": [24.93, 60.17]}, "a Point cannot be a service area"),
        (feature({"type": "LineString", "coordinates": KAMPPI}), "is a LineString; a service area is"),
        (feature(None), "the feature has no geometry"),
        ({"type": "FeatureCollection", "features": []}, "the FeatureCollection has no features"),
        ({"type": "FeatureCollection", "features": [{"type": "Polygon"}]}, "feature 0 is not a GeoJSON"),
        (polygon(), "the Polygon has no coordinates"),
        (polygon(UNCLOSED), "ring 0 is not closed: it starts at [24.925, 60.162] and ends at [24.925, 60.1"),
        (polygon(KAMPPI[:3]), "has 3 positions; a ring needs at least 4"),
        (polygon(BOWTIE), "is not a valid polygon: Self-intersection"),
        (polygon(SWAPPED), "it looks like [latitude, longitude]; GeoJSON puts longitude first"),
        (polygon(METRES), "it looks like projected metres"),
        (polygon([["24.9", "60.1"], *KAMPPI]), "is not a [longitude, latitude] pair of numbers"),
        (
            {**polygon(KAMPPI), "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
            "coordinates are in EPSG:3857",
        ),
        (
            {"type": "MultiPolygon", "coordinates": [[KAMPPI], []]},
            "the geometry, polygon 1: no rings",
        ),
    ],
    ids=[
        "empty", "not-json", "json-array", "no-type", "point", "linestring", "null-geometry",
        "no-features", "bare-geometry-in-collection", "no-coordinates", "unclosed-ring", "too-few-positions",
        "self-intersection", "lat-lng-swapped", "projected", "strings", "other-crs", "empty-polygon",
    ],
)  # fmt: skip
def test_bad_files_are_refused_with_a_message_that_says_why(tmp_path, document, message):
    path = write(tmp_path, document)
    with pytest.raises(CommandError) as raised:
        load(path, "--name", "Bad")
    assert message in str(raised.value)
    assert not ServiceArea.objects.exists()


def test_a_missing_file_and_a_nameless_area_are_refused(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        load(tmp_path / "missing.geojson", "--name", "X")
    with pytest.raises(CommandError, match=r"does not name its area .* give --name"):
        load(write(tmp_path, polygon(KAMPPI)))
    unnamed = {
        "type": "FeatureCollection",
        "features": [feature(polygon(KAMPPI), name="a"), feature(polygon(KRUUNUNHAKA), name="b")],
    }
    with pytest.raises(CommandError, match="give --name"):
        load(write(tmp_path, unnamed))
    assert not ServiceArea.objects.exists()


# -- the admin ------------------------------------------------------------------------------------------


@pytest.fixture
def staff_browser(client, staff_user):
    client.force_login(staff_user)
    return client


def wkt(ring: list[list[float]]) -> str:
    return ", ".join(f"{lng} {lat}" for lng, lat in ring)


def test_staff_may_enter_a_polygon_and_it_is_saved_as_a_multipolygon(staff_browser):
    response = staff_browser.post(
        "/admin/dispatch/servicearea/add/",
        {"name": "Kamppi", "area": f"POLYGON(({wkt(KAMPPI)}))", "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    area = ServiceArea.objects.get(name="Kamppi")
    assert area.area.geom_type == "MultiPolygon" and area.area.srid == 4326 and area.area.num_geom == 1
    assert point_in_service_area(lat=INSIDE_KAMPPI[0], lng=INSIDE_KAMPPI[1])
    edit = staff_browser.get(f"/admin/dispatch/servicearea/{area.id}/change/").content.decode()
    assert "MULTIPOLYGON" in edit and "SRID=" not in edit  # plain WKT, in longitude/latitude


@pytest.mark.parametrize(
    ("area", "message"),
    [
        (f"POLYGON(({wkt(BOWTIE)}))", "not valid: Self-intersection"),
        (f"POLYGON(({wkt(SWAPPED)}))", "looks like [latitude, longitude]"),
        (f"LINESTRING({wkt(KAMPPI)})", "a LineString cannot be a service area"),
        ("POLYGON((1 2, 3", "Invalid geometry value."),
    ],
    ids=["self-intersection", "swapped", "linestring", "garbled"],
)
def test_the_admin_refuses_what_the_command_refuses(staff_browser, area, message):
    response = staff_browser.post("/admin/dispatch/servicearea/add/", {"name": "Bad", "area": area})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ServiceArea.objects.exists()
