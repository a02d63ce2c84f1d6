"""In-memory spatial index of online drivers: exact k-nearest within a radius, cheap updates.

Structure (an adaptive multi-resolution grid):

* A hashed **base grid** of square lat/lng cells 1/512 degree on a side (about 217 m north-south, 165 m
  east-west in New York). Only cells holding drivers exist (a dict keyed by cell number), so memory
  follows the drivers, not the map.
* A base cell holding more than ``_LEAF_CAPACITY`` drivers **splits into a quadtree** (four children,
  recursively), and a subtree whose population drops to ``_MERGE_AT_OR_BELOW`` collapses back into one
  leaf. Hot spots (airport rank, stadium exit) therefore get cells a few metres wide while ordinary
  streets keep base cells, and no leaf scan grows with the crowd.
* A **coarse grid** (8 x 8 base cells) lists its occupied base cells, so a query in a sparse area skips
  empty country in coarse steps instead of probing thousands of empty base cells.
* A leaf keeps its drivers' ids in a list and their unit vectors (plus the lat/lng given) in one flat
  float array; every driver has one placement record (leaf, slot) that is updated in place. A scan
  reads a few contiguous cache lines, and the common update (a few metres of driving inside the same
  leaf) is one dict lookup and five floats rewritten in place, without allocating. The squared chord
  between unit vectors is monotonic in great-circle distance, so ranking needs no trigonometry per
  driver.
* A move that leaves its leaf climbs only to the smallest cell still holding the new position and
  descends from there, so churn in a deep hot-spot quadtree stays local.

``nearest`` is a **best-first search** on a heap keyed by an exact lower bound of the squared chord:

1. rings of base cells around the query's cell, a ring being opened only once the distance to its inner
   edge can still beat the current k-th best; each cell of the ring gets a bound from its row and column
   offset and the query's place in its own cell (no cell is touched to compute it), and only cells whose
   bound can still win are looked up and queued;
2. beyond ``_FINE_RINGS`` rings, rings of coarse cells, whose occupied base cells are queued by bound;
3. quadtree nodes are opened only when their box can still beat the k-th best.

The search stops when the next bound exceeds the k-th best distance (or the radius), so the answer is
exact: the true k nearest by great-circle distance, ties broken by driver id.

Bounds use the haversine identity ``hav(d) = hav(dlat) + cos(lat1) cos(lat2) hav(dlng)`` with the
smallest latitude gap, the smallest longitude gap and the smallest cosine that can occur (over a box,
or over the radius's band of latitudes for ring bounds), and ``sin(x) >= x - x**3 / 6``; a relative and
an absolute slack keep them lower bounds despite float rounding. Longitude gaps wrap, so the
antimeridian is no special case. When the rings needed to cover the radius would outnumber the occupied
coarse cells (a huge radius) or the circle reaches a pole (where longitude cells shrink to nothing), the
search seeds the heap with every occupied coarse cell instead: slower, still exact.

The index is not thread-safe: the region's one dispatch worker owns it (dispatch/worker.py).
"""

from __future__ import annotations

import math
import numbers
from array import array
from decimal import Decimal
from heapq import heappop, heappush
from itertools import count

from dispatch.matching.geo import EARTH_RADIUS_M, coerce_lat_lng, metres_to_chord_sq

_BASE_CELLS_PER_DEGREE = 512
_BASE_CELL_DEG = 1.0 / _BASE_CELLS_PER_DEGREE
_COLUMNS = 360 * _BASE_CELLS_PER_DEGREE
_ROWS = 180 * _BASE_CELLS_PER_DEGREE
_COARSE = 8  # base cells per coarse cell side
_COARSE_COLUMNS = _COLUMNS // _COARSE
_COARSE_ROWS = _ROWS // _COARSE
_FINE_RINGS = 6
_LEAF_CAPACITY = 32
_MERGE_AT_OR_BELOW = 12
# Below a few millimetres a split cannot separate drivers any more (they share a position); stop there.
_MAX_DEPTH = 16

