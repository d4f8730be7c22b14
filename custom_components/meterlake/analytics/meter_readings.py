"""A meter's readings table as interval rows: convert, clean, weigh, spread (pure).

The steps between the `readings` dataset (schema.READING_COLUMNS) of a meter read from a
counter and the interval table (docs/architecture.md, "Meters from entities"):

1. each reading converts from the unit it was read in to the meter's unit (an entity whose
   unit changed from Wh to kWh reads on without a jump); a reading in a unit that does not
   convert is set aside and counted;
2. of several readings at one moment, a hand reading beats a state, a state beats a
   statistic (the recorder's hourly summary of the same counter);
3. readings.clean_readings makes one never decreasing series (jitter held, wraps and resets
   continued, declared new meters - `new_meter` rows - started at their first reading);
4. readings.spread shares each pair's difference out over the cadence's slots, linearly or
   by a profile (monthly factors learned from the meter's own readings, or heating
   degree-days from daily mean temperatures);
5. the slots in the asked window become interval rows (quality measured or interpolated).

Also here, because the HA layer and the action share them: what makes a state or a typed-in
value a reading (`reading_of`), and how finely live readings are kept (`thin`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
import math
from typing import TYPE_CHECKING, Final

from .readings import Cleaned, Reset, Weights

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

PROFILE_LINEAR: Final = "linear"
PROFILE_MONTHLY: Final = "monthly"
PROFILE_DEGREE_DAYS: Final = "degree_days"
# Of several readings at one time, the highest rank wins.
SOURCE_RANK: Final = {"statistics": 0, "state": 1, "hand": 2}
NOT_A_READING: Final = frozenset({"unknown", "unavailable", "none", ""})
_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CounterSettings:
    """How one meter's readings become intervals (an entity meter's definition, in numbers)."""

    meter: str
    supplier: str
    kind: str
    unit: str
    cadence_minutes: int
    tz: str
    max_gap_ns: int
    tolerance: float
    rollover: float | None = None
    profile: str = PROFILE_LINEAR
    calorific_value: float = 39.5
    volume_correction: float = 1.02264


@dataclass(frozen=True, slots=True)
class Counted:
    """What a meter's readings came to.

    intervals: interval rows starting in the asked window. readings: the readings table with
    `reset` filled in (how cleaning read each reading that did not simply go up). resets: in
    the meter's unit. reading: the last reading (meter's unit) and when; total: the cumulative
    series' last value (the first reading plus all consumption since, across resets).
    set_aside: readings that could not be used, by reason.
    """

    intervals: pd.DataFrame
    readings: pd.DataFrame
    resets: list[Reset] = field(default_factory=list)
    reading: float | None = None
    reading_at: datetime | None = None
    total: float | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)
    set_aside: dict[str, int] = field(default_factory=dict)


def reading_of(value: object) -> float | str:
    """A state or typed-in value as a reading, or the reason it is none.

    Reasons: "unavailable" (unknown, unavailable, empty), "not_numeric" (text, NaN, infinity),
    "negative" (a meter never reads below 0).
    """
    if value is None:
        return "unavailable"
    if isinstance(value, bool):
        return "not_numeric"
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            return "not_numeric"
    else:
        text = str(value).strip()
        if text.lower() in NOT_A_READING:
            return "unavailable"
        try:
            number = float(text)
        except ValueError:
            return "not_numeric"
    if not math.isfinite(number):
        return "not_numeric"
    if number < 0:
        return "negative"
    return number


def thin_bucket_ns(cadence_minutes: int) -> int:
    """How finely live states are kept: a twelfth of a slot (5 minutes of an hour).

    Fine enough that every slot boundary has a reading near it (quality `measured`), coarse
    enough that a counter reporting every few seconds keeps a few hundred readings a day.
    """
    return cadence_minutes * 60 * _NS // 12


def thin(readings: pd.DataFrame, bucket_ns: int) -> pd.DataFrame:
    """The readings with, of the `state` readings in one bucket of time, the last one only.

    Keeping the last reading of each bucket keeps every consumption (a slot's share depends on
    the readings around its boundaries), and keeping each reading that the next one falls
    below keeps every reset whole (the peak before the drop is what was used until then).
    Other sources are kept whole.
    """
    import numpy as np

    if readings.empty:
        return readings
    state = (readings["source"] == "state").to_numpy()
    if state.sum() < 2:
        return readings
    times = readings["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    bucket = times // bucket_ns
    keep = np.ones(len(readings), dtype=bool)
    rows = np.flatnonzero(state)
    order = rows[np.argsort(times[rows], kind="stable")]
    buckets = bucket[order]
    values = readings["reading"].to_numpy(dtype=np.float64)[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (buckets[1:] != buckets[:-1]) | (values[1:] < values[:-1])
    keep[order[~last]] = False
    return readings[keep].reset_index(drop=True)


def count(
    readings: pd.DataFrame,
    settings: CounterSettings,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    temperatures: Mapping[date, float] | None = None,
) -> Counted:
    """Interval rows starting in [start, end) from every reading of a meter (see module doc)."""
    import numpy as np
    import pandas as pd

    from . import compose, readings as rd
    from .intervals import empty_intervals, ns_of
    from .schema import READING_COLUMNS

    set_aside: dict[str, int] = {}
    table = readings.reset_index(drop=True)
    values = pd.to_numeric(table["reading"], errors="coerce").to_numpy(dtype=np.float64)
    converted = np.full(len(table), np.nan)
    units = table["unit"].to_numpy(dtype=object)
    for unit in pd.unique(units):
        rows = units == unit
        if isinstance(unit, str) and compose.convertible(unit, settings.unit):
            converted[rows] = compose.convert(
                values[rows],
                unit,
                settings.unit,
                calorific_value=settings.calorific_value,
                volume_correction=settings.volume_correction,
            )
        else:
            set_aside["unit"] = set_aside.get("unit", 0) + int(rows.sum())
    usable = np.isfinite(converted) & (converted >= 0)
    times = table["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    sources = table["source"].to_numpy(dtype=object)
    marker = (sources == "new_meter") & usable
    counted = ~marker & usable
    # of several at one time the last given wins: order by time, then rank
    rank = np.asarray([SOURCE_RANK.get(s, 1) for s in sources], dtype=np.int64)
    rows = np.flatnonzero(counted)
    rows = rows[np.lexsort((rank[rows], times[rows]))]
    markers = [
        (int(t), float(v))
        for t, v in zip(times[marker].tolist(), converted[marker].tolist(), strict=True)
    ]
    cleaned = rd.clean_readings(
        times[rows],
        converted[rows],
        tolerance=settings.tolerance,
        rollover=settings.rollover,
        new_meter=markers,
    )
    weights = _weights(cleaned, settings, temperatures)
    spread = rd.spread(
        cleaned.times,
        cleaned.cumulative,
        cadence_minutes=settings.cadence_minutes,
        tz=settings.tz,
        max_gap_ns=settings.max_gap_ns,
        weights=weights,
        unknown=cleaned.unknown,
    )
    lo, hi = ns_of(start, name="start"), ns_of(end, name="end")
    slots = compose.window(spread.slots, lo, hi)
    if len(slots):
        intervals = compose.slots_to_frame(
            slots,
            meter=settings.meter,
            supplier=settings.supplier,
            kind=settings.kind,
            unit=settings.unit,
            currency=None,
            ingested_at=now,
            calorific_value=settings.calorific_value,
            volume_correction=settings.volume_correction,
        )
    else:
        intervals = empty_intervals()
    annotated = table.reindex(columns=list(READING_COLUMNS))
    labels = _reset_labels(times, sources, cleaned.resets)
    labels[~(counted | marker)] = None  # a reading set aside was never read
    annotated["reset"] = labels
    last = rows[-1] if len(rows) else None
    return Counted(
        intervals=intervals,
        readings=annotated,
        resets=cleaned.resets,
        reading=None if last is None else float(converted[last]),
        reading_at=None if last is None else pd.Timestamp(int(times[last]), tz="UTC"),
        total=float(cleaned.cumulative[-1]) if len(cleaned.cumulative) else None,
        gaps=spread.gaps,
        set_aside=set_aside,
    )


def _weights(
    cleaned: Cleaned, settings: CounterSettings, temperatures: Mapping[date, float] | None
) -> Weights | None:
    """The profile's weights, None for a linear spread."""
    from . import readings as rd

    if settings.profile == PROFILE_DEGREE_DAYS and temperatures:
        return rd.degree_day_weights(temperatures, tz=settings.tz)
    if settings.profile == PROFILE_MONTHLY and len(cleaned.times) > 1:
        profile = rd.monthly_weights(
            cleaned.times,
            cleaned.cumulative,
            settings.tz,
            max_gap_ns=settings.max_gap_ns,
            unknown=cleaned.unknown,
        )
        return profile.weights(int(cleaned.times[0]), int(cleaned.times[-1]))
    return None


def _reset_labels(
    times: npt.NDArray[np.int64], sources: npt.NDArray[np.object_], resets: list[Reset]
) -> npt.NDArray[np.object_]:
    """Per reading row: the kind of reset cleaning found at its time, None elsewhere.

    A declared new meter labels its own `new_meter` row; the other kinds label the readings
    (not the declarations) at their time.
    """
    import numpy as np

    labels = np.full(len(sources), None, dtype=object)
    if not resets:
        return labels
    marker = sources == "new_meter"
    for is_marker in (False, True):
        kinds = {r.time: r.kind for r in resets if (r.kind == "new_meter") == is_marker}
        if not kinds:
            continue
        moments = np.fromiter(kinds, dtype=np.int64, count=len(kinds))
        found = np.isin(times, moments) & (marker == is_marker)
        labels[found] = [kinds[int(t)] for t in times[found].tolist()]
    return labels
