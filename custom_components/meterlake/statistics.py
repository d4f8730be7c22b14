"""Long-term statistics for the Energy dashboard (docs/architecture.md, "Long-term statistics").

Every meter becomes external statistics `meterlake:<meter>_consumption`, `_cost` (in its
currency) and, for meters read by volume, `_energy` in kWh. Rows are hourly on UTC hours.

No state is kept in memory: each import re-anchors on what the recorder already holds. The sum
of the hour before the earliest hour of the frame is read back, the frame's hours are
re-accumulated from it, and every stored hour after them is shifted by the difference a
correction made. Only rows whose `state` or `sum` actually change are sent, in chunks sized so
that one recorder job takes about half a second and the recorder writes states in between.
Export meters are their own statistics with positive sums, whatever sign the source uses.

Unknown values (NaN cost because no rate covered an interval, or an hour where any interval
lacks the quantity) are never turned into numbers: such an hour gets no row of its own, it adds
nothing to the running sum, and an hour already stored keeps the change it had. When the
value becomes known the hour is written and every later sum moves with it.

Long histories go month by month (docs/architecture.md, "Long-term statistics"): the hours are
cut at UTC month starts and each month is compared with, and sent to, the recorder on its own,
carrying the running sum (and the stored sum it replaces) from one month to the next, so the
result is the same left fold as one pass and only one month of stored rows is in memory. The
archive itself is read month by month too (`async_import_history`): a month's intervals are
summed into hours and dropped before the next month is read. Each statistic of a multi-month
import logs its progress (`<statistic>: <hours>/<total> hours imported`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
    get_metadata,
    statistic_during_period,
    statistics_during_period,
    valid_statistic_id,
)
from homeassistant.components.recorder.tasks import RecorderTask, SynchronizeTask
from homeassistant.helpers.recorder import get_instance, session_scope
from homeassistant.util import slugify
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.unit_conversion import EnergyConverter, VolumeConverter

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.components.recorder.core import Recorder
    from homeassistant.core import HomeAssistant
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from .sources.base import MeterInfo

_LOGGER = logging.getLogger(__name__)

SUFFIX_CONSUMPTION: Final = "consumption"
SUFFIX_COST: Final = "cost"
SUFFIX_ENERGY: Final = "energy"
SUFFIXES: Final = (SUFFIX_CONSUMPTION, SUFFIX_COST, SUFFIX_ENERGY)

# One recorder job: the recorder checks and writes row by row (~0.5 ms each on a small host).
# The first chunk is small; later ones are sized from the time the previous one took, aiming
# at half a second so that even a host slowing down threefold stays under ~2 s per job.
DEFAULT_JOB_SECONDS: Final = 0.5
FIRST_CHUNK_ROWS: Final = 500
MIN_CHUNK_ROWS: Final = 100
MAX_CHUNK_ROWS: Final = 20_000

# Progress of a multi-month import: at most one INFO line per statistic this often (and the last).
PROGRESS_SECONDS: Final = 10.0

# Reads one window [start, end) of a meter's stored intervals (None when unreadable).
type MonthReader = Callable[[datetime, datetime], Awaitable[pd.DataFrame | None]]
# Daily standing charges of a frame's local days (sinks.standing_by_day), None without any.
type StandingReader = Callable[[pd.DataFrame], Awaitable[pd.DataFrame | None]]

_OBJECT_ID = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_ALNUM = re.compile(r"[^\W_]")
_LOCKS: HassKey[dict[str, asyncio.Lock]] = HassKey(f"{DOMAIN}_statistics_locks")


@dataclass(frozen=True, slots=True)
class StatisticsImport:
    """What one import sent to the recorder.

    `hours_written` is the largest number of hourly rows sent for one statistic, `first_hour`
    and `last_hour` bound the rows sent (None when nothing changed), `statistic_ids` are the
    statistics this meter has after the import. `refused` names the statistics left alone
    because the recorder holds foreign metadata under their id (statistic id -> reason).
    """

    meter: str
    hours_written: int
    first_hour: datetime | None
    last_hour: datetime | None
    statistic_ids: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)


def statistic_id(meter_key: str, suffix: str) -> str:
    """Return `meterlake:<meter>_<suffix>`, slugified when the key is not a valid object id."""
    if not _ALNUM.search(meter_key) or not _ALNUM.search(suffix):
        raise ValueError(f"No valid statistic id for meter {meter_key!r} and {suffix!r}")
    object_id = f"{meter_key}_{suffix}"
    if not _OBJECT_ID.fullmatch(object_id):
        object_id = slugify(object_id, separator="_")
    candidate = f"{DOMAIN}:{object_id}"
    if not object_id or not _OBJECT_ID.fullmatch(object_id) or not valid_statistic_id(candidate):
        raise ValueError(f"No valid statistic id for meter {meter_key!r} and {suffix!r}")
    return candidate


@dataclass(frozen=True, slots=True)
class _Series:
    """One statistic's hourly values from the interval table (epoch seconds, known mask)."""

    suffix: str
    unit: str
    unit_class: str | None
    hours: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    known: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class _Buckets:
    """What the executor made of the frame: its hour range and one series per statistic."""

    first_hour: datetime
    last_hour: datetime
    series: tuple[_Series, ...]


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the recorder holds for one statistic from the frame's first hour on."""

    exists: bool
    anchor: float
    hours: list[int]
    sums: list[float | None]
    states: list[float | None]
    metadata: StatisticMetaData | None = None
    # The stored sum `anchor` replaced: a later month of one import continues from the sum the
    # month before it wrote (`anchor`) and shifts kept hours by the difference to this one.
    old_anchor: float | None = None


