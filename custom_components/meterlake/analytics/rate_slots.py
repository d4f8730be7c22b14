"""Rate lists for automations: the slots of a unit-rate table, and the cheapest among them.

A slot is one `step` (30 minutes for supplier tariffs) on a grid aligned on the Unix epoch
(UTC); with whole-hour UTC offsets (the UK) local midnights lie on it. Its value is the unit
rate that applies at its start, by the rules of analytics.tariffs (agreements, latest
valid_from wins, Economy 7 day/night registers through the NightWindow). Slots no rate covers
(Agile's tomorrow before it is published, a gap) are left out, never guessed. Where a tariff
lists rates for several payment methods, the direct-debit ones apply, as for cost.

Every tariff is listed in half-hours, a fixed one too (48 equal slots a day): automations,
ApexCharts cards and the cheapest-window search then treat Agile, Go, Economy 7 and fixed
tariffs alike. A local day has 46 half-hours on the spring DST day and 50 on the autumn one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
import math
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .intervals import aware, ns_of, utc_index, utc_ns
from .tariffs import NightWindow, join_rates

SLOT: Final = timedelta(minutes=30)
# Two local days of half-hours, the longer DST day included (50 + 48), with room to spare.
MAX_LISTED_SLOTS: Final = 100
# Rate rows in 24 hours from which a tariff counts as changing every half-hour (Agile: 48;
# Go, Flux, Economy 7, fixed: 1 to 6).
DYNAMIC_ROWS_PER_DAY: Final = 40


@dataclass(frozen=True, slots=True)
class RateSlot:
    """One slot [start, end) at `value` (incl. VAT, the meter's currency per unit)."""

    start: datetime
    end: datetime
    value: float

    def as_dict(self) -> dict[str, Any]:
        """What an attribute or an action response carries: ISO 8601 times, the value."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "value": self.value}


@dataclass(frozen=True, slots=True)
class DayRates:
    """Today's and tomorrow's published slots (local days) and whether tomorrow is out."""

    slots: tuple[RateSlot, ...]
    tomorrow_complete: bool
    # When the list next changes by itself (the next local midnight).
    next_midnight: datetime


@dataclass(frozen=True, slots=True)
class Cheapest:
    """The chosen slots (time order), their average, and whether the duration was rounded up."""

    slots: tuple[RateSlot, ...]
    average: float
    rounded_up: bool


def local_midnight(day: date, tz: str) -> datetime:
    """The aware instant a local day starts in `tz` (zoneinfo handles DST)."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))


def _step_ns(step: timedelta) -> int:
    step_ns = int(step / timedelta(microseconds=1)) * 1000
    if step_ns <= 0:
        raise ValueError("step must be positive")
    return step_ns


def rate_slots(
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    meter: str,
    start: datetime,
    end: datetime,
    *,
    step: timedelta = SLOT,
    payment_method: str | None = "DIRECT_DEBIT",
    night: NightWindow | None = None,
) -> list[RateSlot]:
    """The slots lying wholly in [start, end) that a rate covers, in time order."""
    step_ns = _step_ns(step)
    lo = ns_of(start, name="start")
    hi = ns_of(end, name="end")
    first = -(-lo // step_ns) * step_ns
    if hi - first < step_ns or rates.empty or agreements.empty:
        return []
    starts = np.arange(first, hi - step_ns + 1, step_ns, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "meter": np.full(len(starts), meter, dtype=object),
            "start": utc_index(starts).array,
            "end": utc_index(starts + step_ns).array,
            "value": np.ones(len(starts)),
        }
    )
    joined = join_rates(frame, rates, agreements, payment_method=payment_method, night=night)
    values = joined.frame["rate"].to_numpy(dtype=np.float64)
    return [
        RateSlot(aware(int(at)), aware(int(at) + step_ns), float(value))
        for at, value in zip(starts.tolist(), values.tolist(), strict=True)
        if not math.isnan(value)
    ]


def day_rates(
    rates: pd.DataFrame,
    agreements: pd.DataFrame,
    meter: str,
    now: datetime,
    tz: str,
    *,
    step: timedelta = SLOT,
    payment_method: str | None = "DIRECT_DEBIT",
    night: NightWindow | None = None,
) -> DayRates:
    """Today's and tomorrow's slots (local days in `tz`), at most MAX_LISTED_SLOTS of them.

    `tomorrow_complete`: every slot of tomorrow up to its last hour has a rate. The GB
    day-ahead day runs from 23:00 to 23:00 UK time, so Agile publishes (around 16:00) the
    rates up to tomorrow 23:00; the last hour of tomorrow follows the next afternoon.
    """
    today = now.astimezone(ZoneInfo(tz)).date()
    start = local_midnight(today, tz)
    tomorrow = local_midnight(today + timedelta(days=1), tz)
    after = local_midnight(today + timedelta(days=2), tz)
    slots = rate_slots(
        rates,
        agreements,
        meter,
        start,
        after,
        step=step,
        payment_method=payment_method,
        night=night,
    )
    # No DST change happens in a day's last hour: this is 23:00 local.
    published_until = after - timedelta(hours=1)
    expected = len(rate_grid(tomorrow, published_until, step))
    published = sum(1 for slot in slots if tomorrow <= slot.start < published_until)
    return DayRates(
        slots=tuple(slots[:MAX_LISTED_SLOTS]),
        tomorrow_complete=expected > 0 and published == expected,
        next_midnight=tomorrow,
    )


def rate_grid(start: datetime, end: datetime, step: timedelta = SLOT) -> list[datetime]:
    """Starts of the grid slots lying wholly in [start, end) (46 on London's spring day)."""
    step_ns = _step_ns(step)
    lo = ns_of(start, name="start")
    hi = ns_of(end, name="end")
    first = -(-lo // step_ns) * step_ns
    return [aware(at) for at in range(first, hi - step_ns + 1, step_ns)]


def changes_every_slot(
    rates: pd.DataFrame, agreements: pd.DataFrame, meter: str, now: datetime
) -> bool:
    """Whether the meter's tariff publishes a rate per half-hour (Agile), from the data.

    True when at least DYNAMIC_ROWS_PER_DAY rate rows of the meter's tariffs overlap the
    24 hours before `now` or the 24 hours after it (Agile has 48 a day; time-of-use and fixed
    tariffs a handful). Both sides: a table may start late in the past day (a short poll
    window) or hold no future beyond tonight (before publication).
    """
    if rates.empty or agreements.empty:
        return False
    tariffs = set(agreements.loc[agreements["meter"] == meter, "tariff"].dropna().tolist())
    mine = rates[rates["tariff"].isin(tariffs)]
    if mine.empty:
        return False
    at = ns_of(now, name="now")
    day = 24 * 3600 * 1_000_000_000
    valid_from = utc_ns(mine["valid_from"], name="valid_from")
    valid_to = utc_ns(mine["valid_to"], name="valid_to")
    open_ended = valid_to == np.iinfo(np.int64).min

    def rows_over(lo: int, hi: int) -> int:
        overlaps = (valid_from < hi) & (open_ended | (valid_to > lo))
        return int(np.unique(valid_from[overlaps]).size)

    return max(rows_over(at - day, at), rows_over(at, at + day)) >= DYNAMIC_ROWS_PER_DAY


def slots_needed(duration: timedelta, step: timedelta = SLOT) -> tuple[int, bool]:
    """Whole slots covering `duration` (rounded up), and whether it was rounded."""
    step_ns = _step_ns(step)
    duration_ns = int(duration / timedelta(microseconds=1)) * 1000
    if duration_ns <= 0:
        raise ValueError("duration must be positive")
    count = -(-duration_ns // step_ns)
    return count, count * step_ns != duration_ns


def _contiguous(slots: Sequence[RateSlot], i: int, k: int) -> bool:
    return all(slots[j].end == slots[j + 1].start for j in range(i, i + k - 1))


def cheapest_block(slots: Sequence[RateSlot], count: int) -> tuple[RateSlot, ...] | None:
    """The `count` consecutive slots (no gap between them) with the lowest sum.

    Each window ending in a run without gaps is summed exactly (math.fsum: no drift of a
    running sum decides between near-equal blocks); on a tie the earliest block. None when no
    run of `count` slots exists.
    """
    if count <= 0:
        raise ValueError("count must be positive")
    best: tuple[float, int] | None = None
    run_start = 0
    for i in range(len(slots)):
        if i > 0 and slots[i - 1].end != slots[i].start:
            run_start = i
        first = i - count + 1
        if first < run_start:
            continue
        total = math.fsum(slot.value for slot in slots[first : i + 1])
        if best is None or total < best[0]:
            best = (total, first)
    if best is None:
        return None
    return tuple(slots[best[1] : best[1] + count])


def cheapest_slots(slots: Sequence[RateSlot], count: int) -> tuple[RateSlot, ...] | None:
    """The `count` cheapest slots, wherever they lie (earlier first on equal value), in time order.

    None when fewer than `count` slots exist.
    """
    if count <= 0:
        raise ValueError("count must be positive")
    if len(slots) < count:
        return None
    order = sorted(range(len(slots)), key=lambda i: (slots[i].value, i))[:count]
    return tuple(slots[i] for i in sorted(order))


def cheapest(
    slots: Sequence[RateSlot],
    duration: timedelta,
    *,
    contiguous: bool = True,
    step: timedelta = SLOT,
) -> Cheapest | None:
    """The cheapest block (or set, not contiguous) of slots lasting at least `duration`."""
    count, rounded = slots_needed(duration, step)
    found = cheapest_block(slots, count) if contiguous else cheapest_slots(slots, count)
    if found is None:
        return None
    average = math.fsum(slot.value for slot in found) / len(found)
    return Cheapest(slots=found, average=average, rounded_up=rounded)


def is_contiguous(slots: Sequence[RateSlot]) -> bool:
    """Whether the slots follow each other without a gap."""
    return _contiguous(slots, 0, len(slots))
