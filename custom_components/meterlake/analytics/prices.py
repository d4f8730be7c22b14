"""Spot-price summaries (Tibber's 15-minute prices) for the price sensors.

Pure Python on PriceSlot sequences: no pandas, no Home Assistant. "Today" and "tomorrow" are
local calendar days in the home's time zone, so a DST day has 92 or 100 quarter-hour slots and
every figure here is computed over instants (UTC), never over wall-clock positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
import math
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    # Only the type: analytics does not load the sources (or aiohttp) at run time.
    from ..sources.base import PriceSlot


@dataclass(frozen=True, slots=True)
class PriceSummary:
    """What the price sensors show: now, next slot, today's range and the listed slots."""

    current: float | None
    current_level: str | None
    current_start: datetime | None
    next: float | None
    next_level: str | None
    next_start: datetime | None
    today_min: float | None
    today_max: float | None
    today_average: float | None
    tomorrow_available: bool
    listed: tuple[dict[str, Any], ...]


def local_day(now: datetime, zone: tzinfo, offset_days: int = 0) -> tuple[datetime, datetime]:
    """UTC bounds [start, end) of the local calendar day of `now` (+ offset_days) in `zone`.

    Computed from local midnights, so a DST day is 23 or 25 hours long.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    day = now.astimezone(zone).date() + timedelta(days=offset_days)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def ordered(slots: Sequence[PriceSlot]) -> list[PriceSlot]:
    """Slots by start, one per start (the later one in input order wins), empty ones dropped."""
    by_start: dict[datetime, PriceSlot] = {}
    for slot in slots:
        if slot.end > slot.start:
            by_start[slot.start] = slot
    return [by_start[start] for start in sorted(by_start)]


def covers(slots: Sequence[PriceSlot], start: datetime, end: datetime) -> bool:
    """Whether the slots (sorted by start) cover [start, end) without a gap."""
    reach = start
    for slot in slots:
        if reach >= end:
            break
        if slot.end <= reach:
            continue
        if slot.start > reach:
            return False
        reach = slot.end
    return reach >= end


def slot_at(slots: Sequence[PriceSlot], moment: datetime) -> PriceSlot | None:
    """The slot in force at `moment`, if any."""
    for slot in slots:
        if slot.start <= moment < slot.end:
            return slot
    return None


def summarize(
    slots: Sequence[PriceSlot], now: datetime, time_zone: str, *, max_listed: int = 200
) -> PriceSummary:
    """Current and next price, today's min/max/time-weighted average, tomorrow's availability.

    `listed` holds today's then tomorrow's slots ({"start": local ISO time, "price", "level"}),
    at most `max_listed` (the default fits two DST days of 100 slots).
    """
    zone = ZoneInfo(time_zone)
    sorted_slots = ordered(slots)
    current = slot_at(sorted_slots, now)
    after = current.end if current is not None else now
    upcoming = next((s for s in sorted_slots if s.start >= after and s.start > now), None)
    today_start, today_end = local_day(now, zone)
    _, tomorrow_end = local_day(now, zone, 1)
    today = [s for s in sorted_slots if today_start <= s.start < today_end]
    listed = [s for s in sorted_slots if today_start <= s.start < tomorrow_end][:max_listed]
    low, high, average = _day_figures(today, today_end)
    return PriceSummary(
        current=None if current is None else current.total,
        current_level=None if current is None else current.level,
        current_start=None if current is None else current.start,
        next=None if upcoming is None else upcoming.total,
        next_level=None if upcoming is None else upcoming.level,
        next_start=None if upcoming is None else upcoming.start,
        today_min=low,
        today_max=high,
        today_average=average,
        tomorrow_available=covers(sorted_slots, today_end, tomorrow_end),
        listed=tuple(
            {"start": s.start.astimezone(zone).isoformat(), "price": s.total, "level": s.level}
            for s in listed
        ),
    )


def _day_figures(
    today: Sequence[PriceSlot], day_end: datetime
) -> tuple[float | None, float | None, float | None]:
    """Min, max and time-weighted average of the day's slots (a slot counts up to day_end).

    Weighted by duration because slots need not be equal (an hourly price among quarter-hours).
    The average is clamped into [min, max]: rounding must not push it outside the range it
    mathematically lies in.
    """
    if not today:
        return None, None, None
    prices = [s.total for s in today]
    weights = [(min(s.end, day_end) - s.start).total_seconds() for s in today]
    average = math.fsum(p * w for p, w in zip(prices, weights, strict=True)) / math.fsum(weights)
    low, high = min(prices), max(prices)
    return low, high, min(max(average, low), high)