@dataclass(frozen=True, slots=True)
class _Rows:
    """Rows to send for one statistic, kept as flat lists (few GC-tracked objects) until sent."""

    hours: list[int]
    states: list[float]
    sums: list[float]
    # Stored hours that no interval covers any more (exact rebuilds delete them).
    removed: list[int] = field(default_factory=list)
    # Where the fold ended: the new running sum and the stored sum it replaced (next month).
    running: float = 0.0
    old: float = 0.0

    def __len__(self) -> int:
        return len(self.hours)

    def statistic_data(self, begin: int, end: int) -> list[StatisticData]:
        """StatisticData of rows [begin, end) (built in the executor, one chunk at a time)."""
        return [
            StatisticData(start=datetime.fromtimestamp(hour, UTC), state=state, sum=total)
            for hour, state, total in zip(
                self.hours[begin:end], self.states[begin:end], self.sums[begin:end], strict=True
            )
        ]


def _unit_class(unit: str) -> str | None:
    """EnergyConverter or VolumeConverter unit class of `unit`, None for anything else."""
    if unit in EnergyConverter.VALID_UNITS:
        return EnergyConverter.UNIT_CLASS
    if unit in VolumeConverter.VALID_UNITS:
        return VolumeConverter.UNIT_CLASS
    return None


def _recorder_marker(hass: HomeAssistant) -> asyncio.Future[None]:
    """A future done once the recorder has run every task queued before this call.

    The recorder's queue is FIFO and one thread works it, so a SynchronizeTask queued now
    completes after them. (Recorder.async_block_till_done returns at once when the queue is
    empty, which it already is while the recorder is still running the last task taken.)
    """
    future: asyncio.Future[None] = hass.loop.create_future()
    get_instance(hass).queue_task(SynchronizeTask(future))
    return future


async def async_recorder_done(hass: HomeAssistant) -> None:
    """Wait until the recorder has run every task queued so far."""
    await _recorder_marker(hass)


def _lock(hass: HomeAssistant, meter_key: str) -> asyncio.Lock:
    """One lock per meter, so a poll and a rebuild never interleave their reads and writes."""
    locks = hass.data.setdefault(_LOCKS, {})
    if (lock := locks.get(meter_key)) is None:
        lock = locks[meter_key] = asyncio.Lock()
    return lock


def _epoch_seconds(values: Any) -> npt.NDArray[np.int64]:
    """Epoch seconds of a tz-aware datetime column or index (any resolution)."""
    import numpy as np
    import pandas as pd

    index = pd.DatetimeIndex(values)
    if index.tz is None:
        index = index.tz_localize(UTC)
    return index.tz_convert(None).as_unit("s").to_numpy().astype(np.int64)


def _resolve_overlaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per start: around a replacement the meter installed later wins."""
    if not frame["start"].duplicated().any():
        return frame
    if "serial" in frame.columns:
        installed = frame.groupby("serial", dropna=False)["start"].transform("min")
    else:
        installed = frame["start"]
    ranked = frame.assign(_installed=installed, _order=range(len(frame)))
    ranked = ranked.sort_values(["start", "_installed", "_order"], kind="stable")
    return ranked.drop_duplicates("start", keep="last").drop(columns=["_installed", "_order"])


def _standing_by_hour(
    meter_key: str, standing: pd.DataFrame, time_zone: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each local day's charge, placed in the UTC hour holding that day's local midnight."""
    import numpy as np
    import pandas as pd

    rows = standing
    if "meter" in rows.columns:
        rows = rows[rows["meter"] == meter_key]
    rows = rows[rows["charge"].notna()]
    if rows.empty:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    days = pd.to_datetime(pd.Series([_as_date(day) for day in rows["day"]]))
    # An ambiguous midnight is the first one (still summer time): the day starts there.
    summer = np.ones(len(days), dtype=np.bool_)
    midnight = days.dt.tz_localize(time_zone, nonexistent="shift_forward", ambiguous=summer)
    hours = _epoch_seconds(midnight.dt.tz_convert(UTC).dt.floor("h"))
    charges = (
        pd.Series(rows["charge"].to_numpy(dtype=np.float64), index=hours).groupby(level=0).sum()
    )
    return (
        np.asarray(charges.index, dtype=np.int64),
        np.asarray(charges.to_numpy(), dtype=np.float64),
    )


