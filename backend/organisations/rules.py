"""Pure rules of an organisation's booking policy (no Django): when its rides may be picked up.

`allowed_hours` is a list of slots `{"weekdays": [1..7], "from": "HH:MM", "to": "HH:MM"}` (ISO weekdays,
Monday 1) in the co-op's local time. A pickup is allowed when its local weekday and time fall in one slot,
`from` inclusive and `to` exclusive; a slot whose `to` is not after its `from` runs past midnight into the
next day (22:00-06:00 on Friday covers Friday night and early Saturday). No slots means any time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def allowed_hours_problems(slots: object) -> list[str]:
    """What is wrong with an `allowed_hours` value, as messages naming the slot; empty when it is valid."""
    if not isinstance(slots, list):
        return ["must be a list of {weekdays, from, to} slots"]
    problems: list[str] = []
    for index, slot in enumerate(slots):
        where = f"slot {index}"
        if not isinstance(slot, Mapping) or set(slot) != {"weekdays", "from", "to"}:
            problems.append(f"{where}: must have exactly weekdays, from and to")
            continue
        days = slot["weekdays"]
        if (
            not isinstance(days, list)
            or not days
            or any(isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7 for day in days)
            or len(set(days)) != len(days)
        ):
            problems.append(f"{where}: weekdays must be distinct ISO weekdays, 1 (Monday) to 7 (Sunday)")
        for name in ("from", "to"):
            if not isinstance(slot[name], str) or not _CLOCK.match(slot[name]):
                problems.append(f'{where}: {name} must be a time "HH:MM"')
    return problems


def pickup_time_allowed(slots: Sequence[Mapping[str, object]], local_pickup: datetime) -> bool:
    """Whether a pickup at `local_pickup` (a local wall-clock time) falls in one of the slots."""
    if not slots:
        return True
    moment = local_pickup.time().replace(second=0, microsecond=0)
    for slot in slots:
        start, end = _clock(str(slot["from"])), _clock(str(slot["to"]))
        days = set(slot["weekdays"])  # type: ignore[arg-type]
        if start < end:
            if local_pickup.isoweekday() in days and start <= moment < end:
                return True
        else:
            # Overnight: the slot's evening on its own day, its morning on the day after.
            if local_pickup.isoweekday() in days and moment >= start:
                return True
            if (local_pickup - timedelta(days=1)).isoweekday() in days and moment < end:
                return True
    return False
