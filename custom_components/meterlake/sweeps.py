"""Late data and revisions: a daily re-read and a weekly gap search, spread over the day.

Suppliers publish a day or more late and revise history weeks later, while polls re-read only
their overlap (docs/architecture.md, "Late data and revisions"). For a source that declares a
`revision_window` (Octopus: 35 days), every day at the entry's own sweep time each meter's
window is read again, one request per serial: revised values replace stored ones (newer
`ingested_at` wins), the statistics re-anchor, and every revised day gets a `revised` audit row
with its old and new totals. Once a week, for a `gap_window` (13 months), the missing ranges
are fetched (an export meter's quiet slots are not gaps).

The sweep runs in the early afternoon (local time, after the morning publications and before
Agile's 16:00), at a minute of its own per entry, one meter at a time, SPACING apart (each on
a timer of its own): it never queues behind a poll of the same meter for long, never bursts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
import hashlib
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later, async_track_time_change
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import HOUR, MeterLakeConfigEntry, MeterLakeCoordinator, PollReport
from .gas_unit_check import async_check_gas_units
from .redact import scrub
from .sources.base import AuditRecord, MeterInfo, floor_to

if TYPE_CHECKING:
    import pandas as pd

    from .analytics.revisions import DayRevision, MissingSlots

_LOGGER = logging.getLogger(__name__)

SWEEP_HOUR: Final = 13  # local time; the minute and weekday depend on the entry
SPACING: Final = timedelta(minutes=3)
# A weekly gap search fetches at most this many spans per meter (newest first).
MAX_GAP_SPANS: Final = 12
GAP_JOIN: Final = timedelta(days=2)
REVISED_ENDPOINT: Final = "revised"
GAP_ENDPOINT: Final = "gap-sweep"


@dataclass(frozen=True, slots=True)
class SweepTime:
    """When an entry sweeps: hour and minute (local) every day; gaps on `weekday` (0 = Mon)."""

    hour: int
    minute: int
    weekday: int


def sweep_time(entry_id: str) -> SweepTime:
    """The entry's own sweep time: two entries rarely sweep in the same minute."""
    digest = int(hashlib.sha256(entry_id.encode()).hexdigest(), 16)
    offset = digest % 120
    return SweepTime(SWEEP_HOUR + offset // 60, offset % 60, (digest // 120) % 7)


@dataclass
class SweepReport:
    """What one sweep did, per meter key."""

    revised_days: dict[str, int] = field(default_factory=dict)
    gaps_fetched: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class HistorySweep:
    """The daily revision re-read and the weekly gap search of one entry."""

    def __init__(
        self, hass: HomeAssistant, entry: MeterLakeConfigEntry, coordinator: MeterLakeCoordinator
    ) -> None:
        self._hass = hass
        self._entry = entry
        self._coordinator = coordinator
        self._time = sweep_time(entry.entry_id)
        self._timers: list[CALLBACK_TYPE] = []
        self._report = SweepReport()

    def start(self) -> None:
        """Run at the entry's sweep time every day (stopped when the entry unloads)."""
        self._entry.async_on_unload(
            async_track_time_change(
                self._hass, self._run, hour=self._time.hour, minute=self._time.minute, second=0
            )
        )
        self._entry.async_on_unload(self._cancel_timers)

    @callback
    def _cancel_timers(self) -> None:
        for cancel in self._timers:
            cancel()
        self._timers.clear()

    @callback
    def _run(self, now: datetime) -> None:
        """Sweep each meter in turn, SPACING apart (timers, not a sleeping task)."""
        weekly = dt_util.as_local(now).weekday() == self._time.weekday
        meters = list(self._coordinator.source.meters)
        self._cancel_timers()
        self._report = SweepReport()
        for index, meter in enumerate(meters):
            last = index == len(meters) - 1
            self._timers.append(
                async_call_later(
                    self._hass,
                    index * SPACING.total_seconds(),
                    partial(self._start_meter, meter, weekly, last),
                )
            )

    @callback
    def _start_meter(self, meter: MeterInfo, gaps: bool, last: bool, _now: datetime) -> None:
        self._entry.async_create_background_task(
            self._hass,
            self._async_sweep_one(meter, gaps=gaps, last=last),
            f"{DOMAIN} sweep {self._entry.entry_id} {meter.key}",
        )

    async def _async_sweep_one(self, meter: MeterInfo, *, gaps: bool, last: bool) -> None:
        await self.async_sweep_meter(meter, gaps=gaps, report=self._report)
        if last:
            await self._async_finish(self._report)

    async def async_sweep_meter(self, meter: MeterInfo, *, gaps: bool, report: SweepReport) -> None:
        """Re-read one meter's revision window; with `gaps`, fetch its missing ranges too."""
        capabilities = self._coordinator.source.capabilities
        try:
            if capabilities.revision_window is not None:
                report.revised_days[meter.key] = await self._async_revise(
                    meter, capabilities.revision_window
                )
            if gaps and capabilities.gap_window is not None:
                report.gaps_fetched[meter.key] = await self._async_fill_gaps(
                    meter, capabilities.gap_window
                )
        except HomeAssistantError as err:
            # Kept what was read; the next sweep tries again.
            report.errors[meter.key] = scrub(str(err))
            _LOGGER.warning("Sweep of %s stopped: %s", meter.name, report.errors[meter.key])

    async def _async_finish(self, report: SweepReport) -> None:
        _LOGGER.info(
            "Sweep of %s done: %d day(s) revised, %d missing range(s) fetched, %d error(s)",
            self._entry.title,
            sum(report.revised_days.values()),
            sum(report.gaps_fetched.values()),
            len(report.errors),
        )
        await self._coordinator.async_refresh_snapshots()
        await async_check_gas_units(self._hass, self._entry)

    async def _async_revise(self, meter: MeterInfo, window: timedelta) -> int:
        """Re-read the window; note each revised day in the audit. Returns the days revised."""
        now = dt_util.utcnow()
        start = floor_to(now - window, HOUR)
        stored = await self._coordinator.async_stored_rows(meter, start, now)
        result = await self._coordinator.async_poll_meter(
            meter, start, now, PollReport(started=now)
        )
        if stored is None or stored.empty:
            return 0
        days = await self._hass.async_add_executor_job(_revised, stored, result.intervals, meter)
        if days:
            records = [_revision_record(meter, day, now) for day in days]
            await self._coordinator.archive.async_write_audit(records)
            _LOGGER.info(
                "%s: %d day(s) revised by %s (%s)",
                meter.name,
                len(days),
                meter.supplier,
                ", ".join(str(day.day) for day in days),
            )
        return len(days)

    async def _async_fill_gaps(self, meter: MeterInfo, window: timedelta) -> int:
        """Fetch the missing ranges of the window (newest first, capped). Returns spans read."""
        from .analytics.revisions import spans

        now = dt_util.utcnow()
        watermark = self._coordinator.watermark(meter.key)
        if watermark is None:
            return 0
        start = floor_to(now - window, HOUR)
        stored = await self._coordinator.async_stored_rows(meter, start, watermark)
        if stored is None or stored.empty:
            return 0
        missing = await self._hass.async_add_executor_job(_missing, stored, meter, watermark)
        todo = spans(missing.gaps, join_within=GAP_JOIN, limit=MAX_GAP_SPANS)
        report = PollReport(started=now)
        for begin, end in todo:
            await self._coordinator.async_poll_meter(meter, begin, end, report)
        await self._coordinator.archive.async_write_audit(
            [
                AuditRecord(
                    time=now,
                    supplier=meter.supplier,
                    endpoint=GAP_ENDPOINT,
                    status=None,
                    rows=report.rows.get(meter.key, 0),
                    duration_s=0.0,
                    error=f"{meter.name}: {missing.gap_slots} missing slots in "
                    f"{len(missing.gaps)} ranges, {len(todo)} fetched; "
                    f"{missing.quiet_slots} quiet slots",
                )
            ]
        )
        return len(todo)


def _revised(stored: pd.DataFrame, fetched: pd.DataFrame, meter: MeterInfo) -> list[DayRevision]:
    from .analytics.revisions import revised_days

    mine = stored[stored["meter"] == meter.key]
    return revised_days(mine, fetched, time_zone=meter.time_zone)


def _missing(stored: pd.DataFrame, meter: MeterInfo, until: datetime) -> MissingSlots:
    """Missing slots from the meter's first stored row (its history's start) to `until`."""
    from .analytics.revisions import classify_missing

    mine = stored[stored["meter"] == meter.key]
    first = mine["start"].min().to_pydatetime()
    return classify_missing(
        mine["start"],
        cadence_minutes=meter.cadence_minutes,
        window_start=first,
        window_end=until,
        time_zone=meter.time_zone,
        quiet_days=meter.is_export,
    )


def _revision_record(meter: MeterInfo, day: DayRevision, now: datetime) -> AuditRecord:
    return AuditRecord(
        time=now,
        supplier=meter.supplier,
        endpoint=REVISED_ENDPOINT,
        status=None,
        rows=day.slots,
        duration_s=0.0,
        # The audit has no meter column: the meter's name (no full MPAN) says which.
        error=f"{meter.name} {day.day}: old {day.old_total:.3f} {meter.unit}, "
        f"new {day.new_total:.3f} {meter.unit}",
    )