def _as_date(value: Any) -> date:
    """A standing-charge `day` as a date (date, datetime or ISO string)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _bucket(
    meter: MeterInfo,
    intervals: pd.DataFrame,
    standing: pd.DataFrame | None,
    standing_charge_in_cost: bool,
    time_zone: str,
) -> _Buckets | None:
    """Sum the meter's intervals into UTC hours, one series per statistic (executor)."""
    import numpy as np
    import pandas as pd

    from .analytics.intervals import hourly_buckets

    frame = intervals
    if "meter" in frame.columns:
        frame = frame[frame["meter"] == meter.key]
    if frame.empty:
        return None
    frame = _resolve_overlaps(frame)

    def column(name: str) -> pd.Series:
        if name not in frame.columns:
            return pd.Series(np.nan, index=frame.index, dtype="float64")
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        # Export is its own meter with positive sums, whatever sign the source uses.
        return values.abs() if meter.is_export else values

    value, cost, energy = column("value"), column("cost"), column("energy_kwh")
    has_end = "end" in frame.columns
    work = pd.DataFrame(
        {
            "meter": meter.key,
            "start": frame["start"],
            "end": frame["end"] if has_end else frame["start"],
            "value": value,
            "value_known": value.notna().astype("float64"),
            "cost": cost,
            "cost_known": cost.notna().astype("float64"),
            "energy_kwh": energy,
            "energy_kwh_known": energy.notna().astype("float64"),
        }
    )
    hourly = hourly_buckets(
        work,
        columns=("value", "value_known", "cost", "cost_known", "energy_kwh", "energy_kwh_known"),
        cadence_minutes=None if has_end else meter.cadence_minutes,
    )
    hourly = hourly.sort_values("hour")
    hours = _epoch_seconds(hourly["hour"])
    count = hourly["count"].to_numpy(dtype=np.float64)

    def series(name: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        values = hourly[name].to_numpy(dtype=np.float64)
        known = (hourly[f"{name}_known"].to_numpy(dtype=np.float64) >= count) & (count > 0)
        return np.where(known, values, 0.0), known

    out: list[_Series] = []
    values, known = series("value")
    out.append(
        _Series(SUFFIX_CONSUMPTION, meter.unit, _unit_class(meter.unit), hours, values, known)
    )

    currency = meter.currency or _single_currency(frame)
    if currency:
        values, known = series("cost")
        cost_hours = hours
        if standing_charge_in_cost and standing is not None and not standing.empty:
            charge_hours, charges = _standing_by_hour(meter.key, standing, time_zone)
            inside = (charge_hours >= hours[0]) & (charge_hours <= hours[-1])
            charge_hours, charges = charge_hours[inside], charges[inside]
            if len(charge_hours):
                cost_hours = np.union1d(hours, charge_hours)
                at = np.searchsorted(cost_hours, hours)
                merged = np.zeros(len(cost_hours), dtype=np.float64)
                merged_known = np.ones(len(cost_hours), dtype=np.bool_)
                merged[at] = values
                merged_known[at] = known
                merged[np.searchsorted(cost_hours, charge_hours)] += charges
                values, known = merged, merged_known
        out.append(_Series(SUFFIX_COST, currency, None, cost_hours, values, known))

    if meter.unit in VolumeConverter.VALID_UNITS:
        values, known = series("energy_kwh")
        out.append(_Series(SUFFIX_ENERGY, "kWh", EnergyConverter.UNIT_CLASS, hours, values, known))

    return _Buckets(
        first_hour=datetime.fromtimestamp(int(hours[0]), UTC),
        last_hour=datetime.fromtimestamp(int(hours[-1]), UTC),
        series=tuple(out),
    )


def _single_currency(frame: pd.DataFrame) -> str | None:
    """The frame's currency when every row agrees on one, else None."""
    if "currency" not in frame.columns:
        return None
    found = frame["currency"].dropna().unique()
    return str(found[0]) if len(found) == 1 else None


def _read_stored(
    hass: HomeAssistant,
    ids: list[str],
    first_hour: datetime,
    until: datetime | None = None,
    carried: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, _Stored]:
    """Anchor sums and stored rows in [first_hour, until) (recorder executor, never the loop).

    `carried` holds, per statistic, where the previous month of the same import ended (new
    running sum, stored sum it replaced): that is the anchor then, not a read.
    """
    metadata = get_metadata(hass, statistic_ids=set(ids))
    present = [stat_id for stat_id in ids if stat_id in metadata]
    rows: dict[str, list[Any]] = {}
    if present:
        rows = dict(
            statistics_during_period(
                hass, first_hour, until, set(present), "hour", None, {"sum", "state"}
            )
        )
    stored: dict[str, _Stored] = {}
    for stat_id in ids:
        if stat_id not in metadata:
            stored[stat_id] = _Stored(False, 0.0, [], [], [])
            continue
        old_anchor: float | None = None
        if carried is not None and stat_id in carried:
            anchor, old_anchor = carried[stat_id]
        else:
            # Newest stored sum strictly before first_hour: the sum this import continues from.
            before = statistic_during_period(hass, None, first_hour, stat_id, {"change"}, None)
            change = before.get("change")
            anchor = float(change) if change is not None else 0.0
        found = rows.get(stat_id, [])
        stored[stat_id] = _Stored(
            exists=True,
            anchor=anchor,
            hours=[round(row["start"]) for row in found],
            sums=[row.get("sum") for row in found],
            states=[row.get("state") for row in found],
            metadata=metadata[stat_id][1],
            old_anchor=old_anchor,
        )
    return stored


def foreign_reason(stored: StatisticMetaData | None, expected: StatisticMetaData) -> str | None:
    """Why metadata already in the recorder is not ours to continue, None when it is.

    A statistic under a `meterlake:` id written by something else (another unit, another
    currency, a mean) must not have our sums appended to its own: that mixes two series.
    """
    if stored is None:
        return None
    if stored.get("source") != expected["source"]:
        return f"source {stored.get('source')!r}"
    if not stored.get("has_sum"):
        return "it has no sum"
    mean_type = stored.get("mean_type", StatisticMeanType.NONE)
    if mean_type not in (StatisticMeanType.NONE, None) or stored.get("has_mean"):
        return "it has a mean"
    if stored.get("unit_of_measurement") != expected["unit_of_measurement"]:
        return (
            f"unit {stored.get('unit_of_measurement')!r}, "
            f"expected {expected['unit_of_measurement']!r}"
        )
    return None


def _changed_rows(series: _Series, stored: _Stored, *, exact: bool = False) -> _Rows:
    """Rows whose state or sum differ from what is stored, continuing from the stored anchor.

    The frame's known hours are accumulated one by one (the same left fold every run, so an
    unchanged hour reproduces its stored sum bit for bit); a stored hour the frame does not
    know keeps its own change and moves by the difference accumulated so far. With `exact`
    (a rebuild from the whole archive), a stored hour that no interval of the frame covers any
    more is listed in `removed` and adds nothing.
    """
    known_hours = series.hours[series.known].tolist()
    known_values = series.values[series.known].tolist()
    fresh = dict(zip(known_hours, known_values, strict=True))
    covered = set(series.hours.tolist()) if exact else set()
    out = _Rows([], [], [])
    old: dict[int, tuple[float, float | None]] = {}
    for hour, total, state in zip(stored.hours, stored.sums, stored.states, strict=True):
        if exact and hour not in covered:
            out.removed.append(hour)
        elif total is not None:
            old[hour] = (total, state)
    running = stored.anchor
    previous_old = stored.anchor if stored.old_anchor is None else stored.old_anchor
    for hour in sorted(fresh.keys() | old.keys()):
        value = fresh.get(hour)
        kept = old.get(hour)
        if value is not None:
            running += value
            state = value
        else:
            assert kept is not None
            running = kept[0] + (running - previous_old)
            state = kept[1] if kept[1] is not None else 0.0
        if kept is not None:
            previous_old = kept[0]
            if kept[0] == running and kept[1] == state:
                continue
        out.hours.append(hour)
        out.states.append(state)
        out.sums.append(running)
    return replace(out, running=running, old=previous_old)


def _metadata(stat_id: str, name: str, unit: str, unit_class: str | None) -> StatisticMetaData:
    """Recorder metadata of one external statistic (sum only, no mean)."""
    return StatisticMetaData(
        mean_type=StatisticMeanType.NONE,
        has_sum=True,
        name=name,
        source=DOMAIN,
        statistic_id=stat_id,
        unit_class=unit_class,
        unit_of_measurement=unit,
    )


@dataclass(slots=True)
class _Plan:
    """Rows to send per statistic, and the statistics refused for foreign metadata."""

    send: list[tuple[StatisticMetaData, _Rows]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _plan(
    meter: MeterInfo,
    buckets: _Buckets,
    stored: dict[str, _Stored],
    *,
    exact: bool = False,
    only: frozenset[str] | None = None,
) -> _Plan:
    """Rows to send per statistic (executor: a pure-Python pass over every hour).

    `only` limits the plan to those statistic ids (a catch-up repairs what differs).
    """
    plan = _Plan()
    for series in buckets.series:
        stat_id = statistic_id(meter.key, series.suffix)
        if only is not None and stat_id not in only:
            continue
        previous = stored[stat_id]
        if series.suffix != SUFFIX_CONSUMPTION and not series.known.any() and not previous.exists:
            # No cost (or energy) known yet and none stored: do not create an empty statistic.
            continue
        metadata = _metadata(
            stat_id, f"{meter.name} {series.suffix}", series.unit, series.unit_class
        )
        if (reason := foreign_reason(previous.metadata, metadata)) is not None:
            plan.refused[stat_id] = reason
            continue
        plan.send.append((metadata, _changed_rows(series, previous, exact=exact)))
    return plan


async def _async_send(
    hass: HomeAssistant, metadata: StatisticMetaData, rows: _Rows, job_seconds: float
) -> None:
    """Send rows in chunks of one recorder job each, so states are written in between.

    One chunk is queued behind the one being written (the recorder never idles, and a state
    waits for at most two of our jobs). Chunk sizes follow how long the last job took, so a slow
    or busy host gets smaller jobs, never one long one. StatisticData are built in the executor.
    """
    size = FIRST_CHUNK_ROWS
    position = 0
    in_flight: list[tuple[asyncio.Future[None], int, float]] = []
    last_done = time.monotonic()
    while position < len(rows) or in_flight:
        while position < len(rows) and len(in_flight) < 2:
            end = min(len(rows), position + size)
            chunk = await hass.async_add_executor_job(rows.statistic_data, position, end)
            async_add_external_statistics(hass, metadata, chunk)
            in_flight.append((_recorder_marker(hass), end - position, time.monotonic()))
            position = end
        done, sent, queued = in_flight.pop(0)
        await done
        now = time.monotonic()
        # The job ran from when it was queued or the previous one finished, whichever is later.
        elapsed = max(now - max(queued, last_done), 1e-3)
        last_done = now
        target = int(sent * job_seconds / elapsed)
        size = max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, 2 * sent, target))