_DEG = math.pi / 180.0
_TAU = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_BASE_CELL_RAD = _BASE_CELL_DEG * _DEG
_COARSE_CELL_RAD = _BASE_CELL_RAD * _COARSE
_INFINITY = math.inf
_NUMBER_TYPES = (float, int)
# Lower bounds are shrunk by these so float rounding can never lift a bound above a true distance.
_LB_RELATIVE = 1.0 - 1e-12
_LB_ABSOLUTE = 1e-28


class _Cell:
    """A base cell, quadtree node or coarse cell.

    A leaf when ``ids`` is a list; otherwise ``children`` lists the non-leaf's sub-cells (the four
    quadrants of a split cell, or the occupied base cells of a coarse cell).
    """

    __slots__ = (
        "children",
        "coords",
        "cos_min",
        "count",
        "depth",
        "ids",
        "key",
        "lam_hi",
        "lam_lo",
        "lat_hi",
        "lat_lo",
        "lat_mid",
        "lng_hi",
        "lng_lo",
        "lng_mid",
        "parent",
        "phi_hi",
        "phi_lo",
        "refs",
    )

    def __init__(
        self,
        lat_lo: float,
        lat_hi: float,
        lng_lo: float,
        lng_hi: float,
        depth: int,
        parent: _Cell | None,
        key: int,
    ) -> None:
        self.lat_lo = lat_lo
        self.lat_hi = lat_hi
        self.lng_lo = lng_lo
        self.lng_hi = lng_hi
        self.lat_mid = (lat_lo + lat_hi) * 0.5
        self.lng_mid = (lng_lo + lng_hi) * 0.5
        self.phi_lo = lat_lo * _DEG
        self.phi_hi = lat_hi * _DEG
        self.lam_lo = lng_lo * _DEG
        self.lam_hi = lng_hi * _DEG
        self.cos_min = max(0.0, min(math.cos(self.phi_lo), math.cos(self.phi_hi)))
        self.depth = depth
        self.parent = parent
        self.key = key
        self.count = 0
        # A leaf keeps driver ids[i] at slot i, its placement record in refs[i] and, in coords[5i:5i+5],
        # its unit vector x, y, z and the lat, lng it was given. One flat float array keeps a leaf scan
        # within a few cache lines and an in-place update free of allocations.
        self.ids: list[str] | None = []
        self.refs: list[_Placement] = []
        self.coords = array("d")
        self.children: list[_Cell] | None = None


def _cell_lower_bound(cell: _Cell, phi: float, lam: float, cos_phi: float) -> float:
    """Exact lower bound of the squared chord from the query to any point of ``cell``."""
    if phi < cell.phi_lo:
        half = (cell.phi_lo - phi) * 0.5
        sin_lat = half - half * half * half / 6.0
    elif phi > cell.phi_hi:
        half = (phi - cell.phi_hi) * 0.5
        sin_lat = half - half * half * half / 6.0
    else:
        sin_lat = 0.0
    if lam < cell.lam_lo:
        half = cell.lam_lo - lam
        other = lam + _TAU - cell.lam_hi
        half = (other if other < half else half) * 0.5
        sin_lng = half - half * half * half / 6.0
    elif lam > cell.lam_hi:
        half = lam - cell.lam_hi
        other = cell.lam_lo + _TAU - lam
        half = (other if other < half else half) * 0.5
        sin_lng = half - half * half * half / 6.0
    else:
        return 4.0 * sin_lat * sin_lat * _LB_RELATIVE - _LB_ABSOLUTE
    return (
        4.0 * (sin_lat * sin_lat + cos_phi * cell.cos_min * sin_lng * sin_lng) * _LB_RELATIVE - _LB_ABSOLUTE
    )


def _gap_lower_bound(lat_gap: float, lng_gap: float, lng_factor: float) -> float:
    """Lower bound of the squared chord to any point at least ``lat_gap`` away in latitude or at least
    ``lng_gap`` away in longitude (radians), where ``lng_factor`` bounds cos(lat1) cos(lat2) from below."""
    half = lat_gap * 0.5
    if half > _HALF_PI:
        half = _HALF_PI
    by_lat = half - half * half * half / 6.0
    by_lat *= by_lat
    half = lng_gap * 0.5
    if half > _HALF_PI:
        half = _HALF_PI
    by_lng = half - half * half * half / 6.0
    by_lng *= by_lng * lng_factor
    return 4.0 * (by_lng if by_lng < by_lat else by_lat) * _LB_RELATIVE - _LB_ABSOLUTE


