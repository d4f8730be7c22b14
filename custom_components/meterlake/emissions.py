"""Emissions of one electricity meter, from the grid's carbon intensity (an eCO2mix option).

An eCO2mix entry linked to a MeterLake electricity meter (option `co2_meter`) keeps the external
statistic `meterlake:<meter>_co2` (kg, has_sum): for each interval of the meter, its energy times
the carbon intensity of the grid at that time (15-minute intensities matched to the interval,
analytics.carbon). An hour in which any interval lacks an intensity gets no row (it is reported,
never guessed); hours after the newest published intensity wait for the next run. The meter may
belong to any loaded MeterLake entry: it is found in the lake, its rows read through the lake,
and the lake's changed-rows signal triggers a recompute from where rows changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_conversion import MassConverter

from .const import (
    CONF_BACKFILL_DAYS,
    DEFAULT_BACKFILL_DAYS,
    DOMAIN,
)
from .lake import LakeMeter, async_get_lake, async_listen_rows_changed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from .coordinator import MeterLakeConfigEntry, MeterLakeCoordinator

_LOGGER = logging.getLogger(__name__)

SUFFIX_CO2: Final = "co2"
UNIT_KG: Final = "kg"
# Each run recomputes this far back, so that late intensities and late meter corrections replace
# earlier hours; once a day it reaches as far back as the eCO2mix consolidated refresh (45 days),
# so consolidated intensities and holes they fill reach the statistic too.
RECHECK: Final = timedelta(days=2)
DAILY_RECHECK: Final = timedelta(days=45)
HOUR: Final = timedelta(hours=1)


def linkable_meters(hass: HomeAssistant) -> Iterator[LakeMeter]:
    """Electricity import meters of the lake that do not come from an eCO2mix entry."""
    for item in async_get_lake(hass):
        meter = item.meter
        if meter.kind == "electricity" and not meter.is_export and meter.supplier != "eco2mix":
            yield item


def emissions_issue_id(entry_id: str) -> str:
    """One repair issue per eCO2mix entry whose linked meter is gone."""
    return f"co2_meter_missing_{entry_id}"


@dataclass(frozen=True, slots=True)
class EmissionsFigures:
    """What one computation produced (executor side)."""

    hours: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    known: npt.NDArray[np.bool_]
    today_kg: float | None
    today_missing: int
    missing_hours: int


class EmissionsTracker:
    """Keeps the CO2 statistic and today's emissions of the linked meter up to date."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MeterLakeConfigEntry,
        coordinator: MeterLakeCoordinator,
        meter_key: str,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.meter_key = meter_key
        self.today_kg: float | None = None
        self.today_missing: int | None = None
        self.missing_hours: int | None = None
        self.hours_written = 0
        self.intervals = 0
        self._deep_checked: date | None = None
        self._lock = asyncio.Lock()
        self._started = False
        # Earliest start of rows changed since the last run (None: the usual recheck window).
        self._since: datetime | None = None
        self._reconciled = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run once Home Assistant has started (statistics need the recorder's queue).

        From then on, changed rows of the linked meter or of this entry's grid (late data, a
        backfill, a revision) recompute the emissions from where they changed.
        """

        async def _begin(_hass: HomeAssistant) -> None:
            self._started = True
            self.schedule()

        @callback
        def _changed(key: str, start: datetime, _end: datetime) -> None:
            if key not in (self.meter_key, *self._grid_keys):
                return
            self._since = start if self._since is None else min(self._since, start)
            self.schedule()

        self.entry.async_on_unload(async_at_started(self.hass, _begin))
        self.entry.async_on_unload(async_listen_rows_changed(self.hass, _changed))

    def schedule(self) -> None:
        """Recompute in the background after a poll, unless a run is going on.

        Nothing starts for an entry that is unloading: its tasks would outlive it.
        """
        if not self._started or self.entry.state not in (
            ConfigEntryState.LOADED,
            ConfigEntryState.SETUP_IN_PROGRESS,
        ):
            return
        if self._task is not None and not self._task.done():
            return
        self._task = self.entry.async_create_background_task(
            self.hass, self._async_background(), f"{DOMAIN} emissions {self.entry.entry_id}"
        )

    async def _async_background(self) -> None:
        # Rows that change while a run goes on are picked up by the next round.
        while True:
            since, self._since = self._since, None
            await (self.async_update() if since is None else self.async_update(since=since))
            if self._since is None:
                return

    @property
    def _grid_keys(self) -> tuple[str, ...]:
        return tuple(meter.key for meter in self.coordinator.source.meters)

    def find_meter(self) -> LakeMeter | None:
        """The linked meter, from the lake (None while no loaded entry offers it)."""
        return next((m for m in linkable_meters(self.hass) if m.meter.key == self.meter_key), None)

    async def async_rebuild(self, start: datetime | None) -> tuple[int, int]:
        """Recompute from `start` (None: clear and recompute `backfill_days`); (intervals, hours).

        The `rebuild_statistics` action on an eCO2mix entry lands here.
        """
        from . import statistics

        if self.find_meter() is None:
            # Clearing now would lose the statistic with nothing to rebuild it from.
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="emissions_meter_missing",
                translation_placeholders={"meter": self.meter_key},
            )
        async with self._lock:
            if start is None:
                stat_id = statistics.statistic_id(self.meter_key, SUFFIX_CO2)
                get_instance(self.hass).async_clear_statistics([stat_id])
                await statistics.async_recorder_done(self.hass)
                # From the first stored quarter-hour of the grid: nothing before it is known.
                grid = await self.coordinator.archive.async_read_grid(
                    self.coordinator.source.meters[0], None, None
                )
                if grid is not None and not grid.empty:
                    start = grid["start"].min().to_pydatetime()
            return await self._async_update(since=start)

    async def async_update(self, since: datetime | None = None) -> tuple[int, int]:
        """Recompute the recent hours (or from `since`), import them, refresh today's figure.

        Returns (meter intervals read, hours written). Runs one at a time.
        """
        async with self._lock:
            return await self._async_update(since)

    async def _async_update(self, since: datetime | None) -> tuple[int, int]:
        from . import statistics

        self.intervals = self.hours_written = 0
        found = self.find_meter()
        issue_id = emissions_issue_id(self.entry.entry_id)
        if found is None:
            self.today_kg = self.today_missing = None
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="co2_meter_missing",
                translation_placeholders={"meter": self.meter_key, "entry": self.entry.title},
            )
            await self.coordinator.async_refresh_snapshots()
            return 0, 0
        ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        meter = found.meter
        stat_id = statistics.statistic_id(meter.key, SUFFIX_CO2)
        now = dt_util.utcnow()
        today_start = dt_util.as_utc(dt_util.start_of_local_day())
        last = await statistics.async_last_hour(self.hass, stat_id)
        today = dt_util.now().date()
        deep = last is None or self._deep_checked != today
        if last is None:
            days = int(self.entry.options.get(CONF_BACKFILL_DAYS, DEFAULT_BACKFILL_DAYS))
            start = now - timedelta(days=days)
        elif deep:
            start = last - DAILY_RECHECK
        else:
            start = last - RECHECK
        if since is not None:
            # Changed rows (a signal, a backfill, a rebuild) only ever widen the window.
            start = min(start, since)
        start = min(start, today_start).replace(minute=0, second=0, microsecond=0)
        # The first run after a (re)start compares the whole statistic with what the meter and
        # grid data give (a restart in the middle of an import leaves no hole, however old).
        reconcile = not self._reconciled
        read_from = None if reconcile else start
        rows = await async_get_lake(self.hass).async_rows(meter.key, read_from, None)
        grid_meter = self.coordinator.source.meters[0]
        grid = await self.coordinator.archive.async_read_grid(
            grid_meter, None if read_from is None else read_from - HOUR, None
        )
        figures = await self.hass.async_add_executor_job(
            compute, rows, grid, self.coordinator.grid_recent, today_start
        )
        self.today_kg = figures.today_kg
        self.today_missing = figures.today_missing
        self.missing_hours = figures.missing_hours
        self.intervals = 0 if rows is None else len(rows)
        self.hours_written = await statistics.async_import_hourly(
            self.hass,
            stat_id=stat_id,
            name=f"{meter.name} CO2",
            unit=UNIT_KG,
            unit_class=MassConverter.UNIT_CLASS,
            hours=figures.hours,
            values=figures.values,
            known=figures.known,
            reconcile=reconcile,
        )
        self._reconciled = True
        _LOGGER.debug("%s: %d hours of emissions written", stat_id, self.hours_written)
        if deep:
            self._deep_checked = today  # only once the long recheck went through
        await self.coordinator.async_refresh_snapshots()
        return self.intervals, self.hours_written


def compute(
    rows: pd.DataFrame | None,
    archived: pd.DataFrame | None,
    recent: pd.DataFrame | None,
    today_start: datetime,
) -> EmissionsFigures:
    """Hourly emissions up to the newest published intensity, and today's total (executor).

    Today's total adds the covered intervals that start today; `today_missing` counts today's
    intervals without an intensity (not yet published, or a hole in the grid data).
    """
    import numpy as np
    import pandas as pd

    from .analytics.carbon import hourly_emissions, interval_emissions
    from .analytics.grid import dedupe

    empty = EmissionsFigures(
        hours=np.empty(0, dtype=np.int64),
        values=np.empty(0, dtype=np.float64),
        known=np.empty(0, dtype=bool),
        today_kg=None,
        today_missing=0,
        missing_hours=0,
    )
    if rows is None or rows.empty:
        return empty
    frames = [
        f[["start", "end", "taux_co2", "consolidated", "ingested_at"]]
        for f in (archived, recent)
        if f is not None and not f.empty and "taux_co2" in f.columns
    ]
    if frames:
        # One row per quarter-hour, consolidated before real time, then the newest.
        intensity = dedupe(pd.concat(frames, ignore_index=True))
    else:
        intensity = pd.DataFrame(
            {
                "start": pd.Series([], dtype="datetime64[us, UTC]"),
                "end": pd.Series([], dtype="datetime64[us, UTC]"),
                "taux_co2": pd.Series([], dtype="float64"),
            }
        )
    per_interval = interval_emissions(rows, intensity)
    today = per_interval[per_interval["start"] >= pd.Timestamp(today_start)]
    covered_today = today[today["covered"]]
    today_kg = float(covered_today["co2_kg"].sum()) if not covered_today.empty else None
    known_intensity = intensity.dropna(subset=["taux_co2"])
    if known_intensity.empty:
        return EmissionsFigures(
            hours=empty.hours,
            values=empty.values,
            known=empty.known,
            today_kg=today_kg,
            today_missing=len(today),
            missing_hours=0,
        )
    # Only whole hours up to the newest published intensity: an hour it cuts waits for the rest.
    cut = known_intensity["end"].max().floor("h")
    hourly = hourly_emissions(per_interval[per_interval["start"] < cut])
    epoch = pd.Timestamp(0, tz="UTC")
    hours = np.asarray(
        (hourly["start"] - epoch) // pd.Timedelta(seconds=1), dtype=np.int64
    ).reshape(-1)
    complete = hourly["complete"].to_numpy(dtype=bool)
    return EmissionsFigures(
        hours=hours,
        values=hourly["co2_kg"].to_numpy(dtype=np.float64),
        known=complete,
        today_kg=today_kg,
        today_missing=int((~today["covered"]).sum()),
        missing_hours=int((~complete).sum()),
    )