async def async_import_meter(
    hass: HomeAssistant,
    meter: MeterInfo,
    intervals: pd.DataFrame,
    *,
    standing: pd.DataFrame | None = None,
    standing_charge_in_cost: bool = False,
    time_zone: str = "UTC",
    job_seconds: float = DEFAULT_JOB_SECONDS,
    exact: bool = False,
    reconcile: bool = False,
) -> StatisticsImport:
    """Bring the meter's statistics in line with `intervals` and return what was sent.

    `intervals` holds this meter's rows of the interval table from a whole UTC hour up to the
    newest data; every stored hour after it is shifted so sums stay continuous. With
    `standing_charge_in_cost`, each day of `standing` whose local midnight (`time_zone`) falls
    in the frame's hours adds its charge to the cost of that UTC hour.

    With `exact` (a rebuild from everything stored), stored hours from the frame's first hour
    on that no interval covers any more are deleted, so nothing is cleared first and the
    dashboard never shows a half-built history. With `reconcile` (`intervals` is the whole
    archive), each statistic is first summarised — row count, last hour, change of the sum from
    the frame's first hour on — and only one that differs (a hole, a missing tail, sums
    restarted at 0, never created) is re-imported, with only its changed rows sent.

    The recorder must be processing its queue (Home Assistant started): call this from a
    background task, not from a config entry's first refresh, or it waits until Home Assistant
    has started.
    """
    async with _lock(hass, meter.key):
        buckets = await hass.async_add_executor_job(
            _bucket, meter, intervals, standing, standing_charge_in_cost, time_zone
        )
        if buckets is None:
            return StatisticsImport(meter.key, 0, None, None, ())
        return await _async_import_buckets(
            hass, meter, buckets, job_seconds=job_seconds, exact=exact, reconcile=reconcile
        )


