"""Eligibility in dispatch: whether a driver may go online and be offered a trip, under the regulator profile.

Two halves with one problem type (`backend.compliance.eligibility.EligibilityProblem`): the documents
(backend/compliance/eligibility.py `document_problems`: every required document of the driver and of the
active vehicle approved and unexpired; a wheelchair-accessible trip also needs the WAV certificate) and the
hours limits (dispatch/services/hours.py `hours_problems`, from the trip records). Documents come first.

Where it is checked (docs/compliance.md, "Eligibility in dispatch"):
- going online (`presence_go_online`): refused with the first problem's code, unless the driver is on a
  trip (they finish it; the offer rounds stop new offers);
- each offer round (`dispatch_round`): only the candidate about to be offered is checked, under the trip's
  row lock, so an expiry or a limit reached during a shift stops offers at the next round and never ends
  a trip under way, and a ranked list costs one check per offer rather than one per candidate;
- `GET /driver/state`: what is missing or expired, and the hours left per limit.

With the profile `none` (nothing required, no limits) nothing is read and every driver is eligible.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from backend.accounts.models import Vehicle
from backend.compliance.eligibility import EligibilityProblem, document_problems
from backend.compliance.selectors import regulator_profile
from backend.errors import PermissionDenied
from dispatch.services.hours import HoursLeft, hours_left, hours_problems_of


def eligibility_checked() -> bool:
    """Whether the profile in force requires anything at all (with `none`, dispatch skips every check)."""
    profile = regulator_profile()
    return bool(profile.documents or profile.hours_limits)


def _active_vehicle(driver_id: uuid.UUID) -> tuple[uuid.UUID | None, bool]:
    row = Vehicle.objects.filter(driver_id=driver_id, is_active=True).values_list(
        "id", "wheelchair_accessible"
    )
    found = row.first()
    return (found[0], bool(found[1])) if found else (None, False)


def driver_eligibility(
    *, driver_id: uuid.UUID, at: datetime, wheelchair_accessible: bool = False
) -> list[EligibilityProblem]:
    """What keeps the driver from working at `at` (for a wheelchair-accessible trip, if asked): their
    documents' problems, then their hours'; empty when nothing does."""
    if not eligibility_checked():
        return []
    vehicle_id, _ = _active_vehicle(driver_id)
    problems = document_problems(
        driver_id=driver_id, vehicle_id=vehicle_id, wheelchair_accessible=wheelchair_accessible, at=at
    )
    return [*problems, *hours_problems_of(hours_left(driver_id=driver_id, at=at))]


def eligibility_refusal(problems: list[EligibilityProblem]) -> PermissionDenied:
    """The refusal for a driver who may not work: the first problem's code, message and details, with
    every problem listed under `details.problems` so the app can show them all at once."""
    first = problems[0]
    return PermissionDenied(
        first.message,
        code=first.code,
        details={**first.details, "problems": [problem_document(problem) for problem in problems]},
    )


def problem_document(problem: EligibilityProblem) -> dict[str, object]:
    return {"code": problem.code, "message": problem.message, "details": dict(problem.details)}


@dataclass(frozen=True)
class DriverEligibility:
    """The driver's standing for `GET /driver/state`. `wheelchair_accessible_problems` are those only a
    wheelchair-accessible trip adds (the WAV certificate), None when the active vehicle is not one."""

    problems: list[EligibilityProblem]
    wheelchair_accessible_problems: list[EligibilityProblem] | None
    hours: list[HoursLeft]

    @property
    def eligible(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        wav = self.wheelchair_accessible_problems
        return {
            "eligible": self.eligible,
            "problems": [problem_document(problem) for problem in self.problems],
            "wheelchair_accessible_problems": None
            if wav is None
            else [problem_document(problem) for problem in wav],
            "hours": [entry.as_dict() for entry in self.hours],
        }


def driver_eligibility_standing(*, driver_id: uuid.UUID, at: datetime) -> DriverEligibility:
    """Every problem keeping the driver from work at `at`, and the hours left per limit (one hours query)."""
    vehicle_id, wheelchair_accessible = _active_vehicle(driver_id)
    if not eligibility_checked():
        return DriverEligibility([], [] if wheelchair_accessible else None, [])
    documents = document_problems(
        driver_id=driver_id, vehicle_id=vehicle_id, wheelchair_accessible=False, at=at
    )
    wav_only = None
    if wheelchair_accessible:
        ordinary = {(problem.code, str(problem.details.get("kind"))) for problem in documents}
        wav_only = [
            problem
            for problem in document_problems(
                driver_id=driver_id, vehicle_id=vehicle_id, wheelchair_accessible=True, at=at
            )
            if (problem.code, str(problem.details.get("kind"))) not in ordinary
        ]
    hours = hours_left(driver_id=driver_id, at=at)
    return DriverEligibility([*documents, *hours_problems_of(hours)], wav_only, hours)
