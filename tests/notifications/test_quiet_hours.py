"""Quiet hours as a pure rule: inside or not, and when they end, across midnight and daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from backend.notifications.quiet_hours import quiet_hours_end

NEW_YORK = ZoneInfo("America/New_York")


def _local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def test_overnight_quiet_hours_hold_until_the_morning():
    ends = quiet_hours_end(at=_local(2026, 3, 2, 23, 30), start=time(22), end=time(7), zone=NEW_YORK)
    assert ends == _local(2026, 3, 3, 7, 0).astimezone(UTC)
    # After midnight, the same morning.
    ends = quiet_hours_end(at=_local(2026, 3, 3, 6, 59), start=time(22), end=time(7), zone=NEW_YORK)
    assert ends == _local(2026, 3, 3, 7, 0).astimezone(UTC)


def test_outside_quiet_hours_nothing_is_held_and_the_end_itself_is_outside():
    for moment in (_local(2026, 3, 3, 7, 0), _local(2026, 3, 3, 12, 0), _local(2026, 3, 3, 21, 59)):
        assert quiet_hours_end(at=moment, start=time(22), end=time(7), zone=NEW_YORK) is None
    assert quiet_hours_end(at=_local(2026, 3, 3, 22, 0), start=time(22), end=time(7), zone=NEW_YORK)


def test_quiet_hours_within_one_day():
    nap = {"start": time(13), "end": time(15), "zone": NEW_YORK}
    assert quiet_hours_end(at=_local(2026, 3, 3, 14, 0), **nap) == _local(2026, 3, 3, 15, 0).astimezone(UTC)
    assert quiet_hours_end(at=_local(2026, 3, 3, 15, 30), **nap) is None
    assert quiet_hours_end(at=_local(2026, 3, 3, 12, 30), **nap) is None


def test_the_end_follows_the_clocks_over_a_daylight_saving_change():
    # 8 March 2026: New York springs forward at 02:00; 07:00 that morning is 11:00 UTC, not 12:00.
    ends = quiet_hours_end(at=_local(2026, 3, 7, 23, 0), start=time(22), end=time(7), zone=NEW_YORK)
    assert ends == datetime(2026, 3, 8, 11, 0, tzinfo=UTC)


def test_the_person_s_own_time_zone_decides():
    # 03:00 UTC is 22:00 in New York (quiet) and 04:00 in Lagos (also quiet, overnight), 12:00 in Tokyo.
    moment = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    assert quiet_hours_end(at=moment, start=time(22), end=time(7), zone=NEW_YORK) is not None
    assert quiet_hours_end(at=moment, start=time(22), end=time(7), zone=ZoneInfo("Asia/Tokyo")) is None


@given(
    at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
    start=st.times(),
    end=st.times(),
)
def test_a_held_message_is_released_after_the_moment_and_within_a_day(at, start, end):
    ends = quiet_hours_end(at=at, start=start, end=end, zone=NEW_YORK)
    if ends is None:
        return
    assert at < ends <= at + timedelta(days=1, hours=1)
    # Released at the end, it is not held again.
    assert quiet_hours_end(at=ends, start=start, end=end, zone=NEW_YORK) is None
