"""What a trip's pass-through fees depend on, found in the database, and the rider's charge they make.

The fee rules are pure (backend/fares/pricing.py `trip_fees`, `rider_charge`); this module finds the facts
they are evaluated on: which fee zones the pickup, the dropoff and the planned route touch. A fee zone is a
service area by name (`manage.py service_area_load zone.geojson --name "Manhattan south of 96th St"`,
`--inactive` for a zone that only prices, such as an airport or a congestion zone inside the city), so the
same polygons and the same loader serve both. One query per priced trip, and none when the policy's fees
have no zone condition (the default policy has no fees at all).

The route is the planned one (`route_geometry`, from the estimate or planned at request): it is what the
quote was priced on, and the driven trail is not kept as a line. A zone the policy names that no service
area carries applies to no trip, and is logged at WARNING on `dispatch.money.fees` so staff load it: a
missing polygon must never fail a ride.

Nothing here records trip amounts (tolls) yet, so `trip_amount` fees charge nothing until a source for
them exists (docs/fares.md, "Pass-through fees").
"""

from __future__ import annotations

import logging

from django.contrib.gis.geos import LineString, Point
from django.db.models import BooleanField, Case, Value, When

from backend.fares.policy import FarePolicy
from backend.fares.pricing import RiderCharge, TripFeeFacts, rider_charge
from backend.fares.selectors import policy_of
from dispatch.models import FareEstimate, ServiceArea, Trip

logger = logging.getLogger(__name__)


def fee_zone_names(policy: FarePolicy) -> frozenset[str]:
    """The zones the policy's fee conditions name."""
    return frozenset(fee.when.zone.area for fee in policy.fees if fee.when.zone is not None)


def fee_facts(
    *,
    policy: FarePolicy,
    pickup: Point,
    dropoff: Point,
    route: LineString | None,
    wheelchair_accessible: bool,
) -> TripFeeFacts:
    """The facts the policy's fee conditions need for a trip between these places along this route."""
    names = fee_zone_names(policy)
    if not names:
        return TripFeeFacts(wheelchair_accessible=wheelchair_accessible)
    on_route = When(area__intersects=route, then=Value(True)) if route is not None else None
    rows = (
        ServiceArea.objects.filter(name__in=names)
        .annotate(
            at_pickup=_flag(When(area__intersects=pickup, then=Value(True))),
            at_dropoff=_flag(When(area__intersects=dropoff, then=Value(True))),
            on_route=_flag(on_route) if on_route is not None else Value(False),
        )
        .values_list("name", "at_pickup", "at_dropoff", "on_route")
    )
    found: set[str] = set()
    pickup_zones: set[str] = set()
    dropoff_zones: set[str] = set()
    route_zones: set[str] = set()
    for name, at_pickup, at_dropoff, crossed in rows:
        found.add(name)
        if at_pickup:
            pickup_zones.add(name)
        if at_dropoff:
            dropoff_zones.add(name)
        if crossed:
            route_zones.add(name)
    missing = names - found
    if missing:
        logger.warning(
            "fare policy v%s names fee zones no service area carries (their fees apply to no trip): %s",
            policy.version,
            ", ".join(sorted(missing)),
        )
    return TripFeeFacts(
        pickup_zones=frozenset(pickup_zones),
        dropoff_zones=frozenset(dropoff_zones),
        route_zones=frozenset(route_zones),
        wheelchair_accessible=wheelchair_accessible,
    )


def trip_fee_facts(trip: Trip, *, policy: FarePolicy | None = None) -> TripFeeFacts:
    """The fee facts of a trip: its pickup, dropoff, planned route and wheelchair flag."""
    return fee_facts(
        policy=policy or policy_of(trip.policy_version),
        pickup=trip.pickup,
        dropoff=trip.dropoff,
        route=trip.route_geometry,
        wheelchair_accessible=trip.wheelchair_accessible,
    )


def trip_quoted_charge(trip: Trip) -> RiderCharge:
    """What the rider was quoted for this trip: the quoted fare and its fees, under the trip's policy.

    The card hold at request is `pricing.authorization_amount(policy, trip_quoted_charge(trip).total)`."""
    policy = policy_of(trip.policy_version)
    return rider_charge(
        policy, fare_minor=trip.fare_estimate_minor, facts=trip_fee_facts(trip, policy=policy)
    )


def estimate_charge(estimate: FareEstimate) -> RiderCharge:
    """The estimate's fare and its fees, under the estimate's policy version."""
    policy = policy_of(estimate.policy_version)
    facts = fee_facts(
        policy=policy,
        pickup=estimate.pickup,
        dropoff=estimate.dropoff,
        route=estimate.route_geometry,
        wheelchair_accessible=estimate.wheelchair_accessible,
    )
    return rider_charge(policy, fare_minor=estimate.fare_minor, facts=facts)


def _flag(condition: When) -> Case:
    return Case(condition, default=Value(False), output_field=BooleanField())
