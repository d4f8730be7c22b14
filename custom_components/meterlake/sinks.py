"""Where a poll's rows go besides memory: the Parquet archive and long-term statistics.

Both sinks are failure-tolerant in the same way: a failed write keeps the meter's watermark
where it was (the coordinator asks `accepted()`), so the next poll fetches the rows again and
the write is retried; nothing already stored is touched by a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .const import (
    CONF_ARCHIVE_ROOT,
    CONF_KEEP_RAW_DAYS,
    CONF_STANDING_CHARGE_IN_COST,
    DEFAULT_ARCHIVE_ROOT,
    DOMAIN,
)
from .redact import forget_secrets, scrub
from .sources.base import AuditRecord, FetchResult, MeterInfo
from .storage import SCHEME_LOCAL, storage_options, store_kind

if TYPE_CHECKING:
    import pandas as pd

    from .archive import Archive

_LOGGER = logging.getLogger(__name__)


# How long an archive that could not be opened is left alone before the next attempt.
OPEN_RETRY_S = 60.0
# An archive whose credentials end sooner than this (a GCS access token) is opened again.
CREDENTIALS_REFRESH = timedelta(minutes=5)


def archive_issue_id(entry_id: str) -> str:
    """Id of the entry's "archive cannot be written" repair issue."""
    return f"archive_unwritable_{entry_id}"


FOREIGN_STATISTIC_PREFIX = "foreign_statistic_"


def foreign_statistic_issue_id(stat_id: str) -> str:
    """Id of the repair issue about foreign metadata under one of our statistic ids."""
    return FOREIGN_STATISTIC_PREFIX + stat_id.partition(":")[2]


@dataclass(slots=True)
class StoreOutcome:
    """What a sink made of one meter's fetch."""

    accepted: bool = True
    rows_written: int = 0
    refetch: list[tuple[datetime, datetime]] = field(default_factory=list)


