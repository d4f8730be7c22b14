"""Spot-price summaries: hand-computed figures, Tibber's fixture days, DST days, properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.meterlake.analytics.prices import (
    PriceSummary,
    covers,
    local_day,
    ordered,
    summarize,
)
from custom_components.meterlake.sources.base import PriceSlot

from .conftest import load_fixture_json

OSLO = "Europe/Oslo"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fixture_slots(name: str) -> list[PriceSlot]:
    """Today's and tomorrow's quarter-hours of a Tibber price fixture."""
    info = load_fixture_json(f"tibber/{name}.json")["data"]["viewer"]["home"]
    info = info["currentSubscription"]["priceInfo"]
    slots = []
    for node in [*info["today"], *info["tomorrow"]]:
        begins = datetime.fromisoformat(node["startsAt"]).astimezone(UTC)
        end = begins + timedelta(minutes=15)
        slots.append(PriceSlot(begins, end, node["total"], node["level"].lower(), "NOK"))
    return slots


def slot(start: str, minutes: int, total: float, level: str | None = None) -> PriceSlot:
    begins = t(start)
    return PriceSlot(begins, begins + timedelta(minutes=minutes), total, level, "NOK")


def test_hand_computed_day_is_time_weighted() -> None:
    # Oslo midnight is 23:00 UTC in winter. A quarter at 1.0, an hour at 2.0, a quarter at 4.0:
    # (1 x 15 + 2 x 60 + 4 x 15) / 90 = 195 / 90, not the plain mean 7 / 3.
    slots = [
        slot("2026-01-14 23:00", 15, 1.0, "cheap"),
        slot("2026-01-14 23:15", 60, 2.0, "normal"),
        slot("2026-01-15 00:15", 15, 4.0, "very_expensive"),
    ]
    summary = summarize(slots, t("2026-01-14 23:20"), OSLO)
    assert summary.today_average == pytest.approx(195 / 90)
    assert replace(summary, today_average=None) == PriceSummary(
        current=2.0,
        current_level="normal",
        current_start=t("2026-01-14 23:15"),
        next=4.0,
        next_level="very_expensive",
        next_start=t("2026-01-15 00:15"),
        today_min=1.0,
        today_max=4.0,
        today_average=None,
        tomorrow_available=False,
        listed=(
            {"start": "2026-01-15T00:00:00+01:00", "price": 1.0, "level": "cheap"},
            {"start": "2026-01-15T00:15:00+01:00", "price": 2.0, "level": "normal"},
            {"start": "2026-01-15T01:15:00+01:00", "price": 4.0, "level": "very_expensive"},
        ),
    )


def test_tibber_fixture_day() -> None:
    # Today 0.50 + 0.01 i (i = 0..95), tomorrow 0.60 + 0.005 i; now is 11:20 in Oslo.
    summary = summarize(fixture_slots("prices"), t("2026-03-10 10:20"), OSLO)
    assert summary.current == pytest.approx(0.95)
    assert summary.current_level == "normal"
    assert summary.current_start == t("2026-03-10 10:15")
    assert summary.next == pytest.approx(0.96) and summary.next_level == "normal"
    assert summary.next_start == t("2026-03-10 10:30")
    assert summary.today_min == pytest.approx(0.5)
    assert summary.today_max == pytest.approx(1.45)
    assert summary.today_average == pytest.approx(0.975)
    assert summary.tomorrow_available is True
    assert len(summary.listed) == 192
    assert summary.listed[0] == {
        "start": "2026-03-10T00:00:00+01:00",
        "price": 0.5,
        "level": "very_cheap",
    }
    assert summary.listed[-1]["start"] == "2026-03-11T23:45:00+01:00"
    assert summary.listed[-1]["price"] == pytest.approx(0.6 + 0.005 * 95)


def test_without_tomorrow() -> None:
    summary = summarize(fixture_slots("prices_no_tomorrow"), t("2026-03-10 22:50"), OSLO)
    assert summary.current == pytest.approx(1.45)  # 23:45 local, the last slot of the day
    assert summary.next is None and summary.next_start is None
    assert summary.tomorrow_available is False
    assert len(summary.listed) == 96


def test_spring_dst_day_has_92_slots() -> None:
    slots = fixture_slots("prices_dst_spring")
    summary = summarize(slots, t("2026-03-29 10:00"), OSLO)
    # 2026-03-29 in Oslo: 23 hours, 0.40 + 0.01 i for i = 0..91.
    assert len(summary.listed) == 92
    assert summary.today_min == pytest.approx(0.4)
    assert summary.today_max == pytest.approx(1.31)
    assert summary.today_average == pytest.approx(0.4 + 0.01 * 45.5)
    assert summary.listed[7]["start"] == "2026-03-29T01:45:00+01:00"
    assert summary.listed[8]["start"] == "2026-03-29T03:00:00+02:00"
    assert summary.tomorrow_available is False
    # The day before: tomorrow (the short day) is complete with 92 slots.
    assert summarize(slots, t("2026-03-28 12:00"), OSLO).tomorrow_available is True


def test_autumn_dst_day_has_100_slots() -> None:
    slots = fixture_slots("prices_dst_autumn")
    summary = summarize(slots, t("2026-10-25 12:00"), OSLO)
    assert summary.today_average == pytest.approx(1.5 - 0.01 * 49.5)
    assert summary.today_max == pytest.approx(1.5) and summary.today_min == pytest.approx(0.51)
    assert summary.tomorrow_available is True
    assert len(summary.listed) == 196
    starts = [entry["start"] for entry in summary.listed[10:14]]
    assert starts == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:45:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:15:00+01:00",
    ]


def test_two_long_days_fit_the_default_list_and_the_cap_applies() -> None:
    start = t("2026-10-24 22:00")  # Oslo midnight starting 2026-10-25
    slots = [
        PriceSlot(start + timedelta(minutes=15 * i), start + timedelta(minutes=15 * (i + 1)), 1.0)
        for i in range(196)
    ]
    assert len(summarize(slots, start, OSLO).listed) == 196
    assert len(summarize(slots, start, OSLO, max_listed=10).listed) == 10


def test_no_slots_and_gaps() -> None:
    empty = summarize([], t("2026-03-10 10:20"), OSLO)
    assert empty == PriceSummary(
        None, None, None, None, None, None, None, None, None, False, listed=()
    )
    # Now falls in a gap: no current price, the next is the first slot after now.
    gap = [slot("2026-03-10 09:00", 15, 1.0), slot("2026-03-10 11:00", 15, 2.0)]
    summary = summarize(gap, t("2026-03-10 10:20"), OSLO)
    assert summary.current is None and summary.next == 2.0
    assert summary.next_start == t("2026-03-10 11:00")


def test_helpers() -> None:
    a, b = slot("2026-03-10 00:00", 15, 1.0), slot("2026-03-10 00:15", 15, 2.0)
    empty = PriceSlot(t("2026-03-10 00:30"), t("2026-03-10 00:30"), 9.0)
    newer = slot("2026-03-10 00:00", 15, 3.0)
    assert ordered([b, a, empty, newer]) == [newer, b]
    assert covers([a, b], t("2026-03-10 00:00"), t("2026-03-10 00:30"))
    assert not covers([a, b], t("2026-03-10 00:00"), t("2026-03-10 00:31"))
    assert not covers([b], t("2026-03-10 00:00"), t("2026-03-10 00:30"))
    assert covers([a, b], t("2026-03-10 00:20"), t("2026-03-10 00:20"))
    assert covers([a, a, b], t("2026-03-10 00:15"), t("2026-03-10 00:30"))
    assert local_day(t("2026-03-29 12:00"), UTC) == (t("2026-03-29 00:00"), t("2026-03-30 00:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        local_day(datetime(2026, 3, 29), UTC)


@st.composite
def day_of_slots(draw: Any) -> list[PriceSlot]:
    """Contiguous slots of 15 to 60 minutes from Oslo midnight, with any price."""
    begins = t("2026-03-28 23:00")
    slots = []
    for _ in range(draw(st.integers(min_value=1, max_value=110))):
        length = timedelta(minutes=draw(st.sampled_from([15, 30, 45, 60])))
        price = draw(st.floats(min_value=-5, max_value=50, allow_nan=False, allow_infinity=False))
        slots.append(PriceSlot(begins, begins + length, price))
        begins += length
    return slots


@given(slots=day_of_slots(), minute=st.integers(min_value=0, max_value=23 * 60 - 1))
@settings(max_examples=80, deadline=None)
def test_average_lies_between_min_and_max(slots: list[PriceSlot], minute: int) -> None:
    now = t("2026-03-28 23:00") + timedelta(minutes=minute)
    summary = summarize(slots, now, OSLO)
    assert summary.today_min is not None and summary.today_max is not None
    assert summary.today_average is not None
    assert summary.today_min <= summary.today_average <= summary.today_max
    assert summary.today_min == min(s.total for s in slots if s.start < t("2026-03-29 22:00"))
