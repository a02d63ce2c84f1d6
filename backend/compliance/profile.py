"""The regulator profile: what the city's regulator requires of this co-op, as data.

`ROCHDALE_REGULATOR_PROFILE` names a profile shipped in backend/compliance/profiles/ (`none`, the default:
nothing required; `nyc_tlc`: New York's TLC) or the path of a JSON file a co-op writes for its own city
(docs/compliance.md describes the format). `ROCHDALE_REGULATOR_BASE_NUMBER` overrides the profile's base
licence number (the co-op's own, e.g. a TLC base number `B0XXXX`).

A profile lists the documents a driver and the driver's active vehicle must have approved and unexpired to
work (`only_for: "wheelchair_accessible"` makes one required for wheelchair-accessible trips only), the
hours limits (time counted from the trip records, never from the app's word), the days before an expiry on
which a reminder goes out, and the trip-record report the regulator takes.

Pure: no Django, no I/O beyond reading the profile file; backend/compliance/selectors.py
`regulator_profile()` applies the settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Literal

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

DocumentSubject = Literal["driver", "vehicle"]
HoursCount = Literal["passenger", "engaged"]
REPORT_FORMATS = frozenset({"", "nyc_hvfhv"})


class ProfileError(ValueError):
    """A profile document that is not valid, with every problem keyed by its path."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems.items()))


@dataclass(frozen=True)
class DocumentRequirement:
    """One document the profile requires: its `kind` (a stable code), label, usual issuer, and whether it is
    required only for wheelchair-accessible trips (`only_for`)."""

    kind: str
    label: str
    subject: DocumentSubject
    issuer: str = ""
    only_for: Literal["", "wheelchair_accessible"] = ""


@dataclass(frozen=True)
class HoursLimit:
    """At most `max_hours` of counted time in a window: a rolling one of `window_hours`, or the calendar
    `week` (Monday 00:00 local to Monday 00:00, dispatch/money/weekly.py's week). `counts` is what time
    counts: `passenger` (from pickup to dropoff, as the TLC counts) or `engaged` (from acceptance to
    dropoff)."""

    code: str
    label: str
    max_hours: Decimal
    counts: HoursCount
    window_hours: int | None = None
    window: Literal["", "week"] = ""


@dataclass(frozen=True)
class RegulatorProfile:
    code: str
    name: str
    base_license_number: str
    driver_documents: tuple[DocumentRequirement, ...] = ()
    vehicle_documents: tuple[DocumentRequirement, ...] = ()
    hours_limits: tuple[HoursLimit, ...] = ()
    expiry_reminder_days: tuple[int, ...] = ()
    trip_report: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def documents(self) -> tuple[DocumentRequirement, ...]:
        return self.driver_documents + self.vehicle_documents

    def requirement(self, kind: str) -> DocumentRequirement | None:
        return next((doc for doc in self.documents if doc.kind == kind), None)

    def required_documents(self, *, subject: DocumentSubject, wheelchair_accessible: bool) -> tuple[str, ...]:
        """The kinds a driver (or their active vehicle) must hold to work, for a WAV trip or not."""
        listed = self.driver_documents if subject == "driver" else self.vehicle_documents
        return tuple(
            doc.kind
            for doc in listed
            if not doc.only_for or (doc.only_for == "wheelchair_accessible" and wheelchair_accessible)
        )