class ArchiveSink:
    """Writes intervals, readings, rates, standing charges, audit and raw responses to the archive.

    A failure raises a repair issue naming the root and the error; the next successful write
    clears it. A partition that could not be read is reported and its month re-fetched.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str, options: Mapping[str, Any]) -> None:
        self.hass = hass
        self.entry_id = entry_id
        self.root_option = str(options.get(CONF_ARCHIVE_ROOT) or DEFAULT_ARCHIVE_ROOT)
        self.keep_raw_days = int(options.get(CONF_KEEP_RAW_DAYS) or 0)
        self.storage_options = storage_options(options)
        self.archive: Archive | None = None
        self.last_error: str | None = None
        self._cleared = False
        # When opening last failed, and why: the store is not asked again for OPEN_RETRY_S.
        self._refused: tuple[float, str, str] | None = None

    @property
    def issue_id(self) -> str:
        """One repair issue per entry."""
        return archive_issue_id(self.entry_id)

    async def async_prove(self) -> bool:
        """Open the archive at setup: its credentials are proven before anything uses it.

        On failure the archive stays off (every use tries to open it again) and the entry's
        archive repair issue says why; the entry itself starts (the sensors need no archive).
        """
        from .archive import ArchiveError

        try:
            await self.async_open()
        except ArchiveError as err:
            self._failed(err.root, err.reason)
            return False
        return True

    async def async_open(self) -> Archive:
        """Open the archive root once (blocking checks run in the executor).

        `open_archive` proves an object store's credentials with a call that fails cleanly;
        until it succeeds no Archive exists, so nothing else can call into the store. An
        Archive whose credentials end within CREDENTIALS_REFRESH (a GCS service account's
        access token) is opened again with new ones; while that fails, the old one serves
        until its token ends.
        """
        current = self.archive
        now = dt_util.utcnow()
        expires = current.credentials_expire if current is not None else None
        if current is not None and (expires is None or expires - now > CREDENTIALS_REFRESH):
            return current
        # The current archive, if any, only while its token still works.
        usable = current if expires is not None and expires > now else None
        from .archive import ArchiveError, open_archive

        if self._refused is not None and time.monotonic() - self._refused[0] < OPEN_RETRY_S:
            if usable is not None:
                return usable
            self.archive = None
            # An unreachable store costs seconds per attempt: fail fast meanwhile.
            raise ArchiveError(self._refused[1], self._refused[2])
        try:
            archive = await self.hass.async_add_executor_job(
                lambda: open_archive(
                    self.root_option,
                    config_dir=self.hass.config.config_dir,
                    storage_options=self.storage_options,
                )
            )
        except ArchiveError as err:
            self._refused = (time.monotonic(), err.root, err.reason)
            if usable is not None:
                _LOGGER.warning(
                    "Cannot renew the archive's credentials, the current ones serve until %s: %s",
                    expires,
                    err,
                )
                return usable
            self.archive = None
            raise
        self._refused = None
        if current is not None and current.expiring_secrets:
            # The replaced token is of no use to anyone: the scrubber's registry stays small.
            forget_secrets(current.expiring_secrets)
        self.archive = archive
        return archive

    async def async_store(self, meter: MeterInfo, result: FetchResult) -> StoreOutcome:
        """Write one fetch; on failure keep the rows for the next poll and raise a repair."""
        from .archive import ArchiveError

        try:
            archive = await self.async_open()
            outcome = await self.hass.async_add_executor_job(
                _write_fetch, archive, meter, result, self.keep_raw_days, dt_util.utcnow()
            )
        except ArchiveError as err:
            self._failed(err.root, err.reason)
            return StoreOutcome(accepted=False)
        except OSError as err:  # pragma: no cover - archive.py wraps OS errors already
            self._failed(self.root_option, str(err))
            return StoreOutcome(accepted=False)
        if self.last_error is not None:
            _LOGGER.info("Archive %s is writable again", archive.root)
        if self.last_error is not None or not self._cleared:
            # Also the first write after a reload: the issue may be from the root the user
            # just replaced in the options.
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
            self._cleared = True
            self.last_error = None
        return outcome

    async def async_read(
        self, meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        """Rows of the meter in [start, end) from the archive, None when it cannot be read."""
        from .archive import ArchiveError

        try:
            archive = await self.async_open()
            return await self.hass.async_add_executor_job(
                lambda: archive.read_intervals(meter.key, start, end, skip_corrupt=True)
            )
        except ArchiveError as err:
            _LOGGER.warning("Cannot read the archive: %s", err)
            return None

    async def async_months(self, meter: MeterInfo) -> list[str] | None:
        """`YYYY-MM` months holding intervals of the meter, oldest first; None when unreadable.

        Long reads (statistics catch-up, rebuilds, priming) go month by month over these.
        """
        from .archive import ArchiveError

        try:
            archive = await self.async_open()
            return await self.hass.async_add_executor_job(archive.interval_months, meter.key)
        except ArchiveError as err:
            _LOGGER.warning("Cannot read the archive: %s", err)
            return None

    async def async_read_readings(
        self, meter: MeterInfo, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame | None:
        """Counter readings of the meter with time in [start, end), None when unreadable."""
        from .archive import ArchiveError

        try:
            archive = await self.async_open()
            return await self.hass.async_add_executor_job(
                lambda: archive.read_readings(meter.key, start, end, skip_corrupt=True)
            )
        except ArchiveError as err:
            _LOGGER.warning("Cannot read the archive: %s", err)
            return None

    async def async_read_grid(
        self, meter: MeterInfo, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame | None:
        """Grid rows (eCO2mix) of the meter's perimeter in [start, end), None when unreadable."""
        from .archive import ArchiveError

        perimeter = str(meter.extra.get("perimeter", ""))
        try:
            archive = await self.async_open()
            return await self.hass.async_add_executor_job(
                archive.read_grid_mix, perimeter, start, end
            )
        except ArchiveError as err:
            _LOGGER.warning("Cannot read the archive: %s", err)
            return None

    async def async_write_audit(self, records: Sequence[AuditRecord]) -> None:
        """Archive the audit rows of a poll that failed (a successful one goes with its rows).

        Best effort: the poll's own error is what the user sees; an archive failure here only
        raises the usual repair issue.
        """
        from .archive import ArchiveError

        if not records:
            return
        try:
            archive = await self.async_open()
            await self.hass.async_add_executor_job(archive.write_audit, list(records))
        except ArchiveError as err:
            self._failed(err.root, err.reason)

    async def async_write_anomalies(self, frame: pd.DataFrame) -> bool:
        """Archive anomalies (analytics.schema.ANOMALY_COLUMNS); True when they are stored.

        An empty frame writes nothing and counts as stored. A failure raises the usual repair
        issue and returns False, so the caller can try again with its next detection.
        """
        from .archive import ArchiveError

        if frame.empty:
            return True
        try:
            archive = await self.async_open()
            summary = await self.hass.async_add_executor_job(archive.write_anomalies, frame)
        except ArchiveError as err:
            self._failed(err.root, err.reason)
            return False
        for path in summary.corrupt:
            _LOGGER.warning("Archive partition %s was unreadable; kept as *.corrupt", path)
        return True

    async def async_write_agreements(self, frame: pd.DataFrame) -> bool:
        """Archive agreements (analytics.schema.AGREEMENT_ARCHIVE_COLUMNS); True when stored.

        An empty frame writes nothing and counts as stored. A failure raises the usual repair
        issue and returns False.
        """
        from .archive import ArchiveError

        if frame.empty:
            return True
        try:
            archive = await self.async_open()
            summary = await self.hass.async_add_executor_job(archive.write_agreements, frame)
        except ArchiveError as err:
            self._failed(err.root, err.reason)
            return False
        for path in summary.corrupt:
            _LOGGER.warning("Archive partition %s was unreadable; kept as *.corrupt", path)
        from .views import ensure_views

        # The first agreements of an archive (an imported file) add views: best effort.
        await self.hass.async_add_executor_job(ensure_views, archive, {"agreements"})
        return True

    def _failed(self, root: str, reason: str) -> None:
        """Log once and raise the entry's archive issue: not opened, or not written.

        Not opened: an object store refused the credentials or could not be reached (a local
        folder that cannot be made is "not written"). The texts are scrubbed again, as a
        reason may come from outside archive.py.
        """
        root, reason = scrub(root), scrub(reason)
        unproven = self.archive is None and store_kind(self.root_option) != SCHEME_LOCAL
        translation_key = "archive_unproven" if unproven else "archive_unwritable"
        if self.last_error is None:
            _LOGGER.error("Cannot write the archive at %s: %s", root, reason)
        self.last_error = reason
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=translation_key,
            translation_placeholders={"root": root, "error": reason},
        )


