"""What the live map is fed besides drivers: the city's real streets (from the router's tile set, else the
demo city's), the active service areas, and each open trip's planned route.

Django is imported inside the tests, and the database is asked for by fixture rather than by the
`django_db` mark: this folder's pure tests also run with `-p no:django --noconftest`, and there an unknown
mark would stop the collection of the whole folder.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
from collections.abc import Sequence
from io import StringIO

import pytest

# Two places in the Helsinki extract (tests/roads_fixtures.py), about 700 m apart across the centre, both on
# streets a car may use. (Not a pedestrian street open to cars for access, such as Yrjö-Koskisen katu:
# Valhalla drives there to reach a destination, but the map's street layer leaves pedestrian ways out.)
WEST = (60.1690, 24.9390)
EAST = (60.1725, 24.9500)


@pytest.fixture
def helsinki_map(settings, helsinki_tiles):
    """The map's settings pointed at the Helsinki tile set (its streets.geojson)."""
    settings.ROCHDALE_ROADS_DIR = helsinki_tiles.root.parent
    settings.ROCHDALE_ROADS_CITY = helsinki_tiles.name
    return helsinki_tiles


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def planned_route(tiles, origin: tuple[float, float], destination: tuple[float, float]):
    """Valhalla's route on the tiles, as the LineString a trip stores (lng, lat)."""
    from datetime import UTC, datetime

    from django.contrib.gis.geos import LineString

    from dispatch.roads.routers import ValhallaRouter

    route = ValhallaRouter(tiles, snap_radius_m=250).route(origin, destination, datetime.now(UTC))
    assert route.router == "valhalla" and len(route.geometry) > 10
    return LineString([(lng, lat) for lat, lng in route.geometry], srid=4326)


def open_trip(*, route=None, status: str = "assigned", pickup=WEST, dropoff=EAST):
    from django.contrib.gis.geos import Point

    from backend.fares.models import FarePolicyVersion
    from dispatch.models import Trip
    from tests.factories import DriverFactory, RiderFactory

    return Trip.objects.create(
        rider=RiderFactory(),
        driver=DriverFactory() if status != "requested" else None,
        status=status,
        pickup=Point(pickup[1], pickup[0], srid=4326),
        dropoff=Point(dropoff[1], dropoff[0], srid=4326),
        policy_version=FarePolicyVersion.objects.order_by("-version").first(),
        currency="EUR",
        fare_estimate_minor=1200,
        estimated_distance_m=2500,
        estimated_duration_s=420,
        route_geometry=route,
        router="valhalla" if route is not None else "",
    )


def metres_from_polylines(point: Sequence[float], polylines: list[list[list[float]]]) -> float:
    """The distance from a [lat, lng] point to the nearest segment of any polyline, in metres."""
    lat0, lng0 = point
    kx = 111_320.0 * math.cos(math.radians(lat0))
    ky = 110_574.0
    best = math.inf
    for line in polylines:
        for (lat_a, lng_a), (lat_b, lng_b) in itertools.pairwise(line):
            ax, ay = (lng_a - lng0) * kx, (lat_a - lat0) * ky
            bx, by = (lng_b - lng0) * kx, (lat_b - lat0) * ky
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
            best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


