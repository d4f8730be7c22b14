"""One coordinator per config entry: poll the source, merge, hand the rows to every sink, publish.

The coordinator owns the in-memory table of recent intervals (enough for today, yesterday and the
month so far) and the per-meter watermarks. A meter's watermark moves only past rows that every
sink accepted, so a failure anywhere means the next poll fetches those rows again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
import logging
import math
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_BACKFILL_DAYS,
    DEFAULT_BACKFILL_DAYS,
    DOMAIN,
    RECENT_WINDOW,
)
from .lake import async_get_lake
from .redact import scrub
from .sources.base import (
    AuditRecord,
    FetchResult,
    MeterInfo,
    Source,
    SourceAuthError,
    SourceError,
    SourceUnavailableError,
    floor_to,
    has_spot_prices,
    polls_adaptively,
)
from .sources.composed import ComposedSource
from .store import WatermarkStore

if TYPE_CHECKING:
    import pandas as pd

    from .analytics.prices import PriceSummary
    from .analytics.revisions import MissingSlots
    from .anomalies import AnomalyMonitor
    from .archive import MeterCheck
    from .emissions import EmissionsTracker
    from .entity_meters import EntityMeterFollower
    from .sinks import ArchiveSink, StatisticsSink

_LOGGER = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
# How much grid data (eCO2mix) the coordinator keeps in memory for the grid sensors.
GRID_WINDOW = timedelta(days=2)
# A meter failing this many polls in a row gets a repair issue (cleared when it answers).
FAILING_POLLS = 3

type MeterLakeConfigEntry = ConfigEntry[MeterLakeData]


@dataclass(slots=True)
class MeterLakeData:
    """Runtime data of a loaded entry (typed, per the quality scale's runtime-data rule)."""

    coordinator: MeterLakeCoordinator
    # The Composed meters entry's meters from entities (live readings, hand readings).
    entity_meters: EntityMeterFollower | None = None
    # Anomaly detection of the entry's meters (binary sensors, event entities, the action).
    anomalies: AnomalyMonitor | None = None


@dataclass(frozen=True, slots=True)
class ConsumptionPart:
    """What every meter shows of its intervals: the newest one, period totals, gaps, rejects."""

    last_interval_value: float | None = None
    last_interval_start: datetime | None = None
    cost_last_interval: float | None = None
    newest_data: datetime | None = None
    today: float | None = None
    yesterday: float | None = None
    month: float | None = None
    cost_today: float | None = None
    cost_yesterday: float | None = None
    missing_7d: int | None = None
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class TariffPart:
    """A meter with a tariff of its own: rates (from spot prices where published), charge."""

    current_rate: float | None = None
    next_rate: float | None = None
    next_rate_start: datetime | None = None
    standing_charge: float | None = None
    unrated: int = 0


@dataclass(frozen=True, slots=True)
class GridMix:
    """One quarter-hour of the grid's production, with its shares computed off the loop."""

    start: datetime
    values: Mapping[str, float]
    low_carbon_share: float | None
    renewable_share: float | None


@dataclass(frozen=True, slots=True)
class GridPart:
    """A grid meter (eCO2mix): the grid's values and mix, and a linked meter's emissions."""

    # Newest known value of each field, with the start of its slot.
    values: Mapping[str, tuple[datetime, float]] = field(default_factory=dict)
    # The newest quarter-hour with a production total, for the shares (one coherent row).
    mix: GridMix | None = None
    # With a linked electricity meter: its emissions today (kg CO2e).
    emissions_today: float | None = None
    emissions_missing: int | None = None
    emissions_meter: str | None = None


@dataclass(frozen=True, slots=True)
class ComposedPart:
    """What a composed meter shows besides consumption: its reading, what clipping removed."""

    reading: float | None = None
    clipped_today: float | None = None


@dataclass(frozen=True, slots=True)
class ReadingsPart:
    """What a meter from an entity shows: its counter, the last reading, the resets found.

    total: the first reading plus all consumption since, across resets and replacements (a
    counter that never jumps back); reading/reading_at: the newest reading as read (in the
    meter's unit); resets: (time, before, after, kind) of each reset, wrap or new meter, newest
    last; skipped: readings not used, by reason.
    """

    total: float | None = None
    reading: float | None = None
    reading_at: datetime | None = None
    resets: tuple[tuple[datetime, float, float, str], ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """What the entities of one meter show, computed off the event loop after each poll.

    One part per kind of data; a part is None where the meter has no such data: `tariff` for
    grid meters and derived (composed) meters, `prices` without published spot prices (and
    for export meters), `grid` except for grid meters, `composed` except for composed meters.
    A new kind of meter adds a part, not fields.
    """

    meter: MeterInfo
    consumption: ConsumptionPart
    tariff: TariffPart | None = None
    prices: PriceSummary | None = None
    grid: GridPart | None = None
    composed: ComposedPart | None = None
    readings: ReadingsPart | None = None


@dataclass(slots=True)
class MeterTables:
    """Per-meter tariff frames kept from the newest fetch (for current/next rate)."""

    rates: pd.DataFrame | None = None
    standing_charges: pd.DataFrame | None = None
    agreements: pd.DataFrame | None = None
    unrated: int = 0
    rejected: int = 0
    window_end: datetime | None = None


@dataclass(slots=True)
class ArchiveCheck:
    """One meter's archive verification: what was found, and the state after repair."""

    found: MeterCheck
    final: MeterCheck
    refetched: list[str] = field(default_factory=list)

    @property
    def lost_months(self) -> tuple[str, ...]:
        """Months the history should have but that hold no row even after a re-fetch."""
        return tuple(m.month for m in self.final.months if m.expected and not m.rows)


@dataclass(slots=True)
class RebuildProgress:
    """A statistics rebuild running (or finished) in the background, for diagnostics."""

    started: datetime
    meters: list[str]
    done: dict[str, dict[str, int]] = field(default_factory=dict)
    current: str | None = None
    finished: datetime | None = None
    error: str | None = None


@dataclass(slots=True)
class PollReport:
    """What the last poll did, for diagnostics and the backfill action."""

    started: datetime
    rows: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
    # Meters a scheduled poll left alone: their next data was not due yet (adaptive polling).
    skipped: list[str] = field(default_factory=list)


class MeterLakeCoordinator(DataUpdateCoordinator[dict[str, MeterSnapshot]]):
    """Polls one source for all its meters."""

    config_entry: MeterLakeConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        config_entry: MeterLakeConfigEntry,
        source: Source,
        store: WatermarkStore,
        *,
        archive: ArchiveSink,
        statistics: StatisticsSink,
    ) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=config_entry,
            name=f"{DOMAIN} {config_entry.title}",
            update_interval=source.update_interval,
        )
        self.source = source
        self.store = store
        self.archive = archive
        self.statistics = statistics
        self.recent: pd.DataFrame | None = None
        # Grid rows (eCO2mix) of the last days, for the grid sensors.
        self.grid_recent: pd.DataFrame | None = None
        self.tables: dict[str, MeterTables] = {}
        self.last_report: PollReport | None = None
        # Set by setup for an eCO2mix entry linked to an electricity meter.
        self.emissions: EmissionsTracker | None = None
        # Meters whose last poll failed while others succeeded: meter key -> error.
        self.failed: dict[str, str] = {}
        # Consecutive failed polls per meter: from FAILING_POLLS on, a repair issue names it.
        self.failed_polls: dict[str, int] = {}
        # Clock-aligned polls (eCO2mix) wait until then after a server asked to (Retry-After).
        self.not_before: datetime | None = None
        self.polling = False
        self.rebuild_progress: RebuildProgress | None = None
        # Archive months lost for good, per meter key (from the last verification).
        self.lost_months: dict[str, list[str]] = {}
        self._meter_locks: dict[str, asyncio.Lock] = {}

    def watermark(self, meter_key: str) -> datetime | None:
        """End of the newest interval of the meter that every sink took (the lake asks)."""
        return self.store.get(meter_key)

    @property
    def backfill(self) -> timedelta:
        """How far back a meter's first poll reaches (option `backfill_days`)."""
        days = self.config_entry.options.get(CONF_BACKFILL_DAYS, DEFAULT_BACKFILL_DAYS)
        return timedelta(days=int(days))

    def window_start(self, meter: MeterInfo, now: datetime) -> datetime:
        """Watermark minus the overlap, or the backfill horizon on a first run; whole hours."""
        watermark = self.store.get(meter.key)
        if watermark is None:
            return floor_to(now - self.backfill, HOUR)
        start = watermark - self.source.capabilities.overlap
        if self.recent is None and meter.kind != "grid":
            # A restart without an archive to read: the sensors need today, yesterday and the
            # month so far.
            start = min(start, now - RECENT_WINDOW)
        if (unarchived := self.store.retry_from(meter.key)) is not None:
            # Rows the archive refused earlier (a full disk): fetch them again.
            start = min(start, unarchived)
        return floor_to(start, HOUR)

    async def _async_update_data(self) -> dict[str, MeterSnapshot]:
        self.polling = True
        try:
            return await self._async_poll()
        finally:
            self.polling = False

    async def _async_poll(self) -> dict[str, MeterSnapshot]:
        now = dt_util.utcnow()
        report = PollReport(started=now)
        self.last_report = report
        if self.recent is None:
            await self._async_prime(now)
        failures: dict[str, UpdateFailed] = {}
        for meter in self.source.meters:
            if polls_adaptively(self.source) and not self.source.poll_due(meter, now):
                # No new data is expected yet (docs/architecture.md, "Requests").
                report.skipped.append(meter.key)
                continue
            # One meter's failure (a Tibber home gone, say) must not stop the others; a refused
            # credential (ConfigEntryAuthFailed) stops the poll, it is the same for every meter.
            try:
                await self.async_poll_meter(meter, self.window_start(meter, now), now, report)
            except UpdateFailed as err:
                failures[meter.key] = err
        self._note_failures(failures)
        if failures and len(failures) == len(self.source.meters):
            failed = next(iter(failures.values()))
            retry_after = getattr(failed, "retry_after", None)
            self.not_before = now + timedelta(seconds=retry_after) if retry_after else None
            raise failed
        self.not_before = None
        if self.emissions is not None:
            self.emissions.schedule()
        return await self.hass.async_add_executor_job(self._snapshots, dt_util.utcnow())

    async def _async_prime(self, now: datetime) -> None:
        """After a (re)start, take recent rows and missing watermarks from the archive.

        A new install over an existing archive thus continues where the archive ends instead
        of fetching `backfill_days` again; the statistics worker imports what it lacks.
        """
        frames = []
        for meter in self.source.meters:
            if meter.kind == "grid":
                await self._async_prime_grid(meter, now)
                continue
            watermark = self.store.get(meter.key)
            start = now - RECENT_WINDOW - timedelta(days=1)
            if watermark is None and (months := await self.archive.async_months(meter)):
                # The watermark is the archive's newest row: read back to its newest month at
                # most, never the whole history (memory holds the recent window only).
                start = min(start, _month_window(months[-1])[0])
            rows = await self.archive.async_read(meter, start, None)
            if rows is None or rows.empty:
                continue
            if watermark is None:
                newest = rows["end"].max().to_pydatetime()
                _LOGGER.info("%s: continuing from the archive (up to %s)", meter.key, newest)
                self.store.advance(meter.key, newest)
            frames.append(rows)
        if frames:
            self.recent = await self.hass.async_add_executor_job(_concat_recent, frames, now)

    async def _async_prime_grid(self, meter: MeterInfo, now: datetime) -> None:
        """Grid rows of the last days from the archive, so the grid sensors show at once."""
        rows = await self.archive.async_read_grid(meter, now - GRID_WINDOW, None)
        if rows is None or rows.empty:
            return
        if self.store.get(meter.key) is None:
            # Like a poll: up to the newest quarter whose consumption is known.
            known = rows[rows["consommation"].notna()]
            if not known.empty:
                self.store.advance(meter.key, known["end"].max().to_pydatetime())
        self.grid_recent = await self.hass.async_add_executor_job(self._merge_grid, rows, now)

    async def async_poll_meter(
        self, meter: MeterInfo, start: datetime, end: datetime, report: PollReport
    ) -> FetchResult:
        """Fetch [start, end) of one meter, keep it, hand it to the sinks, move the watermark.

        One at a time per meter: a scheduled poll and a recompute (a new reading, a changed
        input) of the same meter would otherwise keep their results in either order.
        """
        lock = self._meter_locks.setdefault(meter.key, asyncio.Lock())
        async with lock:
            return await self._async_poll_meter(meter, start, end, report)

    async def async_keep_rows(self, meter: MeterInfo, rows: pd.DataFrame) -> None:
        """Keep rows that came from elsewhere (an imported file) as a poll keeps its own.

        Memory, archive, statistics (re-anchored over the rows' window) and the lake's signal;
        the watermark does not move: the rows say nothing of what the source has.
        """
        lock = self._meter_locks.setdefault(meter.key, asyncio.Lock())
        async with lock:
            start, end = await self.hass.async_add_executor_job(_row_range, rows)
            result = FetchResult(intervals=rows, complete_until=None)
            await self._async_keep(meter, result, PollReport(started=dt_util.utcnow()), start, end)

    async def _async_poll_meter(
        self, meter: MeterInfo, start: datetime, end: datetime, report: PollReport
    ) -> FetchResult:
        try:
            result = await self.source.async_fetch(meter, start, end)
        except SourceError as err:
            # The calls of a failed poll (and its heartbeat) belong in the audit too.
            report.audit.extend(err.audit)
            await self.archive.async_write_audit(err.audit)
            if isinstance(err, SourceUnavailableError) and err.partial is not None:
                # Keep what arrived before the retry budget ran out.
                await self._async_keep(meter, err.partial, report, start, end)
            raise _update_error(err) from err
        await self._async_keep(meter, result, report, start, end)
        return result

    async def _async_keep(
        self,
        meter: MeterInfo,
        result: FetchResult,
        report: PollReport,
        start: datetime,
        end: datetime,
    ) -> None:
        """Memory, archive, statistics; then the watermark, if the archive took the rows.

        Rows the archive refused are remembered from `start` on (`retry_from`), so a later
        window that succeeds (a backfill moves on) cannot leave them out of the archive.
        """
        report.audit.extend(result.audit)
        report.rows[meter.key] = report.rows.get(meter.key, 0) + len(result.intervals)
        self.recent = await self.hass.async_add_executor_job(
            self._merge_recent, result.intervals, dt_util.utcnow()
        )
        if result.grid is not None and not result.grid.empty:
            self.grid_recent = await self.hass.async_add_executor_job(
                self._merge_grid, result.grid, dt_util.utcnow()
            )
        self._keep_tables(meter, result, end)
        outcome = await self.archive.async_store(meter, result)
        report.stored[meter.key] = report.stored.get(meter.key, 0) + outcome.rows_written
        for month_start, month_end in outcome.refetch:
            await self._async_refetch(meter, month_start, month_end, report)
        await self.statistics.async_queue(meter, result)
        if not outcome.accepted:
            self.store.note_unarchived(meter.key, start)
        else:
            self.store.note_archived(meter.key, start)
            if result.complete_until is not None:
                self.store.advance(meter.key, result.complete_until)
        # Derived meters downstream (composed, emissions) recompute what these rows touch.
        changed = result.grid if meter.kind == "grid" else result.intervals
        if changed is not None and not changed.empty:
            first, last = await self.hass.async_add_executor_job(_row_range, changed)
            async_get_lake(self.hass).rows_changed(meter.key, first, last)

    def _keep_tables(self, meter: MeterInfo, result: FetchResult, end: datetime) -> None:
        """Keep the tariff frames of the newest window.

        A backfill of old windows must not replace the rates current and next rate come from.
        """
        previous = self.tables.get(meter.key)
        if previous is not None and previous.window_end is not None and end < previous.window_end:
            return
        self.tables[meter.key] = MeterTables(
            rates=result.rates if result.rates is not None else self._table(meter, "rates"),
            standing_charges=result.standing_charges
            if result.standing_charges is not None
            else self._table(meter, "standing_charges"),
            agreements=result.agreements
            if result.agreements is not None
            else self._table(meter, "agreements"),
            unrated=result.unrated,
            rejected=result.rejected,
            window_end=end,
        )

    async def _async_refetch(
        self, meter: MeterInfo, start: datetime, end: datetime, report: PollReport
    ) -> None:
        """Rebuild an archive month whose file was unreadable, from the source."""
        _LOGGER.warning("%s: re-fetching %s to %s to rebuild the archive", meter.key, start, end)
        until = min(end, dt_util.utcnow())
        result = await self.source.async_fetch(meter, start, until)
        await self._async_keep(meter, result, report, start, until)

    def _table(self, meter: MeterInfo, name: str) -> pd.DataFrame | None:
        tables = self.tables.get(meter.key)
        return None if tables is None else getattr(tables, name)

    def _note_failures(self, failures: dict[str, UpdateFailed]) -> None:
        """Remember which meters failed this poll (their entities go unavailable); log changes."""
        for key, err in failures.items():
            if key not in self.failed:
                _LOGGER.warning("Polling %s failed: %s", key, err)
        for key in self.failed.keys() - failures.keys():
            _LOGGER.info("Polling %s works again", key)
        self.failed = {key: str(err) for key, err in failures.items()}
        self.failed_polls = {key: self.failed_polls.get(key, 0) + 1 for key in failures}
        for meter in self.source.meters:
            issue_id = meter_failing_issue_id(self.config_entry.entry_id, meter.key)
            polls = self.failed_polls.get(meter.key, 0)
            if polls < FAILING_POLLS:
                if not polls:
                    ir.async_delete_issue(self.hass, DOMAIN, issue_id)
                continue
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="meter_failing",
                translation_placeholders={
                    "meter": meter.name,
                    "entry": self.config_entry.title,
                    "polls": str(FAILING_POLLS),
                    "error": self.failed[meter.key],
                },
            )

    async def async_refresh_snapshots(self) -> None:
        """Recompute the sensors' values now (after a backfill, a price slot, emissions).

        Not a poll: `last_update_success` and the poll timer are left alone, so a failed poll
        stays failed (its entities unavailable) and the next poll is not postponed; entities
        that live on cached spot prices move on.
        """
        self.data = await self.hass.async_add_executor_job(self._snapshots, dt_util.utcnow())
        self.async_update_listeners()

    async def async_stored_rows(
        self, meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        """Stored intervals of `meter` starting in [start, end): the archive, else memory.

        `None` bounds are open. For a grid meter these are its grid rows, with a `meter` column.
        """
        if meter.kind == "grid":
            return await self._async_grid_rows(meter, start, end)
        rows = await self.archive.async_read(meter, start, end)
        if rows is not None:
            return rows
        recent = self.recent
        if recent is None:
            return None
        return await self.hass.async_add_executor_job(_rows_between, recent, meter.key, start, end)

    async def _async_grid_rows(
        self, meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        rows = await self.archive.async_read_grid(meter, start, end)
        if rows is None:
            rows = self.grid_recent
            if rows is None:
                return None
            rows = await self.hass.async_add_executor_job(_rows_between, rows, None, start, end)
        return rows.assign(meter=meter.key)

    async def async_is_stored(self, meter: MeterInfo, start: datetime, end: datetime) -> bool:
        """True when every published slot of [start, end) is stored, so a backfill may skip it.

        "Published" ends at the watermark: slots the source has not delivered yet are not gaps;
        nor are an export meter's quiet slots (none published on a day that has rows).
        """
        watermark = self.store.get(meter.key)
        if watermark is None:
            return False
        end = min(end, watermark)
        if end <= start:
            return True
        rows = await self.async_stored_rows(meter, start, end)
        if rows is None or rows.empty:
            return False
        missing = await self.hass.async_add_executor_job(_missing_slots, rows, meter, start, end)
        return missing.gap_slots == 0

    async def async_missing(
        self, meter: MeterInfo, result: FetchResult, start: datetime, end: datetime
    ) -> MissingSlots:
        """Slots of [start, end) the source did not deliver (up to what it has published).

        An export meter's missing slots on days that have rows are counted apart, as quiet.
        """
        until = min(end, result.complete_until or start)
        if until <= start:
            return _no_missing()
        rows = result.intervals
        if meter.kind == "grid" and result.grid is not None:
            rows = result.grid.assign(meter=meter.key)
        return await self.hass.async_add_executor_job(_missing_slots, rows, meter, start, until)

    def _merge_grid(self, fresh: pd.DataFrame, now: datetime) -> pd.DataFrame:
        """Fold grid rows into the recent grid table (consolidated wins, then newer)."""
        from .analytics.grid import merge_recent

        return merge_recent(self.grid_recent, fresh, now - GRID_WINDOW)

    def _merge_recent(self, fresh: pd.DataFrame, now: datetime) -> pd.DataFrame:
        """Fold fresh rows into the recent table (newer rows win) and trim it to the window."""
        frames = [f for f in (self.recent, fresh) if f is not None and not f.empty]
        return _concat_recent(frames, now) if frames else fresh

    async def async_verify_archive(
        self, meters: Sequence[MeterInfo] | None = None, *, repair: bool = True
    ) -> dict[str, ArchiveCheck]:
        """Check each meter's archived history; quarantine bad files and re-fetch their months.

        Expected history reaches back to the meter's oldest statistic hour (so a lost first
        month is noticed) and up to its watermark. Months with no readable row are fetched
        again from the source (when `repair`); months still empty afterwards cannot be
        recovered: they are named in a repair issue, and a rebuild that would drop them is
        refused. An archive that cannot be opened or listed raises ArchiveError.
        """
        from . import statistics

        archive = await self.archive.async_open()
        results: dict[str, ArchiveCheck] = {}
        report = PollReport(started=dt_util.utcnow())
        for meter in meters if meters is not None else self.source.meters:
            if meter.kind == "grid":
                continue
            since = await statistics.async_first_hour(
                self.hass, statistics.statistic_id(meter.key, statistics.SUFFIX_CONSUMPTION)
            )
            until = self.store.get(meter.key)

            verify = partial(
                archive.verify_intervals,
                meter.key,
                meter.cadence_minutes,
                since=since,
                until=until,
            )

            first = await self.hass.async_add_executor_job(verify)
            check = ArchiveCheck(found=first, final=first)
            empty = [month for month in first.months if month.expected and not month.rows]
            if repair and empty:
                for month in empty:
                    start, end = _month_window(month.month)
                    _LOGGER.warning(
                        "%s: archive month %s has no readable rows; fetching it again",
                        meter.key,
                        month.month,
                    )
                    try:
                        await self.async_poll_meter(
                            meter, start, min(end, dt_util.utcnow()), report
                        )
                    except (UpdateFailed, ConfigEntryAuthFailed) as err:
                        _LOGGER.warning("%s: re-fetching %s failed: %s", meter.key, month, err)
                    check.refetched.append(month.month)
                check.final = await self.hass.async_add_executor_job(verify)
            results[meter.key] = check
        self._note_lost_months(results)
        return results

    def _note_lost_months(self, results: Mapping[str, ArchiveCheck]) -> None:
        """One repair issue naming every month the archive lost and the source cannot serve."""
        names = {meter.key: meter.name for meter in self.source.meters}
        lost = {key: check.lost_months for key, check in results.items() if check.lost_months}
        self.lost_months = {key: list(months) for key, months in lost.items()}
        issue_id = archive_damaged_issue_id(self.config_entry.entry_id)
        if not lost:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        text = "; ".join(f"{names.get(key, key)}: {', '.join(m)}" for key, m in lost.items())
        _LOGGER.error("The archive lost months the source no longer serves: %s", text)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="archive_damaged",
            translation_placeholders={"months": text, "root": self.archive.root_option},
        )

    async def async_check_history(self) -> None:
        """Verify the archive, then repair the statistics against it (at start and daily)."""
        from .archive import ArchiveError

        try:
            await self.async_verify_archive()
        except ArchiveError as err:
            _LOGGER.warning("Cannot verify the archive: %s", err)
        await self.async_catch_up_statistics()

    async def async_catch_up_statistics(self) -> None:
        """Repair every statistic that differs from the archive (run once HA has started).

        Each statistic (consumption, cost, energy) is compared on its own with the archive's
        running totals, so a restart during any of their imports, a failed import, or a new
        install over an existing archive leaves no hole: each gets exactly what it lacks.
        """
        from .statistics import month_windows

        for meter in self.source.meters:
            if meter.kind == "grid":
                continue
            # Month by month: never the whole history of a meter in memory.
            months = await self.archive.async_months(meter)
            if not months:
                continue
            await self.statistics.async_import_history(
                meter,
                month_windows(months),
                partial(self.archive.async_read, meter),
                agreements=self._table(meter, "agreements"),
                standing_charges=self._table(meter, "standing_charges"),
                reconcile=True,
            )

    async def async_rebuild(
        self, meters: Sequence[MeterInfo], start: datetime | None
    ) -> dict[str, dict[str, int]]:
        """Rebuild the statistics of `meters` one after the other, recording progress.

        {meter key: {"intervals": read, "hours_written": sent}}. A failure is logged and kept
        in the progress (a background rebuild has no caller to raise to), then re-raised.
        """
        progress = RebuildProgress(dt_util.utcnow(), [meter.key for meter in meters])
        self.rebuild_progress = progress
        try:
            for meter in meters:
                progress.current = meter.key
                intervals, hours = await self.async_rebuild_statistics(meter, start)
                progress.done[meter.key] = {"intervals": intervals, "hours_written": hours}
                _LOGGER.info(
                    "Rebuilt the statistics of %s (%d/%d): %d intervals read, %d hours written",
                    meter.key,
                    len(progress.done),
                    len(meters),
                    intervals,
                    hours,
                )
        except Exception as err:
            progress.error = str(err)
            _LOGGER.warning("Rebuilding the statistics stopped at %s: %s", progress.current, err)
            raise
        finally:
            progress.current = None
            progress.finished = dt_util.utcnow()
        return progress.done

    async def async_rebuild_statistics(
        self, meter: MeterInfo, start: datetime | None
    ) -> tuple[int, int]:
        """Recompute the meter's statistics from stored intervals: (intervals read, hours written).

        Nothing is cleared first: hours are overwritten in place (unchanged ones are not sent)
        and, without a start, stored hours that no interval covers any more are removed, so
        the dashboard never shows a half-built history. With a start, sums re-anchor on the
        hour before it.
        """
        start = None if start is None else floor_to(start, HOUR)
        if meter.kind == "grid":
            # A grid meter has no statistics of its own; a linked meter's emissions are rebuilt.
            if self.emissions is None:
                return 0, 0
            return await self.emissions.async_rebuild(start)
        await self._async_refuse_lossy_rebuild(meter, start)
        if months := await self.archive.async_months(meter):
            from .statistics import month_windows

            # Month by month from the archive: never the whole history in memory.
            done = await self.statistics.async_import_history(
                meter,
                month_windows(months, start),
                partial(self.async_stored_rows, meter),
                agreements=self._table(meter, "agreements"),
                standing_charges=self._table(meter, "standing_charges"),
                exact=start is None,
            )
            assert done is not None  # a rebuild raises instead
            return done
        rows = await self.async_stored_rows(meter, start, None)
        if rows is None or rows.empty:
            return 0, 0
        hours = await self.statistics.async_rebuild(
            meter, self._archived_result(meter, rows), exact=start is None
        )
        return len(rows), hours

    async def _async_refuse_lossy_rebuild(self, meter: MeterInfo, start: datetime | None) -> None:
        """Verify (and repair) the archive first; refuse when the rebuild would drop history."""
        from .archive import ArchiveError

        try:
            checks = await self.async_verify_archive([meter])
        except ArchiveError as err:
            raise archive_unreadable(err) from err
        check = checks.get(meter.key)
        first_month = None if start is None else f"{start:%Y-%m}"
        lost = [
            month
            for month in (check.lost_months if check is not None else ())
            if first_month is None or month >= first_month
        ]
        if lost:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="rebuild_would_drop_history",
                translation_placeholders={"meter": meter.name, "months": ", ".join(lost)},
            )

    def _archived_result(self, meter: MeterInfo, rows: pd.DataFrame) -> FetchResult:
        return FetchResult(
            intervals=rows,
            complete_until=None,
            rates=self._table(meter, "rates"),
            standing_charges=self._table(meter, "standing_charges"),
            agreements=self._table(meter, "agreements"),
        )

    def _snapshots(self, now: datetime) -> dict[str, MeterSnapshot]:
        """Entity values of every meter (runs in the executor)."""
        from .analytics import intervals

        time_zone = str(self.hass.config.time_zone)
        today = dt_util.as_local(now).date()
        recent = self.recent
        totals = (
            intervals.period_totals(recent, time_zone, today=today)
            if recent is not None and not recent.empty
            else {}
        )
        snapshots: dict[str, MeterSnapshot] = {}
        for meter in self.source.meters:
            tables = self.tables.get(meter.key, MeterTables())
            rows = None if recent is None else recent[recent["meter"] == meter.key]
            prices = self._prices(meter, now)
            snapshots[meter.key] = MeterSnapshot(
                meter=meter,
                consumption=_consumption_part(
                    meter, rows, totals.get(meter.key, {}), tables.rejected
                ),
                tariff=self._tariff_part(meter, tables, prices, now),
                prices=prices,
                grid=self._grid_part(meter),
                composed=self._composed_part(meter, now),
                readings=self._readings_part(meter),
            )
        return snapshots

    def _prices(self, meter: MeterInfo, now: datetime) -> PriceSummary | None:
        """Spot prices of an import meter, for sources that publish them (Tibber)."""
        source = self.source
        if meter.is_export or not has_spot_prices(source):
            return None
        slots = source.price_slots(meter)
        if not slots:
            return None
        from .analytics.prices import summarize

        return summarize(slots, now, meter.time_zone)

    def _tariff_part(
        self, meter: MeterInfo, tables: MeterTables, prices: PriceSummary | None, now: datetime
    ) -> TariffPart | None:
        """Current and next rate (spot prices give them themselves), standing charge."""
        if meter.kind == "grid" or self.source.capabilities.derived:
            return None
        from .analytics import tariffs

        current_rate: float | None = None
        next_rate: float | None = None
        next_rate_start: datetime | None = None
        if prices is not None:
            current_rate = prices.current
            next_rate = prices.next
            next_rate_start = prices.next_start
        elif tables.rates is not None and tables.agreements is not None:
            current_rate = tariffs.rate_at(
                tables.rates, tables.agreements, meter.key, now, payment_method=None
            )
            upcoming = tariffs.next_rate_change(
                tables.rates, tables.agreements, meter.key, now, payment_method=None
            )
            if upcoming is not None:
                next_rate_start, next_rate = upcoming
        standing_charge = None
        if tables.standing_charges is not None and tables.agreements is not None:
            standing_charge = _standing_charge_today(
                tables, meter, dt_util.as_local(now).date(), str(meter.time_zone)
            )
        return TariffPart(
            current_rate=current_rate,
            next_rate=next_rate,
            next_rate_start=next_rate_start,
            standing_charge=standing_charge,
            unrated=tables.unrated,
        )

    def _grid_part(self, meter: MeterInfo) -> GridPart | None:
        """Grid values, mix and shares of a grid meter; a linked meter's emissions."""
        if meter.kind != "grid":
            return None
        from .analytics.grid import (
            latest_mix,
            latest_values,
            low_carbon_share,
            renewable_share,
        )

        grid = self.grid_recent
        values: dict[str, tuple[datetime, float]] = {}
        mix = None
        if grid is not None and not grid.empty:
            values = latest_values(grid)
            if (latest := latest_mix(grid)) is not None:
                start, row = latest
                mix = GridMix(start, row, low_carbon_share(row), renewable_share(row))
        emissions = self.emissions
        if emissions is None:
            return GridPart(values=values, mix=mix)
        return GridPart(
            values=values,
            mix=mix,
            emissions_today=emissions.today_kg,
            emissions_missing=emissions.today_missing,
            emissions_meter=emissions.meter_key,
        )

    def _readings_part(self, meter: MeterInfo) -> ReadingsPart | None:
        """A meter from an entity: its counter, newest reading and resets."""
        source = self.source
        if not isinstance(source, ComposedSource):
            return None
        state = source.entities.states.get(meter.key)
        if state is None:
            return None
        return ReadingsPart(
            total=state.total,
            reading=state.reading,
            reading_at=state.reading_at,
            resets=tuple(
                (dt_util.utc_from_timestamp(r.time / 1e9), r.before, r.after, r.kind)
                for r in state.resets
            ),
            skipped=dict(state.skipped),
        )

    def _composed_part(self, meter: MeterInfo, now: datetime) -> ComposedPart | None:
        """A composed meter's reading and what clipping at 0 removed today."""
        source = self.source
        if not isinstance(source, ComposedSource) or meter.key not in source.definitions:
            return None
        return ComposedPart(
            reading=source.readings.get(meter.key),
            clipped_today=source.clipped.on(meter.key, dt_util.as_local(now).date()),
        )


