"""A trip's route as a small static map: inline SVG drawn from its points, with no tiles and no network.

A receipt (HTML email and PDF) shows where the ride went. Map tiles would need a tile server and the
internet at render time, and would leak the rider's route to a third party; a polyline on a blank
rectangle, with the pickup and dropoff marked, is enough to recognise a trip and renders anywhere
(WeasyPrint draws inline SVG into the PDF).

Pure: plain (lng, lat) pairs in, an SVG string out. Points are projected equirectangularly around the
route's mean latitude (longitude scaled by its cosine), which is exact enough at city scale, then fitted
into the box with a margin, keeping the aspect ratio so the shape is not distorted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LngLat = tuple[float, float]

ROUTE_COLOUR = "#1f5fbf"
PICKUP_COLOUR = "#1e8e3e"
DROPOFF_COLOUR = "#c5221f"


def route_svg(
    points: Sequence[LngLat],
    *,
    width: int = 320,
    height: int = 180,
    margin: int = 14,
    planned: bool = True,
) -> str:
    """An `<svg>` element of `width` x `height` pixels drawing `points` (at least one) as a line from the
    pickup (first point, green) to the dropoff (last, red). `planned=False` draws a dashed straight line:
    the trip had no planned route, only its two ends."""
    if not points:
        raise ValueError("a route map needs at least one point")
    if width <= 2 * margin or height <= 2 * margin:
        raise ValueError("the map is smaller than its margins")
    projected = _project(points)
    xs = [x for x, _ in projected]
    ys = [y for _, y in projected]
    span_x = max(xs) - min(xs)
    span_y = max(ys) - min(ys)
    inner_w, inner_h = width - 2 * margin, height - 2 * margin
    # One scale for both axes (no distortion); a single point or a degenerate line sits in the middle.
    scale = min(
        inner_w / span_x if span_x > 0 else math.inf,
        inner_h / span_y if span_y > 0 else math.inf,
    )
    if math.isinf(scale):
        scale = 0.0
    offset_x = margin + (inner_w - span_x * scale) / 2
    offset_y = margin + (inner_h - span_y * scale) / 2
    pixels = [(offset_x + (x - min(xs)) * scale, offset_y + (y - min(ys)) * scale) for x, y in projected]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pixels)
    dash = "" if planned else ' stroke-dasharray="6 4"'
    (start_x, start_y), (end_x, end_y) = pixels[0], pixels[-1]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Route of the trip">'
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f6f8fa" '
        f'stroke="#d0d7de"/>'
        f'<polyline points="{path}" fill="none" stroke="{ROUTE_COLOUR}" stroke-width="3" '
        f'stroke-linecap="round" stroke-linejoin="round"{dash}/>'
        f'<circle cx="{start_x:.1f}" cy="{start_y:.1f}" r="5" fill="{PICKUP_COLOUR}" stroke="#fff" '
        f'stroke-width="1.5"/>'
        f'<circle cx="{end_x:.1f}" cy="{end_y:.1f}" r="5" fill="{DROPOFF_COLOUR}" stroke="#fff" '
        f'stroke-width="1.5"/>'
        "</svg>"
    )


def _project(points: Sequence[LngLat]) -> list[tuple[float, float]]:
    """(lng, lat) to plane coordinates with y growing downwards (north up), longitude shrunk by the cosine
    of the mean latitude so a degree east and a degree north cover about the same ground."""
    mean_lat = sum(lat for _, lat in points) / len(points)
    shrink = math.cos(math.radians(mean_lat))
    return [(lng * shrink, -lat) for lng, lat in points]