def _write_fetch(
    archive: Archive, meter: MeterInfo, result: FetchResult, keep_raw_days: int, now: datetime
) -> StoreOutcome:
    """Every dataset of one fetch (runs in the executor), then the analyst views when due."""
    from .archive import product_of
    from .views import ensure_views

    outcome = StoreOutcome()
    if not result.intervals.empty:
        summary = archive.write_intervals(result.intervals)
        outcome.rows_written = summary.rows_written
        for path in summary.corrupt:
            _LOGGER.warning("Archive partition %s was unreadable; kept as *.corrupt", path)
        outcome.refetch = [(start, end) for _key, start, end in summary.corrupt_windows]
    if result.readings is not None and not result.readings.empty:
        summary = archive.write_readings(result.readings)
        for path in summary.corrupt:
            _LOGGER.warning("Archive partition %s was unreadable; kept as *.corrupt", path)
        for _key, start, end in summary.corrupt_windows:
            if (start, end) not in outcome.refetch:
                outcome.refetch.append((start, end))
    if result.grid is not None and not result.grid.empty:
        archive.write_grid_mix(result.grid, perimeter=str(meter.extra.get("perimeter", "")))
    if result.rates is not None and not result.rates.empty:
        archive.write_rates(result.rates)
    if result.standing_charges is not None and not result.standing_charges.empty:
        archive.write_standing_charges(result.standing_charges)
    wrote_agreements = result.agreements is not None and not result.agreements.empty
    if result.agreements is not None and wrote_agreements:
        agreements = result.agreements
        products: list[Any] = [
            product_of(tariff) if isinstance(tariff, str) else None
            for tariff in agreements["tariff"].to_numpy(dtype=object)
        ]
        summary = archive.write_agreements(
            agreements.assign(product=products, source=meter.supplier, ingested_at=now)
        )
        for path in summary.corrupt:
            _LOGGER.warning("Archive partition %s was unreadable; kept as *.corrupt", path)
    if result.audit:
        archive.write_audit(result.audit)
    if keep_raw_days > 0:
        for endpoint, payload in result.raw:
            archive.write_raw(meter.supplier, endpoint, payload, now)
        archive.purge_raw(keep_days=keep_raw_days, now=now)
    # Once per session and archive (again when a dataset the views lacked got its first rows).
    ensure_views(
        archive,
        wrote={
            name
            for name, done in (
                ("consumption", not result.intervals.empty),
                ("agreements", wrote_agreements),
            )
            if done
        },
    )
    return outcome