def _consumption_part(
    meter: MeterInfo,
    rows: pd.DataFrame | None,
    totals: dict[str, dict[str, float | None]],
    rejected: int,
) -> ConsumptionPart:
    """The newest interval of `rows` (the meter's recent ones), period totals, gaps of 7 days."""
    from .analytics import intervals

    part = ConsumptionPart(
        today=_total(totals, "today", "value"),
        yesterday=_total(totals, "yesterday", "value"),
        month=_total(totals, "month", "value"),
        cost_today=_total(totals, "today", "cost"),
        cost_yesterday=_total(totals, "yesterday", "cost"),
        rejected=rejected,
    )
    if rows is None or rows.empty:
        return part
    last = rows.iloc[-1]
    newest = last["end"].to_pydatetime()
    cost = last["cost"]
    return replace(
        part,
        last_interval_value=float(last["value"]),
        last_interval_start=last["start"].to_pydatetime(),
        cost_last_interval=None if cost is None or math.isnan(cost) else cost,
        newest_data=newest,
        missing_7d=intervals.continuity(
            rows,
            cadence_minutes=meter.cadence_minutes,
            window_start=newest - timedelta(days=7),
            window_end=newest,
        ).missing_count,
    )


def _update_error(err: SourceError) -> ConfigEntryAuthFailed | UpdateFailed:
    """What Home Assistant expects for a failed poll: reauth, or a retry (maybe later)."""
    if isinstance(err, SourceAuthError):
        return ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth")
    if isinstance(err, SourceUnavailableError):
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": scrub(str(err))},
            retry_after=err.retry_after,
        )
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="source_error",
        translation_placeholders={"error": scrub(str(err))},
    )


