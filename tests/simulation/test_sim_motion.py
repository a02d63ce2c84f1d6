import math
import random
from datetime import UTC, datetime

import pytest

from dispatch.simulation.city import City
from dispatch.simulation.motion import Fix, RouteMotion, Vehicle
from dispatch.simulation.routing import Route, Router


@pytest.fixture(scope="module")
def city() -> City:
    return City.generate(seed=3, width_m=1500, height_m=2000)


@pytest.fixture(scope="module")
def router(city) -> Router:
    return Router(city)


def distance_to_segment(p, a, b) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def distance_to_route(city, route, fix) -> float:
    point = city.to_xy(fix.lat, fix.lng)
    return min(
        distance_to_segment(point, city.node_xy(a), city.node_xy(b))
        for a, b in zip(route.nodes, route.nodes[1:], strict=False)
    )


def test_motion_stays_on_the_route_and_moves_at_plausible_speeds(city, router):
    rng = random.Random(2)
    for _ in range(10):
        route = router.route(city.random_node(rng), city.random_node(rng))
        if len(route.nodes) < 2:
            continue
        motion = RouteMotion(city, route, rng)
        previous = None
        t = 0.0
        while t <= motion.duration_s + 1:
            fix = motion.position_at(t)
            assert distance_to_route(city, route, fix) < 0.05
            assert 0 <= fix.speed_mps <= 10.0 * 1.4 + 1e-9 and 0 <= fix.heading_deg < 360
            if previous is not None:
                step = city.distance_m((previous.lat, previous.lng), (fix.lat, fix.lng))
                assert step <= 14.0 * 0.5 + 0.01  # no jumps faster than the fastest car
            previous = fix
            t += 0.5
        assert (fix.lat, fix.lng) == pytest.approx(city.nodes[route.destination])
        assert fix.speed_mps == 0
        assert motion.duration_s >= route.duration_s / 1.4


def test_heading_points_along_the_block(city):
    edge = next(e for e in city.edges if e.road.endswith("Avenue") and e.one_way)
    route = Route.from_nodes(city, [edge.source, edge.target])
    motion = RouteMotion(city, route, random.Random(1), speed_noise=0.0)
    fix = motion.position_at(motion.duration_s / 2)
    northbound = city.nodes[edge.target][0] > city.nodes[edge.source][0]
    assert fix.heading_deg == pytest.approx(29.0 if northbound else 209.0, abs=0.05)
    assert fix.speed_mps == pytest.approx(10.0)


def test_vehicle_drives_to_destination_and_parks(city, router):
    rng = random.Random(8)
    vehicle = Vehicle(city, 0, rng)
    route = vehicle.drive_to(router, len(city.nodes) - 1)
    fixes = []
    while not vehicle.arrived:
        fixes.append(vehicle.advance(4.0))
        assert distance_to_route(city, route, fixes[-1]) < 0.05
    assert vehicle.node == route.destination and vehicle.motion is None
    assert vehicle.odometer_m == pytest.approx(route.length_m)
    assert vehicle.advance(4.0).speed_mps == 0


def test_rerouting_mid_block_finishes_the_block_first(city, router):
    rng = random.Random(3)
    vehicle = Vehicle(city, 0, rng, red_light_probability=0.0)
    first = vehicle.drive_to(router, len(city.nodes) // 2)
    vehicle.advance(first.edges[0].travel_time_s * 0.4)
    current_block = (vehicle.node, vehicle.next_node)
    assert current_block[0] != current_block[1]
    before = vehicle.true_fix
    second = vehicle.drive_to(router, 7)
    assert second.origin == current_block[1]
    after = vehicle.true_fix
    assert city.distance_m((before.lat, before.lng), (after.lat, after.lng)) < 0.01
    joined = Route.from_nodes(city, (current_block[0], *second.nodes))
    while not vehicle.arrived:
        assert distance_to_route(city, joined, vehicle.advance(2.0)) < 0.05
    assert vehicle.node == 7
    expected = first.edges[0].length_m * 0.4 + second.length_m + first.edges[0].length_m * 0.6
    assert vehicle.odometer_m == pytest.approx(expected, rel=0.02)


def test_stop_halts_at_the_next_intersection(city, router):
    vehicle = Vehicle(city, 0, random.Random(1), red_light_probability=0.0)
    route = vehicle.drive_to(router, len(city.nodes) - 1)
    vehicle.advance(route.edges[0].travel_time_s * 0.5)
    vehicle.stop()
    while not vehicle.arrived:
        vehicle.advance(1.0)
    assert vehicle.node == route.nodes[1]


def test_route_must_start_where_the_car_is(city, router):
    vehicle = Vehicle(city, 0)
    with pytest.raises(ValueError):
        vehicle.follow(router.route(5, 9))


def test_gps_jitter_is_a_few_metres_and_unbiased(city):
    vehicle = Vehicle(city, 50, random.Random(4), gps_jitter_m=4.0)
    truth = city.to_xy(*city.nodes[50])
    errors = []
    for _ in range(2000):
        fix = vehicle.observe()
        x, y = city.to_xy(fix.lat, fix.lng)
        errors.append((x - truth[0], y - truth[1]))
    mean_x = sum(e[0] for e in errors) / len(errors)
    rms = math.sqrt(sum(e[0] ** 2 + e[1] ** 2 for e in errors) / len(errors))
    assert abs(mean_x) < 0.5
    assert rms == pytest.approx(4.0 * math.sqrt(2), rel=0.1)


def test_fix_maps_to_the_location_frame():
    frame = Fix(40.1, -73.9, 29.04, 8.123).to_location_frame(datetime(2026, 11, 21, 14, 3, tzinfo=UTC), 5.0)
    assert frame == {
        "type": "location",
        "lat": 40.1,
        "lng": -73.9,
        "heading": 29.0,
        "speed_mps": 8.12,
        "accuracy_m": 5.0,
        "recorded_at": "2026-11-21T14:03:00+00:00",
    }
