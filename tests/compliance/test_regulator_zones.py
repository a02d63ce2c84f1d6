"""Regulator zones from GeoJSON: the TLC's properties as either tool writes them, zones of several records
merged, a second load refused unless --replace, bad files refused with a reason, a point's zone found."""

from __future__ import annotations

import io

import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command

from dispatch.compliance.zones import zone_of_points
from dispatch.models import RegulatorZone
from tests.compliance.report_builders import square_ring, zone_feature, zones_file

pytestmark = pytest.mark.django_db


def load(path, *args: str) -> str:
    out = io.StringIO()
    call_command("regulator_zones_load", str(path), *args, stdout=out)
    return out.getvalue()


def test_zones_load_with_their_properties_and_a_split_zone_is_merged(tmp_path):
    path = zones_file(
        tmp_path,
        [
            zone_feature(1, "EWR", "Newark Airport", "EWR", square_ring((-74.17, 40.69), 0.01)),
            # The open-data portal writes LocationID as a string; the shapefile keeps some islands as
            # several records of one LocationID.
            zone_feature(
                "103", "Manhattan", "Liberty Island", "Yellow Zone", square_ring((-74.04, 40.69), 0.002)
            ),
            zone_feature(
                103, "Manhattan", "Liberty Island", "Yellow Zone", square_ring((-74.02, 40.70), 0.002)
            ),
        ],
    )
    assert "2 loaded from 3 feature(s)" in load(path)
    island = RegulatorZone.objects.get(location_id=103)
    assert (island.borough, island.zone, island.service_zone, island.area.num_geom) == (
        "Manhattan",
        "Liberty Island",
        "Yellow Zone",
        2,
    )
    assert zone_of_points(
        [Point(-74.17, 40.69, srid=4326), Point(-74.02, 40.70, srid=4326), Point(-73.0, 40.0, srid=4326)]
    ) == [1, 103, None]


def test_a_second_load_needs_replace_which_makes_the_file_the_whole_table(tmp_path):
    first = zones_file(
        tmp_path,
        [
            zone_feature(1, "EWR", "Newark Airport", "EWR", square_ring((-74.17, 40.69), 0.01)),
            zone_feature(2, "Queens", "Jamaica Bay", "Boro Zone", square_ring((-73.82, 40.60), 0.01)),
        ],
        name="first.geojson",
    )
    second = zones_file(
        tmp_path,
        [zone_feature(2, "Queens", "Jamaica Bay", "Boro Zone", square_ring((-73.83, 40.61), 0.01))],
        name="second.geojson",
    )
    load(first)
    with pytest.raises(CommandError, match="zones 2 are loaded already: give --replace"):
        load(second)
    assert "1 loaded from 1 feature(s), 2 replaced" in load(second, "--replace")
    assert list(RegulatorZone.objects.values_list("location_id", flat=True)) == [2]


def test_a_border_point_takes_the_smaller_location_id(tmp_path):
    load(
        zones_file(
            tmp_path,
            [
                zone_feature(7, "Queens", "Astoria", "Boro Zone", [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]),
                zone_feature(5, "Queens", "Arden", "Boro Zone", [[1, 0], [2, 0], [2, 1], [1, 1], [1, 0]]),
            ],
        )
    )
    assert zone_of_points([Point(1, 0.5, srid=4326), Point(0.5, 0.5, srid=4326)]) == [5, 7]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (
            [{"type": "Feature", "properties": {"zone": "X"}, "geometry": None}],
            "LocationID must be a positive",
        ),
        ([zone_feature(0, "Q", "X", "", square_ring((0, 0), 1))], "LocationID must be a positive"),
        ([zone_feature(3, "Q", "", "", square_ring((0, 0), 1))], '"zone" must be a non-empty string'),
        (
            [
                zone_feature(3, "Queens", "A", "", square_ring((0, 0), 1)),
                zone_feature(3, "Queens", "B", "", square_ring((5, 5), 1)),
            ],
            "LocationID 3 is given different names",
        ),
        (
            [zone_feature(3, "Q", "X", "", [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])],
            "is not a valid polygon: Self-intersection",
        ),
    ],
)
def test_bad_files_are_refused_with_a_reason_and_load_nothing(tmp_path, features, message):
    with pytest.raises(CommandError, match=message):
        load(zones_file(tmp_path, features))
    assert not RegulatorZone.objects.exists()


def test_a_file_in_state_plane_feet_is_refused_with_the_way_to_convert_it(tmp_path):
    path = tmp_path / "taxi_zones.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:2263"}},'
        ' "features": []}'
    )
    with pytest.raises(CommandError, match="ogr2ogr -t_srs EPSG:4326"):
        load(path)