@dataclass(frozen=True, slots=True)
class HistoryImport:
    """What `async_import_history` read (interval rows) and sent (the import)."""

    intervals: int
    result: StatisticsImport


def month_windows(
    months: Sequence[str], start: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """[first, next month's first) of each `YYYY-MM` month, from `start` on (clipped to it)."""
    windows: list[tuple[datetime, datetime]] = []
    for month in sorted(set(months)):
        year, number = (int(part) for part in month.split("-"))
        lo = datetime(year, number, 1, tzinfo=UTC)
        hi = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
        if start is not None:
            if hi <= start:
                continue
            lo = max(lo, start)
        windows.append((lo, hi))
    return windows


async def async_import_history(
    hass: HomeAssistant,
    meter: MeterInfo,
    windows: Sequence[tuple[datetime, datetime]],
    read: MonthReader,
    *,
    standing: StandingReader | None = None,
    standing_charge_in_cost: bool = False,
    time_zone: str = "UTC",
    job_seconds: float = DEFAULT_JOB_SECONDS,
    exact: bool = False,
    reconcile: bool = False,
) -> HistoryImport:
    """async_import_meter over a stored history read one window (a month) at a time.

    Each window's intervals are read, summed into hours (the executor) and dropped before the
    next is read, so memory holds one month of intervals and the hourly sums of the history
    (about 1 MB for 5 years), never the history itself. Standing charges come per window from
    `standing`. The import then goes month by month as async_import_meter does.
    """
    async with _lock(hass, meter.key):
        parts: list[_Buckets] = []
        intervals = 0
        for lo, hi in windows:
            frame = await read(lo, hi)
            if frame is None or frame.empty:
                continue
            intervals += len(frame)
            charges = await standing(frame) if standing is not None else None
            part = await hass.async_add_executor_job(
                _bucket, meter, frame, charges, standing_charge_in_cost, time_zone
            )
            del frame, charges
            if part is not None:
                parts.append(part)
        if not parts:
            return HistoryImport(intervals, StatisticsImport(meter.key, 0, None, None, ()))
        buckets = await hass.async_add_executor_job(_merge_buckets, parts)
        del parts
        result = await _async_import_buckets(
            hass, meter, buckets, job_seconds=job_seconds, exact=exact, reconcile=reconcile
        )
        return HistoryImport(intervals, result)


def _merge_buckets(parts: Sequence[_Buckets]) -> _Buckets:
    """One _Buckets of consecutive, non-overlapping parts (months read one after the other)."""
    import numpy as np

    by_suffix: dict[str, list[_Series]] = {}
    for part in parts:
        for series in part.series:
            by_suffix.setdefault(series.suffix, []).append(series)
    merged = tuple(
        replace(
            found[0],
            hours=np.concatenate([series.hours for series in found]),
            values=np.concatenate([series.values for series in found]),
            known=np.concatenate([series.known for series in found]),
        )
        for found in by_suffix.values()
    )
    return _Buckets(
        first_hour=min(part.first_hour for part in parts),
        last_hour=max(part.last_hour for part in parts),
        series=merged,
    )


def _month_chunks(buckets: _Buckets) -> list[tuple[int, _Buckets]]:
    """The hours cut at UTC month starts: (month start, epoch seconds; that month's buckets).

    Every chunk has every series of `buckets`, possibly without hours, so a statistic's
    stored hours of a month the frame lacks still move with the sums before them.
    """
    import numpy as np

    every = np.unique(np.concatenate([series.hours for series in buckets.series]))
    starts = np.unique(every.astype("datetime64[s]").astype("datetime64[M]"))
    bounds = starts.astype("datetime64[s]").astype(np.int64).tolist()
    chunks: list[tuple[int, _Buckets]] = []
    for index, lo in enumerate(bounds):
        hi = bounds[index + 1] if index + 1 < len(bounds) else None
        cut: list[_Series] = []
        for series in buckets.series:
            a = int(np.searchsorted(series.hours, lo))
            b = len(series.hours) if hi is None else int(np.searchsorted(series.hours, hi))
            cut.append(
                replace(
                    series,
                    hours=series.hours[a:b],
                    values=series.values[a:b],
                    known=series.known[a:b],
                )
            )
        present = [series.hours for series in cut if len(series.hours)]
        chunks.append(
            (
                lo,
                _Buckets(
                    first_hour=datetime.fromtimestamp(min(int(h[0]) for h in present), UTC),
                    last_hour=datetime.fromtimestamp(max(int(h[-1]) for h in present), UTC),
                    series=tuple(cut),
                ),
            )
        )
    return chunks


@dataclass(slots=True)
class _Progress:
    """A statistic's progress through a multi-month import, logged now and then."""

    stat_id: str
    total: int
    done: int = 0
    logged_at: float | None = None

    def advance(self, hours: int, *, sent: bool) -> None:
        """Count a month's known hours; log when rows went out and it is time (or the end)."""
        self.done += hours
        now = time.monotonic()
        finished = self.done >= self.total
        if not sent and not (finished and self.logged_at is not None):
            return
        if finished or self.logged_at is None or now - self.logged_at >= PROGRESS_SECONDS:
            _LOGGER.info("%s: %d/%d hours imported", self.stat_id, self.done, self.total)
            self.logged_at = now


async def _async_import_buckets(
    hass: HomeAssistant,
    meter: MeterInfo,
    buckets: _Buckets,
    *,
    job_seconds: float,
    exact: bool,
    reconcile: bool,
) -> StatisticsImport:
    """Reconcile (optionally), then import `buckets` month by month (the meter's lock held)."""
    ids = [statistic_id(meter.key, series.suffix) for series in buckets.series]
    only: frozenset[str] | None = None
    if reconcile:
        expected = {
            statistic_id(meter.key, series.suffix): _summary_of(series) for series in buckets.series
        }
        held = await get_instance(hass).async_add_executor_job(_stored_summaries, hass, expected)
        only = frozenset(
            stat_id for stat_id, summary in expected.items() if held[stat_id] != summary
        )
        for stat_id in sorted(only):
            _LOGGER.info(
                "Statistic %s differs from the archive (stored %s, archive %s): repairing",
                stat_id,
                held[stat_id],
                expected[stat_id],
            )
        if not only:
            return StatisticsImport(meter.key, 0, None, None, tuple(ids))
    chunks = await hass.async_add_executor_job(_month_chunks, buckets)
    progress: dict[str, _Progress] = {}
    if len(chunks) > 1:
        for series in buckets.series:
            stat_id = statistic_id(meter.key, series.suffix)
            if only is None or stat_id in only:
                progress[stat_id] = _Progress(stat_id, int(series.known.sum()))
    carried: dict[str, tuple[float, float]] = {}
    written: dict[str, int] = {}
    refused: dict[str, str] = {}
    sent_ids: dict[str, None] = {}
    first: datetime | None = None
    last: datetime | None = None
    for index, (_month, chunk) in enumerate(chunks):
        # Windows of stored rows meet end to end: the first starts at the frame's first hour,
        # each next one at its month's start, the last one is open.
        since = chunk.first_hour if index == 0 else datetime.fromtimestamp(_month, UTC)
        until = (
            datetime.fromtimestamp(chunks[index + 1][0], UTC) if index + 1 < len(chunks) else None
        )
        stored = await get_instance(hass).async_add_executor_job(
            _read_stored, hass, ids, since, until, carried if index else None
        )
        plan = await hass.async_add_executor_job(
            partial(_plan, meter, chunk, stored, exact=exact, only=only)
        )
        for stat_id, reason in plan.refused.items():
            if stat_id not in refused:
                _LOGGER.error(
                    "Statistic %s already exists with other metadata (%s); not importing into it",
                    stat_id,
                    reason,
                )
            refused[stat_id] = reason
        sent_now: set[str] = set()
        for metadata, rows in plan.send:
            stat_id = metadata["statistic_id"]
            sent_ids[stat_id] = None
            carried[stat_id] = (rows.running, rows.old)
            if rows.removed:
                await _async_delete_hours(hass, stat_id, rows.removed)
            if not rows:
                continue
            await _async_send(hass, metadata, rows, job_seconds)
            sent_now.add(stat_id)
            written[stat_id] = written.get(stat_id, 0) + len(rows)
            begins = datetime.fromtimestamp(rows.hours[0], UTC)
            ends = datetime.fromtimestamp(rows.hours[-1], UTC)
            first = begins if first is None else min(first, begins)
            last = ends if last is None else max(last, ends)
        for series in chunk.series:
            stat_id = statistic_id(meter.key, series.suffix)
            if (tracker := progress.get(stat_id)) is not None and stat_id not in refused:
                tracker.advance(int(series.known.sum()), sent=stat_id in sent_now)
    hours_written = max(written.values(), default=0)
    _LOGGER.debug("Statistics of %s: %s hourly rows sent", meter.key, hours_written)
    return StatisticsImport(
        meter=meter.key,
        hours_written=hours_written,
        first_hour=first,
        last_hour=last,
        statistic_ids=tuple(ids) if reconcile else tuple(sent_ids),
        refused=refused,
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """A statistic's rows from one hour on, in three numbers: enough to spot any hole.

    `change` is the sum's growth over those rows (last sum minus the sum before them).
    Equality allows a relative float tolerance of 1e-9 on the change.
    """

    count: int
    last_hour: int | None
    change: float

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        scale = max(1.0, abs(self.change), abs(other.change))
        return (
            self.count == other.count
            and self.last_hour == other.last_hour
            and abs(self.change - other.change) <= SUM_TOLERANCE * scale
        )

    def __hash__(self) -> int:
        return hash((self.count, self.last_hour))


# Sums are equal when they agree to this relative precision (float re-accumulation).
SUM_TOLERANCE: Final = 1e-9


def _summary_of(series: _Series) -> tuple[int, Summary]:
    """(first hour, summary) of what a series would store: its known hours and their total."""
    import numpy as np

    hours = series.hours[series.known]
    if not len(hours):
        return int(series.hours[0]), Summary(0, None, 0.0)
    total = float(np.cumsum(series.values[series.known])[-1])
    return int(hours[0]), Summary(len(hours), int(hours[-1]), total)


def _stored_summaries(
    hass: HomeAssistant, expected: Mapping[str, tuple[int, Summary]]
) -> dict[str, tuple[int, Summary]]:
    """The same summaries of what the recorder holds (recorder executor, never the loop)."""
    from homeassistant.components.recorder.db_schema import Statistics
    from sqlalchemy import func, select

    metadata = get_metadata(hass, statistic_ids=set(expected))
    counts: dict[str, tuple[int, int | None]] = {}
    with session_scope(hass=hass, read_only=True) as session:
        for stat_id, (first, _summary) in expected.items():
            if stat_id in metadata:
                count, last = session.execute(
                    select(func.count(Statistics.id), func.max(Statistics.start_ts)).where(
                        Statistics.metadata_id == metadata[stat_id][0],
                        Statistics.start_ts >= first,
                    )
                ).one()
                counts[stat_id] = (int(count or 0), None if last is None else round(last))
    out: dict[str, tuple[int, Summary]] = {}
    for stat_id, (first, _summary) in expected.items():
        if stat_id not in counts:
            out[stat_id] = (first, Summary(0, None, 0.0))
            continue
        count, last = counts[stat_id]
        # Its own session: the recorder allows one per thread at a time.
        change = statistic_during_period(
            hass, datetime.fromtimestamp(first, UTC), None, stat_id, {"change"}, None
        ).get("change")
        out[stat_id] = (first, Summary(count, last, float(change or 0.0)))
    return out


@dataclass(slots=True)
class _DeleteHoursTask(RecorderTask):
    """Delete some hourly rows of one statistic, in the recorder's own thread."""

    statistic_id: str
    hours: list[int]

    def run(self, instance: Recorder) -> None:
        """Delete the rows (nothing happens for a statistic that does not exist)."""
        from homeassistant.components.recorder.db_schema import Statistics
        from sqlalchemy import delete

        with session_scope(session=instance.get_session()) as session:
            found = instance.statistics_meta_manager.get(session, self.statistic_id)
            if found is None:
                return
            for begin in range(0, len(self.hours), 500):
                session.execute(
                    delete(Statistics).where(
                        Statistics.metadata_id == found[0],
                        Statistics.start_ts.in_(self.hours[begin : begin + 500]),
                    )
                )


async def _async_delete_hours(hass: HomeAssistant, stat_id: str, hours: list[int]) -> None:
    """Queue the deletion of `hours` of one statistic (before the rows sent after it)."""
    _LOGGER.info("%s: removing %d hours no interval covers any more", stat_id, len(hours))
    get_instance(hass).queue_task(_DeleteHoursTask(stat_id, list(hours)))


async def async_import_hourly(
    hass: HomeAssistant,
    *,
    stat_id: str,
    name: str,
    unit: str,
    unit_class: str | None,
    hours: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    known: npt.NDArray[np.bool_],
    job_seconds: float = DEFAULT_JOB_SECONDS,
    reconcile: bool = False,
) -> int:
    """Bring one derived hourly statistic (e.g. emissions) in line with `values`; rows sent.

    `hours` are UTC hour starts in epoch seconds, ascending. The same continuity rules as the
    meter statistics apply: sums re-anchor on the stored hour before the first one, later stored
    hours shift, unknown hours get no row and add nothing. With `reconcile` (the values cover
    the whole history), a statistic whose summary already matches is left alone, as in
    async_import_meter(reconcile=True). Foreign metadata under the id is never continued.
    """
    if len(hours) == 0:
        return 0
    series = _Series(
        suffix=stat_id, unit=unit, unit_class=unit_class, hours=hours, values=values, known=known
    )
    first_hour = datetime.fromtimestamp(int(hours[0]), UTC)
    async with _lock(hass, stat_id):
        if reconcile:
            expected = {stat_id: _summary_of(series)}
            held = await get_instance(hass).async_add_executor_job(
                _stored_summaries, hass, expected
            )
            if held == expected:
                return 0
            _LOGGER.info("Statistic %s differs from its source data: repairing", stat_id)
        stored = await get_instance(hass).async_add_executor_job(
            _read_stored, hass, [stat_id], first_hour
        )
        metadata = _metadata(stat_id, name, unit, unit_class)
        if (reason := foreign_reason(stored[stat_id].metadata, metadata)) is not None:
            _LOGGER.error(
                "Statistic %s already exists with other metadata (%s); not importing into it",
                stat_id,
                reason,
            )
            return 0
        rows = await hass.async_add_executor_job(_changed_rows, series, stored[stat_id])
        if not rows:
            return 0
        await _async_send(hass, metadata, rows, job_seconds)
        return len(rows)


async def async_last_hour(hass: HomeAssistant, stat_id: str) -> datetime | None:
    """Start of the newest hour stored for a statistic, None when it has none."""
    last = await get_instance(hass).async_add_executor_job(
        get_last_statistics, hass, 1, stat_id, False, {"sum"}
    )
    rows = last.get(stat_id)
    if not rows:
        return None
    return datetime.fromtimestamp(rows[0]["start"], UTC)


async def async_clear_statistic(hass: HomeAssistant, stat_id: str) -> None:
    """Delete one statistic (a foreign one under our id, before re-importing it)."""
    async with _lock(hass, stat_id):
        get_instance(hass).async_clear_statistics([stat_id])
        await async_recorder_done(hass)


async def async_last_imported_hour(hass: HomeAssistant, meter: MeterInfo) -> datetime | None:
    """Start of the newest hour stored for the meter's consumption statistic."""
    return await async_last_hour(hass, statistic_id(meter.key, SUFFIX_CONSUMPTION))


async def async_first_hour(hass: HomeAssistant, stat_id: str) -> datetime | None:
    """Start of the oldest hour stored for a statistic, None when it has none."""

    def first() -> datetime | None:
        from homeassistant.components.recorder.db_schema import Statistics
        from sqlalchemy import func, select

        metadata = get_metadata(hass, statistic_ids={stat_id})
        if stat_id not in metadata:
            return None
        with session_scope(hass=hass, read_only=True) as session:
            oldest = session.execute(
                select(func.min(Statistics.start_ts)).where(
                    Statistics.metadata_id == metadata[stat_id][0]
                )
            ).scalar()
        return None if oldest is None else datetime.fromtimestamp(round(oldest), UTC)

    return await get_instance(hass).async_add_executor_job(first)
