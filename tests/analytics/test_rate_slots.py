"""Rate lists (analytics.rate_slots): slots of a rate table, day lists, the cheapest window."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import combinations
import math
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pandas as pd
import pytest

from custom_components.meterlake.analytics import rate_slots as rs
from custom_components.meterlake.analytics.schema import RATE_COLUMNS
from custom_components.meterlake.analytics.tariffs import NightWindow

METER = "octopus_electricity_1"
LONDON = "Europe/London"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rates_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    full = [
        {
            "supplier": "octopus",
            "tariff": "E-1R-AGILE-24-10-01-A",
            "register": "standard",
            "valid_to": None,
            "rate_exc_vat": None,
            "currency": "GBP",
            "payment_method": None,
            **row,
        }
        for row in rows
    ]
    frame = pd.DataFrame(full, columns=list(RATE_COLUMNS))
    for column in ("valid_from", "valid_to"):
        frame[column] = pd.to_datetime(pd.Series(frame[column], dtype=object), utc=True)
    return frame


def agreements_frame(tariff: str = "E-1R-AGILE-24-10-01-A") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter": [METER],
            "tariff": [tariff],
            "valid_from": pd.to_datetime([utc(2020, 1, 1)], utc=True),
            "valid_to": pd.to_datetime(pd.Series([None], dtype=object), utc=True),
        }
    )


def half_hourly(start: datetime, end: datetime, value: Any = None) -> pd.DataFrame:
    """One rate row per half-hour of [start, end); value i/100 by default (all distinct)."""
    rows = []
    at = start
    i = 0
    while at < end:
        rows.append(
            {
                "valid_from": at,
                "valid_to": at + rs.SLOT,
                "rate": (i + 1) / 100 if value is None else value,
            }
        )
        at += rs.SLOT
        i += 1
    return rates_frame(rows)


def slot(start: datetime, value: float, minutes: int = 30) -> rs.RateSlot:
    return rs.RateSlot(start, start + timedelta(minutes=minutes), value)


# ----------------------------------------------------------------------- slots of a table


def test_agile_slots_carry_each_half_hour_rate() -> None:
    rates = half_hourly(utc(2026, 11, 20), utc(2026, 11, 20, 2))
    slots = rs.rate_slots(rates, agreements_frame(), METER, utc(2026, 11, 20), utc(2026, 11, 21))
    assert [(s.start, s.end, s.value) for s in slots] == [
        (utc(2026, 11, 20, 0, 0), utc(2026, 11, 20, 0, 30), 0.01),
        (utc(2026, 11, 20, 0, 30), utc(2026, 11, 20, 1, 0), 0.02),
        (utc(2026, 11, 20, 1, 0), utc(2026, 11, 20, 1, 30), 0.03),
        (utc(2026, 11, 20, 1, 30), utc(2026, 11, 20, 2, 0), 0.04),
    ]


def test_a_fixed_rate_is_listed_in_half_hours_of_the_window() -> None:
    rates = rates_frame([{"valid_from": utc(2025, 1, 1), "rate": 0.245}])
    slots = rs.rate_slots(rates, agreements_frame(), METER, utc(2026, 11, 20), utc(2026, 11, 21))
    assert len(slots) == 48
    assert {s.value for s in slots} == {0.245}
    assert slots[0].start == utc(2026, 11, 20)
    assert slots[-1].end == utc(2026, 11, 21)


def test_partial_slots_at_the_window_edges_are_left_out() -> None:
    rates = rates_frame([{"valid_from": utc(2025, 1, 1), "rate": 0.2}])
    slots = rs.rate_slots(
        rates, agreements_frame(), METER, utc(2026, 11, 20, 0, 10), utc(2026, 11, 20, 1, 50)
    )
    assert [s.start for s in slots] == [utc(2026, 11, 20, 0, 30), utc(2026, 11, 20, 1)]


def test_economy_7_slots_follow_the_night_window() -> None:
    rates = rates_frame(
        [
            {"valid_from": utc(2025, 1, 1), "register": "day", "rate": 0.30},
            {"valid_from": utc(2025, 1, 1), "register": "night", "rate": 0.10},
        ]
    )
    night = NightWindow(time(0, 30), time(7, 30), "UTC")
    slots = rs.rate_slots(
        rates, agreements_frame(), METER, utc(2026, 11, 20), utc(2026, 11, 21), night=night
    )
    cheap = [s.start for s in slots if s.value == 0.10]
    assert cheap[0] == utc(2026, 11, 20, 0, 30)
    assert cheap[-1] == utc(2026, 11, 20, 7, 0)
    assert len(cheap) == 14
    assert len(slots) == 48


def test_unpublished_slots_are_not_listed() -> None:
    rates = half_hourly(utc(2026, 11, 20), utc(2026, 11, 20, 23))
    slots = rs.rate_slots(rates, agreements_frame(), METER, utc(2026, 11, 20), utc(2026, 11, 22))
    assert len(slots) == 46
    assert slots[-1].end == utc(2026, 11, 20, 23)


def test_no_table_no_slots() -> None:
    empty = rates_frame([])
    assert rs.rate_slots(empty, agreements_frame(), METER, utc(2026, 1, 1), utc(2026, 1, 2)) == []
    rates = rates_frame([{"valid_from": utc(2025, 1, 1), "rate": 0.2}])
    short = rs.rate_slots(
        rates, agreements_frame(), METER, utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 0, 35)
    )
    assert short == []


def test_slot_as_dict_is_iso_8601() -> None:
    assert slot(utc(2026, 11, 20, 1), 0.25).as_dict() == {
        "start": "2026-11-20T01:00:00+00:00",
        "end": "2026-11-20T01:30:00+00:00",
        "value": 0.25,
    }


def test_a_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="step"):
        rs.rate_grid(utc(2026, 1, 1), utc(2026, 1, 2), timedelta(0))


# ----------------------------------------------------------------------- day lists and DST


@pytest.mark.parametrize(
    ("day", "half_hours"),
    [(datetime(2026, 3, 29), 46), (datetime(2026, 10, 25), 50), (datetime(2026, 11, 20), 48)],
)
def test_a_london_day_has_its_number_of_half_hours(day: datetime, half_hours: int) -> None:
    start = rs.local_midnight(day.date(), LONDON)
    end = rs.local_midnight(day.date() + timedelta(days=1), LONDON)
    assert len(rs.rate_grid(start, end)) == half_hours


def test_day_rates_of_the_spring_dst_day_list_46_then_48_slots() -> None:
    # 29 Mar local: 00:00 GMT to 23:00 UTC (46 half-hours); 30 Mar: 23:00 UTC to 23:00 UTC.
    rates = half_hourly(utc(2026, 3, 28), utc(2026, 3, 30, 23))
    found = rs.day_rates(rates, agreements_frame(), METER, utc(2026, 3, 29, 12), LONDON)
    assert found.slots[0].start == utc(2026, 3, 29, 0)
    assert sum(1 for s in found.slots if s.start < utc(2026, 3, 29, 23)) == 46
    assert sum(1 for s in found.slots if s.start >= utc(2026, 3, 29, 23)) == 48
    assert found.tomorrow_complete
    assert found.next_midnight == utc(2026, 3, 29, 23)


def test_tomorrow_on_the_spring_dst_day_is_out_at_its_local_23_00() -> None:
    # 29 Mar (BST from 01:00 local): its 23:00 local is 22:00 UTC.
    now = utc(2026, 3, 28, 17)
    short = half_hourly(utc(2026, 3, 28), utc(2026, 3, 29, 21, 30))
    assert not rs.day_rates(short, agreements_frame(), METER, now, LONDON).tomorrow_complete
    enough = half_hourly(utc(2026, 3, 28), utc(2026, 3, 29, 22))
    found = rs.day_rates(enough, agreements_frame(), METER, now, LONDON)
    assert found.tomorrow_complete
    assert sum(1 for s in found.slots if s.start >= utc(2026, 3, 29)) == 44


def test_day_rates_of_the_autumn_dst_day_list_50_slots_today() -> None:
    # 25 Oct 2026 local: 24 Oct 23:00 UTC (BST) to 26 Oct 00:00 UTC (GMT).
    rates = half_hourly(utc(2026, 10, 24, 23), utc(2026, 10, 26))
    found = rs.day_rates(rates, agreements_frame(), METER, utc(2026, 10, 25, 15), LONDON)
    assert len(found.slots) == 50
    assert found.slots[0].start == utc(2026, 10, 24, 23)
    assert not found.tomorrow_complete


def test_tomorrow_is_out_once_published_up_to_its_23_00() -> None:
    """Agile publishes around 16:00 up to tomorrow 23:00 UK time (the day-ahead day)."""
    today_only = half_hourly(utc(2026, 11, 19, 23), utc(2026, 11, 20, 23))
    found = rs.day_rates(today_only, agreements_frame(), METER, utc(2026, 11, 20, 15), LONDON)
    assert len(found.slots) == 46
    assert not found.tomorrow_complete
    almost = half_hourly(utc(2026, 11, 19, 23), utc(2026, 11, 21, 22, 30))
    found = rs.day_rates(almost, agreements_frame(), METER, utc(2026, 11, 20, 17), LONDON)
    assert not found.tomorrow_complete
    published = half_hourly(utc(2026, 11, 19, 23), utc(2026, 11, 21, 23))
    found = rs.day_rates(published, agreements_frame(), METER, utc(2026, 11, 20, 17), LONDON)
    assert len(found.slots) == 94
    assert found.slots[-1].end == utc(2026, 11, 21, 23)
    assert found.tomorrow_complete


def test_the_day_list_is_capped() -> None:
    rates = rates_frame([{"valid_from": utc(2025, 1, 1), "rate": 0.2}])
    found = rs.day_rates(
        rates, agreements_frame(), METER, utc(2026, 11, 20, 9), LONDON, step=timedelta(minutes=15)
    )
    assert len(found.slots) == rs.MAX_LISTED_SLOTS
    assert found.tomorrow_complete


# ----------------------------------------------------------------------- Agile or not


def test_agile_changes_every_slot_a_fixed_tariff_does_not() -> None:
    agile = half_hourly(utc(2026, 11, 19), utc(2026, 11, 20, 23))
    assert rs.changes_every_slot(agile, agreements_frame(), METER, utc(2026, 11, 20, 12))
    fixed = rates_frame([{"valid_from": utc(2025, 1, 1), "rate": 0.2}])
    assert not rs.changes_every_slot(fixed, agreements_frame(), METER, utc(2026, 11, 20, 12))
    assert not rs.changes_every_slot(
        agile, agreements_frame("E-1R-OTHER-A"), METER, utc(2026, 11, 20, 12)
    )
    assert not rs.changes_every_slot(
        rates_frame([]), agreements_frame(), METER, utc(2026, 11, 20, 12)
    )


def test_agile_is_recognised_from_either_side_of_now() -> None:
    """A short table: only tonight and tomorrow (a poll window that starts late)."""
    ahead = half_hourly(utc(2026, 11, 20, 17), utc(2026, 11, 21, 23))
    assert rs.changes_every_slot(ahead, agreements_frame(), METER, utc(2026, 11, 20, 17, 10))
    behind = half_hourly(utc(2026, 11, 19, 23), utc(2026, 11, 20, 23))
    assert rs.changes_every_slot(behind, agreements_frame(), METER, utc(2026, 11, 20, 22))


# ----------------------------------------------------------------------- cheapest window


def test_slots_needed_rounds_up_and_says_so() -> None:
    assert rs.slots_needed(timedelta(hours=2)) == (4, False)
    assert rs.slots_needed(timedelta(minutes=70)) == (3, True)
    with pytest.raises(ValueError, match="duration"):
        rs.slots_needed(timedelta(0))


def test_the_cheapest_block_is_contiguous_and_earliest_on_a_tie() -> None:
    t0 = utc(2026, 11, 20)
    values = [5, 1, 1, 5, 1, 1, 5]
    slots = [slot(t0 + i * rs.SLOT, v) for i, v in enumerate(values)]
    found = rs.cheapest(slots, timedelta(hours=1))
    assert found is not None
    assert [s.start for s in found.slots] == [t0 + rs.SLOT, t0 + 2 * rs.SLOT]
    assert found.average == 1
    assert not found.rounded_up


def test_a_block_never_spans_a_gap() -> None:
    t0 = utc(2026, 11, 20)
    slots = [slot(t0, 1.0), slot(t0 + 2 * rs.SLOT, 1.0), slot(t0 + 3 * rs.SLOT, 3.0)]
    found = rs.cheapest_block(slots, 2)
    assert found is not None
    assert [s.value for s in found] == [1.0, 3.0]
    assert rs.cheapest_block(slots[:2], 2) is None


def test_the_cheapest_slots_need_not_touch() -> None:
    t0 = utc(2026, 11, 20)
    values = [3, 1, 4, 1, 5]
    slots = [slot(t0 + i * rs.SLOT, v) for i, v in enumerate(values)]
    found = rs.cheapest(slots, timedelta(minutes=40), contiguous=False)
    assert found is not None
    assert [s.start for s in found.slots] == [t0 + rs.SLOT, t0 + 3 * rs.SLOT]
    assert found.rounded_up
    assert rs.cheapest(slots, timedelta(hours=3), contiguous=False) is None
    with pytest.raises(ValueError, match="count"):
        rs.cheapest_slots(slots, 0)
    with pytest.raises(ValueError, match="count"):
        rs.cheapest_block(slots, 0)


def test_contiguity() -> None:
    t0 = utc(2026, 11, 20)
    assert rs.is_contiguous([slot(t0, 1), slot(t0 + rs.SLOT, 1)])
    assert not rs.is_contiguous([slot(t0, 1), slot(t0 + 2 * rs.SLOT, 1)])
    assert rs.is_contiguous([])


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
values_st = st.lists(
    st.floats(min_value=-0.5, max_value=1.0, allow_nan=False).map(lambda v: round(v, 4)),
    min_size=1,
    max_size=9,
)


def _with_gaps(values: list[float], gaps: list[bool]) -> list[rs.RateSlot]:
    at = utc(2026, 11, 20)
    slots = []
    for value, gap in zip(values, gaps + [False] * len(values), strict=False):
        if gap:
            at += rs.SLOT
        slots.append(slot(at, value))
        at += rs.SLOT
    return slots


@SETTINGS
@given(values=values_st, gaps=st.lists(st.booleans(), max_size=9), count=st.integers(1, 9))
def test_no_contiguous_block_is_cheaper_than_the_one_chosen(
    values: list[float], gaps: list[bool], count: int
) -> None:
    slots = _with_gaps(values, gaps)
    valid = [
        math.fsum(s.value for s in slots[i : i + count])
        for i in range(len(slots) - count + 1)
        if rs.is_contiguous(slots[i : i + count])
    ]
    found = rs.cheapest_block(slots, count)
    if not valid:
        assert found is None
        return
    assert found is not None
    assert len(found) == count
    assert rs.is_contiguous(found)
    assert math.fsum(s.value for s in found) <= min(valid) + 1e-12


@SETTINGS
@given(values=values_st, count=st.integers(1, 9))
def test_no_set_of_slots_is_cheaper_than_the_one_chosen(values: list[float], count: int) -> None:
    slots = _with_gaps(values, [])
    found = rs.cheapest_slots(slots, count)
    if count > len(slots):
        assert found is None
        return
    assert found is not None
    best = min(math.fsum(s.value for s in choice) for choice in combinations(slots, count))
    assert math.fsum(s.value for s in found) <= best + 1e-12
    assert [s.start for s in found] == sorted(s.start for s in found)
    assert len({s.start for s in found}) == count
