"""The pure half of Rochdale's simulator: a generated city, routing, vehicle motion, demand, metrics and
reports. No Django here: the simulated apps talk to the server only through its REST API and websockets.
"""

from dispatch.simulation.city import Bounds, City, Edge, Road, SpeedClass
from dispatch.simulation.demand import (
    DemandCurve,
    DemandModel,
    DriverBehaviour,
    HotSpot,
    RiderBehaviour,
    RiderPlan,
    SimClock,
    TripDemand,
)
from dispatch.simulation.metrics import LatencySample, LatencySummary, MetricsRecorder, percentile
from dispatch.simulation.motion import Fix, RouteMotion, Vehicle
from dispatch.simulation.report import (
    LoadResultFiles,
    PayRecord,
    SimulationSummary,
    print_report,
    write_load_results,
)
from dispatch.simulation.routing import NoRouteError, Route, Router

__all__ = [
    "Bounds",
    "City",
    "DemandCurve",
    "DemandModel",
    "DriverBehaviour",
    "Edge",
    "Fix",
    "HotSpot",
    "LatencySample",
    "LatencySummary",
    "LoadResultFiles",
    "MetricsRecorder",
    "NoRouteError",
    "PayRecord",
    "RiderBehaviour",
    "RiderPlan",
    "Road",
    "Route",
    "RouteMotion",
    "Router",
    "SimClock",
    "SimulationSummary",
    "SpeedClass",
    "TripDemand",
    "Vehicle",
    "percentile",
    "print_report",
    "write_load_results",
]
