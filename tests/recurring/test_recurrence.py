"""The recurring ride's rule (dispatch/scheduling/recurrence.py): its dates across daylight-saving changes
in the co-op's time zone, and properties over many rules, zones and ranges. Pure: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.scheduling.recurrence import Occurrence, Rule, RuleError, nth_date, occurrences

NEW_YORK = "America/New_York"
LONDON = "Europe/London"


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _all(rule: Rule, **kwargs) -> list[Occurrence]:
    return list(occurrences(rule, start=date(1990, 1, 1), end=date(2090, 1, 1), **kwargs))


# --- the must-show: dates across a DST change in ROCHDALE_TIME_ZONE ----------------------------------------


def test_a_recurring_rule_produces_the_right_dates_across_a_dst_change_in_new_york():
    """Dialysis Monday, Wednesday and Friday at 07:30 around the spring-forward Sunday (2027-03-14) and
    the fall-back Sunday (2027-11-07): the same local time, one hour apart in UTC either side."""
    rule = Rule(weekdays={1, 3, 5}, pickup_time=time(7, 30), time_zone=NEW_YORK, starts_on=date(2027, 3, 8))
    spring = list(occurrences(rule, start=date(2027, 3, 8), end=date(2027, 3, 19)))
    assert [o.local_date for o in spring] == [date(2027, 3, d) for d in (8, 10, 12, 15, 17, 19)]
    assert [o.at for o in spring] == [
        _utc(2027, 3, 8, 12, 30),  # EST, UTC-5
        _utc(2027, 3, 10, 12, 30),
        _utc(2027, 3, 12, 12, 30),
        _utc(2027, 3, 15, 11, 30),  # EDT, UTC-4, after Sunday the 14th
        _utc(2027, 3, 17, 11, 30),
        _utc(2027, 3, 19, 11, 30),
    ]
    autumn = list(occurrences(rule, start=date(2027, 11, 3), end=date(2027, 11, 10)))
    assert [(o.local_date, o.at) for o in autumn] == [
        (date(2027, 11, 3), _utc(2027, 11, 3, 11, 30)),
        (date(2027, 11, 5), _utc(2027, 11, 5, 11, 30)),
        (date(2027, 11, 8), _utc(2027, 11, 8, 12, 30)),  # back on EST after Sunday the 7th
        (date(2027, 11, 10), _utc(2027, 11, 10, 12, 30)),
    ]
    assert all(o.local_time == time(7, 30) and not o.moved for o in spring + autumn)


def test_on_the_change_days_themselves_a_missing_time_moves_by_the_gap_and_a_repeated_one_is_the_first():
    sundays = Rule(weekdays={7}, pickup_time=time(2, 30), time_zone=NEW_YORK, starts_on=date(2027, 3, 7))
    before, change, after = occurrences(sundays, start=date(2027, 3, 7), end=date(2027, 3, 21))
    # 02:30 does not exist on 2027-03-14 (02:00 EST -> 03:00 EDT): it is 03:30 EDT, 07:30 UTC.
    assert (change.local_date, change.at, change.local_time, change.moved) == (
        date(2027, 3, 14),
        _utc(2027, 3, 14, 7, 30),
        time(3, 30),
        True,
    )
    assert (before.at, before.local_time) == (_utc(2027, 3, 7, 7, 30), time(2, 30))
    assert (after.at, after.local_time) == (_utc(2027, 3, 21, 6, 30), time(2, 30))

    repeated = Rule(weekdays={7}, pickup_time=time(1, 30), time_zone=NEW_YORK, starts_on=date(2027, 11, 7))
    (first,) = occurrences(repeated, start=date(2027, 11, 7), end=date(2027, 11, 7))
    # 01:30 happens twice on 2027-11-07: the first is EDT (05:30 UTC), not EST (06:30 UTC).
    assert (first.at, first.local_time, first.moved) == (_utc(2027, 11, 7, 5, 30), time(1, 30), False)


def test_london_keeps_its_local_time_across_british_summer_time():
    # BST 2027 begins Sunday 28 March at 01:00 GMT and ends Sunday 31 October at 02:00 BST.
    rule = Rule(weekdays={6, 7}, pickup_time=time(1, 15), time_zone=LONDON, starts_on=date(2027, 3, 27))
    assert [
        (o.local_date, o.at, o.local_time)
        for o in occurrences(rule, start=date(2027, 3, 27), end=date(2027, 4, 3))
    ] == [
        (date(2027, 3, 27), _utc(2027, 3, 27, 1, 15), time(1, 15)),  # GMT
        (date(2027, 3, 28), _utc(2027, 3, 28, 1, 15), time(2, 15)),  # 01:15 skipped: 02:15 BST
        (date(2027, 4, 3), _utc(2027, 4, 3, 0, 15), time(1, 15)),  # BST
    ]
    autumn = list(occurrences(rule, start=date(2027, 10, 30), end=date(2027, 11, 6)))
    assert [(o.local_date, o.at) for o in autumn] == [
        (date(2027, 10, 30), _utc(2027, 10, 30, 0, 15)),
        (date(2027, 10, 31), _utc(2027, 10, 31, 0, 15)),  # 01:15 twice: the first, BST
        (date(2027, 11, 6), _utc(2027, 11, 6, 1, 15)),
    ]


# --- ends, counts and skips ---------------------------------------------------------------------------------


def test_count_counts_skipped_dates_and_until_is_inclusive():
    counted = Rule(
        weekdays={1, 3, 5},
        pickup_time=time(9),
        time_zone=NEW_YORK,
        starts_on=date(2027, 3, 3),  # a Wednesday
        count=4,
        skipped={date(2027, 3, 5)},
    )
    assert counted.last_date() == date(2027, 3, 10)
    assert [o.local_date for o in _all(counted)] == [date(2027, 3, 3), date(2027, 3, 8), date(2027, 3, 10)]
    assert [(o.local_date, o.skipped) for o in _all(counted, include_skipped=True)][1] == (
        date(2027, 3, 5),
        True,
    )
    until = Rule(
        weekdays={2},
        pickup_time=time(9),
        time_zone=NEW_YORK,
        starts_on=date(2027, 3, 1),
        until=date(2027, 3, 16),
    )
    assert [o.local_date for o in _all(until)] == [date(2027, 3, 2), date(2027, 3, 9), date(2027, 3, 16)]
    assert until.is_rule_date(date(2027, 3, 9)) and not until.is_rule_date(date(2027, 3, 10))
    assert not until.is_rule_date(date(2027, 3, 23))


def test_a_date_the_zone_skips_has_no_pickup():
    # Samoa crossed the date line: Friday 30 December 2011 never happened in Pacific/Apia.
    fridays = Rule(weekdays={5}, pickup_time=time(10), time_zone="Pacific/Apia", starts_on=date(2011, 12, 23))
    got = [o.local_date for o in occurrences(fridays, start=date(2011, 12, 23), end=date(2012, 1, 6))]
    assert got == [date(2011, 12, 23), date(2012, 1, 6)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"weekdays": set()}, "weekdays"),
        ({"weekdays": {0, 1}}, "weekdays"),
        ({"weekdays": {8}}, "weekdays"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"until": date(2027, 2, 28)}, "until"),
        ({"until": date(2027, 4, 1), "count": 3}, "until"),
        ({"count": 0}, "count"),
        ({"pickup_time": time(7, 30, tzinfo=UTC)}, "pickup_time"),
    ],
)
def test_a_rule_that_cannot_be_is_refused_naming_its_field(kwargs, field):
    base = {"weekdays": {1}, "pickup_time": time(7, 30), "time_zone": NEW_YORK, "starts_on": date(2027, 3, 1)}
    with pytest.raises(RuleError) as refused:
        Rule(**{**base, **kwargs})
    assert refused.value.field == field


# --- properties -------------------------------------------------------------------------------------------

# Zones with every kind of change: none, one hour, half an hour (Lord Howe), a midnight change (Havana), a
# southern summer (Santiago, Chatham), an odd offset (Kathmandu), a skipped day (Apia).
ZONES = [
    NEW_YORK,
    LONDON,
    "UTC",
    "Australia/Lord_Howe",
    "America/Havana",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "Pacific/Apia",
]


@st.composite
def rules(draw) -> Rule:
    starts_on = draw(st.dates(min_value=date(2005, 1, 1), max_value=date(2035, 12, 31)))
    end = draw(st.sampled_from(["none", "until", "count"]))
    until = starts_on + timedelta(days=draw(st.integers(0, 400))) if end == "until" else None
    count = draw(st.integers(1, 120)) if end == "count" else None
    skipped = draw(st.frozensets(st.dates(starts_on, starts_on + timedelta(days=420)), max_size=12))
    return Rule(
        weekdays=draw(st.frozensets(st.integers(1, 7), min_size=1)),
        pickup_time=draw(st.times()),
        time_zone=draw(st.sampled_from(ZONES)),
        starts_on=starts_on,
        until=until,
        count=count,
        skipped=skipped,
    )


def _brute_force_dates(rule: Rule, *, start: date, end: date) -> list[date]:
    """Walk every day from `starts_on`, counting the rule's dates: what `count` means, spelt out."""
    found, day, seen = [], rule.starts_on, 0
    while day <= end:
        if day.isoweekday() in rule.weekdays:
            seen += 1
            if rule.count is not None and seen > rule.count:
                break
            if rule.until is not None and day > rule.until:
                break
            if day >= start and day not in rule.skipped:
                found.append(day)
        day += timedelta(days=1)
    return found