def _base_cell_of(lat: float, lng: float) -> tuple[int, int]:
    """Row and column of the base cell holding (lat, lng); ``lng`` in [-180, 180)."""
    row = int((lat + 90.0) * _BASE_CELLS_PER_DEGREE)
    column = int((lng + 180.0) * _BASE_CELLS_PER_DEGREE)
    # The scaled sum can round across an edge; settle on the cell whose stored edges hold the point.
    if lat < row * _BASE_CELL_DEG - 90.0:
        row -= 1
    elif lat >= (row + 1) * _BASE_CELL_DEG - 90.0:
        row += 1
    if lng < column * _BASE_CELL_DEG - 180.0:
        column -= 1
    elif lng >= (column + 1) * _BASE_CELL_DEG - 180.0:
        column += 1
    return min(max(row, 0), _ROWS - 1), min(max(column, 0), _COLUMNS - 1)


class _Placement:
    """Where a driver sits: its leaf and slot. One per driver, updated in place, never reallocated."""

    __slots__ = ("leaf", "slot")

    def __init__(self, leaf: _Cell, slot: int) -> None:
        self.leaf = leaf
        self.slot = slot


def _take_out(leaf: _Cell, slot: int) -> None:
    """Empty ``slot`` of the leaf, moving the last slot into the hole (counts untouched)."""
    ids = leaf.ids
    assert ids is not None
    refs = leaf.refs
    last = len(ids) - 1
    if slot != last:
        ids[slot] = ids[last]
        moved = refs[last]
        refs[slot] = moved
        moved.slot = slot
        leaf.coords[5 * slot : 5 * slot + 5] = leaf.coords[5 * last :]
    ids.pop()
    refs.pop()
    del leaf.coords[5 * last :]