# -- streets.json ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/map/streets.json", "/map/areas.json", "/map/snapshot.json"])
def test_the_map_layers_are_for_staff_only(db, client, rider, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(f"/admin/login/?next={path}")
    client.force_login(rider)
    signed_in = client.get(path)
    assert signed_in.status_code == 302 and signed_in["Location"].startswith("/admin/login/")


def test_streets_come_from_the_built_tile_set_with_a_validator(staff_client, helsinki_map):
    features = json.loads(helsinki_map.streets_path.read_text())["features"]
    west, south, east, north = helsinki_map.manifest()["bbox"]

    response = staff_client.get("/map/streets.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "private, max-age=300"
    assert response["ETag"].startswith('W/"')
    assert "Accept-Encoding" in response["Vary"] and "Cookie" in response["Vary"]
    layer = json.loads(response.content)
    assert layer["source"] == "tiles" and layer["city"] == "helsinki"
    assert len(layer["streets"]) == len(features) > 900
    bounds = layer["bounds"]
    assert abs(bounds["south"] - south) < 1e-4 and abs(bounds["north"] - north) < 1e-4
    assert abs(bounds["west"] - west) < 1e-4 and abs(bounds["east"] - east) < 1e-4
    # Each way keeps its shape (points as [lat, lng]) and is drawn by its OSM class.
    first = features[0]
    assert layer["streets"][0]["points"] == [
        [round(lat, 5), round(lng, 5)] for lng, lat in first["geometry"]["coordinates"]
    ]
    by_class: dict[str, int] = {}
    for street in layer["streets"]:
        by_class[street["class"]] = by_class.get(street["class"], 0) + 1
    highways = [feature["properties"]["highway"] for feature in features]
    assert by_class["major"] == sum(h.startswith(("primary", "trunk", "motorway")) for h in highways)
    assert by_class["service"] == highways.count("service")
    assert set(by_class) == {"major", "secondary", "minor", "service"}
    assert any(street["one_way"] for street in layer["streets"])

    # The browser's copy is current: a 304 without a body. Gzipped when asked, the same document.
    again = staff_client.get("/map/streets.json", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == response["ETag"]
    zipped = staff_client.get("/map/streets.json", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert zipped["Content-Encoding"] == "gzip"
    assert len(zipped.content) < len(response.content) / 3
    assert gzip.decompress(zipped.content) == response.content
    assert zipped["ETag"] == response["ETag"]


def test_without_tiles_the_map_draws_the_demo_city_as_before(staff_client, settings, tmp_path):
    from dispatch.simulation.city import City

    settings.ROCHDALE_ROADS_DIR = tmp_path  # nothing built here
    layer = json.loads(staff_client.get("/map/streets.json").content)
    city = City.generate()
    assert layer["source"] == "demo"
    assert len(layer["streets"]) == len(city.roads)
    assert {street["class"] for street in layer["streets"]} <= {
        "street",
        "broad_street",
        "avenue",
        "diagonal",
    }
    south, west, north, east = city.bounds
    assert layer["bounds"] == {"south": south, "west": west, "north": north, "east": east}


# -- areas.json -----------------------------------------------------------------------------------------


def test_areas_are_the_active_service_areas_with_their_holes_and_revalidate(staff_client, tmp_path):
    from django.core.management import call_command

    outer = [[24.930, 60.165], [24.950, 60.165], [24.950, 60.178], [24.930, 60.178], [24.930, 60.165]]
    hole = [[24.935, 60.168], [24.935, 60.170], [24.938, 60.170], [24.938, 60.168], [24.935, 60.168]]
    elsewhere = [[25.0, 60.2], [25.01, 60.2], [25.01, 60.21], [25.0, 60.2]]
    (tmp_path / "centre.geojson").write_text(
        json.dumps({"type": "Feature", "properties": {"name": "Centre"},
                    "geometry": {"type": "Polygon", "coordinates": [outer, hole]}})
    )  # fmt: skip
    (tmp_path / "off.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [elsewhere]}))

    empty = staff_client.get("/map/areas.json")
    assert empty.status_code == 200 and json.loads(empty.content) == {"service_areas": []}
    assert empty["Cache-Control"] == "private, no-cache"

    call_command("service_area_load", str(tmp_path / "centre.geojson"), stdout=StringIO())
    call_command(
        "service_area_load", str(tmp_path / "off.geojson"), "--name", "Off", "--inactive", stdout=StringIO()
    )
    # The page's old copy is stale now: the validator changed, so the new areas come back, not a 304.
    response = staff_client.get("/map/areas.json", HTTP_IF_NONE_MATCH=empty["ETag"])
    assert response.status_code == 200 and response["ETag"] != empty["ETag"]
    (area,) = json.loads(response.content)["service_areas"]
    assert area["name"] == "Centre"
    (rings,) = area["polygons"]
    assert rings == [[[lat, lng] for lng, lat in outer], [[lat, lng] for lng, lat in hole]]
    assert staff_client.get("/map/areas.json", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


# -- routes in the snapshot -----------------------------------------------------------------------------


def test_the_snapshot_carries_each_trips_route_along_the_streets(staff_client, helsinki_map):
    from dispatch.livemap.snapshot import build_snapshot

    route = planned_route(helsinki_map, WEST, EAST)
    routed = open_trip(route=route)
    old = open_trip(route=None, status="requested", pickup=(60.171, 24.940), dropoff=(60.175, 24.945))

    snapshot = json.loads(staff_client.get("/map/snapshot.json").content)
    trips = {trip["id"]: trip for trip in snapshot["trips"]}
    drawn = trips[str(routed.id)[:8]]
    assert drawn["route_key"] and len(drawn["route_key"]) == 12
    points = drawn["route"]
    assert 2 < len(points) <= route.num_points
    assert points[0] == [round(route.coords[0][1], 5), round(route.coords[0][0], 5)]
    assert points[-1] == [round(route.coords[-1][1], 5), round(route.coords[-1][0], 5)]
    # The route follows the streets the map draws: every point lies on one of them.
    streets = [
        street["points"] for street in json.loads(staff_client.get("/map/streets.json").content)["streets"]
    ]
    assert max(metres_from_polylines(point, streets) for point in points) < 5.0
    # A trip planned before routes were stored has none: the map draws its straight line.
    assert trips[str(old.id)[:8]]["route_key"] is None and "route" not in trips[str(old.id)[:8]]

    # A receiver that has the route gets its key alone; a re-planned route has a new key and is sent.
    known = build_snapshot(routes_known={drawn["route_key"]})
    (again,) = [trip for trip in known["trips"] if trip["id"] == drawn["id"]]
    assert again["route_key"] == drawn["route_key"] and "route" not in again
    routed.route_geometry = planned_route(helsinki_map, EAST, WEST)
    routed.save(update_fields=["route_geometry"])
    (replanned,) = [
        trip
        for trip in build_snapshot(routes_known={drawn["route_key"]})["trips"]
        if trip["id"] == drawn["id"]
    ]
    assert replanned["route_key"] != drawn["route_key"]
    assert metres_from_polylines(EAST, [replanned["route"][:2]]) < 100  # it starts there now


@pytest.fixture
def staff_socket_headers(transactional_db, client, staff_user) -> list[tuple[bytes, bytes]]:
    """What a browser sends with the map socket's handshake: its origin and the staff session cookie."""
    client.force_login(staff_user)
    session = client.cookies["sessionid"].value
    return [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session}".encode())]


async def test_the_socket_sends_a_route_once_then_its_key(staff_socket_headers, helsinki_map):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    trip = await sync_to_async(lambda: open_trip(route=planned_route(helsinki_map, WEST, EAST)))()
    communicator = WebsocketCommunicator(application, "/ws/map/", headers=staff_socket_headers)
    connected, _ = await communicator.connect()
    assert connected
    try:
        first = json.loads(await communicator.receive_from(timeout=10))
        second = json.loads(await communicator.receive_from(timeout=10))
    finally:
        await communicator.disconnect()
    (sent,) = [t for t in first["trips"] if t["id"] == str(trip.id)[:8]]
    (then,) = [t for t in second["trips"] if t["id"] == str(trip.id)[:8]]
    assert len(sent["route"]) > 2
    assert then["route_key"] == sent["route_key"] and "route" not in then