@settings(max_examples=300, deadline=None)
@given(rule=rules(), offset=st.integers(-30, 400), length=st.integers(0, 120))
def test_occurrences_keep_the_rule(rule, offset, length):
    start = rule.starts_on + timedelta(days=offset)
    end = start + timedelta(days=length)
    found = list(occurrences(rule, start=start, end=end))
    zone = ZoneInfo(rule.time_zone)

    instants = [o.at for o in found]
    assert instants == sorted(set(instants)), "sorted, no duplicates"
    assert [o.local_date for o in found] == sorted({o.local_date for o in found})
    # The same dates as walking the calendar day by day (except dates the zone has no such time on).
    expected = _brute_force_dates(rule, start=start, end=end)
    assert {o.local_date for o in found} <= set(expected)
    for o in found:
        assert o.at.tzinfo is UTC
        assert o.local_date.isoweekday() in rule.weekdays
        assert o.local_date not in rule.skipped and start <= o.local_date <= end
        local = o.at.astimezone(zone)
        assert local.date() == o.local_date and local.time().replace(fold=0) == o.local_time
        wall = datetime.combine(o.local_date, rule.pickup_time)
        if o.moved:
            # Only on a gap: the rule's time does not exist that day and the pickup is later, by the gap.
            assert o.local_time > rule.pickup_time
            assert wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall
        else:
            assert o.local_time == rule.pickup_time
            # Of two instants with this wall time (fall-back), the first.
            assert o.at <= wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    missing = set(expected) - {o.local_date for o in found}
    for day in missing:  # a day the zone leaves no pickup time on (a skipped date, a gap over midnight)
        at = datetime.combine(day, rule.pickup_time).replace(tzinfo=zone).astimezone(UTC)
        assert at.astimezone(zone).date() != day