def _row_range(rows: pd.DataFrame) -> tuple[datetime, datetime]:
    """First start and last end of some rows (executor: pandas stays off the event loop)."""
    first: datetime = rows["start"].min().to_pydatetime()
    last: datetime = rows["end"].max().to_pydatetime()
    return first, last


def archive_unreadable(err: Exception) -> HomeAssistantError:
    """The translated error of an action that needed an archive it could not read."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="archive_unreadable",
        translation_placeholders={"error": scrub(str(err))},
    )


def meter_failing_issue_id(entry_id: str, meter_key: str) -> str:
    """Id of the repair issue of a meter whose polls keep failing."""
    return f"meter_failing_{entry_id}_{meter_key}"


def archive_damaged_issue_id(entry_id: str) -> str:
    """Id of the entry's "archive lost months" repair issue."""
    return f"archive_damaged_{entry_id}"


def _month_window(month: str) -> tuple[datetime, datetime]:
    """[first, next month's first) of a `YYYY-MM` UTC month."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _rows_between(
    frame: pd.DataFrame, meter: str | None, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """Rows starting in [start, end) (open bounds for None), of one meter unless None."""
    import pandas as pd

    mask = pd.Series(True, index=frame.index) if meter is None else frame["meter"] == meter
    if start is not None:
        mask &= frame["start"] >= pd.Timestamp(start)
    if end is not None:
        mask &= frame["start"] < pd.Timestamp(end)
    return frame[mask].reset_index(drop=True)


def _no_missing() -> MissingSlots:
    from .analytics.revisions import MissingSlots

    return MissingSlots([], 0, 0)


def _missing_slots(
    rows: pd.DataFrame, meter: MeterInfo, start: datetime, end: datetime
) -> MissingSlots:
    """Whole slots of [start, end) without a row: gaps, and an export meter's quiet slots."""
    from .analytics.revisions import classify_missing

    step = timedelta(minutes=meter.cadence_minutes)
    first = floor_to(start, step)
    if first < start:
        first += step
    last = floor_to(end, step)
    if last <= first:
        return _no_missing()
    return classify_missing(
        rows.loc[rows["meter"] == meter.key, "start"],
        cadence_minutes=meter.cadence_minutes,
        window_start=first,
        window_end=last,
        time_zone=meter.time_zone,
        quiet_days=meter.is_export,
    )


def _concat_recent(frames: list[pd.DataFrame], now: datetime) -> pd.DataFrame:
    import pandas as pd

    from .analytics.intervals import dedupe

    merged = dedupe(pd.concat(frames, ignore_index=True))
    horizon = pd.Timestamp(now - RECENT_WINDOW - timedelta(days=1))
    return merged[merged["start"] >= horizon].reset_index(drop=True)


def _total(totals: dict[str, dict[str, float | None]], period: str, column: str) -> float | None:
    return totals.get(period, {}).get(column)


def _standing_charge_today(
    tables: MeterTables, meter: MeterInfo, today: date, time_zone: str
) -> float | None:
    from .analytics import tariffs

    assert tables.agreements is not None
    assert tables.standing_charges is not None
    charges = tariffs.standing_charges_by_day(
        tables.agreements,
        tables.standing_charges,
        tz=time_zone,
        start_day=today,
        end_day=today,
        payment_method=None,
    )
    rows = charges[charges["meter"] == meter.key]
    if rows.empty:
        return None
    charge = float(rows["charge"].iloc[0])
    return None if math.isnan(charge) else charge
