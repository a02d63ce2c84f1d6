"""Simulated driver and rider apps. Each agent holds its own REST session and websocket and does what a
person with the app would do (the coordinator agent is an organisation's own system, with its API key);
the only way they touch the server is the wire contract.

`speedup` compresses simulated motion and human delays (boarding, hesitation, patience): a car advances
`speedup` seconds of driving for each wall second, so a demo trip completes in seconds. What the server
times (offer timeouts, the dispatch search budget) still runs in real seconds.
"""

from dispatch.simulation.agents.context import FINAL_STATUSES, SimContext
from dispatch.simulation.agents.coordinator import CoordinatorAgent
from dispatch.simulation.agents.driver import ENGAGED_STATES, DriverAgent, DriverState
from dispatch.simulation.agents.rider import RiderAgent

__all__ = [
    "ENGAGED_STATES",
    "FINAL_STATUSES",
    "CoordinatorAgent",
    "DriverAgent",
    "DriverState",
    "RiderAgent",
    "SimContext",
]
