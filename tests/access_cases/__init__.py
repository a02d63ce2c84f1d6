"""The registry of object-level access cases, one or more per API route that takes an id.

tests/mobile_api/test_access_matrix.py walks the URL configuration and, for every route under /api/v1/
with a path parameter, requires at least one case here; a route without one fails the suite with its name.

To cover a new route, add a module to this package (e.g. `tests/access_cases/governance.py`) that calls
`register("<url name>", AccessCase(...))` at import time. Every module in the package is imported by
`load_cases()`. An `arrange()` runs inside the test's database and returns an `Arranged`: the user who may
use the route on the object (`owner`), the URL kwargs, and the JSON body to send. The matrix then checks:
anonymous -> 401; a fresh rider and a fresh approved driver (outsiders) -> `outsider_status` (404 by
default, answered exactly as for an id that does not exist); the owner -> `owner_status`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Arranged:
    owner: Any
    kwargs: dict[str, Any]
    body: dict[str, Any] | None = None


@dataclass
class AccessCase:
    arrange: Callable[[], Arranged]
    method: str = "get"
    owner_status: int = 200
    outsider_status: int = 404
    idempotency_key: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    label: str = ""
    # Fixtures the case needs before `arrange()` (e.g. "localstripe" for the card routes).
    fixtures: tuple[str, ...] = ()


ACCESS_CASES: dict[str, list[AccessCase]] = {}
# Routes whose path parameter names no object (a driver's statement for a year is the caller's own by
# construction: `/driver/statements/{year}`), each with why; the matrix leaves them out, and their own tests
# show whose data they answer with.
NOT_OBJECT_ROUTES: dict[str, str] = {}


def register(route_name: str, *cases: AccessCase) -> None:
    ACCESS_CASES.setdefault(route_name, []).extend(cases)


def register_not_an_object(route_name: str, why: str) -> None:
    NOT_OBJECT_ROUTES[route_name] = why


def load_cases() -> dict[str, list[AccessCase]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return ACCESS_CASES