@settings(max_examples=200, deadline=None)
@given(rule=rules())
def test_count_is_respected_skips_included(rule):
    every = _all(rule, include_skipped=True)
    if rule.count is not None and rule.time_zone != "Pacific/Apia":
        assert len(every) == rule.count
    if rule.count is not None:
        assert every[-1].local_date <= rule.last_date()
        assert (
            rule.last_date()
            == _brute_force_dates(
                Rule(**{**rule.__dict__, "skipped": frozenset()}), start=rule.starts_on, end=date(2099, 1, 1)
            )[-1]
        )
    ridden = _all(rule)
    assert [o.local_date for o in ridden] == [o.local_date for o in every if not o.skipped]


@settings(max_examples=150, deadline=None)
@given(rule=rules(), cut=st.integers(0, 200))
def test_a_range_split_in_two_gives_the_same_occurrences(rule, cut):
    start, end = rule.starts_on, rule.starts_on + timedelta(days=200)
    middle = start + timedelta(days=cut)
    whole = list(occurrences(rule, start=start, end=end))
    halves = list(occurrences(rule, start=start, end=middle)) + list(
        occurrences(rule, start=middle + timedelta(days=1), end=end)
    )
    assert whole == halves


@given(
    weekdays=st.frozensets(st.integers(1, 7), min_size=1),
    starts_on=st.dates(date(2000, 1, 1), date(2040, 1, 1)),
    n=st.integers(1, 500),
)
def test_the_nth_date_skips_whole_weeks_correctly(weekdays, starts_on, n):
    day, seen = starts_on, 0
    while True:
        if day.isoweekday() in weekdays:
            seen += 1
            if seen == n:
                break
        day += timedelta(days=1)
    assert nth_date(weekdays=weekdays, starts_on=starts_on, n=n) == day