class DriverIndex:
    """Latest position of every online driver, answering exact k-nearest-within-radius queries."""

    def __init__(self) -> None:
        self._base: dict[int, _Cell] = {}
        self._coarse: dict[int, _Cell] = {}
        self._placement: dict[str, _Placement] = {}

    def __len__(self) -> int:
        return len(self._placement)

    def __contains__(self, driver_id: object) -> bool:
        return driver_id in self._placement

    def position(self, driver_id: str) -> tuple[float, float] | None:
        """The last (lat, lng) stored for the driver, or None when the driver is not indexed."""
        placement = self._placement.get(driver_id)
        if placement is None:
            return None
        at = 5 * placement.slot
        coords = placement.leaf.coords
        return coords[at + 3], coords[at + 4]

    # -- updates ---------------------------------------------------------------------------------

    def update(self, driver_id: str, lat: float, lng: float) -> None:
        """Insert the driver at (lat, lng), or move it there."""
        # Inline checks keep the hot path cheap; the helper explains what was wrong.
        if (
            type(driver_id) is not str
            or type(lat) not in _NUMBER_TYPES
            or type(lng) not in _NUMBER_TYPES
            or not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0)
        ):
            if type(driver_id) is not str:
                raise ValueError(f"driver_id must be a string, got {driver_id!r}")
            lat, lng = coerce_lat_lng(lat, lng)
        phi = lat * _DEG
        lam = lng * _DEG
        cos_phi = math.cos(phi)
        x = cos_phi * math.cos(lam)
        y = cos_phi * math.sin(lam)
        z = math.sin(phi)
        cell_lng = -180.0 if lng == 180.0 else lng
        placement = self._placement.get(driver_id)
        if placement is not None:
            leaf = placement.leaf
            if leaf.lat_lo <= lat < leaf.lat_hi and leaf.lng_lo <= cell_lng < leaf.lng_hi:
                # The common case: a few metres of driving inside the same leaf; rewrite in place.
                coords = leaf.coords
                at = 5 * placement.slot
                coords[at] = x
                coords[at + 1] = y
                coords[at + 2] = z
                coords[at + 3] = lat
                coords[at + 4] = lng
                return
            _take_out(leaf, placement.slot)
            # Climb only as far as the smallest cell still holding the new position, so a short move
            # in a deep hot-spot quadtree touches a few nearby nodes, not the whole path to the top.
            leaf.count -= 1
            collapse: _Cell | None = None
            top = leaf
            node = leaf.parent
            while node is not None and not (
                node.lat_lo <= lat < node.lat_hi and node.lng_lo <= cell_lng < node.lng_hi
            ):
                node.count -= 1
                if node.count <= _MERGE_AT_OR_BELOW:
                    collapse = node
                top = node
                node = node.parent
            if node is None:
                if not top.count:
                    self._drop_base_cell(top)
                elif collapse is not None:
                    self._collapse(collapse)
            else:
                if collapse is not None:
                    self._collapse(collapse)
                while node.children is not None:
                    node = node.children[
                        (2 if lat >= node.lat_mid else 0) + (1 if cell_lng >= node.lng_mid else 0)
                    ]
                    node.count += 1
                self._put(node, driver_id, placement, x, y, z, lat, lng)
                return
        leaf = self._leaf_for(lat, cell_lng)
        if placement is None:
            placement = _Placement(leaf, 0)
            self._placement[driver_id] = placement
        cell: _Cell | None = leaf
        while cell is not None:
            cell.count += 1
            cell = cell.parent
        self._put(leaf, driver_id, placement, x, y, z, lat, lng)

    def _put(
        self,
        leaf: _Cell,
        driver_id: str,
        placement: _Placement,
        x: float,
        y: float,
        z: float,
        lat: float,
        lng: float,
    ) -> None:
        """Store the driver in ``leaf`` (whose count already includes it) and split it when overfull."""
        placement.leaf = leaf
        placement.slot = len(leaf.ids)  # type: ignore[arg-type]
        leaf.ids.append(driver_id)  # type: ignore[union-attr]
        leaf.refs.append(placement)
        leaf.coords.extend((x, y, z, lat, lng))
        if leaf.count > _LEAF_CAPACITY and leaf.depth < _MAX_DEPTH:
            self._split(leaf)

    def remove(self, driver_id: str) -> None:
        """Forget the driver; an unknown id is ignored."""
        placement = self._placement.pop(driver_id, None)
        if placement is not None:
            self._detach(placement)

    def _leaf_for(self, lat: float, lng: float) -> _Cell:
        row, column = _base_cell_of(lat, lng)
        key = row * _COLUMNS + column
        cell = self._base.get(key)
        if cell is None:
            return self._new_base_cell(row, column, key)
        while cell.children is not None:
            cell = cell.children[(2 if lat >= cell.lat_mid else 0) + (1 if lng >= cell.lng_mid else 0)]
        return cell

    def _new_base_cell(self, row: int, column: int, key: int) -> _Cell:
        lat_lo = row * _BASE_CELL_DEG - 90.0
        lng_lo = column * _BASE_CELL_DEG - 180.0
        # Edges computed exactly as _base_cell_of does, so neighbours share them to the last bit.
        lat_hi = (row + 1) * _BASE_CELL_DEG - 90.0
        lng_hi = (column + 1) * _BASE_CELL_DEG - 180.0
        cell = _Cell(lat_lo, lat_hi, lng_lo, lng_hi, 0, None, key)
        self._base[key] = cell
        coarse_row = row // _COARSE
        coarse_column = column // _COARSE
        coarse_key = coarse_row * _COARSE_COLUMNS + coarse_column
        coarse = self._coarse.get(coarse_key)
        if coarse is None:
            coarse_lat = coarse_row * _COARSE * _BASE_CELL_DEG - 90.0
            coarse_lng = coarse_column * _COARSE * _BASE_CELL_DEG - 180.0
            coarse_lat_hi = (coarse_row + 1) * _COARSE * _BASE_CELL_DEG - 90.0
            coarse_lng_hi = (coarse_column + 1) * _COARSE * _BASE_CELL_DEG - 180.0
            coarse = _Cell(coarse_lat, coarse_lat_hi, coarse_lng, coarse_lng_hi, -1, None, coarse_key)
            coarse.ids = None
            coarse.children = []
            self._coarse[coarse_key] = coarse
        coarse.children.append(cell)  # type: ignore[union-attr]
        coarse.count += 1
        return cell

    def _drop_base_cell(self, cell: _Cell) -> None:
        del self._base[cell.key]
        row, column = divmod(cell.key, _COLUMNS)
        coarse_key = (row // _COARSE) * _COARSE_COLUMNS + column // _COARSE
        coarse = self._coarse[coarse_key]
        coarse.children.remove(cell)  # type: ignore[union-attr]
        coarse.count -= 1
        if not coarse.count:
            del self._coarse[coarse_key]

    def _detach(self, placement: _Placement) -> None:
        leaf = placement.leaf
        _take_out(leaf, placement.slot)
        collapse: _Cell | None = None
        cell = leaf
        while True:
            cell.count -= 1
            if cell.children is not None and cell.count <= _MERGE_AT_OR_BELOW:
                collapse = cell
            if cell.parent is None:
                break
            cell = cell.parent
        if not cell.count:
            self._drop_base_cell(cell)
        elif collapse is not None:
            self._collapse(collapse)

    def _split(self, leaf: _Cell) -> None:
        depth = leaf.depth + 1
        lat_lo, lat_mid, lat_hi = leaf.lat_lo, leaf.lat_mid, leaf.lat_hi
        lng_lo, lng_mid, lng_hi = leaf.lng_lo, leaf.lng_mid, leaf.lng_hi
        children = [
            _Cell(lat_lo, lat_mid, lng_lo, lng_mid, depth, leaf, leaf.key),
            _Cell(lat_lo, lat_mid, lng_mid, lng_hi, depth, leaf, leaf.key),
            _Cell(lat_mid, lat_hi, lng_lo, lng_mid, depth, leaf, leaf.key),
            _Cell(lat_mid, lat_hi, lng_mid, lng_hi, depth, leaf, leaf.key),
        ]
        coords = leaf.coords
        refs = leaf.refs
        for slot, driver_id in enumerate(leaf.ids):  # type: ignore[arg-type]
            at = 5 * slot
            lat = coords[at + 3]
            lng = coords[at + 4]
            cell_lng = -180.0 if lng == 180.0 else lng
            child = children[(2 if lat >= lat_mid else 0) + (1 if cell_lng >= lng_mid else 0)]
            placement = refs[slot]
            placement.leaf = child
            placement.slot = len(child.ids)  # type: ignore[arg-type]
            child.ids.append(driver_id)  # type: ignore[union-attr]
            child.refs.append(placement)
            child.coords.extend(coords[at : at + 5])
            child.count += 1
        leaf.ids = None
        leaf.refs = []
        leaf.coords = array("d")
        leaf.children = children
        for child in children:
            if child.count > _LEAF_CAPACITY and depth < _MAX_DEPTH:
                self._split(child)

    def _collapse(self, node: _Cell) -> None:
        ids: list[str] = []
        refs: list[_Placement] = []
        coords = array("d")
        stack = [node]
        while stack:
            cell = stack.pop()
            if cell.children is not None:
                stack.extend(cell.children)
            elif cell.ids:
                ids.extend(cell.ids)
                refs.extend(cell.refs)
                coords.extend(cell.coords)
        for slot, placement in enumerate(refs):
            placement.leaf = node
            placement.slot = slot
        node.children = None
        node.ids = ids
        node.refs = refs
        node.coords = coords

    # -- queries ---------------------------------------------------------------------------------

    def nearest(self, lat: float, lng: float, k: int, radius_m: float) -> list[tuple[str, float]]:
        """The ``k`` drivers nearest to (lat, lng) within ``radius_m`` metres, nearest first.

        Distances are great-circle metres; drivers at the same distance come in id order.
        """
        if not (
            type(lat) is float and type(lng) is float and -90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0
        ):
            lat, lng = coerce_lat_lng(lat, lng)
        if type(k) is not int:
            if isinstance(k, bool) or not isinstance(k, numbers.Integral):
                raise ValueError(f"k must be a positive integer, got {k!r}")
            k = int(k)
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if type(radius_m) is not float:
            if isinstance(radius_m, bool) or not isinstance(radius_m, numbers.Real | Decimal):
                raise ValueError(f"radius_m must be a non-negative number, got {radius_m!r}")
            radius_m = float(radius_m)
        if not radius_m >= 0:
            raise ValueError(f"radius_m must be a non-negative number, got {radius_m!r}")
        if not self._placement:
            return []
        if lng == 180.0:
            lng = -180.0
        phi = lat * _DEG
        lam = lng * _DEG
        cos_phi = math.cos(phi)
        qx = cos_phi * math.cos(lam)
        qy = cos_phi * math.sin(lam)
        qz = math.sin(phi)
        # Inclusive with a hair of slack; the final metre test below is the exact radius check.
        threshold = metres_to_chord_sq(radius_m) * (1.0 + 1e-12) + 1e-28
        angular = radius_m / EARTH_RADIUS_M
        if angular > math.pi:
            angular = math.pi

        base = self._base
        row0, column0 = _base_cell_of(lat, lng)
        heap: list[tuple[float, int, object]] = []
        sequence = count()
        lat_gap0 = lng_gap0 = 0.0
        # Latitudes of points within the radius stay below this, which bounds cos(lat) from below.
        far_lat = abs(phi) + angular
        coarse_rings = 0
        if far_lat < _HALF_PI:
            lng_factor = cos_phi * math.cos(far_lat)
            half_width = math.asin(math.sin(angular) / cos_phi)
            rings = int(max(angular, half_width) / _BASE_CELL_RAD) + 2
            wide = False
            if rings > _FINE_RINGS:
                coarse_rings = rings // _COARSE + 2
                side = 2 * coarse_rings + 1
                wide = side >= _COARSE_COLUMNS or side * side > 4 * len(self._coarse) + 16
        else:
            lng_factor = 0.0
            rings = 0
            wide = True
        if wide:
            for cell in self._coarse.values():
                bound = _cell_lower_bound(cell, phi, lam, cos_phi)
                if bound <= threshold:
                    heappush(heap, (bound, next(sequence), cell))
            rings = 0
            edge_gaps = (0.0, 0.0, 0.0, 0.0)
        else:
            # Distances (radians) from the query to the south, north, west and east edges of its base cell.
            edge_gaps = (
                max(0.0, phi - (row0 * _BASE_CELL_DEG - 90.0) * _DEG),
                max(0.0, ((row0 + 1) * _BASE_CELL_DEG - 90.0) * _DEG - phi),
                max(0.0, lam - (column0 * _BASE_CELL_DEG - 180.0) * _DEG),
                max(0.0, ((column0 + 1) * _BASE_CELL_DEG - 180.0) * _DEG - lam),
            )
            lat_gap0 = min(edge_gaps[0], edge_gaps[1])
            lng_gap0 = min(edge_gaps[2], edge_gaps[3])
            cell = base.get(row0 * _COLUMNS + column0)
            if cell is not None:
                heappush(heap, (0.0, next(sequence), cell))
            heappush(heap, (_gap_lower_bound(lat_gap0, lng_gap0, lng_factor), -1, 1))

        terms = ([0.0] * (2 * _FINE_RINGS + 1), [0.0] * (2 * _FINE_RINGS + 1))
        found: list[tuple[float, str]] = []
        while heap:
            bound, _, item = heappop(heap)
            if bound > threshold:
                break
            if type(item) is int:
                if item > 0:
                    self._open_fine_ring(
                        item, row0, column0, edge_gaps, lng_factor, terms, threshold, heap, sequence
                    )
                    if item < rings:
                        # Beyond the fine rings, coarse rings take over; they skip what fine rings covered.
                        bound = _gap_lower_bound(
                            lat_gap0 + item * _BASE_CELL_RAD, lng_gap0 + item * _BASE_CELL_RAD, lng_factor
                        )
                        if bound <= threshold:
                            heappush(heap, (bound, -1, item + 1 if item < _FINE_RINGS else 0))
                else:
                    ring = -item
                    self._open_coarse_ring(ring, row0, column0, phi, lam, cos_phi, threshold, heap, sequence)
                    if ring < coarse_rings:
                        bound = max(
                            self._coarse_ring_lower_bound(ring + 1, row0, column0, phi, lam, lng_factor),
                            _gap_lower_bound(
                                lat_gap0 + _FINE_RINGS * _BASE_CELL_RAD,
                                lng_gap0 + _FINE_RINGS * _BASE_CELL_RAD,
                                lng_factor,
                            ),
                        )
                        if bound <= threshold:
                            heappush(heap, (bound, -1, -(ring + 1)))
                continue
            ids = item.ids  # type: ignore[attr-defined]
            if ids is not None:
                coords = item.coords  # type: ignore[attr-defined]
                for driver_id, x, y, z in zip(ids, coords[0::5], coords[1::5], coords[2::5]):  # noqa: B905
                    dx = x - qx
                    dy = y - qy
                    dz = z - qz
                    squared = dx * dx + dy * dy + dz * dz
                    if squared <= threshold:
                        found.append((squared, driver_id))
                if len(found) >= k:
                    found.sort()
                    del found[k:]
                    threshold = found[-1][0]
                continue
            if item.depth < 0:  # type: ignore[attr-defined]
                self._open_coarse_cell(
                    item,
                    row0,
                    column0,
                    phi,
                    lam,
                    cos_phi,
                    threshold,
                    heap,
                    sequence,
                    skip_fine_block=not wide,
                )
                continue
            for child in item.children:  # type: ignore[attr-defined]
                if child.count:
                    bound = _cell_lower_bound(child, phi, lam, cos_phi)
                    if bound <= threshold:
                        heappush(heap, (bound, next(sequence), child))

        found.sort()
        two_r = 2.0 * EARTH_RADIUS_M
        result = []
        for squared, driver_id in found[:k]:
            metres = two_r * math.asin(min(1.0, math.sqrt(squared) * 0.5))
            if metres <= radius_m:
                result.append((driver_id, metres))
        result.sort(key=_by_distance_then_id)
        return result

    def _open_fine_ring(
        self,
        ring: int,
        row0: int,
        column0: int,
        edge_gaps: tuple[float, float, float, float],
        lng_factor: float,
        terms: tuple[list[float], list[float]],
        threshold: float,
        heap: list[tuple[float, int, object]],
        sequence: count,
    ) -> None:
        """Queue the base cells of ring ``ring`` that can still hold a better driver, nearest first.

        A cell's bound comes from its row and column offsets and the query's place inside its own cell,
        without touching the cell: far corners of a ring are never even looked up.
        """
        # Haversine terms by row and column offset (-ring..ring, stored at offset + _FINE_RINGS); each
        # ring adds its two outermost offsets, the inner ones are still there from earlier rings.
        lat_terms, lng_terms = terms
        south0, north0, west0, east0 = edge_gaps
        reach = (ring - 1) * _BASE_CELL_RAD
        for at, lat_gap, lng_gap in (
            (_FINE_RINGS - ring, south0 + reach, west0 + reach),
            (_FINE_RINGS + ring, north0 + reach, east0 + reach),
        ):
            half = lat_gap * 0.5
            half = half if half < _HALF_PI else _HALF_PI
            sine = half - half * half * half / 6.0
            lat_terms[at] = sine * sine
            half = lng_gap * 0.5
            half = half if half < _HALF_PI else _HALF_PI
            sine = half - half * half * half / 6.0
            lng_terms[at] = sine * sine * lng_factor
        first = _FINE_RINGS - ring
        base = self._base
        span = 2 * ring + 1
        for row_index in range(span):
            row = row0 - ring + row_index
            if not 0 <= row < _ROWS:
                continue
            lat_term = lat_terms[first + row_index]
            edge_row = row_index == 0 or row_index == span - 1
            row_start = row * _COLUMNS
            for column_index in range(span) if edge_row else (0, span - 1):
                bound = 4.0 * (lat_term + lng_terms[first + column_index]) * _LB_RELATIVE - _LB_ABSOLUTE
                if bound <= threshold:
                    cell = base.get(row_start + (column0 - ring + column_index) % _COLUMNS)
                    if cell is not None:
                        heappush(heap, (bound, next(sequence), cell))

    def _open_coarse_ring(
        self,
        ring: int,
        row0: int,
        column0: int,
        phi: float,
        lam: float,
        cos_phi: float,
        threshold: float,
        heap: list[tuple[float, int, object]],
        sequence: count,
    ) -> None:
        """Queue the occupied coarse cells of coarse ring ``ring`` by bound."""
        coarse = self._coarse
        for key in _ring_keys(ring, row0 // _COARSE, column0 // _COARSE, _COARSE_ROWS, _COARSE_COLUMNS):
            group = coarse.get(key)
            if group is not None:
                bound = _cell_lower_bound(group, phi, lam, cos_phi)
                if bound <= threshold:
                    heappush(heap, (bound, next(sequence), group))

    def _open_coarse_cell(
        self,
        group: _Cell,
        row0: int,
        column0: int,
        phi: float,
        lam: float,
        cos_phi: float,
        threshold: float,
        heap: list[tuple[float, int, object]],
        sequence: count,
        skip_fine_block: bool,
    ) -> None:
        """Queue the coarse cell's base cells by bound, except those the fine rings cover."""
        for cell in group.children:  # type: ignore[union-attr]
            if skip_fine_block:
                row, column = divmod(cell.key, _COLUMNS)
                column_offset = (column - column0) % _COLUMNS
                if -_FINE_RINGS <= row - row0 <= _FINE_RINGS and (
                    column_offset <= _FINE_RINGS or column_offset >= _COLUMNS - _FINE_RINGS
                ):
                    continue
            bound = _cell_lower_bound(cell, phi, lam, cos_phi)
            if bound <= threshold:
                heappush(heap, (bound, next(sequence), cell))

    @staticmethod
    def _coarse_ring_lower_bound(
        ring: int, row0: int, column0: int, phi: float, lam: float, lng_factor: float
    ) -> float:
        """Lower bound of the squared chord to anything within the radius in coarse ring ``ring`` or out."""
        coarse_row0 = row0 // _COARSE
        coarse_column0 = column0 // _COARSE
        south_row = coarse_row0 - ring + 1
        north_row = coarse_row0 + ring
        lat_gap = _INFINITY
        if south_row > 0:
            lat_gap = phi - (south_row * _COARSE * _BASE_CELL_DEG - 90.0) * _DEG
        if north_row < _COARSE_ROWS:
            lat_gap = min(lat_gap, (north_row * _COARSE * _BASE_CELL_DEG - 90.0) * _DEG - phi)
        west = ((coarse_column0 - ring + 1) * _COARSE * _BASE_CELL_DEG - 180.0) * _DEG
        east = ((coarse_column0 + ring) * _COARSE * _BASE_CELL_DEG - 180.0) * _DEG
        lng_gap = min(lam - west, east - lam)
        return _gap_lower_bound(max(0.0, lat_gap), max(0.0, lng_gap), lng_factor)


def _ring_keys(ring: int, row0: int, column0: int, rows: int = _ROWS, columns: int = _COLUMNS) -> list[int]:
    """Cell numbers of the square ring ``ring`` cells away from (row0, column0), wrapping in longitude."""
    if ring == 0:
        return [row0 * columns + column0]
    keys = []
    low = column0 - ring
    high = column0 + ring
    if low >= 0 and high < columns:
        span = range(low, high + 1)
        west = low
        east = high
    else:
        span = [column % columns for column in range(low, high + 1)]
        west = low % columns
        east = high % columns
    for row in (row0 - ring, row0 + ring):
        if 0 <= row < rows:
            start = row * columns
            keys.extend([start + column for column in span])
    for row in range(max(0, row0 - ring + 1), min(rows, row0 + ring)):
        start = row * columns
        keys.append(start + west)
        keys.append(start + east)
    return keys


def _by_distance_then_id(item: tuple[str, float]) -> tuple[float, str]:
    return item[1], item[0]