def profile_from_document(document: object) -> RegulatorProfile:
    """Validate a profile document (the JSON format of docs/compliance.md) and build the profile."""
    problems: dict[str, str] = {}
    if not isinstance(document, dict):
        raise ProfileError({"": "must be a JSON object"})
    for name in ("code", "name"):
        if not isinstance(document.get(name), str) or not document.get(name):
            problems[name] = "must be a non-empty string"
    base = document.get("base_license_number", "")
    if not isinstance(base, str):
        problems["base_license_number"] = "must be a string"
    documents: dict[str, list[DocumentRequirement]] = {"driver": [], "vehicle": []}
    seen: set[str] = set()
    for subject in ("driver", "vehicle"):
        listed = document.get(f"{subject}_documents", [])
        if not isinstance(listed, list):
            problems[f"{subject}_documents"] = "must be a list"
            continue
        for index, item in enumerate(listed):
            path = f"{subject}_documents[{index}]"
            if not isinstance(item, dict):
                problems[path] = "must be an object"
                continue
            kind, label = item.get("kind"), item.get("label")
            if not isinstance(kind, str) or not kind.isidentifier():
                problems[f"{path}.kind"] = "must be a code (letters, digits, underscores)"
                continue
            if kind in seen:
                problems[f"{path}.kind"] = f"{kind!r} is listed twice"
            seen.add(kind)
            if not isinstance(label, str) or not label:
                problems[f"{path}.label"] = "must be a non-empty string"
            only_for = item.get("only_for", "")
            if only_for not in ("", "wheelchair_accessible"):
                problems[f"{path}.only_for"] = 'must be "wheelchair_accessible" or absent'
            unknown = set(item) - {"kind", "label", "issuer", "only_for"}
            if unknown:
                problems[path] = f"unknown fields: {', '.join(sorted(unknown))}"
            documents[subject].append(
                DocumentRequirement(
                    kind=kind,
                    label=str(label or ""),
                    subject=subject,  # type: ignore[arg-type]
                    issuer=str(item.get("issuer", "")),
                    only_for=only_for if only_for in ("", "wheelchair_accessible") else "",
                )
            )
    limits: list[HoursLimit] = []
    raw_limits = document.get("hours_limits", [])
    if not isinstance(raw_limits, list):
        problems["hours_limits"] = "must be a list"
        raw_limits = []
    for index, item in enumerate(raw_limits):
        path = f"hours_limits[{index}]"
        if not isinstance(item, dict):
            problems[path] = "must be an object"
            continue
        try:
            max_hours = Decimal(str(item.get("max_hours")))
        except InvalidOperation:
            max_hours = Decimal(-1)
        if not max_hours.is_finite() or max_hours <= 0:
            problems[f"{path}.max_hours"] = 'must be a positive decimal string, e.g. "10"'
        window_hours, window = item.get("window_hours"), item.get("window", "")
        if (window_hours is None) == (window == ""):
            problems[path] = 'needs exactly one of "window_hours" (a whole number) and "window": "week"'
        elif window_hours is not None and (
            isinstance(window_hours, bool) or not isinstance(window_hours, int) or window_hours <= 0
        ):
            problems[f"{path}.window_hours"] = "must be a positive whole number of hours"
        elif window not in ("", "week"):
            problems[f"{path}.window"] = 'must be "week"'
        counts = item.get("counts", "passenger")
        if counts not in ("passenger", "engaged"):
            problems[f"{path}.counts"] = 'must be "passenger" or "engaged"'
        code = item.get("code")
        if not isinstance(code, str) or not code.isidentifier():
            problems[f"{path}.code"] = "must be a code"
        limits.append(
            HoursLimit(
                code=str(code),
                label=str(item.get("label", code)),
                max_hours=max_hours,
                counts=counts if counts in ("passenger", "engaged") else "passenger",
                window_hours=window_hours if isinstance(window_hours, int) else None,
                window=window if window in ("", "week") else "",
            )
        )
    reminders = document.get("expiry_reminder_days", [])
    if not isinstance(reminders, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and day > 0 for day in reminders
    ):
        problems["expiry_reminder_days"] = "must be a list of positive whole numbers of days"
        reminders = []
    report = document.get("trip_report", "")
    if report not in REPORT_FORMATS:
        problems["trip_report"] = f"must be one of: {', '.join(sorted(f or '""' for f in REPORT_FORMATS))}"
    if problems:
        raise ProfileError(problems)
    known = {
        "code",
        "name",
        "base_license_number",
        "driver_documents",
        "vehicle_documents",
        "hours_limits",
        "expiry_reminder_days",
        "trip_report",
    }
    return RegulatorProfile(
        code=document["code"],
        name=document["name"],
        base_license_number=base,
        driver_documents=tuple(documents["driver"]),
        vehicle_documents=tuple(documents["vehicle"]),
        hours_limits=tuple(limits),
        expiry_reminder_days=tuple(sorted(set(reminders), reverse=True)),
        trip_report=report,
        extra={key: value for key, value in document.items() if key not in known},
    )


@lru_cache(maxsize=8)
def load_profile(name_or_path: str) -> RegulatorProfile:
    """A shipped profile by name (`none`, `nyc_tlc`) or a profile file by path."""
    candidate = PROFILES_DIR / f"{name_or_path}.json"
    path = candidate if candidate.is_file() else Path(name_or_path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.json")))
        raise ProfileError(
            {"": f"no regulator profile {name_or_path!r} (shipped: {shipped}; or give a path)"}
        )
    return profile_from_document(json.loads(path.read_text()))