class StatisticsSink:
    """Imports each fetch into long-term statistics, in a background task once HA has started.

    Rows wait in a per-meter queue; the worker imports them in order and drops them only after
    the recorder accepted them. Imports need the recorder's queue running, which is not the case
    during a config entry's first refresh at boot, hence the background task.
    """

    def __init__(self, hass: HomeAssistant, options: Mapping[str, Any]) -> None:
        self.hass = hass
        self.standing_charge_in_cost = bool(options.get(CONF_STANDING_CHARGE_IN_COST, False))
        self.pending: dict[str, tuple[MeterInfo, pd.DataFrame, FetchResult]] = {}
        self._entry: ConfigEntry[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._cancel_start: Callable[[], None] | None = None
        self._catch_up: Callable[[], Awaitable[None]] | None = None
        self._holds = 0
        self.last_error: str | None = None
        # Meters whose last import failed: key -> error (diagnostics).
        self.failures: dict[str, str] = {}

    def start(
        self,
        entry: ConfigEntry[Any],
        catch_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Import in background tasks of the entry, from when Home Assistant runs.

        `catch_up` runs once before the first import: it lets the coordinator queue archived
        rows the statistics do not have yet (a restart in the middle of a long first import, a
        new install over an existing archive).
        """
        self._entry = entry
        self._catch_up = catch_up

        async def _begin(_hass: HomeAssistant) -> None:
            self._started = True
            self._kick()

        self._cancel_start = async_at_started(self.hass, _begin)

    def stop(self) -> None:
        """Forget the start listener (entry unload; running imports end with the entry)."""
        if self._cancel_start is not None:
            self._cancel_start()
            self._cancel_start = None

    def pending_start(self, meter_key: str) -> datetime | None:
        """Start of the oldest queued row of a meter, None when nothing is queued."""
        pending = self.pending.get(meter_key)
        if pending is None:
            return None
        start: datetime = pending[1]["start"].min().to_pydatetime()
        return start

    def hold(self) -> None:
        """Pause imports (a backfill collects all its windows into one import)."""
        self._holds += 1

    def release(self) -> None:
        """Resume imports after hold()."""
        self._holds = max(0, self._holds - 1)
        self._kick()

    async def async_queue(self, meter: MeterInfo, result: FetchResult) -> None:
        """Add a fetch to the meter's queue (newer rows win where they overlap).

        Merging with what is already queued is pandas work: it runs in the executor.
        """
        if result.intervals.empty:
            return
        previous = self.pending.get(meter.key)
        frame = result.intervals
        if previous is not None:
            frame = await self.hass.async_add_executor_job(_combine, previous[1], frame)
        self.pending[meter.key] = (meter, frame, result)
        self._kick()

    def _kick(self) -> None:
        """Start a drain task unless one runs, imports are held or HA has not started."""
        if not self._started or self._holds or self._entry is None:
            return
        if self._task is None or self._task.done():
            self._task = self._entry.async_create_background_task(
                self.hass, self._drain(), f"{DOMAIN} statistics {self._entry.entry_id}"
            )

    async def _drain(self) -> None:
        if self._catch_up is not None:
            catch_up, self._catch_up = self._catch_up, None
            await catch_up()
        failed: set[str] = set()
        while not self._holds:
            # One meter whose import keeps failing must not hold back the others: it waits
            # for the next poll (or catch-up), the rest go on.
            keys = [key for key in self.pending if key not in failed]
            if not keys:
                return
            for key in keys:
                if not await self._import_one(key):
                    failed.add(key)

    async def _import_one(self, key: str) -> bool:
        meter, frame, result = self.pending[key]
        if not await self._async_run(meter, frame, result, reconcile=False):
            return False
        current = self.pending.get(key)
        if current is not None and current[1] is frame:
            del self.pending[key]
        return True

    async def async_rebuild(self, meter: MeterInfo, result: FetchResult, *, exact: bool) -> int:
        """Rewrite the statistics from `result` (stored rows), without clearing first.

        With `exact` (`result` is everything stored), hours that no stored interval covers
        any more are removed. Returns the hours sent.
        """
        from . import statistics

        frame = result.intervals
        outcome = await statistics.async_import_meter(
            self.hass,
            meter,
            frame,
            standing=await self._standing(meter, result, frame),
            standing_charge_in_cost=self.standing_charge_in_cost,
            time_zone=meter.time_zone,
            exact=exact,
        )
        self._note_refused(meter, outcome.refused)
        return outcome.hours_written

    async def async_import_history(
        self,
        meter: MeterInfo,
        windows: Sequence[tuple[datetime, datetime]],
        read: Callable[[datetime, datetime], Awaitable[pd.DataFrame | None]],
        *,
        agreements: pd.DataFrame | None = None,
        standing_charges: pd.DataFrame | None = None,
        reconcile: bool = False,
        exact: bool = False,
    ) -> tuple[int, int] | None:
        """Import a stored history read window by window (months): (intervals read, hours sent).

        Never the whole history in memory (statistics.async_import_history). A reconcile (the
        catch-up) that fails is logged and kept in `failures`, and returns None; a rebuild
        raises. `agreements` and `standing_charges` give the standing charges of each window.
        """
        from . import statistics

        async def standing(frame: pd.DataFrame) -> pd.DataFrame | None:
            tables = FetchResult(
                intervals=frame,
                complete_until=None,
                agreements=agreements,
                standing_charges=standing_charges,
            )
            return await self._standing(meter, tables, frame)

        try:
            outcome = await statistics.async_import_history(
                self.hass,
                meter,
                windows,
                read,
                standing=standing if self.standing_charge_in_cost else None,
                standing_charge_in_cost=self.standing_charge_in_cost,
                time_zone=meter.time_zone,
                exact=exact,
                reconcile=reconcile,
            )
        except Exception as err:
            if not reconcile:
                raise
            if self.failures.get(meter.key) is None:
                _LOGGER.warning("Statistics import for %s failed: %s", meter.key, err)
            self.failures[meter.key] = self.last_error = str(err)
            return None
        if reconcile:
            self.failures.pop(meter.key, None)
            self.last_error = next(iter(self.failures.values()), None)
        self._note_refused(meter, outcome.result.refused)
        return outcome.intervals, outcome.result.hours_written

    async def _async_run(
        self, meter: MeterInfo, frame: pd.DataFrame, result: FetchResult, *, reconcile: bool
    ) -> bool:
        from . import statistics

        try:
            outcome = await statistics.async_import_meter(
                self.hass,
                meter,
                frame,
                standing=await self._standing(meter, result, frame),
                standing_charge_in_cost=self.standing_charge_in_cost,
                time_zone=meter.time_zone,
                reconcile=reconcile,
            )
        except Exception as err:
            if self.failures.get(meter.key) is None:
                _LOGGER.warning("Statistics import for %s failed: %s", meter.key, err)
            self.failures[meter.key] = self.last_error = str(err)
            return False
        self.failures.pop(meter.key, None)
        self.last_error = next(iter(self.failures.values()), None)
        self._note_refused(meter, outcome.refused)
        return True

    async def _standing(
        self, meter: MeterInfo, result: FetchResult, frame: pd.DataFrame
    ) -> pd.DataFrame | None:
        if not self.standing_charge_in_cost:
            return None
        standing: pd.DataFrame | None = await self.hass.async_add_executor_job(
            standing_by_day, meter, result, frame
        )
        return standing

    def _note_refused(self, meter: MeterInfo, refused: Mapping[str, str]) -> None:
        """A repair issue per statistic refused for foreign metadata; it offers a rebuild."""
        for stat_id, reason in refused.items():
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                foreign_statistic_issue_id(stat_id),
                is_fixable=True,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="foreign_statistic",
                translation_placeholders={
                    "statistic_id": stat_id,
                    "reason": reason,
                    "meter": meter.name,
                },
                data={
                    "entry_id": self._entry.entry_id if self._entry is not None else "",
                    "meter": meter.key,
                    "statistic_id": stat_id,
                },
            )


def _combine(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    from .analytics.intervals import dedupe

    return dedupe(pd.concat([older, newer], ignore_index=True))


def standing_by_day(meter: MeterInfo, result: FetchResult, frame: pd.DataFrame) -> Any:
    """Daily standing charges of the meter over the frame's local days (executor)."""
    from .analytics import tariffs

    if result.agreements is None or result.standing_charges is None or frame.empty:
        return None
    local = frame["start"].dt.tz_convert(meter.time_zone)
    return tariffs.standing_charges_by_day(
        result.agreements,
        result.standing_charges,
        tz=meter.time_zone,
        start_day=local.min().date(),
        end_day=local.max().date(),
        payment_method=None,
    )
