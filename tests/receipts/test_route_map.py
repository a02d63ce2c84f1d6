"""The receipt's route map (dispatch/money/route_map.py): inline SVG from the route's points, no tiles."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from dispatch.money.route_map import DROPOFF_COLOUR, PICKUP_COLOUR, route_svg

SVG = "{http://www.w3.org/2000/svg}"
# Midtown to Lower Manhattan with a bend, (lng, lat).
ROUTE = [(-73.9855, 40.7580), (-73.9911, 40.7503), (-74.0012, 40.7311), (-74.0060, 40.7128)]


def _points(svg: str) -> list[tuple[float, float]]:
    polyline = ET.fromstring(svg).find(f"{SVG}polyline")
    return [tuple(map(float, pair.split(","))) for pair in polyline.get("points").split()]


def test_the_route_is_a_polyline_inside_the_box_from_a_green_pickup_to_a_red_dropoff():
    svg = route_svg(ROUTE, width=320, height=180, margin=14)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "320" and root.get("height") == "180"
    points = _points(svg)
    assert len(points) == len(ROUTE)
    assert all(14 - 0.05 <= x <= 320 - 14 + 0.05 and 14 - 0.05 <= y <= 180 - 14 + 0.05 for x, y in points)
    start, end = root.findall(f"{SVG}circle")
    assert start.get("fill") == PICKUP_COLOUR and end.get("fill") == DROPOFF_COLOUR
    assert (float(start.get("cx")), float(start.get("cy"))) == points[0]
    assert (float(end.get("cx")), float(end.get("cy"))) == points[-1]
    # Nothing outside the document: no tiles, no links, no scripts (the namespace is a name, not a fetch).
    body = svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"href|https?://|<script|<image", body)


def test_north_is_up_and_the_shape_is_not_stretched():
    points = _points(route_svg(ROUTE))
    # The route runs south-west: later points are lower (larger y) and further left (smaller x).
    assert points[-1][1] > points[0][1] and points[-1][0] < points[0][0]
    # The pixel aspect matches the ground: longitude shrunk by cos(latitude) (~0.757 at 40.7 N).
    width_px = max(x for x, _ in points) - min(x for x, _ in points)
    height_px = max(y for _, y in points) - min(y for _, y in points)
    ground_ratio = (0.0205 * 0.7575) / 0.0452
    assert width_px / height_px == pytest.approx(ground_ratio, rel=0.01)


def test_a_trip_without_a_planned_route_is_a_dashed_straight_line():
    svg = route_svg([ROUTE[0], ROUTE[-1]], planned=False)
    assert 'stroke-dasharray="6 4"' in svg and len(_points(svg)) == 2
    assert "stroke-dasharray" not in route_svg(ROUTE)


def test_a_single_point_sits_in_the_middle_and_nothing_is_refused_but_no_points():
    ((x, y),) = _points(route_svg([ROUTE[0]], width=100, height=60, margin=10))
    assert (x, y) == (50.0, 30.0)
    with pytest.raises(ValueError):
        route_svg([])
    with pytest.raises(ValueError):
        route_svg(ROUTE, width=20, height=20, margin=10)
